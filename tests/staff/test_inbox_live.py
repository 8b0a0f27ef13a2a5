"""The live inbox (issue 14): the updates endpoint and its cursor, unread state per staff
member, filters, bulk acknowledgement, unconfirmed visits grouped by day, Spanish words.
TestClient against the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminders.conversations.inbound import receive
from reminders.db.models import (
    AuditLog,
    Patient,
    StaffSession,
    StaffTask,
    TaskRead,
    TreatmentSession,
)
from reminders.runtime import Runtime
from reminders.web.app import create_app
from tests.staff.conftest import SignedIn, sign_in

NY = ZoneInfo("America/New_York")
NOW = datetime.now(UTC)


def _patients(factory: sessionmaker[Session]) -> None:
    with factory() as db:
        db.add_all(
            [
                Patient(id="p-ana", first_name="Ana", last_name="Rivera", phone="+14105550123"),
                Patient(id="p-ben", first_name="Ben", last_name="Okafor", phone="+14105550124"),
                Patient(id="p-cara", first_name="Cara", last_name="Lind", phone="+14105550125"),
            ]
        )
        db.commit()


def _task(factory: sessionmaker[Session], kind: str, patient: str, **values: Any) -> int:
    urgent = values.pop("urgent", kind in ("crisis", "low_score"))
    with factory() as db:
        task = StaffTask(
            kind=kind,
            urgent=urgent,
            patient_id=patient,
            summary=values.pop("summary", f"{kind} for patient {patient}"),
            created_at=values.pop("created_at", NOW),
            message_count=values.pop("message_count", 1),
            **values,
        )
        db.add(task)
        db.commit()
        return task.id


def _items(html: str) -> dict[int, str]:
    """Each list item's id -> its class attribute."""
    return {
        int(m.group(2)): m.group(1)
        for m in re.finditer(r'<li class="(task[^"]*)" data-id="(\d+)"', html)
    }


