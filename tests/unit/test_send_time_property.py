"""Issue 12, as properties: a message is true at the moment it is SENT.

The default templates are rendered with the real context builder for arbitrary send moments
and session starts (0-10 days later, any minute, zones with daylight saving, English and
Spanish). Every expectation is computed here from the contract, with zoneinfo:

- the session's day is named relative to the send moment (today / tomorrow / a date), in the
  recipient's local zone, and no message names another day for the session;
- every instruction with a clock time ("after", "until", "después de", "hasta") refers to an
  instant strictly after the send moment; every "since" / "desde" to one at least 15 minutes
  before it;
- the default cut-offs (start - 6h, - 2h, - 24h, elapsed time) each appear with their exact
  local clock time and day word, as an instruction while still ahead, as "since" once passed
  by 15 minutes or more, and as "from now on" (no time) in between;
- "do not drive until" names the day after the session's day, "tomorrow" only when it is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from reminders.db.models import Location, Patient, TreatmentSession
from reminders.defaults import POLICY_FILE
from reminders.planning.policy import Policy, load_policy
from reminders.settings import Settings, load_settings
from reminders.templates.context import build_context
from reminders.templates.render import render

ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Madrid",
    "Australia/Lord_Howe",  # 30-minute daylight-saving shift
    "Pacific/Auckland",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Europe/London",
]
CLINIC_ZONE = "America/New_York"

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

# The default cut-offs of an infusion (policy `preparation`): elapsed time before the start.
CUTOFFS = {
    "food": timedelta(hours=6),
    "liquids": timedelta(hours=2),
    "alcohol": timedelta(hours=24),
}
LATE_GRACE = timedelta(minutes=15)  # passed by less than this: "from now on"
SESSION_LENGTH = timedelta(minutes=60)  # duration_minutes of the sessions rendered here

# (template, channel, session kind)
INFUSION_TEMPLATES = [
    ("day_before", "sms"),
    ("day_before", "email"),
    ("prep_full", "email"),
    ("ride_home", "sms"),
]
WITH_INSTRUCTIONS = {("day_before", "sms"), ("day_before", "email"), ("prep_full", "email")}


def fold(text: str) -> str:
    """Without accents (and ñ -> n): SMS are transliterated, emails are not."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _alt(words: list[str]) -> str:
    return "|".join(fold(w) for w in words)


# --- what the contract says, computed here --------------------------------------------------


def clock(local: datetime, lang: str) -> str:
    if lang == "es":
        return f"{local.hour}:{local.minute:02d}"
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def day_and_date(day: date, lang: str) -> str:
    if lang == "es":
        return f"{ES_WEEKDAYS[day.weekday()]} {day.day} de {ES_MONTHS[day.month - 1]}"
    return f"{EN_WEEKDAYS[day.weekday()]}, {EN_MONTHS[day.month - 1]} {day.day}"


def expected_when(start_local: datetime, send_local: datetime, lang: str) -> str:
    days = (start_local.date() - send_local.date()).days
    at = clock(start_local, lang)
    if lang == "es":
        art = "la" if start_local.hour == 1 else "las"
        if days == 0:
            return f"hoy a {art} {at}"
        if days == 1:
            return f"mañana, {day_and_date(start_local.date(), lang)}, a {art} {at}"
        return f"el {day_and_date(start_local.date(), lang)} a {art} {at}"
    if days == 0:
        return f"today at {at}"
    if days == 1:
        return f"tomorrow, {day_and_date(start_local.date(), lang)}, at {at}"
    return f"on {day_and_date(start_local.date(), lang)}, at {at}"


# --- reading the text back -------------------------------------------------------------------

