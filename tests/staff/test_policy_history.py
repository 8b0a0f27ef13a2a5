"""The policy's history: the file as found is version 1, every save from the console is a new
version, the history page shows who, when, why and the differences from the policy in use, and
a revert puts an old version back (checked like a save, recorded, audited)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import AuditLog, PolicyVersion
from reminders.runtime import Runtime
from tests.staff.conftest import SignedIn


def versions(factory: sessionmaker[Session]) -> list[tuple[int, str, str | None]]:
    with factory() as db:
        rows = db.scalars(select(PolicyVersion).order_by(PolicyVersion.version)).all()
        return [(v.version, v.actor, v.note) for v in rows]


def text_of(factory: sessionmaker[Session], version: int) -> str:
    with factory() as db:
        row = db.scalars(select(PolicyVersion).where(PolicyVersion.version == version)).one()
        return row.text


@pytest.fixture
def policy_file(runtime: Runtime) -> Path:
    assert runtime.settings.policy_file is not None  # staff_settings sets one
    return Path(runtime.settings.policy_file)


def test_saves_are_versions_and_a_revert_puts_an_old_one_back(
    admin_client: SignedIn, policy_file: Path, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    original = policy_file.read_text(encoding="utf-8")
    in_force = runtime.policy.fingerprint()
    page = admin_client.client.get("/staff/policy").text
    assert versions(factory) == [(1, "system", "as found")]
    assert "Version in use: 1" in page and "as found on the server" in page
    three_hours = original.replace("when: -2h", "when: -3h", 1)
    four_hours = original.replace("when: -2h", "when: -4h", 1)
    saved = admin_client.post("/staff/policy", {"text": three_hours, "note": "later ride text"})
    assert saved.status_code == 303
    assert admin_client.post("/staff/policy", {"text": four_hours}).status_code == 303
    assert versions(factory) == [
        (1, "system", "as found"),
        (2, "admin@clinic.test", "later ride text"),
        (3, "admin@clinic.test", None),
    ]
    assert text_of(factory, 1) == original and text_of(factory, 2) == three_hours
    assert policy_file.read_text(encoding="utf-8") == four_hours
    assert runtime.policy.fingerprint() != in_force
    assert "Version in use: 3" in admin_client.client.get("/staff/policy").text

    history = admin_client.client.get("/staff/policy/history").text
    assert "later ride text" in history and "admin@clinic.test" in history
    assert "found on the server" in history and "in use" in history
    diff = admin_client.client.get("/staff/policy/history?v=1").text
    assert '<span class="del">-    when: -2h' in diff and '<span class="add">+    when: -4h' in diff
    assert "Revert to version 1" in diff

    reverted = admin_client.post("/staff/policy/revert", {"version": "1"})
    assert reverted.status_code == 303 and reverted.headers["location"].endswith("done=reverted")
    assert policy_file.read_text(encoding="utf-8") == original
    assert runtime.policy.fingerprint() == in_force  # in force again, at once
    assert versions(factory)[-1] == (4, "admin@clinic.test", "revert to v1")
    assert text_of(factory, 4) == original
    with factory() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "policy.revert")).one()
        assert audit.actor == "admin@clinic.test"
        assert audit.detail is not None
        assert (audit.detail["version"], audit.detail["reverted_to"]) == (4, 1)
        saves = db.scalars(select(AuditLog).where(AuditLog.action == "policy.save")).all()
        assert [a.detail["version"] for a in saves if a.detail] == [2, 3]
    page = admin_client.client.get("/staff/policy?done=reverted").text
    assert "Reverted" in page and "2 hours before the session starts" in page
    history = admin_client.client.get("/staff/policy/history").text
    assert "back to version 1" in history


def test_the_first_save_records_the_file_as_found(
    admin_client: SignedIn, policy_file: Path, factory: sessionmaker[Session]
) -> None:
    original = policy_file.read_text(encoding="utf-8")
    changed = original.replace("when: -2h", "when: -3h", 1)
    assert admin_client.post("/staff/policy", {"text": changed}).status_code == 303
    assert [v for v, _, _ in versions(factory)] == [1, 2]
    assert text_of(factory, 1) == original and text_of(factory, 2) == changed


def test_an_old_version_that_no_longer_validates_is_refused_in_words(
    admin_client: SignedIn, policy_file: Path, factory: sessionmaker[Session]
) -> None:
    original = policy_file.read_text(encoding="utf-8")
    admin_client.client.get("/staff/policy")  # version 1, as found
    with factory() as db:
        bad = original.replace("when: -1d", "when: +1d", 1)
        db.add(PolicyVersion(version=2, text=bad, actor="someone@clinic.test", note="old"))
        db.commit()
    refused = admin_client.post("/staff/policy/revert", {"version": "2"})
    assert refused.status_code == 422
    assert "Version 2 cannot be used any more, so nothing was changed" in refused.text
    assert "before the session" in refused.text  # what is wrong, from the checker
    assert policy_file.read_text(encoding="utf-8") == original
    assert [v for v, _, _ in versions(factory)] == [1, 2]
    missing = admin_client.post("/staff/policy/revert", {"version": "9"})
    assert missing.status_code == 404 and "There is no version 9." in missing.text
    with factory() as db:
        assert db.scalar(select(AuditLog)) is None


def test_staff_read_the_history_but_cannot_revert(
    staff_client: SignedIn, policy_file: Path, factory: sessionmaker[Session]
) -> None:
    history = staff_client.client.get("/staff/policy/history")
    assert history.status_code == 200 and "Version 1" in history.text
    assert "Revert to version" not in staff_client.client.get("/staff/policy/history?v=1").text
    assert staff_client.post("/staff/policy/revert", {"version": "1"}).status_code == 403


def test_the_built_in_policy_has_no_history_and_is_never_reverted(
    admin_client: SignedIn, runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
    factory: sessionmaker[Session],
) -> None:  # fmt: skip
    monkeypatch.setattr(runtime.settings, "policy_file", None)  # no REMINDERS_POLICY_FILE
    assert "the built-in policy" in admin_client.client.get("/staff/policy").text
    page = admin_client.client.get("/staff/policy/history")
    assert page.status_code == 200 and "cannot be edited here" in page.text
    with factory() as db:
        db.add(PolicyVersion(version=1, text="rules: []\n", actor="x@clinic.test"))
        db.commit()
    refused = admin_client.post("/staff/policy/revert", {"version": "1"})
    assert refused.status_code == 409 and "REMINDERS_POLICY_FILE" in refused.text
    assert [v for v, _, _ in versions(factory)] == [1]
