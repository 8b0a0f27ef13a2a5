"""The Today page (issue 14): the day's visits by location, in words, with the desk's actions,
in a fixed number of queries."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.conversations.prep_flags import flag_key
from reminders.db.models import (
    AuditLog,
    Location,
    Message,
    Patient,
    StaffTask,
    StaffUser,
    TreatmentSession,
)
from reminders.runtime import Runtime
from reminders.web.staff import today
from reminders.web.staff.i18n import CATALOG_DIR
from tests.staff.conftest import SignedIn

NY = ZoneInfo("America/New_York")
DAY = date(2031, 3, 12)  # far from the real clock: every planned message is still to come
PAGE = f"/staff/today?day={DAY.isoformat()}"


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def session(sid: str, pid: str, starts: datetime, **values: Any) -> TreatmentSession:
    values.setdefault("location_id", "loc-main")
    values.setdefault("kind", "infusion")
    values.setdefault("status", "scheduled")
    return TreatmentSession(id=sid, patient_id=pid, starts_at=starts, **values)


def message(key: str, sid: str | None, pid: str, rule: str, **values: Any) -> Message:
    values.setdefault("kind", "reminder")
    values.setdefault("channel", "email" if "email" in rule else "sms")
    values.setdefault("status", "planned")
    return Message(
        dedupe_key=key, session_id=sid, patient_id=pid, rule=rule, template="t", **values
    )


def seed(factory: sessionmaker[Session]) -> None:
    with factory() as db:
        db.add_all(
            [
                Location(id="loc-main", name="Main office", timezone="America/New_York"),
                Location(id="loc-up", name="Uptown", timezone="America/New_York"),
                Patient(id="p-ana", first_name="Ana", last_name="Rivera", phone="+14105550123"),
                Patient(id="p-ben", first_name="Ben", last_name="Okafor", phone="+14105550124"),
                Patient(id="p-cara", first_name="Cara", last_name="Lind"),
                Patient(id="p-dan", first_name="Dan", last_name="Moss", phone="+14105550126"),
                Patient(id="p-eve", first_name="Eve", last_name="Park", initial_series_size=2),
                Patient(id="p-fay", first_name="Fay", last_name="Wu"),
            ]
        )
        db.flush()
        db.add_all(
            [
                # Ana: two infusions done, one cancelled (not counted): this is her third.
                session("ana-1", "p-ana", at(9, day=DAY - timedelta(days=8)), status="completed"),
                session("ana-x", "p-ana", at(9, day=DAY - timedelta(days=6)), status="cancelled"),
                session("ana-2", "p-ana", at(9, day=DAY - timedelta(days=4)), status="completed"),
                session("ana-3", "p-ana", at(10, 30)),
                session("ben-1", "p-ben", at(9), location_id="loc-up", status="confirmed",
                        confirmed_via="sms", series_number=5),
                session("cara-1", "p-cara", at(8, 15), status="confirmed"),
                session("dan-1", "p-dan", at(14), location_id=None, kind="consultation"),
                session("eve-1", "p-eve", at(9, day=DAY - timedelta(days=9)), status="completed"),
                session("eve-2", "p-eve", at(9, day=DAY - timedelta(days=5)), status="completed"),
                session("eve-3", "p-eve", at(11)),
                session("fay-1", "p-fay", at(13), status="cancelled"),
                session("fay-2", "p-fay", at(10, day=DAY + timedelta(days=1))),
            ]
        )  # fmt: skip
        db.flush()
        ana_start = at(10, 30).astimezone(UTC)
        db.add_all(
            [
                message("a-prep", "ana-3", "p-ana", "infusion-prep-email",
                        session_starts_at=ana_start, due_at=at(9, day=DAY - timedelta(days=3)),
                        status="delivered"),
                message("a-sms", "ana-3", "p-ana", "infusion-day-before-sms",
                        session_starts_at=ana_start, due_at=at(17, day=DAY - timedelta(days=1)),
                        status="skipped", reason="no_sms_consent"),
                message("a-ride", "ana-3", "p-ana", "infusion-ride-sms",
                        session_starts_at=ana_start, due_at=at(7)),
                message("a-checkin", "ana-3", "p-ana", "infusion-checkin", kind="checkin",
                        session_starts_at=ana_start, due_at=at(10, day=DAY + timedelta(days=1))),
                # A reminder for the time the visit had before it moved: not this visit's.
                message("a-old", "ana-3", "p-ana", "infusion-day-before-sms",
                        session_starts_at=ana_start - timedelta(days=2), due_at=at(6),
                        status="failed", reason="provider_error"),
                message("b-sms", "ben-1", "p-ben", "infusion-day-before-sms",
                        session_starts_at=at(9).astimezone(UTC),
                        due_at=at(17, day=DAY - timedelta(days=1)), status="sent"),
                # Dan's only planned message belongs to no visit: his next one all the same.
                message("d-nudge", None, "p-dan", "maintenance-nudge", kind="nudge",
                        due_at=at(10, day=DAY + timedelta(days=2))),
            ]
        )  # fmt: skip
        db.add_all(
            [
                StaffTask(kind="prep_late", patient_id="p-cara", session_id="cara-1",
                          summary="Booked after the fasting cut-off: call about preparation.",
                          dedupe_key=flag_key("cara-1", at(8, 15).astimezone(UTC))),
                # Raised for Eve's visit when it was at another time: it no longer applies.
                StaffTask(kind="prep_late", patient_id="p-eve", session_id="eve-3",
                          summary="Booked after the alcohol cut-off.",
                          dedupe_key=flag_key("eve-3", at(11).astimezone(UTC) - timedelta(days=1))),
            ]
        )  # fmt: skip
        db.commit()


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def visits(page: str) -> dict[str, str]:
    """Each visit row's words, by the patient's first name."""
    found = {}
    for row in re.findall(r'<tr id="visit-\d+".*?</tr>', page, flags=re.S):
        name = re.search(r'-name" href="[^"]+">([^<]+)</a>', row)
        assert name is not None
        found[html.unescape(name.group(1)).split()[0]] = text_of(row)
    return found


def sections(page: str) -> list[str]:
    return [text_of(s) for s in re.findall(r"<section class=\"today-place\".*?</section>", page, flags=re.S)]  # fmt: skip


def test_the_days_visits_by_location_in_words(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    seed(factory)
    page = admin_client.client.get(PAGE)
    assert page.status_code == 200
    places = sections(page.text)
    assert [p.split()[0] for p in places] == ["Main", "Uptown", "No"]  # then no location
    main = places[0]
    assert main.index("Cara Lind") < main.index("Ana Rivera") < main.index("Eve Park")
    assert "Ben" not in main and "Dan" not in main
    assert "Cancelled or already over" in main and "Fay Wu" in main
    assert "Fay" not in visits(page.text)

    rows = visits(page.text)
    assert set(rows) == {"Ana", "Ben", "Cara", "Dan", "Eve"}
    ana = rows["Ana"]
    assert ana.startswith("10:30 AM Ana Rivera Infusion 3 of 6 Not confirmed")
    assert "Preparation email delivered" in ana
    assert "Day-before text not sent: The patient has not agreed to texts" in ana
    assert "Ride-home text at 7:00 AM" in ana
    assert "not delivered" not in ana  # the reminder of the visit's old time
    assert "Confirmed by phone Call Ana Rivera Text Ana Rivera" in ana
    assert "Confirmed by text" in rows["Ben"] and "Infusion 5 of 6" in rows["Ben"]
    assert "Day-before text sent" in rows["Ben"] and "Nothing planned" in rows["Ben"]
    cara = rows["Cara"]
    assert "Confirmed (clinic)" in cara and "Preparation cut-off missed" in cara
    assert "Booked after the fasting cut-off" in cara
    assert "Call" not in cara and "Confirmed by phone" not in cara  # no phone, confirmed
    assert "Nothing sent yet" in cara
    assert "Infusion, maintenance" in rows["Eve"] and "cut-off" not in rows["Eve"]
    dan = rows["Dan"]
    assert "Consultation" in dan and "Time to book maintenance on Fri, Mar 14 at 10:00 AM" in dan
    counts = text_of(re.findall(r'<ul class="today-counts".*?</ul>', page.text, re.S)[0])
    assert counts == "5 visits 2 confirmed 3 not confirmed 1 preparation warning"
    assert 'href="/staff/patients/p-ana#reply"' in page.text
    assert 'href="tel:+14105550123"' in page.text
    for code in ("infusion-", "no_sms_consent", "prep_late", "p-ana<", "scheduled<"):
        assert code not in page.text  # no rule names, codes or ids as words


def test_another_day_and_the_day_links(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    seed(factory)
    client = admin_client.client
    page = client.get(f"/staff/today?day={(DAY + timedelta(days=1)).isoformat()}")
    assert set(visits(page.text)) == {"Fay"} and "Thursday, March 13, 2031" in page.text
    previous = re.search(r'<a href="([^"]+)">Previous day</a>', page.text)
    assert previous and html.unescape(previous.group(1)) == PAGE
    assert 'type="date" id="today-day" name="day" value="2031-03-13"' in page.text
    assert '<form method="get" action="/staff/today"' in page.text
    day_before = client.get(f"/staff/today?day={(DAY - timedelta(days=1)).isoformat()}")
    assert "No visits are booked on this day." in day_before.text
    assert re.search(rf'<a href="{re.escape(PAGE)}">Next day</a>', day_before.text)

    # No day: today in the clinic's zone, and tomorrow is a link away.
    now_here = datetime.now(runtime.settings.zone).date()
    default = client.get("/staff/today")
    assert default.status_code == 200 and "<h1>Today <small>" in default.text
    assert f'value="{now_here.isoformat()}"' in default.text
    tomorrow = (now_here + timedelta(days=1)).isoformat()
    assert f'<a href="/staff/today?day={tomorrow}">Tomorrow</a>' in default.text
    assert "<h1>Tomorrow" in client.get(f"/staff/today?day={tomorrow}").text

    only_uptown = client.get(f"{PAGE}&location=loc-up")
    assert set(visits(only_uptown.text)) == {"Ben"}
    assert '<option value="loc-up" selected>' in only_uptown.text
    assert set(visits(client.get(f"{PAGE}&location=none").text)) == {"Dan"}
    elsewhere = client.get("/staff/today?day=2031-01-01&location=loc-up")
    assert "No visits are booked at this location on this day." in elsewhere.text
    bad = client.get("/staff/today?day=12/03/2031")
    assert bad.status_code == 400 and "choose one with the date picker" in bad.text


def test_confirmed_by_phone_from_the_page(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    seed(factory)
    page = admin_client.client.get(PAGE)
    form = re.search(
        r'<form method="post" action="/staff/sessions/ana-3/confirm">.*?name="next" value="([^"]+)"',
        page.text,
        re.S,
    )
    assert form is not None
    back = html.unescape(form.group(1))
    assert back.startswith(PAGE + "#visit-")
    done = admin_client.post("/staff/sessions/ana-3/confirm", {"next": back})
    assert done.status_code == 303 and done.headers["location"] == back
    rows = visits(admin_client.client.get(PAGE).text)
    assert "Confirmed by phone" in rows["Ana"] and "Not confirmed" not in rows["Ana"]
    assert "Confirmed by phone" not in rows["Eve"] or "Not confirmed" in rows["Eve"]
    assert "Not confirmed" in rows["Eve"] and "Not confirmed" in rows["Dan"]
    with factory() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "session.confirm")).one()
        assert (audit.actor, audit.entity_id) == ("admin@clinic.test", "ana-3")
        ana = db.get(TreatmentSession, "ana-3")
        assert ana is not None and (ana.status, ana.confirmed_via) == ("confirmed", "phone")
        ben = db.get(TreatmentSession, "ben-1")
        assert ben is not None and ben.confirmed_via == "sms"  # nobody else touched


def test_the_page_in_spanish(admin_client: SignedIn, factory: sessionmaker[Session]) -> None:
    seed(factory)
    spanish = admin_client.client.get(PAGE, headers={"accept-language": "es"})
    rows = visits(spanish.text)
    assert rows["Ana"].startswith("10:30 Ana Rivera Infusión 3 de 6 Sin confirmar")
    assert "Correo de preparación entregado" in rows["Ana"]
    assert "SMS del transporte a casa a las 7:00" in rows["Ana"]
    assert "Confirmada por SMS" in rows["Ben"] and "Preparación fuera de plazo" in rows["Cara"]
    assert "miércoles 12 de marzo de 2031" in spanish.text and "Sin sede" in spanish.text
    assert "5 citas" in spanish.text and "Confirmada por teléfono" in spanish.text
    with factory() as db:
        db.execute(update(StaffUser).values(language="es"))
        db.commit()
    chosen = admin_client.client.get(PAGE)  # the person's own choice, whatever the browser
    assert "Infusión de mantenimiento" in visits(chosen.text)["Eve"]
    assert "Día anterior" in chosen.text


def test_every_text_the_page_builds_has_its_spanish() -> None:
    source = today.__file__
    with open(source, encoding="utf-8") as fh:
        code = fh.read()
    texts = set(re.findall(r'\bt\(\s*"((?:[^"\\]|\\.)+)"\s*\)', code))
    texts |= {t for pair in re.findall(r'count\([^,]+, "([^"]+)", "([^"]+)"\)', code) for t in pair}
    texts |= set(today.CONFIRMED_VIA.values())
    assert len(texts) > 15
    with open(CATALOG_DIR / "es_today.json", encoding="utf-8") as fh:
        spanish = json.load(fh)
    assert not texts - set(spanish), sorted(texts - set(spanish))


def test_the_console_opens_on_today(admin_client: SignedIn) -> None:
    response = admin_client.client.get("/staff")
    assert response.status_code == 303 and response.headers["location"] == "/staff/today"
    assert admin_client.client.get("/staff/").headers["location"] == "/staff/today"


@contextmanager
def counted(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)


def busy_day(factory: sessionmaker[Session], n: int, day: date) -> None:
    """``n`` visits on ``day``, each with an earlier infusion, reminders and a flag."""
    with factory() as db:
        if db.get(Location, "loc-main") is None:
            db.add(Location(id="loc-main", name="Main office", timezone="America/New_York"))
        for i in range(n):
            pid, sid = f"q{day}-{i}", f"v{day}-{i}"
            starts = datetime(day.year, day.month, day.day, 8 + i % 9, 15 * (i % 4), tzinfo=NY)
            db.add(Patient(id=pid, first_name=f"P{i}", phone=f"+1410555{i:04d}"))
            db.flush()
            db.add(session(f"{sid}-0", pid, starts - timedelta(days=7), status="completed"))
            db.add(session(sid, pid, starts, status="confirmed" if i % 2 else "scheduled"))
            db.flush()
            db.add(
                message(
                    f"{sid}-p",
                    sid,
                    pid,
                    "infusion-prep-email",
                    status="delivered",
                    session_starts_at=starts,
                    due_at=starts - timedelta(days=2),
                )
            )
            db.add(
                message(
                    f"{sid}-r",
                    sid,
                    pid,
                    "infusion-ride-sms",
                    session_starts_at=starts,
                    due_at=starts - timedelta(hours=2),
                )
            )
            db.add(
                message(
                    f"{sid}-n",
                    None,
                    pid,
                    "maintenance-nudge",
                    kind="nudge",
                    due_at=starts + timedelta(days=20),
                )
            )
            db.add(
                StaffTask(
                    kind="prep_late",
                    patient_id=pid,
                    session_id=sid,
                    summary="late",
                    dedupe_key=flag_key(sid, starts.astimezone(UTC)),
                )
            )
        db.commit()  # fmt: skip


def test_the_number_of_queries_does_not_grow_with_the_visits(
    admin_client: SignedIn, factory: sessionmaker[Session], runtime: Runtime
) -> None:
    small, large = DAY, DAY + timedelta(days=7)
    busy_day(factory, 5, small)
    busy_day(factory, 50, large)
    client = admin_client.client
    client.get(f"/staff/today?day={small}")  # warm
    with counted(runtime) as few:
        page = client.get(f"/staff/today?day={small}")
    assert len(visits(page.text)) == 5
    with counted(runtime) as many:
        page = client.get(f"/staff/today?day={large}")
    assert len(visits(page.text)) == 50 and "50 visits" in page.text
    assert "Infusion 2 of 6" in page.text and "Preparation cut-off missed" in page.text
    assert len(few) == len(many), (few, many)
    assert len(many) <= 12, "\n".join(many)
    print(f"{len(many)} statements:", *(" ".join(s.split())[:100] for s in many), sep="\n")
