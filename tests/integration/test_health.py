"""/healthz: 200 while passes run, 503 when they stall or the database is unreachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from reminders.db.models import WorkerState
from reminders.runtime import Runtime
from reminders.settings import Settings
from reminders.web.app import create_app
from tests.conftest import make_test_settings


def test_health_follows_the_last_pass(settings: Settings) -> None:
    rt = Runtime(settings)
    client = TestClient(create_app(rt))
    body = client.get("/healthz").json()
    assert body["database"] == "ok" and body["last_pass_at"] is None  # no pass yet: not an error
    with rt.session_factory() as db:
        db.add(WorkerState(key="last_pass_at", value=datetime.now(UTC).isoformat()))
        db.commit()
    assert client.get("/healthz").status_code == 200
    with rt.session_factory() as db:
        state = db.get(WorkerState, "last_pass_at")
        assert state is not None
        state.value = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        db.commit()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "stalled"
    rt.close()


def test_health_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    rt = Runtime(make_test_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path))
    response = TestClient(create_app(rt)).get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert "nobody" not in response.text  # no connection details leak
    rt.close()