EN_DAYWORD = (
    rf"(?: (?P<rel>today|tomorrow|yesterday)|"
    rf" (?P<wd>{_alt(EN_WEEKDAYS)})(?:, (?P<mon>{_alt(EN_MONTHS)}) (?P<dom>\d{{1,2}}))?)?"
)
ES_DAYWORD = (
    rf"(?: de (?P<rel>hoy|manana|ayer)|"
    rf" del (?P<wd>{_alt(ES_WEEKDAYS)})(?: (?P<dom>\d{{1,2}}) de (?P<mon>{_alt(ES_MONTHS)}))?)?"
)
CLAUSE = {
    "en": re.compile(
        rf"\b(?P<conn>after|until|since) (?P<time>\d{{1,2}}:\d{{2}} [AP]M){EN_DAYWORD}"
        rf"(?![\w:])",
        re.IGNORECASE,
    ),
    "es": re.compile(
        rf"\b(?P<conn>despues de|hasta|desde) (?P<art>las?) (?P<time>\d{{1,2}}:\d{{2}}){ES_DAYWORD}"
        rf"(?![\w:])",
        re.IGNORECASE,
    ),
}
SESSION_MENTION = {
    "en": re.compile(
        rf"\b(?:today|tomorrow, (?:{_alt(EN_WEEKDAYS)}), (?:{_alt(EN_MONTHS)}) \d{{1,2}},"
        rf"|on (?:{_alt(EN_WEEKDAYS)}), (?:{_alt(EN_MONTHS)}) \d{{1,2}},) at \d{{1,2}}:\d{{2}} [AP]M",
        re.IGNORECASE,
    ),
    "es": re.compile(
        rf"\b(?:hoy|manana, (?:{_alt(ES_WEEKDAYS)}) \d{{1,2}} de (?:{_alt(ES_MONTHS)}),"
        rf"|el (?:{_alt(ES_WEEKDAYS)}) \d{{1,2}} de (?:{_alt(ES_MONTHS)})) a las? \d{{1,2}}:\d{{2}}",
        re.IGNORECASE,
    ),
}
DRIVE = {
    "en": re.compile(
        rf"do not drive until (?P<rel>tomorrow)?(?:(?P<wd>{_alt(EN_WEEKDAYS)})"
        rf"(?:, (?P<mon>{_alt(EN_MONTHS)}) (?P<dom>\d{{1,2}}))?)?",
        re.IGNORECASE,
    ),
    "es": re.compile(
        rf"\bhasta (?:(?P<rel>manana)|el (?P<wd>{_alt(ES_WEEKDAYS)})"
        rf"(?: (?P<dom>\d{{1,2}}) de (?P<mon>{_alt(ES_MONTHS)}))?)\b",
        re.IGNORECASE,
    ),
}
RELATIVE_WORDS = {"en": r"\b(?:today|tomorrow|yesterday)\b", "es": r"\b(?:hoy|manana|ayer)\b"}
WEEKDAY_WORDS = {
    "en": rf"\b(?:{_alt(EN_WEEKDAYS)})\b",
    "es": rf"\b(?:{_alt(ES_WEEKDAYS)})\b",
}
NOW_ON = {"en": "from now on", "es": "a partir de ahora"}
KIND_WORDS = {
    "food": ("eat", "coma", "comio"),
    "liquids": ("liquid", "drink", "beb"),
    "alcohol": ("alcohol",),
}
INSTRUCTION_CONN = {"after", "until", "despues de", "hasta"}
# Which connective each cut-off's instruction uses (contract: "Nothing to eat after",
# "clear liquids only until", "no alcohol after").
CONN_FOR = {"food": {"after", "despues de"}, "liquids": {"until", "hasta"}}
CONN_FOR["alcohol"] = CONN_FOR["food"]


@dataclass(frozen=True)
class Clause:
    conn: str
    mode: str  # "instruction" | "since"
    time: str
    rel: str | None
    weekday: str | None
    month: str | None
    dom: int | None
    kind: str | None
    text: str


def _index(words: list[str], name: str) -> int:
    return [fold(w).lower() for w in words].index(name.lower())


def _kind_before(text: str, start: int, previous_end: int) -> str | None:
    """The cut-off a clause is about: the last kind word between the previous clause (or the
    start of the sentence / line) and this connective."""
    boundary = max(text.rfind(".", 0, start), text.rfind("\n", 0, start), previous_end)
    segment = text[boundary + 1 : start].lower()
    best: tuple[int, str | None] = (-1, None)
    for kind, words in KIND_WORDS.items():
        for word in words:
            at = segment.rfind(word)
            if at > best[0]:
                best = (at, kind)
    return best[1]


def clauses(text: str, lang: str) -> list[Clause]:
    found: list[Clause] = []
    previous_end = -1
    for m in CLAUSE[lang].finditer(text):
        conn = m.group("conn").lower()
        found.append(
            Clause(
                conn=conn,
                mode="instruction" if conn in INSTRUCTION_CONN else "since",
                time=m.group("time"),
                rel=(m.group("rel") or "").lower() or None,
                weekday=m.group("wd"),
                month=m.group("mon"),
                dom=int(m.group("dom")) if m.group("dom") else None,
                kind=_kind_before(text, m.start(), previous_end),
                text=m.group(0),
            )
        )
        previous_end = m.end()
    return found


