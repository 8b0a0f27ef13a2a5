"""The FastAPI app: health, metrics, the providers' webhooks, unsubscribe and the staff console.

Routers live beside their feature (``providers/*/webhooks.py``, ``web/unsubscribe.py``,
``web/staff/``) and reach the shared objects through ``request.app.state.runtime`` (a
:class:`reminders.runtime.Runtime`; :func:`reminders.web.deps.runtime_of`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from reminders.bodylimits import BodyLimitMiddleware
from reminders.db.models import WorkerState
from reminders.metrics import REGISTRY, register_database
from reminders.outbox.settle import count_in_doubt
from reminders.providers.sendgrid import webhooks as sendgrid_webhooks
from reminders.providers.twilio import webhooks as twilio_webhooks
from reminders.runtime import Runtime
from reminders.web import unsubscribe
from reminders.web.staff import router as staff
from reminders.web.staff.errors import install_error_pages

log = logging.getLogger(__name__)
# A thread that wants the GIL waits up to this long for a busy one (a console preview
# rendering for seconds) to let go, at each of its database calls: 1 ms instead of Python's
# 5 ms keeps an inbound webhook's answer short while the console works (bench/inbound_load.py:
# p99 0.31-0.38 s against 0.66-0.83 s with 5 ms).
SWITCH_INTERVAL_S = 0.001


def create_app(runtime: Runtime) -> FastAPI:
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # for the whole process that serves the app
    app = FastAPI(title="reminders", docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    register_database(runtime.read_session_factory)

    @app.get("/healthz")
    def healthz() -> Response:
        return health_response(runtime)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for router in (
        twilio_webhooks.router,
        sendgrid_webhooks.router,
        unsubscribe.router,
        staff.router,
    ):
        app.include_router(router)
    install_error_pages(app)  # the console's errors are pages, not JSON
    # Each route's body limit, before its body is read (reminders/bodylimits.py).
    app.add_middleware(BodyLimitMiddleware)
    return app


def health_response(runtime: Runtime, *, now: datetime | None = None) -> Response:
    now = now or datetime.now(UTC)
    body: dict[str, object] = {"status": "ok", "database": "ok", "last_pass_at": None}
    status_code = 200
    try:
        # A read-only session: on SQLite a health check must not queue behind a long plan pass.
        with runtime.read_session_factory() as db:
            db.execute(text("SELECT 1"))
            state = db.get(WorkerState, "last_pass_at")
            body["messages_in_doubt"] = count_in_doubt(db, now)
    except Exception as exc:  # noqa: BLE001
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        body.update(status="error", database="unreachable")
        return JSONResponse(body, status_code=503)
    if state is not None:
        last = datetime.fromisoformat(state.value)
        body["last_pass_at"] = last.isoformat()
        if now - last > timedelta(seconds=runtime.settings.stalled_after_seconds):
            body["status"] = "stalled"
            status_code = 503
    return JSONResponse(body, status_code=status_code)
