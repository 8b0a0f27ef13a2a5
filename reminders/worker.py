"""The worker: small named steps (sync, plan, prep, safety, dispatch, reconcile) and the daemon that
runs them.

APScheduler only triggers the periodic passes (in-memory job store, ``max_instances=1``,
``coalesce=True``); all durable state is in the database, so any pass can crash or be
repeated without losing or duplicating a message. ``reminders tick --now`` runs the same
steps once with a fixed clock.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from reminders.clinic.sync import SourceError, sync_clinic_source
from reminders.conversations.prep_flags import PREP_CHECK_SECONDS, flag_late_preparation
from reminders.conversations.safety import run_safety_checks
from reminders.conversations.sweep import process_stranded
from reminders.db.models import WorkerState
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.reconcile import Reconciler, ReconcileReport
from reminders.dispatch.report import DispatchReport
from reminders.logs import event
from reminders.metrics import PASS_SECONDS
from reminders.planning.plan_pass import PlanReport, plan_pass
from reminders.providers.registry import build_providers
from reminders.runtime import Runtime

log = logging.getLogger(__name__)


def worker_id(runtime: Runtime) -> str:
    return (
        runtime.settings.worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )


@dataclass
class TickSummary:
    synced: str | None = None
    plan: PlanReport = field(default_factory=PlanReport)
    safety: int = 0
    prep_flags: int = 0
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    reconcile: ReconcileReport = field(default_factory=ReconcileReport)

    def line(self) -> str:
        parts = []
        if self.synced:
            parts.append(self.synced)
        parts.append(self.plan.line())
        if self.safety:
            parts.append(f"{self.safety} safety items")
        if self.prep_flags:
            parts.append(f"{self.prep_flags} sessions flagged: preparation cut-off missed")
        parts.append(self.dispatch.line())
        if self.reconcile.handled:
            parts.append(self.reconcile.line())
        return "; ".join(parts)


class Worker:
    """The passes, each callable on its own (tests call them directly)."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], datetime] | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.owner = worker_id(runtime)
        providers = build_providers(self.settings, engine=runtime.engine)
        self.dispatcher = Dispatcher(
            settings=self.settings,
            policy=runtime.policy,
            session_factory=runtime.session_factory,
            providers=providers,
            owner=self.owner,
            clock=self.clock,
        )
        self.reconciler = Reconciler(
            settings=self.settings,
            session_factory=runtime.session_factory,
            providers=providers,
            owner=self.owner,
            clock=self.clock,
        )

    def close(self) -> None:
        self.dispatcher.close()
        for provider in self.dispatcher.providers.values():
            provider.close()

    def sync_step(self) -> str | None:
        if not self.settings.clinic_source_url:
            return None
        with PASS_SECONDS.labels("sync").time(), self.runtime.session_factory() as db:
            try:
                report = sync_clinic_source(db, self.settings)
            except SourceError as exc:
                # The clinic database is down or a query broke: plan and send from what we have.
                db.rollback()
                event(log, "clinic source unavailable", level=logging.WARNING, error=str(exc)[:300])
                return f"clinic source unavailable: {exc}"
            db.commit()
        return str(report) if report is not None else None

    def plan_step(self, now: datetime | None = None) -> PlanReport:
        with PASS_SECONDS.labels("plan").time(), self.runtime.session_factory() as db:
            report = plan_pass(
                db,
                policy=self.runtime.policy,
                default_tz=self.settings.zone,
                now=now or self.clock(),
            )
        return report

    def plan_and_flag_step(self, now: datetime | None = None) -> PlanReport:
        """The daemon's plan job: a late booking is flagged the moment it is planned."""
        report = self.plan_step(now)
        if report.inserted or report.updated or report.revived:
            self.prep_step(now)
        return report

    def prep_step(self, now: datetime | None = None) -> int:
        """Flag sessions whose patient cannot be told a preparation cut-off in time. Runs after
        a plan that changed something, and every ``PREP_CHECK_SECONDS`` for cut-offs that pass
        as time goes by (a reminder that failed)."""
        with PASS_SECONDS.labels("prep").time(), self.runtime.session_factory() as db:
            return flag_late_preparation(
                db, self.settings, self.runtime.policy, now or self.clock()
            )

    def safety_step(self, now: datetime | None = None) -> int:
        now = now or self.clock()
        with PASS_SECONDS.labels("safety").time():
            swept = process_stranded(
                self.runtime.session_factory, self.runtime.read_session_factory, self.settings, now
            )
            with self.runtime.session_factory() as db:
                count = run_safety_checks(db, self.settings, now)
                db.commit()
        return swept + int(count or 0)

    def dispatch_step(self, now: datetime | None = None) -> DispatchReport:
        self.dispatcher.policy = self.runtime.policy  # picks up an edited policy file
        with PASS_SECONDS.labels("dispatch").time():
            report = self.dispatcher.run_pass(now)
        self._record_pass(now or self.clock())
        return report

    def reconcile_step(self, now: datetime | None = None) -> ReconcileReport:
        with PASS_SECONDS.labels("reconcile").time():
            return self.reconciler.run_pass(now)

    def _record_pass(self, at: datetime) -> None:
        with self.runtime.session_factory() as db:
            state = db.get(WorkerState, "last_pass_at")
            if state is None:
                db.add(WorkerState(key="last_pass_at", value=at.isoformat()))
            else:
                state.value = at.isoformat()
            db.commit()

    def tick(self, now: datetime | None = None) -> TickSummary:
        summary = TickSummary()
        summary.synced = self.sync_step()
        summary.plan = self.plan_step(now)
        summary.prep_flags = self.prep_step(now)
        summary.safety = self.safety_step(now)
        summary.dispatch = self.dispatch_step(now)
        summary.reconcile = self.reconcile_step(now)
        return summary


