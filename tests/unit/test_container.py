"""The container files, read as a reviewer would (no Docker engine runs here): the image is
built from the wheel and runs as a non-root user with a health check; compose keeps its
PostgreSQL + migrate + worker shape, validates against the Compose specification's schema
(what `docker compose config` checks), and passes only settings that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from jsonschema import Draft201909Validator

from reminders.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one Dockerfile stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    parsed = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    starts = [i for i, (op, _) in enumerate(parsed) if op == "FROM"]
    stages = [parsed[a:b] for a, b in zip(starts, [*starts[1:], len(parsed)], strict=True)]
    return stages[-1] if stage == "final" else stages[0]


def test_the_image_installs_the_wheel_and_runs_as_a_non_root_user_with_a_health_check() -> None:
    final = instructions("final")
    runs = " ".join(arg for op, arg in final if op == "RUN")
    assert re.search(r"pip install [^&]*\.whl", runs), "the final stage installs the built wheel"
    assert not any(op == "COPY" and "--from=" not in arg for op, arg in final), (
        "the final stage takes nothing from the source tree, only the wheel"
    )
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    (health,) = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert "/healthz" in health
    assert [arg for op, arg in final if op == "CMD"] == ['["reminders", "run"]']
    build = instructions("build")
    assert any(op == "RUN" and "pip wheel" in arg for op, arg in build)


def test_compose_keeps_postgres_migrate_and_worker() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["reminders", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert (
        services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    )
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    for name in ("migrate", "worker"):
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name} passes settings that do not exist: {sorted(unknown)}"
    assert services["worker"]["environment"]["REMINDERS_DATABASE_URL"].startswith(
        "postgresql+psycopg://"
    )


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "specs" / "compose_spec.json").read_text())
    validator = Draft201909Validator(schema)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not problems, problems
    compose["services"]["worker"]["restart_policy"] = "always"  # a misplaced key is caught
    assert not validator.is_valid(compose)
