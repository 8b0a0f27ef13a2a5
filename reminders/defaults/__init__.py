"""The built-in defaults, shipped as package data: the policy, the message templates
(English and Spanish) and the weights of the risk screen's classifier (``risk_model.json``).

They are used whenever settings name no file of the clinic's own, so an installed wheel
works from any folder. ``reminders init`` copies them out for a clinic to edit
(:mod:`reminders.cli.init`).
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parent
POLICY_FILE = DEFAULTS_DIR / "policy.yaml"
TEMPLATES_DIR = DEFAULTS_DIR / "templates"
ENV_EXAMPLE_FILE = DEFAULTS_DIR / "env.example"
