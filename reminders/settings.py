"""Settings: every option is a ``REMINDERS_*`` environment variable (also read from ``.env``).

Secrets may come from a file named by ``REMINDERS_<NAME>_FILE`` (Docker/Kubernetes secrets).
Settings are read once per process (:func:`get_settings`) and fail fast with the variable's name.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from reminders import defaults
from reminders.errors import ConfigError

PREFIX = "REMINDERS_"

# Values shipped in examples and docs; refused as a real secret outside dry-run.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "dev-secret-key", "placeholder"}
)


class _SecretFileSource(PydanticBaseSettingsSource):
    """``REMINDERS_FOO_FILE=/run/secrets/foo`` supplies ``foo`` from that file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            raise ConfigError(
                f"{PREFIX}{field_name.upper()}_FILE: cannot read {path}: {exc.strerror}"
            ) from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # An empty variable (e.g. passed through by docker-compose) means "not set".
        env_ignore_empty=True,
    )

    # Storage and clinic
    database_url: str = "sqlite:///./reminders.db"
    timezone: str = "America/New_York"
    clinic_name: str = "Lakeside Wellness Clinic (demo)"
    clinic_phone: str = "+14105550100"
    default_region: str = "US"
    # None: the built-in defaults (package data, reminders/defaults); `reminders init` writes
    # editable copies and points these at them.
    policy_file: Path | None = None
    templates_dir: Path | None = None

    # Providers
    sms_provider: Literal["dryrun", "twilio"] = "dryrun"
    email_provider: Literal["dryrun", "sendgrid", "smtp"] = "dryrun"
    dryrun_dir: Path = Path("./outbox")
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: str | None = None
    sendgrid_inbound_secret: SecretStr | None = None
    email_from: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    # Messages per second per provider; 0 means unlimited (dry-run default).
    sms_rate_per_second: float = Field(default=1.0, ge=0)
    email_rate_per_second: float = Field(default=10.0, ge=0)
    dryrun_rate_per_second: float = Field(default=0.0, ge=0)

    # People and the web
    oncall_phones: str = ""
    oncall_emails: str = ""
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = None
    # The staff console: a session unused this long ends (front-desk PCs are shared).
    staff_idle_minutes: float = Field(default=30.0, gt=0)
    # Behind a reverse proxy that sets X-Forwarded-For: the login throttle keys on the address
    # the proxy appended (the last one). Off by default: a client could send any value.
    trust_forwarded_for: bool = False
    http_host: str = "127.0.0.1"
    http_port: int = 8000

    # The worker
    pass_interval_seconds: float = Field(default=1.0, gt=0)
    sync_interval_seconds: float = Field(default=60.0, gt=0)
    plan_interval_seconds: float = Field(default=5.0, gt=0)
    lease_seconds: int = Field(default=120, ge=5)
    dispatch_batch_size: int = Field(default=200, ge=1)
    send_concurrency: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    stalled_after_seconds: float = Field(default=300.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # Each provider request (send or lookup) gives up after this long; a send that times out
    # after the request went out is in doubt, and reconciled, never re-sent blindly.
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The reconcile pass: how often it looks at in-doubt sends; when a Twilio message absent
    # from the provider's list is sent again (counted from when its send began); how long an
    # email send with no provider event waits before the in-doubt rule applies, and the rule
    # (resend once, or a staff task only); and when anything still unresolved becomes a task.
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    reconcile_resend_after_seconds: float = Field(default=300.0, ge=0)
    email_in_doubt_window_seconds: float = Field(default=900.0, ge=0)
    email_in_doubt_rule: Literal["resend", "task"] = "resend"
    in_doubt_task_after_seconds: float = Field(default=3600.0, gt=0)
    worker_id: str | None = None

    # Clinic database source (read-only SQL per entity); see README "Connecting a clinic database".
    clinic_source_url: str | None = None
    clinic_locations_query: str | None = None
    clinic_patients_query: str | None = None
    clinic_sessions_query: str | None = None

    # Replies and safety
    confirm_keyword: str = "C"
    reschedule_keyword: str = "R"
    crisis_score_threshold: int = Field(default=3, ge=0, le=10)
    crisis_score_drop: int = Field(default=4, ge=1, le=10)
    realert_minutes: float = Field(default=15.0, gt=0)
    unconfirmed_hours: float = Field(default=18.0, gt=0)
    # Also alert on-call staff (SMS/email) when an infusion is flagged unconfirmed, not just the inbox.
    unconfirmed_alert: bool = False
    # Screen every inbound message for crisis language (docs/design.md section 9). On, it needs
    # at least one on-call phone or email: `reminders check` fails and `reminders run` refuses.
    crisis_screening: bool = True
    # The clinic's own extra crisis phrases (YAML {language: [phrase, ...]}), added to the
    # built-in risk screen; none by default.
    crisis_phrases_file: Path | None = None
    sensitive_words: str = "ketamine,esketamine,spravato,depression,ptsd,psychiatric,suicide"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        value = value.upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}")
        return value

    @field_validator("policy_file")
    @classmethod
    def _policy_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no policy file at {value} (unset it to use the built-in policy)")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _templates_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no folder at {value} (unset it to use the built-in templates)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFileSource(settings_cls), dotenv_settings)

    # Derived values -------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def policy_path(self) -> Path:
        """The policy in force: the clinic's file, else the built-in default."""
        return self.policy_file if self.policy_file is not None else defaults.POLICY_FILE

    @property
    def template_dirs(self) -> list[Path]:
        """Where templates are looked for, first match wins: the clinic's overrides, then
        the built-in defaults."""
        found = [defaults.TEMPLATES_DIR]
        if self.templates_dir is not None:
            found.insert(0, self.templates_dir)
        return found

    @property
    def oncall_phone_list(self) -> list[str]:
        return [p.strip() for p in self.oncall_phones.split(",") if p.strip()]

    @property
    def oncall_email_list(self) -> list[str]:
        return [e.strip() for e in self.oncall_emails.split(",") if e.strip()]

    @property
    def sensitive_word_list(self) -> list[str]:
        return [w.strip().lower() for w in self.sensitive_words.split(",") if w.strip()]

    @property
    def dry_run(self) -> bool:
        return self.sms_provider == "dryrun" and self.email_provider == "dryrun"

    def secret_key_value(self) -> str:
        """The signing key; a placeholder is refused unless every provider is dry-run."""
        value = self.secret_key.get_secret_value() if self.secret_key else ""
        if value.strip().lower() in PLACEHOLDER_SECRETS:
            if not self.dry_run:
                raise ConfigError(
                    f"{PREFIX}SECRET_KEY is missing or a known placeholder; "
                    "set a long random value (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            return "dry-run-only-insecure-key"
        return value

    def provider_problems(self) -> list[str]:
        """Missing settings for the chosen providers, each naming the variable."""
        missing: list[str] = []
        if self.sms_provider == "twilio":
            if not self.twilio_account_sid:
                missing.append(f"{PREFIX}TWILIO_ACCOUNT_SID")
            if not self.twilio_auth_token:
                missing.append(f"{PREFIX}TWILIO_AUTH_TOKEN")
            if not (self.twilio_from_number or self.twilio_messaging_service_sid):
                missing.append(
                    f"{PREFIX}TWILIO_FROM_NUMBER or {PREFIX}TWILIO_MESSAGING_SERVICE_SID"
                )
        if self.email_provider == "sendgrid":
            if not self.sendgrid_api_key:
                missing.append(f"{PREFIX}SENDGRID_API_KEY")
            if not self.email_from:
                missing.append(f"{PREFIX}EMAIL_FROM")
        if self.email_provider == "smtp":
            if not self.smtp_host:
                missing.append(f"{PREFIX}SMTP_HOST")
            if not self.email_from:
                missing.append(f"{PREFIX}EMAIL_FROM")
        return missing

    def alerting_problems(self) -> list[str]:
        """Why urgent alerts could not reach anyone, naming the variables to set."""
        if self.crisis_screening and not (self.oncall_phone_list or self.oncall_email_list):
            return [
                f"crisis screening is on but no on-call staff would be alerted: set "
                f"{PREFIX}ONCALL_PHONES or {PREFIX}ONCALL_EMAILS (comma-separated), or turn "
                f"screening off with {PREFIX}CRISIS_SCREENING=false"
            ]
        return []

    def check_providers(self) -> None:
        missing = self.provider_problems()
        if missing:
            chosen = f"SMS={self.sms_provider}, email={self.email_provider}"
            raise ConfigError(
                f"missing setting for the chosen providers ({chosen}): {', '.join(missing)}"
            )
        self.secret_key_value()


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning validation errors into one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
