"""The built-in defaults, shipped as package data: the policy, the message templates
(English and Spanish) and the crisis phrase lists.

They are used whenever settings name no file of the clinic's own, so an installed wheel
works from any folder. ``reminders init`` copies them out for a clinic to edit
(:mod:`reminders.cli.init`).
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parent
POLICY_FILE = DEFAULTS_DIR / "policy.yaml"
TEMPLATES_DIR = DEFAULTS_DIR / "templates"
CRISIS_PHRASES_FILE = DEFAULTS_DIR / "crisis_phrases.yaml"
ENV_EXAMPLE_FILE = DEFAULTS_DIR / "env.example"