def resolve_day(
    *,
    rel: str | None,
    weekday: str | None,
    month: str | None,
    dom: int | None,
    lang: str,
    send_day: date,
    default: date,
    future: bool,
) -> date | None:
    """The date a day phrase names, read at ``send_day``; None if it names none."""
    if rel:
        offset = {"today": 0, "hoy": 0, "tomorrow": 1, "manana": 1, "yesterday": -1, "ayer": -1}
        return send_day + timedelta(days=offset[rel.lower()])
    if weekday is None:
        return default
    wd = _index(EN_WEEKDAYS if lang == "en" else ES_WEEKDAYS, weekday)
    if month is not None and dom is not None:
        mon = _index(EN_MONTHS if lang == "en" else ES_MONTHS, month) + 1
        candidates = []
        for year in (send_day.year - 1, send_day.year, send_day.year + 1):
            try:
                candidates.append(date(year, mon, dom))
            except ValueError:
                continue
        if not candidates:
            return None
        named = min(candidates, key=lambda d: abs((d - send_day).days))
        return named if named.weekday() == wd else None
    steps = range(2, 7) if future else range(-2, -7, -1)
    for k in steps:
        day = send_day + timedelta(days=k)
        if day.weekday() == wd:
            return day
    return None


def expected_day_phrase_kind(cut_day: date, session_day: date, send_day: date) -> str:
    """none (the session's own day) / relative word / weekday / weekday + date."""
    if cut_day == session_day:
        return "none"
    if abs((cut_day - send_day).days) <= 1:
        return "relative"
    if abs((cut_day - send_day).days) <= 6:
        return "weekday"
    return "dated"


def phrase_kind(c: Clause) -> str:
    if c.rel:
        return "relative"
    if c.weekday and c.dom is not None:
        return "dated"
    if c.weekday:
        return "weekday"
    return "none"


# --- rendering --------------------------------------------------------------------------------


CFG: Settings = load_settings(
    _env_file=None, templates_dir=None, timezone=CLINIC_ZONE, public_url="http://testserver"
)
POLICY: Policy = load_policy(POLICY_FILE)


