"""Which provider sends each channel: an explicit mapping from the settings' choice to a
class (no scanning). The SDK-backed adapters are imported only when chosen."""

from __future__ import annotations

from sqlalchemy import Engine

from reminders.providers.base import Provider
from reminders.providers.dryrun import DryRunProvider
from reminders.providers.ratelimit import DatabaseRateLimiter
from reminders.settings import Settings


def build_sms_provider(settings: Settings) -> Provider:
    if settings.sms_provider == "twilio":
        from reminders.providers.twilio.send import TwilioProvider

        return TwilioProvider.from_settings(settings)
    return DryRunProvider(
        channel="sms",
        directory=settings.dryrun_dir,
        rate_per_second=settings.dryrun_rate_per_second,
    )


def build_email_provider(settings: Settings) -> Provider:
    if settings.email_provider == "sendgrid":
        from reminders.providers.sendgrid.send import SendGridProvider

        return SendGridProvider.from_settings(settings)
    if settings.email_provider == "smtp":
        from reminders.providers.smtp.send import SmtpProvider

        return SmtpProvider.from_settings(settings)
    return DryRunProvider(
        channel="email",
        directory=settings.dryrun_dir,
        rate_per_second=settings.dryrun_rate_per_second,
    )


def build_providers(settings: Settings, *, engine: Engine | None = None) -> dict[str, Provider]:
    """The configured provider of each channel. With a PostgreSQL ``engine``, several workers
    may share the database, so each provider's rate is shared through it."""
    settings.check_providers()
    providers = {"sms": build_sms_provider(settings), "email": build_email_provider(settings)}
    if engine is not None and engine.dialect.name == "postgresql":
        for provider in providers.values():
            provider.limiter = DatabaseRateLimiter(
                engine, f"{provider.name}:{provider.channel}", provider.limiter.rate
            )
    return providers
