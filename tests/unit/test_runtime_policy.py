"""An edited policy file reaches a running worker; an invalid edit never replaces a good policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reminders.defaults import POLICY_FILE
from reminders.errors import PolicyError
from reminders.runtime import Runtime
from tests.conftest import make_test_settings

ROOT = Path(__file__).resolve().parents[2]


def test_policy_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    original = POLICY_FILE.read_text()
    path.write_text(original)
    rt = Runtime(make_test_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, policy_file=path))
    first = rt.policy
    assert rt.policy is first  # unchanged file: no re-read
    path.write_text(original.replace("when: -2h", "when: -3h"))
    os.utime(path, (1, 1))  # a different stamp even within the same second
    changed = rt.policy
    assert changed.fingerprint() != first.fingerprint()
    ride = changed.rule("infusion-ride-sms")
    assert ride is not None
    assert str(ride.when) == "-3h"
    path.write_text("rules: [{name: broken}]\n")
    os.utime(path, (2, 2))
    assert rt.policy is changed  # the last good policy stays in force


def test_an_invalid_policy_at_start_up_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules: []\n")
    rt = Runtime(make_test_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, policy_file=path))
    with pytest.raises(PolicyError, match="REMINDERS_POLICY_FILE"):
        _ = rt.policy
