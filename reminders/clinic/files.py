"""Reading clinic data files (docs/design.md section 5): one JSON file, a folder of CSV files
(``locations.csv``, ``patients.csv``, ``sessions.csv``) or one of those files, into raw
rows per entity. A file that cannot be read at all raises :class:`ImportInputError`
(``reminders import`` exits 2); judging the rows is :mod:`reminders.clinic.records`' job.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from reminders.errors import UsageError

ENTITIES = ("locations", "patients", "sessions")
CSV_FILES = {f"{name}.csv": name for name in ENTITIES}


class ImportInputError(UsageError):
    """The input cannot be read at all (missing, not JSON/CSV, wrong shape): exit status 2."""


def read_path(path: Path) -> dict[str, list[Any]]:
    """A JSON file, a folder of CSV files, or one ``<entity>.csv`` file -> raw rows per entity."""
    if path.is_dir():
        found = {name: path / file for file, name in CSV_FILES.items() if (path / file).is_file()}
        if not found:
            raise ImportInputError(f"{path}: folder has none of {', '.join(CSV_FILES)}")
        return {name: _read_csv(file) for name, file in found.items()}
    if not path.exists():
        raise ImportInputError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".csv":
        entity = CSV_FILES.get(path.name.lower())
        if entity is None:
            raise ImportInputError(
                f"{path}: a CSV file must be named one of {', '.join(CSV_FILES)}"
            )
        return {entity: _read_csv(path)}
    return _read_json(path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportInputError(f"{path}: not UTF-8 text (expected JSON or CSV)") from None
    except OSError as exc:
        raise ImportInputError(f"{path}: cannot read: {exc.strerror}") from None


def _read_json(path: Path) -> dict[str, list[Any]]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportInputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ImportInputError(f"{path}: expected a JSON object with locations, patients, sessions")
    present = [name for name in ENTITIES if name in data]
    if not present:
        raise ImportInputError(f"{path}: JSON has none of the keys {', '.join(ENTITIES)}")
    rows: dict[str, list[Any]] = {}
    for name in present:
        value = data[name]
        if value is None:
            continue
        if not isinstance(value, list):
            raise ImportInputError(f"{path}: {name} must be a list")
        rows[name] = value
    return rows


def _read_csv(path: Path) -> list[dict[str, Any]]:
    text = _read_text(path)
    try:
        reader = csv.DictReader(text.splitlines())
        rows = []
        for row in reader:
            rows.append({(k or "").strip().lower(): v for k, v in row.items() if k is not None})
    except csv.Error as exc:
        raise ImportInputError(f"{path}: not valid CSV ({exc})") from None
    return rows
