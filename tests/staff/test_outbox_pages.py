"""The outbox page: filters (a patient by phone in any format, status, channel, dates), counts
and pages with the total, what is coming up in the order it goes out, the text of a sent
message, and words instead of codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.models import Message, Patient
from tests.staff.conftest import SignedIn

NY = ZoneInfo("America/New_York")
_ROW = re.compile(r'<tr class="st-(\w+)">.*?href="/staff/outbox/(\d+)"', re.DOTALL)


def rows(html: str) -> list[tuple[str, int]]:
    """(status, message id) of each row, in page order."""
    return [(status, int(mid)) for status, mid in _ROW.findall(html)]


@pytest.fixture
def outbox(factory: sessionmaker[Session]) -> dict[str, list[int]]:
    """Ana: 120 day-before texts, 70 coming up (one an hour from an hour from now) and 50
    gone (sent, one a day back); Ben: a failed text, a sent email and one coming up."""
    now = datetime.now(UTC)
    ids: dict[str, list[int]] = {"upcoming": [], "past": [], "ben": []}
    with factory() as db:
        db.add_all(
            [
                Patient(id="p-ana", first_name="Ana", last_name="Rivera", phone="+14105550123"),
                Patient(
                    id="p-ben",
                    first_name="Ben",
                    last_name="Okafor",
                    phone="+14105550124",
                    email="ben@example.com",
                ),
            ]
        )
        db.flush()

        def add(key: str, patient: str, due: datetime, status: str, **extra: object) -> int:
            values: dict[str, object] = {
                "rule": "infusion-day-before-sms",
                "kind": "reminder",
                "channel": "sms",
                "template": "day_before",
                **extra,
            }
            msg = Message(dedupe_key=key, patient_id=patient, due_at=due, status=status, **values)
            db.add(msg)
            db.flush()
            return msg.id

        # Inserted out of order, so the page's order is the query's, not the ids'.
        for n in reversed(range(70)):
            ids["upcoming"].append(add(f"up{n}", "p-ana", now + timedelta(hours=n + 1), "planned"))
        for n in range(50):
            due = now - timedelta(days=n + 1)
            ids["past"].append(
                add(f"past{n}", "p-ana", due, "sent", sent_at=due, body=f"Old reminder {n}")
            )
        ids["ben"] += [
            add(
                "ben-failed",
                "p-ben",
                now - timedelta(hours=5),
                "failed",
                reason="provider_error 30003: unreachable handset",
                error_code="30003",
            ),
            add(
                "ben-email",
                "p-ben",
                datetime(2030, 6, 3, 10, 0, tzinfo=NY),
                "skipped",
                rule="infusion-prep-email",
                channel="email",
                template="prep_full",
                reason="no_email_consent",
            ),
            add(
                "ben-sent",
                "p-ben",
                now - timedelta(days=2, hours=1),
                "delivered",
                rule="infusion-prep-email",
                channel="email",
                template="prep_full",
                subject="Getting ready for your visit",
                body="Hi Ben,\nplease eat nothing after 03:00.",
                sent_at=now - timedelta(days=2),
                delivered_at=now - timedelta(days=2),
            ),
        ]
        db.commit()
    return ids


def test_upcoming_first_soonest_first_then_the_past_newest_first(
    admin_client: SignedIn, outbox: dict[str, list[int]]
) -> None:
    page = admin_client.client.get("/staff/outbox").text
    # Coming up: Ana's 70 and Ben's email in 2030, soonest first, paged by 50.
    assert "71 messages" in page and "Page 1 of 2" in page
    shown = rows(page)
    assert len(shown) == 50 and {status for status, _ in shown} == {"planned"}
    soonest = sorted(outbox["upcoming"], reverse=True)  # inserted latest-due first
    assert [mid for _, mid in shown] == soonest[:50]
    second = admin_client.client.get("/staff/outbox?when=upcoming&page=2").text
    assert [mid for _, mid in rows(second)] == [*soonest[50:], outbox["ben"][1]]
    assert "showing 51–71" in second and "Page 2 of 2" in second
    # The past: newest first.
    past = admin_client.client.get("/staff/outbox?when=past").text
    assert "52 messages" in past
    assert [mid for _, mid in rows(past)][:4] == [
        outbox["ben"][0],  # 5 hours ago
        outbox["past"][0],  # a day ago
        outbox["past"][1],  # two days ago
        outbox["ben"][2],  # two days and an hour ago
    ]


def test_counts_and_pages_never_cut_silently(
    admin_client: SignedIn, outbox: dict[str, list[int]]
) -> None:
    client = admin_client.client
    everything = client.get("/staff/outbox?when=all&patient=Ana").text
    assert "120 messages" in everything and "Page 1 of 3" in everything
    assert 'rel="next"' in everything and 'rel="prev"' not in everything
    last = client.get("/staff/outbox?when=all&patient=Ana&page=3").text
    assert len(rows(last)) == 20 and "showing 101–120" in last and 'rel="next"' not in last
    # The links keep the filters.
    assert "patient=Ana&amp;when=all&amp;page=2" in last
    seen = {
        mid
        for n in (1, 2, 3)
        for _, mid in rows(client.get(f"/staff/outbox?when=all&patient=Ana&page={n}").text)
    }
    assert seen == set(outbox["upcoming"]) | set(outbox["past"])
    # Past the last page: the last page.
    assert len(rows(client.get("/staff/outbox?when=all&patient=Ana&page=99").text)) == 20


@pytest.mark.parametrize(
    "query", ["(410) 555-0124", "410.555.0124", "+1 410 555 0124", "4105550124", "0124", "okafor"]
)
def test_a_patient_by_phone_in_any_format_or_by_name(
    admin_client: SignedIn, outbox: dict[str, list[int]], query: str
) -> None:
    page = admin_client.client.get("/staff/outbox", params={"patient": query, "when": "all"})
    assert "3 messages" in page.text
    assert sorted(mid for _, mid in rows(page.text)) == sorted(outbox["ben"])


def test_status_channel_and_dates(admin_client: SignedIn, outbox: dict[str, list[int]]) -> None:
    client = admin_client.client
    failed = client.get("/staff/outbox?when=all&status=failed").text
    assert "1 message<" in failed and rows(failed) == [("failed", outbox["ben"][0])]
    email = client.get("/staff/outbox?when=all&channel=email").text
    assert sorted(mid for _, mid in rows(email)) == sorted(outbox["ben"][1:])
    # A date range (the clinic's days) looks at any time unless told otherwise.
    day = client.get("/staff/outbox?date_from=2030-06-03&date_to=2030-06-03").text
    assert rows(day) == [("skipped", outbox["ben"][1])]
    assert (
        client.get("/staff/outbox?date_from=2030-06-04&date_to=2030-06-30").text.count(
            '<tr class="st-'
        )
        == 0
    )
    yesterday = (datetime.now(NY) - timedelta(days=1)).date().isoformat()
    around = client.get(f"/staff/outbox?date_from={yesterday}&date_to={yesterday}").text
    assert len(rows(around)) >= 1
    assert all(mid in outbox["past"] + outbox["ben"] for _, mid in rows(around))


def test_words_not_codes_and_the_text_of_a_sent_message(
    admin_client: SignedIn, outbox: dict[str, list[int]]
) -> None:
    client = admin_client.client
    page = client.get("/staff/outbox?when=all&patient=Ben").text
    assert "Day-before text" in page and "Preparation email" in page
    assert '<span class="status failed">Not delivered</span>' in page
    assert "The text/email service refused it (30003: unreachable handset)" in page
    assert "The patient has not agreed to emails" in page
    assert ">Email<" in page and ">Text<" in page
    assert 'href="/staff/patients/p-ben">Ben Okafor</a>' in page
    for code in (">infusion-day-before-sms<", "no_email_consent", ">failed<", ">sms<", ">p-ben<"):
        assert code not in page, code
    # The sent email's subject and text, in the row and on its own page.
    assert "Getting ready for your visit" in page and "please eat nothing after 03:00." in page
    message = client.get(f"/staff/outbox/{outbox['ben'][2]}")
    assert message.status_code == 200
    assert '<span id="message-subject">Getting ready for your visit</span>' in message.text
    assert "Hi Ben,\nplease eat nothing after 03:00." in message.text
    assert "Delivered" in message.text and "Preparation email" in message.text
    planned = client.get(f"/staff/outbox/{outbox['upcoming'][0]}").text
    assert "Not sent yet" in planned
    missing = client.get("/staff/outbox/999999")
    assert missing.status_code == 404 and "There is no such message." in missing.text


def test_the_outbox_in_spanish(admin_client: SignedIn, outbox: dict[str, list[int]]) -> None:
    admin_client.post("/staff/account/language", {"language": "es", "next": "/staff/outbox"})
    page = admin_client.client.get("/staff/outbox?when=all&patient=Ben").text
    assert "3 mensajes" in page and "No entregado" in page and "Correo de preparación" in page