def rendered(
    name: str,
    channel: str,
    *,
    start: datetime,
    send: datetime,
    zone: str,
    lang: str,
    kind: str,
    zone_on_patient: bool,
    with_policy: bool,
) -> tuple[str, str]:
    patient = Patient(
        id="p1",
        first_name="Ana",
        language=lang,
        timezone=zone if zone_on_patient else None,
        initial_series_size=6,
    )
    location = Location(
        id="main",
        name="Downtown",
        address="1 Main St",
        phone="+14105550100",
        timezone=CLINIC_ZONE if zone_on_patient else zone,
    )
    session = TreatmentSession(
        id="s1",
        patient_id="p1",
        location_id="main",
        starts_at=start,
        duration_minutes=int(SESSION_LENGTH.total_seconds() // 60),
        kind=kind,
        status="scheduled",
        series_number=None,
        confirmed_at=None,
    )
    context = build_context(
        CFG,
        patient=patient,
        session=session,
        location=location,
        now=send,
        channel=channel,
        language=lang,
        policy=POLICY if with_policy else None,
        unsubscribe_url="http://testserver/unsubscribe/T",
    )
    out = render(None, CFG, name=name, channel=channel, language=lang, context=context)
    return out.subject or "", out.text


# --- inputs ------------------------------------------------------------------------------------


def _transitions(zone_name: str) -> list[datetime]:
    zone = ZoneInfo(zone_name)
    moments = []
    t = datetime(2027, 1, 1, tzinfo=UTC)
    end = datetime(2030, 1, 1, tzinfo=UTC)
    previous = t.astimezone(zone).utcoffset()
    while t < end:
        t += timedelta(hours=1)
        offset = t.astimezone(zone).utcoffset()
        if offset != previous:
            moments.append(t)
            previous = offset
    return moments


TRANSITIONS = {name: _transitions(name) for name in ZONES}


TZ_CHOICES = ["utc", "recipient", "clinic"]


def in_tz(moment: datetime, choice: str, zone: str) -> datetime:
    """The same instant, carried with another tzinfo."""
    if choice == "recipient":
        return moment.astimezone(ZoneInfo(zone))
    if choice == "clinic":
        return moment.astimezone(ZoneInfo(CLINIC_ZONE))
    return moment.astimezone(UTC)


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    zone = draw(st.sampled_from(ZONES))
    near_change = draw(st.booleans())
    if near_change:
        pivot = draw(st.sampled_from(TRANSITIONS[zone])) + timedelta(
            minutes=draw(st.integers(-3 * 1440, 3 * 1440))
        )
    else:
        pivot = draw(
            st.datetimes(min_value=datetime(2027, 1, 1), max_value=datetime(2029, 12, 1))
        ).replace(tzinfo=UTC)
    start = pivot.replace(second=0, microsecond=0)
    lead_minutes = draw(
        st.one_of(
            st.integers(1, 10 * 1440),
            # near each cut-off, and the 15-minute line after it
            st.sampled_from([120, 360, 1440]).flatmap(lambda b: st.integers(b - 30, b + 30)),
            # the calendar-day rules' own send moments, give or take a quiet-hours shift
            st.sampled_from([1440, 3 * 1440]).flatmap(lambda b: st.integers(b - 12 * 60, b)),
        )
    )
    return {
        "zone": zone,
        "start": start,
        "send": start - timedelta(minutes=lead_minutes),
        "lang": draw(st.sampled_from(["en", "es"])),
        "zone_on_patient": draw(st.booleans()),
        "with_policy": draw(st.booleans()),
        # An aware datetime is an instant whatever its tzinfo: the session row may carry UTC
        # (from the database) or a local zone (a session built in memory, e.g. previews).
        "start_tz": draw(st.sampled_from(TZ_CHOICES)),
        "send_tz": draw(st.sampled_from(TZ_CHOICES)),
    }


def _case(zone: str, start: str, send: str, lang: str, start_tz: str = "utc") -> dict[str, Any]:
    z = ZoneInfo(zone)
    return {
        "zone": zone,
        "start": datetime.fromisoformat(start).replace(tzinfo=z).astimezone(UTC),
        "send": datetime.fromisoformat(send).replace(tzinfo=z).astimezone(UTC),
        "lang": lang,
        "zone_on_patient": True,
        "with_policy": True,
        "start_tz": start_tz,
        "send_tz": "utc",
    }


# --- the properties ------------------------------------------------------------------------------


def check_session_day(text: str, lang: str, start_local: datetime, send_local: datetime) -> int:
    """The session is named exactly as the contract says, and no mention names another day.
    Returns how many relative day words the mention used."""
    folded = fold(text)
    want = fold(expected_when(start_local, send_local, lang))
    mentions = [m.group(0) for m in SESSION_MENTION[lang].finditer(folded)]
    assert mentions, f"no session mention in {text!r}"
    for mention in mentions:
        assert mention.lower() == want.lower(), (
            f"session named {mention!r}, expected {want!r} (send {send_local}, start {start_local})"
        )
    return len(mentions) if (start_local.date() - send_local.date()).days <= 1 else 0


def check_cutoffs(
    text: str,
    *,
    template: tuple[str, str],
    lang: str,
    start: datetime,
    send: datetime,
    zone: ZoneInfo,
) -> tuple[int, int]:
    """Every clause with a clock time is one of the default cut-offs, said as the contract
    says at ``send``; every cut-off is there. Returns (relative words, weekday words) used."""
    folded = fold(text)
    send_day = send.astimezone(zone).date()
    session_day = start.astimezone(zone).date()
    found = clauses(folded, lang)
    seen: dict[str, set[str]] = {kind: set() for kind in CUTOFFS}
    rel_words = weekday_words = 0
    for c in found:
        assert c.kind is not None, f"clause {c.text!r} is about no cut-off in {text!r}"
        cut = start - CUTOFFS[c.kind]
        cut_local = cut.astimezone(zone)
        named_day = resolve_day(
            rel=c.rel,
            weekday=c.weekday,
            month=c.month,
            dom=c.dom,
            lang=lang,
            send_day=send_day,
            default=session_day,
            future=c.mode == "instruction",
        )
        where = f"{c.text!r} ({c.kind}) in {text!r}; send {send.astimezone(zone)}"
        # the exact local clock time and day of that cut-off
        assert c.time == clock(cut_local, lang), f"{where}: cut-off is {cut_local}"
        assert named_day == cut_local.date(), f"{where}: names {named_day}, cut-off {cut_local}"
        # the day phrase: none on the session's own day, else relative/weekday/dated
        assert phrase_kind(c) == expected_day_phrase_kind(
            cut_local.date(), session_day, send_day
        ), (
            f"{where}: day phrase should be {expected_day_phrase_kind(cut_local.date(), session_day, send_day)}"
        )
        if c.mode == "instruction":
            assert c.conn in CONN_FOR[c.kind], where
            assert cut > send, f"{where}: instruction with a time already past ({cut_local})"
        else:
            assert send - cut >= LATE_GRACE, (
                f"{where}: 'since' for a cut-off passed {send - cut} ago (< 15 min: 'from now on')"
            )
        seen[c.kind].add(c.mode)
        rel_words += bool(c.rel)
        weekday_words += bool(c.weekday)
    just_passed = False
    for kind, before in CUTOFFS.items():
        cut = start - before
        where = f"{kind} cut-off {cut.astimezone(zone)} in {template} sent {send.astimezone(zone)}: {text!r}"
        if cut > send:
            if template in WITH_INSTRUCTIONS:
                assert seen[kind] == {"instruction"}, where
            else:
                assert seen[kind] <= {"instruction"}, where
        elif send - cut >= LATE_GRACE:
            assert seen[kind] == {"since"}, where
        else:
            assert not seen[kind], f"{where}: passed < 15 min, said with a time"
            just_passed = True
    if just_passed and template in WITH_INSTRUCTIONS:
        assert NOW_ON[lang] in folded.lower(), f"no {NOW_ON[lang]!r} in {text!r}"
    return rel_words, weekday_words


def check_drive(
    text: str, *, lang: str, start: datetime, send: datetime, zone: ZoneInfo, required: bool
) -> tuple[int, int]:
    folded = fold(text)
    send_day = send.astimezone(zone).date()
    day_after = start.astimezone(zone).date() + timedelta(days=1)
    # A session over midnight: "the day after the session" may be read from its end.
    end_day_after = (start + SESSION_LENGTH).astimezone(zone).date() + timedelta(days=1)
    matches = list(DRIVE[lang].finditer(folded))
    if required:
        assert matches, f"no 'do not drive until' in {text!r}"
    rel = wd = 0
    for m in matches:
        assert m.group("rel") or m.group("wd"), f"{m.group(0)!r}: names no day"
        named = resolve_day(
            rel=m.group("rel"),
            weekday=m.group("wd"),
            month=m.group("mon"),
            dom=int(m.group("dom")) if m.group("dom") else None,
            lang=lang,
            send_day=send_day,
            default=day_after,
            future=True,
        )
        where = f"{m.group(0)!r} sent {send.astimezone(zone)}, session {start.astimezone(zone)}"
        assert named in {day_after, end_day_after}, f"{where}: names {named}, not {day_after}"
        assert named is not None
        assert bool(m.group("rel")) == (named == send_day + timedelta(days=1)), where
        if (named - send_day).days > 6:
            assert m.group("dom"), f"{where}: a day over 6 days away needs its date"
        rel += bool(m.group("rel"))
        wd += bool(m.group("wd"))
    return rel, wd


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, fold(text), re.IGNORECASE))


