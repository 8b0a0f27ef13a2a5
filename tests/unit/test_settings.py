"""Settings fail fast and name the variable; secrets may come from files."""

from __future__ import annotations

from pathlib import Path

import pytest

import reminders
from reminders.errors import ConfigError
from reminders.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("REMINDERS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./reminders.db"
    assert s.timezone == "America/New_York"
    assert (s.sms_provider, s.email_provider) == ("dryrun", "dryrun")
    assert str(s.dryrun_dir) == "outbox"
    assert s.twilio_base_url == "https://api.twilio.com"
    assert s.sendgrid_base_url == "https://api.sendgrid.com"
    assert (s.smtp_port, s.smtp_security) == (587, "starttls")
    assert s.public_url == "http://127.0.0.1:8000"
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)
    # The contract: unset policy and templates mean the built-in defaults (package data).
    assert s.policy_file is None and s.templates_dir is None
    assert s.policy_path.is_file() and s.policy_path.is_relative_to(Path(reminders.__file__).parent)
    assert s.template_dirs == [s.template_dirs[0]] and (s.template_dirs[0] / "en").is_dir()


def test_policy_and_template_overrides_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMINDERS_POLICY_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="REMINDERS_POLICY_FILE: .*no policy file at .*nope.yaml"):
        load_settings()
    monkeypatch.delenv("REMINDERS_POLICY_FILE")
    monkeypatch.setenv("REMINDERS_TEMPLATES_DIR", str(tmp_path / "mine"))
    with pytest.raises(ConfigError, match="REMINDERS_TEMPLATES_DIR: .*no folder at .*mine"):
        load_settings()
    (tmp_path / "mine").mkdir()
    assert load_settings().template_dirs[0] == tmp_path / "mine"


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="REMINDERS_TIMEZONE: .*unknown time zone"):
        load_settings()
    monkeypatch.setenv("REMINDERS_TIMEZONE", "Europe/London")
    monkeypatch.setenv("REMINDERS_SMS_PROVIDER", "carrier-pigeon")
    with pytest.raises(ConfigError, match="REMINDERS_SMS_PROVIDER"):
        load_settings()


def test_chosen_provider_without_credentials_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMINDERS_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("REMINDERS_TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("REMINDERS_SECRET_KEY", "a-real-secret-value-123456789")
    with pytest.raises(ConfigError) as err:
        load_settings().check_providers()
    assert "REMINDERS_TWILIO_AUTH_TOKEN" in str(err.value)
    assert "REMINDERS_TWILIO_ACCOUNT_SID" not in str(err.value)
    monkeypatch.setenv("REMINDERS_SMS_PROVIDER", "dryrun")
    monkeypatch.setenv("REMINDERS_EMAIL_PROVIDER", "sendgrid")
    with pytest.raises(ConfigError, match="REMINDERS_SENDGRID_API_KEY"):
        load_settings().check_providers()


def test_placeholder_secret_refused_outside_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().secret_key_value()  # dry-run: an insecure key is tolerated
    monkeypatch.setenv("REMINDERS_EMAIL_PROVIDER", "smtp")
    monkeypatch.setenv("REMINDERS_SMTP_HOST", "localhost")
    monkeypatch.setenv("REMINDERS_EMAIL_FROM", "clinic@example.org")
    monkeypatch.setenv("REMINDERS_SECRET_KEY", "change-me")
    with pytest.raises(ConfigError, match="REMINDERS_SECRET_KEY"):
        load_settings().check_providers()


def test_secret_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-from-file\n")
    monkeypatch.setenv("REMINDERS_TWILIO_AUTH_TOKEN_FILE", str(secret))
    s = load_settings()
    assert (
        s.twilio_auth_token is not None
        and s.twilio_auth_token.get_secret_value() == "s3cr3t-from-file"
    )
    assert "s3cr3t" not in repr(s)
    monkeypatch.setenv("REMINDERS_TWILIO_AUTH_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="REMINDERS_TWILIO_AUTH_TOKEN_FILE"):
        load_settings()


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_CLINIC_NAME", "")
    assert load_settings().clinic_name
