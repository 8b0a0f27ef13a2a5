"""Issue 12 through the real CLI: what the dry-run provider receives is true when it is sent.

Each test imports a clinic, runs `reminders tick --now T` at chosen instants (the send
moments) and reads the text each tick handed to the dry-run provider (`sms.jsonl`,
`email.jsonl`); staff flags (`prep_late`) are read from `staff_tasks`. Expected wording is
derived from the issue's contract (see tests/unit/test_send_time_property.py) and from zoneinfo
arithmetic done here, never from a previous run. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from reminders.cli import main
from reminders.db.engine import make_engine
from reminders.templates.sms import sms_info

NY = "America/New_York"
LA = "America/Los_Angeles"
PHONE = "+14105550100"

EN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
EN_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
ES_WEEKDAYS = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
ES_MONTHS = [
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
]  # fmt: skip
CUTOFFS = {
    "food": timedelta(hours=6),
    "liquids": timedelta(hours=2),
    "alcohol": timedelta(hours=24),
}
LATE_GRACE = timedelta(minutes=15)
PRE_SESSION_RULES = {"infusion-prep-email", "infusion-day-before-sms", "infusion-ride-sms"}


# --- harness ---------------------------------------------------------------------------------


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "REMINDERS_DATABASE_URL": db_url,
        "REMINDERS_DRYRUN_DIR": str(tmp_path / "outbox"),
        "REMINDERS_TIMEZONE": NY,
        "REMINDERS_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> int:
        return main(list(args))

    return run


def patient(pid: str, *, language: str = "en", sms: bool = True, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": pid,
        "first_name": "Ana",
        "last_name": "Diaz",
        "phone": f"410-555-01{sum(map(ord, pid)) % 100:02d}",
        "email": f"{pid}@example.com",
        "timezone": None,
        "language": language,
        "sms_consent": sms,
        "email_consent": True,
        "care_plan": {"initial_series_size": 6, "maintenance_interval_days": 28},
    }
    values.update(kw)
    return values


def session(sid: str, pid: str, starts_at: str, kind: str = "infusion") -> dict[str, Any]:
    return {
        "id": sid,
        "patient_id": pid,
        "location_id": "main",
        "starts_at": starts_at,
        "duration_minutes": 60,
        "kind": kind,
        "status": "scheduled",
    }


def write_clinic(
    path: Path, sessions: list[dict[str, Any]], patients: list[dict[str, Any]]
) -> Path:
    data = {
        "locations": [
            {
                "id": "main",
                "name": "Downtown",
                "address": "1 Main St",
                "phone": PHONE,
                "timezone": NY,
            }
        ],
        "patients": patients,
        "sessions": sessions,
    }
    path.write_text(json.dumps(data))
    return path


class Provider:
    """What the dry-run provider received, tick by tick."""

    def __init__(self, cli: Callable[..., int], tmp_path: Path) -> None:
        self.cli = cli
        self.dir = tmp_path / "outbox"
        self.seen = 0
        self.by_tick: dict[str, list[dict[str, Any]]] = {}

    def all(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for name in ("sms.jsonl", "email.jsonl"):
            f = self.dir / name
            if f.exists():
                lines += [json.loads(line) for line in f.read_text().splitlines()]
        return lines

    def tick(self, now: str) -> list[dict[str, Any]]:
        before = {r["message_id"] for r in self.all()}
        assert self.cli("tick", "--now", now) == 0
        new = [r for r in self.all() if r["message_id"] not in before]
        self.by_tick[now] = new
        return new


def one(lines: list[dict[str, Any]], **where: str) -> dict[str, Any]:
    hits = [r for r in lines if all(r.get(k) == v for k, v in where.items())]
    assert len(hits) == 1, (where, [(r["rule"], r["channel"], r["session_id"]) for r in lines])
    return hits[0]


def prep_late_flags(db_url: str) -> list[tuple[str | None, str | None]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT session_id, patient_id FROM staff_tasks WHERE kind = 'prep_late'")
            ).all()
    finally:
        engine.dispose()
    return [(r[0], r[1]) for r in rows]


def outbox_rows(
    cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert cli("outbox", "--json") == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def local_due(row: dict[str, Any], zone: str) -> str:
    return datetime.fromisoformat(row["due_at"]).astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M")


# --- the contract's wording, computed here ----------------------------------------------------


def fold(s: str) -> str:
    """Accents off (SMS are transliterated to GSM-7; ñ -> n too, on both sides)."""
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


def clock(local: datetime, lang: str) -> str:
    if lang == "es":
        return f"{local.hour}:{local.minute:02d}"
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def day_and_date(day: date, lang: str) -> str:
    if lang == "es":
        return f"{ES_WEEKDAYS[day.weekday()]} {day.day} de {ES_MONTHS[day.month - 1]}"
    return f"{EN_WEEKDAYS[day.weekday()]}, {EN_MONTHS[day.month - 1]} {day.day}"


def when(start: str, send: str, zone: str, lang: str) -> str:
    """How the session is named at ``send`` (contract: today / tomorrow, ... / on ...)."""
    tz = ZoneInfo(zone)
    s, d = instant(start).astimezone(tz), instant(send).astimezone(tz)
    days = (s.date() - d.date()).days
    if lang == "es":
        art = "la" if s.hour == 1 else "las"
        if days == 0:
            return f"hoy a {art} {clock(s, lang)}"
        if days == 1:
            return f"mañana, {day_and_date(s.date(), lang)}, a {art} {clock(s, lang)}"
        return f"el {day_and_date(s.date(), lang)} a {art} {clock(s, lang)}"
    if days == 0:
        return f"today at {clock(s, lang)}"
    if days == 1:
        return f"tomorrow, {day_and_date(s.date(), lang)}, at {clock(s, lang)}"
    return f"on {day_and_date(s.date(), lang)}, at {clock(s, lang)}"


def day_phrase(day: date, *, session_day: date, send_day: date, lang: str) -> str:
    """The day words after a cut-off time (none on the session's own day)."""
    if day == session_day:
        return ""
    diff = (day - send_day).days
    if lang == "es":
        relative = {0: " de hoy", 1: " de mañana", -1: " de ayer"}
        if diff in relative:
            return relative[diff]
        if abs(diff) <= 6:
            return f" del {ES_WEEKDAYS[day.weekday()]}"
        return f" del {day_and_date(day, lang)}"
    relative = {0: " today", 1: " tomorrow", -1: " yesterday"}
    if diff in relative:
        return relative[diff]
    if abs(diff) <= 6:
        return f" {EN_WEEKDAYS[day.weekday()]}"
    return f" {day_and_date(day, lang)}"


_END = r"(?=$|[.;)\n]| and\b| or\b| y\b| o\b|,(?! (?:" + "|".join(EN_MONTHS) + r")\b))"
# The contract's clauses for each cut-off, as regex templates ({t}: clock, {p}: day words).
INSTRUCTION = {
    "en": {
        "food": r"nothing to eat after {t}{p}",
        "liquids": r"until {t}{p}",
        "alcohol": r"no alcohol after {t}{p}",
    },
    "es": {
        "food": r"\b(?:coma|comer|comida|alimento)\w*\b[^.;,]*? despues de {t}{p}",
        "liquids": r"hasta {t}{p}",
        "alcohol": r"\balcohol\b[^.;,]*? despues de {t}{p}",
    },
}
SINCE = {
    "en": {
        "food": r"eaten since {t}{p}",
        "liquids": r"had anything to drink since {t}{p}",
        "alcohol": r"had alcohol since {t}{p}",
    },
    "es": {
        "food": r"comio algo desde {t}{p}",
        "liquids": r"\b(?:beb|liquid)\w*\b[^.;]*? desde {t}{p}",
        "alcohol": r"\balcohol\b[^.;]*? desde {t}{p}",
    },
}


def has(body: str, pattern: str) -> bool:
    return re.search(pattern + _END, fold(body), re.IGNORECASE) is not None


def clock_re(local: datetime, lang: str) -> str:
    t = re.escape(clock(local, lang))
    return rf"las? {t}" if lang == "es" else t


def check_preparation(
    body: str, *, start: str, send: str, zone: str, lang: str, instructions: bool = True
) -> None:
    """Each default cut-off as the contract says at ``send``: an instruction with its exact
    local time and day words while ahead (if the template gives instructions), the "since"
    wording once passed by 15 minutes or more, and never an instruction once passed."""
    tz = ZoneInfo(zone)
    start_i, send_i = instant(start), instant(send)
    session_day, send_day = start_i.astimezone(tz).date(), send_i.astimezone(tz).date()
    for kind, before in CUTOFFS.items():
        cut = (start_i - before).astimezone(tz)
        p = re.escape(
            fold(day_phrase(cut.date(), session_day=session_day, send_day=send_day, lang=lang))
        )
        t = clock_re(cut, lang)
        instr = INSTRUCTION[lang][kind].format(t=t, p=p)
        since = SINCE[lang][kind].format(t=t, p=p)
        any_instr = rf"\b(?:after|until|despues de|hasta) {t}\b"
        any_since = rf"\b(?:since|desde) {t}\b"
        where = f"{kind} cut-off {cut:%Y-%m-%d %H:%M %Z}, sent {send_i.astimezone(tz)}:\n{body}"
        if cut > send_i:
            if instructions:
                assert has(body, instr), f"missing /{instr}/ for {where}"
            assert not re.search(any_since, fold(body), re.IGNORECASE), where
        else:
            assert not re.search(any_instr, fold(body), re.IGNORECASE), (
                f"an instruction with a passed time: {where}"
            )
            if send_i - cut >= LATE_GRACE:
                assert has(body, since), f"missing /{since}/ for {where}"
            else:
                assert not re.search(any_since, fold(body), re.IGNORECASE), (
                    f"passed < 15 min, said with its time: {where}"
                )


def no_treatment_named(lines: list[dict[str, Any]]) -> None:
    for r in lines:
        if r["channel"] == "sms":
            lowered = r["body"].lower()
            assert "infusi" not in lowered and "ketamin" not in lowered, r["body"]


# --- 1. late booking ---------------------------------------------------------------------------


def test_late_booking_same_day_says_today_and_asks_to_call(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    start = "2027-04-14T13:00:00-04:00"  # Wednesday
    clinic = write_clinic(
        tmp_path / "clinic.json",
        [session("s1", "p1", start), session("s2", "p2", start)],
        [patient("p1"), patient("p2", sms=False)],  # p2: email only
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at_4 = "2027-04-14T04:00:00-04:00"
    new = provider.tick(at_4)
    assert [r for r in new if r["channel"] == "sms"] == []  # quiet hours
    prep = one(new, session_id="s1", channel="email")
    assert prep["rule"] == "infusion-prep-email"
    body = prep["body"]
    assert "today at 1:00 PM" in body and "tomorrow," not in body, body
    # at 04:00 the 7:00 AM cut-off is still ahead: the email may (must) say it
    assert has(body, r"nothing to eat after 7:00 AM"), body
    check_preparation(body, start=start, send=at_4, zone=NY, lang="en")
    assert has(body, r"had alcohol since 1:00 PM yesterday"), body
    # the email-only patient: whatever email went out at 04:00 is true at 04:00
    emails_p2 = [r for r in new if r["session_id"] == "s2"]
    assert emails_p2 and {r["channel"] for r in emails_p2} == {"email"}
    for r in emails_p2:
        assert "today at 1:00 PM" in r["body"] and "tomorrow," not in r["body"], r["body"]
        assert has(r["body"], r"nothing to eat after 7:00 AM"), r["body"]
        check_preparation(r["body"], start=start, send=at_4, zone=NY, lang="en")
    # the alcohol cut-off passed before any reminder could reach them: staff are told at once
    flags = prep_late_flags(db_url)
    assert {s for s, _ in flags} == {"s1", "s2"}, flags

    at_8 = "2027-04-14T08:00:05-04:00"
    new = provider.tick(at_8)
    sms = one(new, session_id="s1", channel="sms")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "today at 1:00 PM" in body and "tomorrow," not in body, body
    assert not re.search(r"after 7:00 AM", body), body
    assert has(body, r"eaten since 7:00 AM"), body
    assert has(body, r"had alcohol since 1:00 PM yesterday"), body
    assert "Please eat nothing more" in body, body
    assert re.search(r"call us at \(?\+?\d[\d() -]+\d before you come in", body), body
    assert has(body, r"until 11:00 AM"), body  # clear liquids: still ahead
    check_preparation(body, start=start, send=at_8, zone=NY, lang="en")
    assert [r for r in new if r["session_id"] == "s2" and r["channel"] == "sms"] == []

    at_11 = "2027-04-14T11:00:05-04:00"
    new = provider.tick(at_11)
    ride = one(new, session_id="s1", channel="sms")
    assert ride["rule"] == "infusion-ride-sms"
    body = ride["body"]
    assert "today at 1:00 PM" in body and "do not drive until tomorrow" in body, body
    assert has(body, r"eaten since 7:00 AM"), body
    assert has(body, r"had alcohol since 1:00 PM yesterday"), body
    assert "11:00 AM" not in body, body  # passed 5 s ago: neither "until" nor "since"
    check_preparation(body, start=start, send=at_11, zone=NY, lang="en", instructions=False)

    assert provider.tick("2027-04-14T13:30:00-04:00") == []  # never after the start
    flags = prep_late_flags(db_url)
    assert sorted(str(s) for s, _ in flags) == ["s1", "s2"], "one flag per session and start time"
    assert ("s1", "p1") in flags and ("s2", "p2") in flags
    no_treatment_named(provider.all())


# --- 2. deferred into the session's day -----------------------------------------------------------


def test_day_before_sms_pushed_into_the_session_day_says_today(
    cli: Callable[..., int], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = "2027-04-13T10:30:00-04:00"  # Tuesday; imported at 22:00 the evening before
    clinic = write_clinic(tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1")])
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at_22 = "2027-04-12T22:00:00-04:00"
    new = provider.tick(at_22)
    assert [r for r in new if r["channel"] == "sms"] == []
    body = one(new, session_id="s1", channel="email")["body"]
    assert "tomorrow, Tuesday, April 13, at 10:30 AM" in body, body
    # a cut-off on the session's own day: the time alone, even though that day is tomorrow
    assert has(body, r"nothing to eat after 4:30 AM"), body
    assert has(body, r"until 8:30 AM"), body
    assert has(body, r"had alcohol since 10:30 AM today"), body
    check_preparation(body, start=start, send=at_22, zone=NY, lang="en")
    assert [s for s, _ in prep_late_flags(db_url)] == ["s1"]

    at_8 = "2027-04-13T08:00:05-04:00"
    new = provider.tick(at_8)
    sms = one(new, session_id="s1", channel="sms")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "today at 10:30 AM" in body and "tomorrow," not in body, body
    assert has(body, r"eaten since 4:30 AM"), body
    assert has(body, r"until 8:30 AM"), body
    assert has(body, r"had alcohol since 10:30 AM yesterday"), body
    check_preparation(body, start=start, send=at_8, zone=NY, lang="en")
    rows = {r["rule"]: r for r in outbox_rows(cli, capsys)}
    assert local_due(rows["infusion-day-before-sms"], NY) == "04-13 08:00"

    at_830 = "2027-04-13T08:30:05-04:00"
    ride = one(provider.tick(at_830), session_id="s1", channel="sms")
    assert ride["rule"] == "infusion-ride-sms"
    assert "today at 10:30 AM" in ride["body"], ride["body"]
    assert "do not drive until tomorrow" in ride["body"], ride["body"]
    check_preparation(
        ride["body"], start=start, send=at_830, zone=NY, lang="en", instructions=False
    )
    assert provider.tick("2027-04-13T11:00:00-04:00") == []
    assert [s for s, _ in prep_late_flags(db_url)] == ["s1"]
    no_treatment_named(provider.all())


def test_day_before_sms_sent_the_day_before_says_tomorrow_and_no_flag(
    cli: Callable[..., int], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = "2027-04-16T09:30:00-04:00"  # Friday
    clinic = write_clinic(tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1")])
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at = "2027-04-13T09:30:10-04:00"
    prep = one(provider.tick(at), session_id="s1")
    assert prep["rule"] == "infusion-prep-email"
    check_preparation(prep["body"], start=start, send=at, zone=NY, lang="en")

    at = "2027-04-15T09:30:10-04:00"
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "tomorrow, Friday, April 16, at 9:30 AM" in body, body
    assert has(body, r"nothing to eat after 3:30 AM"), body
    assert has(body, r"until 7:30 AM"), body
    # the 24h cut-off is this very moment (passed 10 s ago): "from now on", no time
    assert "alcohol from now on" in body.lower(), body
    assert not re.search(r"alcohol after", body, re.IGNORECASE), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en")

    at = "2027-04-16T08:00:05-04:00"  # the ride SMS (07:30, quiet) moved to 08:00
    ride = one(provider.tick(at), session_id="s1")
    assert ride["rule"] == "infusion-ride-sms"
    body = ride["body"]
    assert "today at 9:30 AM" in body, body
    assert has(body, r"eaten since 3:30 AM"), body
    assert has(body, r"had anything to drink since 7:30 AM"), body
    assert has(body, r"had alcohol since 9:30 AM yesterday"), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en", instructions=False)
    rows = {r["rule"]: r for r in outbox_rows(cli, capsys)}
    assert local_due(rows["infusion-ride-sms"], NY) == "04-16 08:00"
    assert prep_late_flags(db_url) == []  # the prep email reached them in time


# --- 3. a session just after midnight -------------------------------------------------------------


def test_session_after_midnight_ride_sms_the_evening_before(
    cli: Callable[..., int], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = "2027-04-18T00:30:00-04:00"  # Sunday, 12:30 AM
    clinic = write_clinic(tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1")])
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at = "2027-04-15T00:30:10-04:00"  # Thursday: the prep email (-3d)
    body = one(provider.tick(at), session_id="s1", channel="email")["body"]
    assert "on Sunday, April 18, at 12:30 AM" in body, body
    assert has(body, r"nothing to eat after 6:30 PM Saturday"), body
    assert has(body, r"until 10:30 PM Saturday"), body
    assert has(body, r"no alcohol after 12:30 AM Saturday"), body
    assert "do not drive until Monday" in body, body
    check_preparation(body, start=start, send=at, zone=NY, lang="en")

    at = "2027-04-17T08:00:05-04:00"  # Saturday: the day-before SMS (00:30 is quiet)
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "tomorrow, Sunday, April 18, at 12:30 AM" in body, body
    assert has(body, r"nothing to eat after 6:30 PM today"), body
    assert has(body, r"until 10:30 PM today"), body
    assert has(body, r"had alcohol since 12:30 AM today"), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en")

    assert provider.tick("2027-04-17T20:30:00-04:00") == []
    at = "2027-04-17T20:45:05-04:00"  # -2h = 22:30 is quiet, 08:00 is after the start
    ride = one(provider.tick(at), session_id="s1")
    assert ride["rule"] == "infusion-ride-sms"
    body = ride["body"]
    assert "tomorrow, Sunday, April 18, at 12:30 AM" in body, body
    # read on Saturday evening, "tomorrow" is the session's day: the day after it is Monday
    assert "do not drive until Monday" in body, body
    assert "until tomorrow" not in body, body
    assert has(body, r"eaten since 6:30 PM today"), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en", instructions=False)
    rows = {r["rule"]: r for r in outbox_rows(cli, capsys)}
    assert local_due(rows["infusion-ride-sms"], NY) == "04-17 20:45"

    assert [
        r for r in provider.tick("2027-04-18T10:00:00-04:00") if r["rule"] in PRE_SESSION_RULES
    ] == []
    assert prep_late_flags(db_url) == []
    no_treatment_named(provider.all())


# --- 4. the patient's own zone ---------------------------------------------------------------------


def test_patient_zone_not_the_clinic_zone(
    cli: Callable[..., int], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 10:30 PM Tuesday in Los Angeles is 1:30 AM Wednesday in New York (the location's zone).
    start = "2027-04-20T22:30:00-07:00"
    clinic = write_clinic(
        tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1", timezone=LA)]
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at = "2027-04-17T22:30:10-07:00"  # Saturday in LA
    body = one(provider.tick(at), session_id="s1", channel="email")["body"]
    assert "on Tuesday, April 20, at 10:30 PM" in body, body
    assert has(body, r"nothing to eat after 4:30 PM"), body
    assert has(body, r"until 8:30 PM"), body
    assert has(body, r"no alcohol after 10:30 PM Monday"), body
    assert "do not drive until Wednesday" in body, body
    check_preparation(body, start=start, send=at, zone=LA, lang="en")

    # -1d = 22:30 in LA: quiet there (never mind New York), so nothing by SMS yet
    assert [r for r in provider.tick("2027-04-19T22:30:10-07:00") if r["channel"] == "sms"] == []

    at = "2027-04-20T08:00:05-07:00"  # 11:00 in New York
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "today at 10:30 PM" in body and "tomorrow," not in body, body
    assert "1:30 AM" not in body, body
    assert has(body, r"nothing to eat after 4:30 PM"), body
    assert has(body, r"until 8:30 PM"), body
    assert has(body, r"had alcohol since 10:30 PM yesterday"), body
    check_preparation(body, start=start, send=at, zone=LA, lang="en")
    rows = {r["rule"]: r for r in outbox_rows(cli, capsys)}
    assert local_due(rows["infusion-day-before-sms"], LA) == "04-20 08:00"

    at = "2027-04-20T20:30:10-07:00"  # 23:30 in New York, but the patient is in LA
    ride = one(provider.tick(at), session_id="s1")
    assert ride["rule"] == "infusion-ride-sms"
    body = ride["body"]
    assert "today at 10:30 PM" in body and "do not drive until tomorrow" in body, body
    assert has(body, r"eaten since 4:30 PM"), body
    assert has(body, r"had alcohol since 10:30 PM yesterday"), body
    check_preparation(body, start=start, send=at, zone=LA, lang="en", instructions=False)
    assert prep_late_flags(db_url) == []
    no_treatment_named(provider.all())


# --- 5. Spanish --------------------------------------------------------------------------------------


def test_spanish_late_booking(cli: Callable[..., int], db_url: str, tmp_path: Path) -> None:
    start = "2027-04-14T13:00:00-04:00"
    clinic = write_clinic(
        tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1", language="es")]
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at = "2027-04-14T04:00:00-04:00"
    email = one(provider.tick(at), session_id="s1")
    assert email["channel"] == "email"
    body = email["body"]
    assert "hoy a las 13:00" in body and "mañana," not in body, body
    assert re.search(r"después de las 7:00(?![\d:])", body), body  # an email keeps accents
    assert re.search(r"hasta las 11:00(?![\d:])", body), body
    assert re.search(r"desde las 13:00 de ayer", body), body
    assert "llámenos al" in body and "antes de venir" in body, body
    check_preparation(body, start=start, send=at, zone=NY, lang="es")
    assert [s for s, _ in prep_late_flags(db_url)] == ["s1"]

    at = "2027-04-14T08:00:05-04:00"
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert sms_info(body).encoding == "GSM-7", body
    folded = fold(body)
    assert "hoy a las 13:00" in folded and "manana," not in folded, body
    assert "Por favor, no coma nada mas" in folded, body
    assert "Si ya comio algo desde las 7:00" in folded, body
    assert re.search(r"desde las 13:00 de ayer", folded), body
    assert "llamenos al" in folded and "antes de venir" in folded, body
    assert not re.search(r"despues de las 7:00", folded), body
    assert re.search(r"hasta las 11:00(?![\d:])", folded), body
    check_preparation(body, start=start, send=at, zone=NY, lang="es")
    no_treatment_named(provider.all())


def test_spanish_booked_ahead_manana_and_hour_one(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    start = "2027-04-16T01:00:00-04:00"  # viernes, 1:00
    clinic = write_clinic(
        tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1", language="es")]
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at = "2027-04-13T01:00:10-04:00"  # martes
    body = one(provider.tick(at), session_id="s1")["body"]
    assert "el viernes 16 de abril a la 1:00" in body, body
    assert re.search(r"después de las 19:00 del jueves(?! \d)", body), body
    assert re.search(r"hasta las 23:00 del jueves(?! \d)", body), body
    assert re.search(r"hasta el sábado(?! \d)", body), body  # the day after the session
    check_preparation(body, start=start, send=at, zone=NY, lang="es")

    at = "2027-04-15T08:00:05-04:00"  # jueves: the day-before SMS (01:00 is quiet)
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "mañana, viernes 16 de abril, a la 1:00" in body, body  # ñ stays in GSM-7
    folded = fold(body)
    assert re.search(r"despues de las 19:00 de hoy", folded), body
    assert re.search(r"hasta las 23:00 de hoy", folded), body
    assert re.search(r"desde las? 1:00 de hoy", folded), body
    check_preparation(body, start=start, send=at, zone=NY, lang="es")

    at = "2027-04-15T20:45:05-04:00"  # the ride SMS (23:00 is quiet) the evening before
    ride = one(provider.tick(at), session_id="s1")
    assert ride["rule"] == "infusion-ride-sms"
    body = fold(ride["body"])
    assert "manana, viernes 16 de abril, a la 1:00" in body, body
    assert re.search(r"hasta el sabado(?! \d)", body) and "hasta manana" not in body, body
    assert re.search(r"comio algo desde las 19:00 de hoy", body), body
    check_preparation(ride["body"], start=start, send=at, zone=NY, lang="es", instructions=False)
    assert prep_late_flags(db_url) == []
    no_treatment_named(provider.all())


# --- 6. daylight saving -----------------------------------------------------------------------------


def _check_dst_sessions(
    provider: Provider, sessions: dict[str, str], ticks: list[str], zone: str
) -> None:
    for now in ticks:
        for r in provider.tick(now):
            if r["rule"] not in PRE_SESSION_RULES:
                continue
            start = sessions[r["session_id"]]
            assert when(start, now, zone, "en") in r["body"], (now, r["body"])
            check_preparation(
                r["body"],
                start=start,
                send=now,
                zone=zone,
                lang="en",
                instructions=r["rule"] != "infusion-ride-sms",
            )


def test_spring_forward_cutoffs_are_elapsed_time(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    # US clocks spring forward on Sunday 2027-03-14 at 02:00 EST (07:00 UTC).
    sessions = {
        "sA": "2027-03-14T07:30:00-04:00",
        "sB": "2027-03-14T10:00:00-04:00",
        "sC": "2027-03-15T09:00:00-04:00",
    }
    tz = ZoneInfo(NY)
    # Own arithmetic, spelled out: 6 elapsed hours before 07:30 EDT (11:30Z) is 05:30Z =
    # 00:30 EST; 24 h before 10:00 EDT (14:00Z) is 14:00Z on the 13th = 09:00 EST.
    assert (instant(sessions["sA"]) - timedelta(hours=6)).astimezone(tz).strftime(
        "%H:%M"
    ) == "00:30"
    assert (instant(sessions["sB"]) - timedelta(hours=24)).astimezone(tz).strftime(
        "%d %H:%M"
    ) == "13 09:00"
    assert (instant(sessions["sC"]) - timedelta(hours=24)).astimezone(tz).strftime(
        "%d %H:%M"
    ) == "14 09:00"
    clinic = write_clinic(
        tmp_path / "c.json",
        [session(sid, f"p{sid}", start) for sid, start in sessions.items()],
        [patient(f"p{sid}") for sid in sessions],
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)
    ticks = [
        "2027-03-11T07:30:10-05:00",  # sA prep email (Thursday)
        "2027-03-11T10:00:10-05:00",  # sB prep email
        "2027-03-12T09:00:10-05:00",  # sC prep email (Friday)
        "2027-03-13T08:00:05-05:00",  # sA day-before (07:30 quiet -> 08:00)
        "2027-03-13T10:00:10-05:00",  # sB day-before: its 24h cut-off passed an hour ago
        "2027-03-13T20:45:05-05:00",  # sA ride: 05:30 EDT is quiet, 08:00 too late
        "2027-03-14T08:00:05-04:00",  # sB ride (-2h)
        "2027-03-14T09:00:10-04:00",  # sC day-before: the 24h cut-off is now
        "2027-03-15T08:00:05-04:00",  # sC ride (07:00 quiet -> 08:00)
    ]
    _check_dst_sessions(provider, sessions, ticks, NY)
    sent = provider.all()
    prep = {r["session_id"]: r["body"] for r in sent if r["rule"] == "infusion-prep-email"}
    assert set(prep) == set(sessions)
    assert has(prep["sA"], r"nothing to eat after 12:30 AM"), prep["sA"]
    assert has(prep["sA"], r"until 5:30 AM"), prep["sA"]
    assert has(prep["sA"], r"no alcohol after 6:30 AM Saturday"), prep["sA"]
    assert has(prep["sB"], r"nothing to eat after 4:00 AM"), prep["sB"]
    assert has(prep["sB"], r"no alcohol after 9:00 AM Saturday"), prep["sB"]
    assert has(prep["sC"], r"nothing to eat after 3:00 AM"), prep["sC"]
    assert has(prep["sC"], r"no alcohol after 9:00 AM Sunday"), prep["sC"]
    day_before_b = one(sent, session_id="sB", rule="infusion-day-before-sms")["body"]
    assert "tomorrow, Sunday, March 14, at 10:00 AM" in day_before_b, day_before_b
    assert has(day_before_b, r"had alcohol since 9:00 AM today"), day_before_b
    assert {r["rule"] for r in sent} >= PRE_SESSION_RULES
    assert prep_late_flags(db_url) == []


def test_fall_back_cutoffs_are_elapsed_time(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    # US clocks fall back on Sunday 2027-11-07 at 02:00 EDT (06:00 UTC).
    sessions = {
        "sD": "2027-11-07T10:00:00-05:00",
        "sE": "2027-11-07T06:30:00-05:00",
    }
    tz = ZoneInfo(NY)
    # 24 h before 10:00 EST (15:00Z) is 15:00Z on the 6th = 11:00 EDT; 6 h before 06:30 EST
    # (11:30Z) is 05:30Z = 01:30 EDT (the first 1:30).
    assert (instant(sessions["sD"]) - timedelta(hours=24)).astimezone(tz).strftime(
        "%d %H:%M"
    ) == "06 11:00"
    assert (instant(sessions["sE"]) - timedelta(hours=6)).astimezone(tz).strftime(
        "%H:%M"
    ) == "01:30"
    clinic = write_clinic(
        tmp_path / "c.json",
        [session(sid, f"p{sid}", start) for sid, start in sessions.items()],
        [patient(f"p{sid}") for sid in sessions],
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)
    ticks = [
        "2027-11-04T06:30:10-04:00",  # sE prep email (Thursday)
        "2027-11-04T10:00:10-04:00",  # sD prep email
        "2027-11-06T08:00:05-04:00",  # sE day-before (06:30 quiet -> 08:00)
        "2027-11-06T10:00:10-04:00",  # sD day-before: its 24h cut-off is an hour ahead
        "2027-11-06T20:45:05-04:00",  # sE ride: 04:30 EST is quiet, 08:00 too late
        "2027-11-07T08:00:05-05:00",  # sD ride (-2h)
    ]
    _check_dst_sessions(provider, sessions, ticks, NY)
    sent = provider.all()
    prep = {r["session_id"]: r["body"] for r in sent if r["rule"] == "infusion-prep-email"}
    assert has(prep["sD"], r"no alcohol after 11:00 AM Saturday"), prep["sD"]
    assert has(prep["sE"], r"nothing to eat after 1:30 AM"), prep["sE"]
    assert has(prep["sE"], r"until 4:30 AM"), prep["sE"]
    assert has(prep["sE"], r"no alcohol after 7:30 AM Saturday"), prep["sE"]
    day_before_d = one(sent, session_id="sD", rule="infusion-day-before-sms")["body"]
    assert has(day_before_d, r"no alcohol after 11:00 AM today"), day_before_d
    assert prep_late_flags(db_url) == []


# --- 7. a normal booking ------------------------------------------------------------------------------


def test_normal_booking_week_ahead_full_instructions_and_no_flag(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    start = "2027-04-16T13:00:00-04:00"  # Friday
    consult = "2027-04-16T15:00:00-04:00"
    clinic = write_clinic(
        tmp_path / "c.json",
        [session("s1", "p1", start), session("c1", "p2", consult, kind="consultation")],
        [patient("p1"), patient("p2")],
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    assert provider.tick("2027-04-09T12:00:00-04:00") == []
    assert prep_late_flags(db_url) == []

    at = "2027-04-13T13:00:10-04:00"  # Tuesday
    prep = one(provider.tick(at), session_id="s1")
    assert prep["rule"] == "infusion-prep-email"
    body = prep["body"]
    assert "on Friday, April 16, at 1:00 PM" in body, body
    assert has(body, r"nothing to eat after 7:00 AM"), body
    assert has(body, r"until 11:00 AM"), body
    assert has(body, r"no alcohol after 1:00 PM Thursday"), body
    assert "since" not in body, body
    assert "tomorrow" not in body.lower(), body
    for needle in (
        "medications",
        "comfortable clothes",
        "ride home",
        "do not drive until Saturday",
    ):
        assert needle in body, needle
    check_preparation(body, start=start, send=at, zone=NY, lang="en")
    assert prep_late_flags(db_url) == []

    at = "2027-04-15T13:00:10-04:00"  # Thursday
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "tomorrow, Friday, April 16, at 1:00 PM" in body, body
    assert has(body, r"nothing to eat after 7:00 AM"), body
    assert has(body, r"until 11:00 AM"), body
    assert "alcohol from now on" in body.lower(), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en")

    at = "2027-04-15T15:00:10-04:00"
    consultation = one(provider.tick(at), session_id="c1")
    assert consultation["channel"] == "sms"
    assert "tomorrow, Friday, April 16, at 3:00 PM" in consultation["body"], consultation["body"]

    at = "2027-04-16T11:00:10-04:00"
    ride = one(provider.tick(at), session_id="s1")
    assert ride["rule"] == "infusion-ride-sms"
    body = ride["body"]
    assert "today at 1:00 PM" in body and "do not drive until tomorrow" in body, body
    assert has(body, r"eaten since 7:00 AM"), body
    assert has(body, r"had alcohol since 1:00 PM yesterday"), body
    assert "11:00 AM" not in body, body
    check_preparation(body, start=start, send=at, zone=NY, lang="en", instructions=False)

    assert [r for r in provider.tick("2027-04-16T14:30:00-04:00") if r["session_id"] == "s1"] == []
    checkin = provider.tick("2027-04-17T10:00:10-04:00")
    assert [r["rule"] for r in checkin if r["session_id"] == "s1"] == ["infusion-checkin"]
    sent_rules = sorted(r["rule"] for r in provider.all() if r["session_id"] == "s1")
    assert sent_rules == sorted([*PRE_SESSION_RULES, "infusion-checkin"])
    assert prep_late_flags(db_url) == []
    no_treatment_named(provider.all())


def test_short_notice_booking_with_the_prep_email_before_every_cutoff_gets_no_flag(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    start = "2027-04-16T13:00:00-04:00"  # Friday; booked Wednesday at noon
    clinic = write_clinic(tmp_path / "c.json", [session("s1", "p1", start)], [patient("p1")])
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)

    at = "2027-04-14T12:00:00-04:00"  # the prep email (due Tuesday) goes at once
    prep = one(provider.tick(at), session_id="s1")
    assert prep["rule"] == "infusion-prep-email"
    body = prep["body"]
    assert "on Friday, April 16, at 1:00 PM" in body, body
    assert has(body, r"no alcohol after 1:00 PM tomorrow"), body  # Thursday, read on Wednesday
    assert has(body, r"nothing to eat after 7:00 AM"), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en")
    for now in ("2027-04-15T13:00:10-04:00", "2027-04-16T11:00:10-04:00"):
        for r in provider.tick(now):
            check_preparation(
                r["body"],
                start=start,
                send=now,
                zone=NY,
                lang="en",
                instructions=r["rule"] != "infusion-ride-sms",
            )
    assert prep_late_flags(db_url) == []


def test_sms_only_patient_whose_first_reminder_comes_after_a_cutoff_is_flagged(
    cli: Callable[..., int], db_url: str, tmp_path: Path
) -> None:
    # Booked Monday 22:00 for Wednesday 07:00; no email consent, so the first reminder is the
    # day-before SMS at 08:00 Tuesday (07:00 is quiet), after the 24h cut-off (07:00 Tuesday).
    start = "2027-04-14T07:00:00-04:00"
    clinic = write_clinic(
        tmp_path / "c.json",
        [session("s1", "p1", start)],
        [patient("p1", email_consent=False)],
    )
    assert cli("import", str(clinic)) == 0
    provider = Provider(cli, tmp_path)
    assert provider.tick("2027-04-12T22:00:00-04:00") == []
    assert provider.tick("2027-04-13T07:30:00-04:00") == []

    at = "2027-04-13T08:00:05-04:00"
    sms = one(provider.tick(at), session_id="s1")
    assert sms["rule"] == "infusion-day-before-sms"
    body = sms["body"]
    assert "tomorrow, Wednesday, April 14, at 7:00 AM" in body, body
    assert has(body, r"nothing to eat after 1:00 AM"), body
    assert has(body, r"until 5:00 AM"), body
    assert has(body, r"had alcohol since 7:00 AM today"), body
    check_preparation(body, start=start, send=at, zone=NY, lang="en")
    assert [s for s, _ in prep_late_flags(db_url)] == ["s1"]

    at = "2027-04-13T20:45:05-04:00"  # the ride SMS: 05:00 is quiet, 08:00 too late
    ride = one(provider.tick(at), session_id="s1")
    assert ride["rule"] == "infusion-ride-sms"
    assert "tomorrow, Wednesday, April 14, at 7:00 AM" in ride["body"], ride["body"]
    assert "do not drive until Thursday" in ride["body"], ride["body"]
    check_preparation(ride["body"], start=start, send=at, zone=NY, lang="en", instructions=False)
    provider.tick("2027-04-14T09:00:00-04:00")
    assert [s for s, _ in prep_late_flags(db_url)] == ["s1"]
