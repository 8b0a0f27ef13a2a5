from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reminders.runtime import Runtime
from reminders.settings import Settings
from reminders.web.app import create_app
from tests.conftest import make_test_settings
from tests.conversations.helpers import (
    INBOUND_SECRET,
    ONCALL_EMAILS,
    ONCALL_PHONES,
    TOKEN,
    seed_clinic,
)


@pytest.fixture
def conv_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_test_settings(
        db_url,
        tmp_path,
        twilio_auth_token=TOKEN,
        oncall_phones=ONCALL_PHONES,
        oncall_emails=ONCALL_EMAILS,
        sendgrid_inbound_secret=INBOUND_SECRET,
        clinic_name="Lakeside Clinic",
        clinic_phone="+14105550100",
    )


@pytest.fixture
def runtime(conv_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(conv_settings)
    yield rt
    rt.close()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clinic(runtime: Runtime, now: datetime) -> Runtime:
    with runtime.session_factory() as db:
        seed_clinic(db, now)
    return runtime


@pytest.fixture
def client(clinic: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(clinic)) as c:
        yield c
