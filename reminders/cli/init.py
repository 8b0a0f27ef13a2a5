"""``reminders init [DIR]``: editable copies of the built-in defaults for a clinic.

Writes ``DIR/policy.yaml``, ``DIR/templates/<language>/...`` and a ``DIR/.env`` whose
``REMINDERS_POLICY_FILE`` and ``REMINDERS_TEMPLATES_DIR`` point at them (paths relative to
DIR: run ``reminders`` from there, where it reads ``.env``), with a fresh random
``REMINDERS_SECRET_KEY``. An existing ``.env`` is left alone and the example goes to
``.env.example`` instead. Nothing is overwritten without ``--force``, and when anything would
be, nothing is written at all.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
from pathlib import Path

from reminders import defaults
from reminders.cli.common import command
from reminders.errors import UsageError
from reminders.runtime import Runtime

# What the example says, and what the clinic's own .env says instead.
_ENV_LINES = {
    "# REMINDERS_POLICY_FILE=policy.yaml": "REMINDERS_POLICY_FILE=policy.yaml",
    "# REMINDERS_TEMPLATES_DIR=templates": "REMINDERS_TEMPLATES_DIR=templates",
    "REMINDERS_SECRET_KEY=change-me": "REMINDERS_SECRET_KEY={secret}",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="write editable copies of the default policy and templates, and a .env using them",
    )
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), help="where (default: here)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    command(p, _cmd_init, schema=None)


def env_text(*, new_secret: bool) -> str:
    """The clinic's ``.env``: the example with the copies switched on and, if ``new_secret``,
    a new random secret key (an ``.env.example`` keeps the placeholder)."""
    text = defaults.ENV_EXAMPLE_FILE.read_text(encoding="utf-8")
    for example, own in _ENV_LINES.items():
        if example not in text:  # the shipped example and this table drifted apart
            raise RuntimeError(f"env.example has no line {example!r}")
        if "{secret}" in own and not new_secret:
            continue
        text = text.replace(example, own.format(secret=secrets.token_urlsafe(32)))
    return text


def _cmd_init(args: argparse.Namespace, rt: Runtime) -> int:
    target: Path = args.dir
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is not a folder")
    env_name = ".env" if not (target / ".env").exists() else ".env.example"
    templates = sorted(
        path.relative_to(defaults.DEFAULTS_DIR) for path in defaults.TEMPLATES_DIR.rglob("*.j2")
    )
    planned = [Path("policy.yaml"), *templates, Path(env_name)]
    clashes = [str(target / rel) for rel in planned if (target / rel).exists()]
    if clashes and not args.force:
        raise UsageError(
            f"not overwriting {', '.join(clashes[:3])}{' ...' if len(clashes) > 3 else ''} "
            "(nothing was written; --force overwrites)"
        )
    env_path = target / env_name
    try:
        for rel in planned[:-1]:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(defaults.DEFAULTS_DIR / rel, target / rel)
        # Created private: it holds the secret key, and later the provider credentials.
        fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(env_text(new_secret=env_name == ".env"))
        os.chmod(env_path, 0o600)  # also when --force rewrote an existing, wider file
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or target}: {exc.strerror}") from None
    print(
        f"wrote {target / 'policy.yaml'}, {target / 'templates'}/ ({len(templates)} templates), {env_path}"
    )
    if env_name == ".env":
        print(f"{env_path} points REMINDERS_POLICY_FILE and REMINDERS_TEMPLATES_DIR at the copies;")
        print(f"run reminders from {target} (or export those settings), then: reminders check")
    else:
        print(f"{target / '.env'} exists and was left alone; copy these lines into it:")
        for own in _ENV_LINES.values():
            if "{secret}" not in own:
                print(f"  {own}")
    return 0