def _updates(client: SignedIn, **params: Any) -> dict[str, Any]:
    response = client.client.get(
        "/staff/inbox/updates", params=params, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data: dict[str, Any] = response.json()
    return data


def test_updates_report_items_created_after_the_cursor(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    _patients(factory)
    before = _task(factory, "free_text", "p-ben")
    first = _updates(admin_client)
    assert first["changed"] and first["new"] == [] and str(before) in first["list_html"]
    cursor = first["cursor"]
    # Nothing happened: the same cursor, nothing to render.
    same = _updates(admin_client, since=cursor)
    assert same["cursor"] == cursor and not same["changed"] and "list_html" not in same
    crisis = _task(factory, "crisis", "p-cara", summary="Crisis language in a reply")
    after = _updates(admin_client, since=cursor)
    assert after["changed"] and [n["id"] for n in after["new"]] == [crisis]
    assert after["new"][0] == {"id": crisis, "urgent": True, "text": "Possible crisis · Cara Lind"}
    assert [u["id"] for u in after["urgent"]] == [crisis]
    assert after["unread_urgent"] == 1 and after["title"] == "(1) Inbox · Lakeside Clinic"
    items = list(_items(after["list_html"]))
    assert items == [crisis, before]  # the urgent one pinned first
    # A message joining an open item changes the list, though nothing is new.
    with factory() as db:
        task = db.get(StaffTask, before)
        assert task is not None
        task.message_count = 2
        db.commit()
    joined = _updates(admin_client, since=after["cursor"], task=before)
    assert joined["changed"] and joined["new"] == [] and "2 messages" in joined["list_html"]
    # The open item's own state, for the "a new message arrived" notice.
    assert joined["selected"] == {"id": before, "messages": 2, "acknowledged": False}


def test_a_poll_needs_a_session_but_does_not_keep_it_alive(
    app_client: TestClient, admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    with factory() as db:
        for row in db.scalars(select(StaffSession)):
            row.last_seen_at = earlier
        db.commit()
    assert _updates(admin_client)["cursor"]
    with factory() as db:
        assert {r.last_seen_at for r in db.scalars(select(StaffSession))} == {earlier}
    admin_client.client.get("/staff/inbox")  # a page counts as activity
    with factory() as db:
        assert all(r.last_seen_at > earlier for r in db.scalars(select(StaffSession)))
    stranger = TestClient(app_client.app, follow_redirects=False)
    refused = stranger.get("/staff/inbox/updates", headers={"Accept": "application/json"})
    assert refused.status_code == 401


def test_read_state_is_per_staff_member(
    runtime: Runtime,
    admin_client: SignedIn,
    make_user: Callable[..., str],
    factory: sessionmaker[Session],
) -> None:
    _patients(factory)
    urgent = _task(factory, "low_score", "p-ana")
    routine = _task(factory, "free_text", "p-ben")
    page = admin_client.client.get("/staff/inbox").text
    assert "unread" in _items(page)[urgent] and "unread" in _items(page)[routine]
    assert "2 unread" in page and "<title>(1) Inbox · Lakeside Clinic</title>" in page
    opened = admin_client.client.get(f"/staff/inbox?task={urgent}").text
    assert "unread" not in _items(opened)[urgent]  # shown read as it is opened
    page = admin_client.client.get("/staff/inbox").text
    assert "unread" not in _items(page)[urgent] and "unread" in _items(page)[routine]
    assert "1 unread" in page and "<title>Inbox · Lakeside Clinic</title>" in page
    assert _updates(admin_client)["unread"] == 1
    with TestClient(create_app(runtime), follow_redirects=False) as other:
        frontdesk = sign_in(other, make_user("frontdesk@clinic.test"))
        theirs = frontdesk.client.get("/staff/inbox").text
        assert "unread" in _items(theirs)[urgent] and "2 unread" in theirs
        assert _updates(frontdesk)["unread_urgent"] == 1
    with factory() as db:
        reads = db.scalars(select(TaskRead)).all()
        assert [(r.task_id, r.user_id) for r in reads] == [(urgent, reads[0].user_id)]


def test_filters_apply_to_the_page_and_to_the_updates(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    _patients(factory)
    crisis = _task(factory, "crisis", "p-cara")
    chat = _task(factory, "free_text", "p-ben")
    failed = _task(factory, "delivery_failed", "p-ana", message_count=0)
    done = _task(
        factory,
        "free_text",
        "p-ana",
        acknowledged_at=NOW,
        acknowledged_by="someone@clinic.test",
        note="answered",
    )
    get = admin_client.client.get
    assert list(_items(get("/staff/inbox").text)) == [crisis, failed, chat]  # newest first
    assert list(_items(get("/staff/inbox?urgent=1").text)) == [crisis]
    assert list(_items(get("/staff/inbox?kind=delivery_failed").text)) == [failed]
    assert list(_items(get("/staff/inbox?status=done").text)) == [done]
    get(f"/staff/inbox?task={chat}")
    assert list(_items(get("/staff/inbox?unread=1").text)) == [crisis, failed]
    page = get("/staff/inbox?kind=free_text&unread=1").text
    assert 'value="free_text" selected' in page and 'name="unread" value="1" checked' in page
    # The live updates keep the filters: a new item of another kind is not shown.
    cursor = _updates(admin_client, kind="free_text")["cursor"]
    _task(factory, "reschedule", "p-ben")
    later = _task(factory, "free_text", "p-cara")
    fresh = _updates(admin_client, kind="free_text", since=cursor)
    assert [n["id"] for n in fresh["new"]] == [later]
    assert list(_items(fresh["list_html"])) == [later, chat]
    # Links from a filtered list keep the filters.
    assert f'href="/staff/inbox?kind=free_text&amp;task={chat}"' in fresh["list_html"]


def test_bulk_acknowledge_takes_only_routine_items(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    _patients(factory)
    crisis = _task(factory, "crisis", "p-cara")
    review = _task(factory, "review", "p-ana", urgent=False, urgent_review=True)
    first = _task(factory, "free_text", "p-ben")
    second = _task(factory, "delivery_failed", "p-ana", message_count=0)
    third = _task(factory, "reschedule", "p-ana")
    page = admin_client.client.get("/staff/inbox").text
    boxes = re.findall(r'name="task" value="(\d+):\d+" form="bulk-ack"', page)
    assert sorted(map(int, boxes)) == sorted([first, second, third])  # none on urgent items
    response = admin_client.post(
        "/staff/inbox/bulk-ack",
        {"task": [f"{first}:1", f"{second}:0"], "next": "/staff/inbox?kind=free_text"},  # type: ignore[dict-item]
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/inbox?kind=free_text&bulk=2"
    assert "2 items acknowledged." in admin_client.client.get(response.headers["location"]).text
    for refused in ([f"{third}:1", f"{crisis}:1"], [f"{review}:1"]):
        answer = admin_client.post("/staff/inbox/bulk-ack", {"task": refused})  # type: ignore[dict-item]
        assert answer.status_code == 400 and "Urgent items cannot be acknowledged" in answer.text
    assert admin_client.post("/staff/inbox/bulk-ack", {}).status_code == 400
    forged = admin_client.client.post(
        "/staff/inbox/bulk-ack", data={"task": f"{third}:1", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403  # CSRF checked
    with factory() as db:
        tasks = {t.id: t for t in db.scalars(select(StaffTask))}
        assert {i for i, t in tasks.items() if t.acknowledged_at} == {first, second}
        assert tasks[first].note == "bulk" and tasks[first].acknowledged_by == "admin@clinic.test"
        audits = db.scalars(select(AuditLog).where(AuditLog.action == "task.acknowledge")).all()
        assert sorted(int(a.entity_id or 0) for a in audits) == sorted([first, second])
        assert all(a.detail and a.detail["bulk"] for a in audits)
        task = tasks[third]
        task.message_count = 2  # a message joined after the page was loaded
        db.commit()
    kept = admin_client.post("/staff/inbox/bulk-ack", {"task": f"{third}:1"})
    assert kept.headers["location"] == "/staff/inbox?bulk=0&kept=1"
    with factory() as db:
        assert db.get(StaffTask, third).acknowledged_at is None  # type: ignore[union-attr]


def _unconfirmed(factory: sessionmaker[Session], days: list[datetime], per_day: int) -> None:
    with factory() as db:
        for d, day in enumerate(days):
            for n in range(per_day):
                sid = f"s{d}-{n}"
                pid = f"p{d}-{n}"
                db.add(Patient(id=pid, first_name=f"Pat{d}x{n}", last_name="Doe"))
                db.flush()
                starts = day + timedelta(minutes=15 * n)
                db.add(TreatmentSession(id=sid, patient_id=pid, starts_at=starts))
                db.flush()
                db.add(
                    StaffTask(
                        kind="unconfirmed",
                        patient_id=pid,
                        session_id=sid,
                        summary=f"Infusion {sid} for patient {pid} is not confirmed",
                        dedupe_key=f"unconfirmed:{sid}",
                        created_at=NOW,
                    )
                )
        db.commit()


def test_unconfirmed_visits_are_grouped_by_day(
    admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    days = [datetime(2037, 12, d, 8, 0, tzinfo=NY) for d in (1, 2, 3)]
    _unconfirmed(factory, days, 28)
    page = admin_client.client.get("/staff/inbox").text
    groups = re.findall(r'<details class="day-group" data-key="([\d-]+)">', page)
    assert groups == ["2037-12-01", "2037-12-02", "2037-12-03"]
    assert "Visits on Tuesday, December 1 not confirmed: 28" in page
    assert "Visits on Thursday, December 3 not confirmed: 28" in page
    assert page.count('action="/staff/sessions/') == 84 and _items(page) == {}
    assert 'href="/staff/patients/p0-0">Pat0x0 Doe</a>' in page
    assert "all read" in page  # the call list is not counted as unread
    # "Acknowledge all for this day" acknowledges that day's 28 and only those.
    day_form = page.split('data-key="2037-12-01"')[1].split("</details>")[0]
    picked = re.findall(r'name="task" value="(\d+:\d+)"', day_form)
    assert len(picked) == 28
    response = admin_client.post("/staff/inbox/bulk-ack", {"task": picked})  # type: ignore[dict-item]
    assert response.headers["location"] == "/staff/inbox?bulk=28"
    page = admin_client.client.get("/staff/inbox").text
    assert re.findall(r'class="day-group" data-key="([\d-]+)"', page) == [
        "2037-12-02",
        "2037-12-03",
    ]
    # "Confirmed by phone" goes back to the inbox and closes that visit's flag.
    confirm = admin_client.post("/staff/sessions/s1-0/confirm", {"next": "/staff/inbox"})
    assert confirm.headers["location"] == "/staff/inbox"
    assert (
        "Visits on Wednesday, December 2 not confirmed: 27"
        in admin_client.client.get("/staff/inbox").text
    )


def test_spanish_words(admin_client: SignedIn, factory: sessionmaker[Session]) -> None:
    _patients(factory)
    _task(factory, "crisis", "p-cara", category="suicide risk")
    _task(factory, "free_text", "p-ben")
    _unconfirmed(factory, [datetime(2037, 12, 1, 8, 0, tzinfo=NY)], 2)
    es = {"Accept-Language": "es"}
    page = admin_client.client.get("/staff/inbox", headers=es).text
    for words in (
        "<title>(1) Bandeja de entrada · Lakeside Clinic</title>",
        "Posible crisis",
        "Mensaje de un paciente",
        "Sin leer",
        "Solo urgentes",
        "Citas del martes, 1 de diciembre sin confirmar: 2",
        "Confirmada por teléfono",
        "Dar por vistas todas las de este día",
        "2 sin leer",
    ):
        assert words in page, words
    for english in ("Unread", "Urgent only", "Visits on", "Confirmed by phone", "Select an item"):
        assert english not in page, english
    crisis = _items(page)
    selected = admin_client.client.get(f"/staff/inbox?task={min(crisis)}", headers=es).text
    assert "¿Por qué se marcó?" in selected and "riesgo de suicidio" in selected
    poll = admin_client.client.get(
        "/staff/inbox/updates", headers={**es, "Accept": "application/json"}
    ).json()
    assert poll["count_text"] == "1 sin leer" and "Posible crisis · Cara Lind" in [
        u["text"] for u in poll["urgent"]
    ]


def test_a_crisis_reply_shows_the_patient_not_codes(
    runtime: Runtime, admin_client: SignedIn, factory: sessionmaker[Session]
) -> None:
    _patients(factory)
    cursor = _updates(admin_client)["cursor"]
    receive(
        factory,
        runtime.settings,
        channel="sms",
        from_address="+14105550123",
        body="i just want it all to end tonight",
        provider_message_id="SM-live-1",
    )
    data = _updates(admin_client, since=cursor)
    assert [n["text"] for n in data["new"]] == ["Possible crisis · Ana Rivera"]
    task_id = data["new"][0]["id"]
    page = admin_client.client.get(f"/staff/inbox?task={task_id}").text
    listed = page.split(f'data-id="{task_id}"')[1].split("</li>")[0]
    assert "Ana Rivera" in listed and "p-ana" not in listed
    assert "Suicide risk" not in listed  # the finding is under "Why was this flagged?"
    why = page.split('<details class="why">')[1].split("</details>")[0]
    assert "Why was this flagged?" in why and "suicide risk" in why
    # An urgent item needs its note, in bulk or not.
    assert admin_client.post(f"/staff/inbox/{task_id}/ack", {"note": " "}).status_code == 400
    done = admin_client.post(
        f"/staff/inbox/{task_id}/ack",
        {"note": "called, safe", "seen": "1", "next": "/staff/inbox?urgent=1"},
    )
    assert done.headers["location"] == "/staff/inbox?urgent=1"