CASES = [
    # a late booking read at 08:00 on the session's day (NY)
    _case("America/New_York", "2027-04-14T13:00", "2027-04-14T08:00", "en"),
    _case("America/New_York", "2027-04-14T13:00", "2027-04-14T08:00", "es"),
    # the ride-home SMS of a 00:30 session moved to 20:45 the evening before
    _case("America/New_York", "2027-04-18T00:30", "2027-04-17T20:45", "en"),
    # spring forward 2027-03-14 02:00 (US) and fall back 2027-11-07 02:00
    _case("America/New_York", "2027-03-14T07:30", "2027-03-11T07:30", "en"),
    _case("America/New_York", "2027-03-14T10:00", "2027-03-13T10:00", "en"),
    _case("America/New_York", "2027-03-14T10:00", "2027-03-11T10:00", "en", "recipient"),
    _case("America/New_York", "2027-11-07T10:00", "2027-11-04T10:00", "en", "recipient"),
    _case("America/New_York", "2027-11-07T06:30", "2027-11-04T06:30", "es"),
    _case("America/New_York", "2027-11-07T10:00", "2027-11-06T10:00", "en"),
    # a cut-off just passed: 14 and 15 minutes
    _case("Europe/Madrid", "2027-06-10T13:00", "2027-06-10T07:14", "es"),
    _case("Europe/Madrid", "2027-06-10T13:00", "2027-06-10T07:15", "en"),
    # 10 days ahead: dates, not weekdays
    _case("Australia/Lord_Howe", "2027-04-13T09:00", "2027-04-03T09:00", "en"),
    # hour 1 in Spanish: "a la 1:00"
    _case("America/Los_Angeles", "2027-05-21T01:00", "2027-05-20T08:00", "es"),
]


