"""``reminders import FILE`` (docs/design.md section 3)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reminders.cli.common import command
from reminders.clinic.importer import import_path
from reminders.db.engine import session_scope
from reminders.runtime import Runtime


def register(subparsers: Any) -> None:
    imp = subparsers.add_parser(
        "import",
        help="upsert locations, patients and sessions from a JSON file or a folder of CSV files",
        description="Exit 0 when every row was accepted, 1 when some were rejected (each is listed), "
        "2 when the input cannot be read.",
    )
    imp.add_argument("file", metavar="FILE", type=Path, help="a .json file, or a folder with locations.csv, "
                     "patients.csv, sessions.csv")  # fmt: skip
    command(imp, _cmd_import, schema="migrate")


def _cmd_import(args: argparse.Namespace, rt: Runtime) -> int:
    with session_scope(rt.session_factory) as db:
        report = import_path(db, rt.settings, args.file)
    for line in report.lines():
        print(line)
    return 1 if report.rejections else 0
