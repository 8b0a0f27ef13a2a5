"""The console's language: English or Spanish, per staff member.

A staff member's own choice (``staff_users.language``, set from the menu) wins; else the
browser's ``Accept-Language``; else English. Page text is written in English in the pages and
translated through ``t("...")``, from the Spanish catalogs in ``catalog/es_*.json`` (one file
per area of the console, ``{"English text": "texto en español"}``, merged): a text missing
from the catalogs shows in English, never breaks a page. Codes (statuses, reasons, task kinds,
rules) have their words in :mod:`reminders.web.staff.labels`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request

LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
CATALOG_DIR = Path(__file__).resolve().parent / "catalog"


@lru_cache(maxsize=4)
def catalog(language: str) -> dict[str, str]:
    """Every ``catalog/<language>_*.json`` merged (English has none: it is the source)."""
    merged: dict[str, str] = {}
    for path in sorted(CATALOG_DIR.glob(f"{language}_*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def translator(language: str) -> Callable[[str], str]:
    words = catalog(language) if language != "en" else {}

    def t(text: str) -> str:
        return words.get(text, text)

    return t


def browser_language(request: Request) -> str:
    """The first of en/es in ``Accept-Language`` (by its q order), else English."""
    header = request.headers.get("accept-language", "")
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else "en"


def console_language(request: Request, chosen: str | None) -> str:
    return chosen if chosen in LANGUAGES else browser_language(request)