def _with_examples(test: Any) -> Any:
    for case in CASES:
        test = example(case)(test)
    return test


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
@_with_examples
def test_infusion_messages_are_true_when_sent(case: dict[str, Any]) -> None:
    zone = ZoneInfo(case["zone"])
    start, send, lang = case["start"], case["send"], case["lang"]
    start_local, send_local = start.astimezone(zone), send.astimezone(zone)
    for template in INFUSION_TEMPLATES:
        subject, text = rendered(
            *template,
            start=in_tz(start, case["start_tz"], case["zone"]),
            send=in_tz(send, case["send_tz"], case["zone"]),
            zone=case["zone"],
            lang=lang,
            kind="infusion",
            zone_on_patient=case["zone_on_patient"],
            with_policy=case["with_policy"],
        )
        rel = check_session_day(text, lang, start_local, send_local)
        cut_rel, cut_wd = check_cutoffs(
            text, template=template, lang=lang, start=start, send=send, zone=zone
        )
        drive_rel, drive_wd = check_drive(
            text,
            lang=lang,
            start=start,
            send=send,
            zone=zone,
            required=template in {("prep_full", "email"), ("ride_home", "sms")},
        )
        # Every "today"/"tomorrow"/"yesterday" (and weekday) is one of the checked phrases:
        # no message names another day.
        session_wd = _count(WEEKDAY_WORDS[lang], expected_when(start_local, send_local, lang))
        mentions = len(SESSION_MENTION[lang].findall(fold(text)))
        # ... and every clock time is the session's or a checked cut-off's.
        n_clauses = len(clauses(fold(text), lang))
        assert _count(r"\b\d{1,2}:\d{2}\b", text) == mentions + n_clauses, text
        assert _count(RELATIVE_WORDS[lang], text) == rel + cut_rel + drive_rel, text
        assert _count(WEEKDAY_WORDS[lang], text) == mentions * session_wd + cut_wd + drive_wd, text
        if template[0] == "day_before" and template[1] == "email":
            assert fold(expected_when(start_local, send_local, lang)) in fold(subject), subject
        if template[0] == "prep_full":
            assert fold(day_and_date(start_local.date(), lang)) in fold(subject), subject
        if template[1] == "sms":
            lowered = text.lower()
            assert "infusion" not in lowered and "infusi" not in lowered, text
            assert "ketamine" not in lowered and "ketamina" not in lowered, text


@hsettings(max_examples=60, deadline=None)
@given(scenarios())
def test_consultation_sms_names_the_day_and_no_cutoff(case: dict[str, Any]) -> None:
    zone = ZoneInfo(case["zone"])
    start, send, lang = case["start"], case["send"], case["lang"]
    start_local, send_local = start.astimezone(zone), send.astimezone(zone)
    _, text = rendered(
        "consultation_reminder",
        "sms",
        start=in_tz(start, case["start_tz"], case["zone"]),
        send=in_tz(send, case["send_tz"], case["zone"]),
        zone=case["zone"],
        lang=lang,
        kind="consultation",
        zone_on_patient=case["zone_on_patient"],
        with_policy=case["with_policy"],
    )
    rel = check_session_day(text, lang, start_local, send_local)
    assert clauses(fold(text), lang) == [], text  # a consultation has no cut-offs
    assert _count(r"\b\d{1,2}:\d{2}\b", text) == len(SESSION_MENTION[lang].findall(fold(text)))
    assert _count(RELATIVE_WORDS[lang], text) == rel, text
    assert "infusi" not in text.lower() and "ketamin" not in text.lower(), text
