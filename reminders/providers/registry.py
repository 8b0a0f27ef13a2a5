"""Provider adapters. ``build_providers`` maps the settings' choice to a class, explicitly."""

from __future__ import annotations

from reminders.providers.base import Provider
from reminders.settings import Settings


def build_sms_provider(settings: Settings) -> Provider:
    if settings.sms_provider == "twilio":
        from reminders.providers.twilio.send import TwilioProvider

        return TwilioProvider.from_settings(settings)
    from reminders.providers.dryrun import DryRunProvider

    return DryRunProvider(channel="sms", directory=settings.dryrun_dir, rate_per_second=settings.dryrun_rate_per_second)


def build_email_provider(settings: Settings) -> Provider:
    if settings.email_provider == "sendgrid":
        from reminders.providers.sendgrid.send import SendGridProvider

        return SendGridProvider.from_settings(settings)
    if settings.email_provider == "smtp":
        from reminders.providers.smtp.send import SmtpProvider

        return SmtpProvider.from_settings(settings)
    from reminders.providers.dryrun import DryRunProvider

    return DryRunProvider(channel="email", directory=settings.dryrun_dir, rate_per_second=settings.dryrun_rate_per_second)


def build_providers(settings: Settings) -> dict[str, Provider]:
    settings.check_providers()
    return {"sms": build_sms_provider(settings), "email": build_email_provider(settings)}
