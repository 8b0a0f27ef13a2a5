from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from reminders.cli import main
from reminders.db.models import InboundMessage, Message
from reminders.runtime import Runtime
from tests.conversations.helpers import P1


def test_inbound_command(
    clinic: Runtime,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMINDERS_DATABASE_URL", db_url)
    monkeypatch.setenv("REMINDERS_ONCALL_PHONES", "+14105550900")
    assert (
        main(
            [
                "inbound",
                "--from",
                "410-555-0101",
                "--body",
                "I want to end my life",
                "--now",
                "2026-12-02T03:00:00-05:00",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "classification: crisis" in out and "988" in out and "patient: p1" in out
    assert main(["inbound", "--from", P1, "--body", "HELP"]) == 0
    assert "classification: help" in capsys.readouterr().out
    with clinic.session_factory() as db:
        assert [
            i.classification for i in db.scalars(select(InboundMessage).order_by(InboundMessage.id))
        ] == ["crisis", "help"]
        assert len(db.scalars(select(Message).where(Message.kind == "alert")).all()) == 1


def test_inbound_command_needs_a_sender(
    clinic: Runtime,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMINDERS_DATABASE_URL", db_url)
    assert main(["inbound", "--from", " ", "--body", "hi"]) == 2
    assert "--from" in capsys.readouterr().err
