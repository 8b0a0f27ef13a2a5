"""The failures the command line reports as one line (docs/design.md section 3): each says what is
wrong and where, so no traceback is needed. Every stage raises these; ``reminders.cli``
catches them."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad configuration: the message names the variable or file at fault."""


class PolicyError(Exception):
    """The policy file is unreadable or invalid; the message names the rule and field."""


class UsageError(Exception):
    """An expected failure a command reports as one line (bad input, unknown id...)."""