def run_tick(runtime: Runtime, *, now: datetime | None = None) -> TickSummary:
    worker = Worker(runtime, clock=(lambda: now) if now else None)
    try:
        return worker.tick(now)
    finally:
        worker.close()


def _guarded(name: str, step: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            step()
        except Exception:  # noqa: BLE001 - a failed pass is logged and retried next time
            log.exception("pass failed", extra={"fields": {"step": name}})

    return run


def run_daemon(runtime: Runtime) -> int:
    """Periodic passes plus the web server, until SIGTERM/SIGINT (a second signal exits at once)."""
    # Imported here: only the daemon serves HTTP, and the web stack (FastAPI, the provider
    # SDKs behind the webhooks) would add half a second to every other command.
    import uvicorn
    from apscheduler.schedulers.background import BackgroundScheduler

    from reminders.web.app import create_app

    settings = runtime.settings
    worker = Worker(runtime)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(1)
        event(log, "shutting down", signal=signal.Signals(signum).name)
        stop.set()
        worker.dispatcher.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    scheduler = BackgroundScheduler(
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    )
    jobs: dict[str, tuple[Callable[[], Any], float]] = {
        "sync": (worker.sync_step, settings.sync_interval_seconds),
        "plan": (worker.plan_and_flag_step, settings.plan_interval_seconds),
        "safety": (worker.safety_step, settings.pass_interval_seconds),
        "prep": (worker.prep_step, PREP_CHECK_SECONDS),
        "dispatch": (worker.dispatch_step, settings.pass_interval_seconds),
        "reconcile": (worker.reconcile_step, settings.reconcile_interval_seconds),
    }
    now = datetime.now(UTC)
    for name, (step, interval) in jobs.items():
        scheduler.add_job(
            _guarded(name, step), "interval", seconds=interval, id=name, next_run_time=now
        )
    # The first plan runs before the first dispatch so a fresh start sends what is due at once.
    _guarded("sync", worker.sync_step)()
    _guarded("plan", worker.plan_and_flag_step)()
    scheduler.start()

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # No handlers of uvicorn's own: its loggers propagate to the root handler, which
            # redacts (an ASGI app's exception is logged with its traceback).
            log_config=None,
        )
    )
    web = threading.Thread(target=server.run, name="web", daemon=True)
    web.start()
    event(
        log,
        "worker started",
        worker=worker.owner,
        http=f"{settings.http_host}:{settings.http_port}",
        sms=settings.sms_provider,
        email=settings.email_provider,
    )
    status = 0
    while not stop.wait(0.5):
        if not web.is_alive() and not server.should_exit:
            log.error(
                "web server stopped: is %s:%s already in use? (REMINDERS_HTTP_PORT)",
                settings.http_host,
                settings.http_port,
            )
            stop.set()
            worker.dispatcher.stopping.set()
            status = 1
            break

    # Finish in-flight sends (claimed-but-unsent messages are released), within the grace period.
    server.should_exit = True

    def finish() -> None:
        scheduler.shutdown(wait=True)
        worker.close()

    closer = threading.Thread(target=finish, daemon=True)
    closer.start()
    closer.join(settings.shutdown_grace_seconds)
    if closer.is_alive():
        log.warning("in-flight work did not finish within the grace period; leases will expire")
    web.join(5)
    event(log, "worker stopped", worker=worker.owner)
    return status
