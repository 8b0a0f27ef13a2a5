"""Inbound-to-page latency: webhook received -> on-call alert handed to the provider
(docs/design.md section 10: inbound-to-page p99 <= 5 s, with the default pass interval).

The real daemon (``reminders run``: the passes and the web server, default
``REMINDERS_PASS_INTERVAL_SECONDS``, dry-run providers, a Twilio auth token and account SID
set, one on-call phone and one on-call email, a free ``REMINDERS_HTTP_PORT``) runs on a fresh
SQLite file holding 60 patients (50 for ``--quick``) with phones and SMS consent. Once its
``/healthz`` answers, 60 signed inbound SMS (10 with ``--quick``) arrive 0.5-1 s apart (seeded
jitter), each a crisis text from a different patient's number, each request on its own thread
(signed the way Twilio's ``RequestValidator`` signs them, a 15 s timeout like Twilio's). The
wall-clock time just before each request is recorded.

An inbound message is joined to its pages through the database: ``inbound_messages.task_id``
(its inbox item) = the ``task_id`` in an alert's ``messages.data``; the alert's dry-run line
(``kind`` "alert", matched by ``message_id``) carries ``sent_at``, the moment the provider was
called. Reported, per inbound message:

* **page latency**: the first alert line's ``sent_at`` (SMS or email, whichever went first)
  minus the moment the webhook request was sent, also per channel;
* the split: request sent -> alert row written (``messages.created_at``, during the webhook's
  processing) and alert row written -> handed to the provider (waiting for a dispatch pass);
* the crisis reply to the patient (the ``reply`` line), for reference;
* the webhook's own response time, its non-200 answers, messages not classified ``crisis``,
  and messages that produced no alert (target 0).

When every message has paged (or 60 s after the last request) the daemon gets SIGTERM.

    .venv/bin/python bench/page_latency.py [--quick] [--messages N]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _common import (
    bench_daemon,
    bench_settings,
    delay_stats,
    free_port,
    fresh_sqlite,
    insert_chunked,
    insert_locations,
    loadavg,
    machine_info,
    patient_row,
    read_jsonl,
    report,
    seed_policy_fingerprint,
    verdict,
)
from sqlalchemy import Engine, select
from twilio.request_validator import RequestValidator

from reminders.db.engine import make_session_factory
from reminders.db.models import InboundMessage, Message, Patient, StaffTask
from reminders.planning.policy import load_policy

TARGET_P99_S = 5.0
SMS_PATH = "/webhooks/twilio/sms"
TWILIO_TIMEOUT_S = 15.0
GAP_S = (0.5, 1.0)  # between two inbound messages, uniform
SETTLE_S = 60.0  # after the last request, how long to wait for the last pages
ONCALL_PHONE = "+15555550100"
ONCALL_EMAIL = "oncall@example.org"
# All read as "crisis" (tier crisis: paged at once) by the built-in risk screen.
CRISIS_TEXTS = [
    "I took all my pills, I'm sorry",
    "I want to kill myself tonight",
    "i cant go on anymore, i have the pills ready",
    "Took the whole bottle of my meds. sorry for everything",
    "I don't want to be alive anymore",
    "I'm going to end it all tonight",
    "Quiero morir, ya no puedo más",
]


def seed(engine: Engine, patients: int) -> list[str]:
    """Patients with phones and SMS consent, not due for planning; their numbers."""
    insert_locations(engine)
    rng = random.Random(7)
    rows = [
        patient_row(i, rng, needs_plan=False, sms_consent=True, email_consent=True)
        for i in range(patients)
    ]
    insert_chunked(engine, Patient.__table__, rows)
    return [str(r["phone"]) for r in rows]


@dataclass
class Sent:
    sid: str
    sent_at: datetime  # wall clock, just before the request
    response_s: float | None = None  # None: no answer (timeout, connection error)
    status: int = 0


@dataclass
class Inbound:
    """Signed inbound SMS, one request per thread."""

    base: str
    token: str
    account: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.url = self.base + SMS_PATH
        self.validator = RequestValidator(self.token)
        self.client = httpx.Client(timeout=TWILIO_TIMEOUT_S)

    def send_one(self, sender: str, body: str) -> None:
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "SmsSid": "",
            "AccountSid": self.account,
            "From": sender,
            "To": "+14105550000",
            "Body": body,
            "NumMedia": "0",
        }
        params["SmsSid"] = params["MessageSid"]
        signature = self.validator.compute_signature(self.url, params)
        record = Sent(params["MessageSid"], datetime.now(UTC))
        start = time.perf_counter()
        try:
            response = self.client.post(
                self.url, data=params, headers={"X-Twilio-Signature": signature}
            )
            record.response_s, record.status = time.perf_counter() - start, response.status_code
        except httpx.HTTPError:
            record.status = -1
        with self.lock:
            self.sent.append(record)


@dataclass
class Joined:
    """What the database and the dry-run files say about each inbound message (by MessageSid)."""

    classification: dict[str, str | None]
    first_alert: dict[str, datetime]  # the first alert line, any channel
    first_alert_by_channel: dict[str, dict[str, datetime]]
    alert_queued: dict[str, datetime]  # the first alert row's created_at
    reply: dict[str, datetime]  # the reply line to the patient
    alert_lines: int


def join(engine: Engine, dry: Path) -> Joined:
    with make_session_factory(engine)() as db:
        inbound = db.execute(
            select(
                InboundMessage.id,
                InboundMessage.provider_message_id,
                InboundMessage.classification,
                InboundMessage.task_id,
            )
        ).all()
        # The item an inbound message opened names it too (staff_tasks.inbound_id).
        opened = dict(
            db.execute(
                select(StaffTask.inbound_id, StaffTask.id).where(StaffTask.inbound_id.is_not(None))
            ).all()
        )
        outbox = db.execute(
            select(Message.id, Message.kind, Message.channel, Message.data, Message.created_at)
            .where(Message.kind.in_(("alert", "reply")))
        ).all()  # fmt: skip
    sid_by_task: dict[int, str] = {}
    sid_by_inbound: dict[int, str] = {}
    classification: dict[str, str | None] = {}
    for row in inbound:
        sid = str(row.provider_message_id)
        classification[sid] = row.classification
        sid_by_inbound[row.id] = sid
        task_id = row.task_id if row.task_id is not None else opened.get(row.id)
        if task_id is not None:
            sid_by_task.setdefault(task_id, sid)
    sid_by_message: dict[int, str] = {}
    alert_queued: dict[str, datetime] = {}
    for m in outbox:
        data = m.data or {}
        owner = (
            sid_by_task.get(data.get("task_id", -1))
            if m.kind == "alert"
            else sid_by_inbound.get(data.get("inbound_id", -1))
        )
        if owner is None:
            continue
        sid_by_message[m.id] = owner
        if m.kind == "alert" and (owner not in alert_queued or m.created_at < alert_queued[owner]):
            alert_queued[owner] = m.created_at
    first: dict[str, datetime] = {}
    by_channel: dict[str, dict[str, datetime]] = {"sms": {}, "email": {}}
    reply: dict[str, datetime] = {}
    alert_lines = 0
    for rec in read_jsonl(dry):
        found = sid_by_message.get(rec["message_id"])
        if found is None:
            continue
        at = datetime.fromisoformat(rec["sent_at"])
        if rec["kind"] == "alert":
            alert_lines += 1
            first[found] = min(at, first.get(found, at))
            channel = by_channel.setdefault(rec["channel"], {})
            channel[found] = min(at, channel.get(found, at))
        elif rec["kind"] == "reply":
            reply[found] = min(at, reply.get(found, at))
    return Joined(classification, first, by_channel, alert_queued, reply, alert_lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--messages", type=int, default=None, help="inbound crisis texts to send")
    args = parser.parse_args(argv)
    count = args.messages or (10 if args.quick else 60)
    print("machine:", machine_info(), flush=True)

    with bench_daemon("page") as daemon:
        work = daemon.work
        db_path = work / "page.db"
        dry = work / "dry"
        engine = fresh_sqlite(db_path)
        settings = bench_settings()
        seed_policy_fingerprint(engine, load_policy(settings.policy_path))
        phones = seed(engine, max(50, count))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        token, account = secrets.token_hex(16), "AC" + secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env.update(
            {
                "REMINDERS_DATABASE_URL": f"sqlite:///{db_path}",
                "REMINDERS_DRYRUN_DIR": str(dry),
                "REMINDERS_HTTP_PORT": str(port),
                "REMINDERS_PUBLIC_URL": base,
                "REMINDERS_SECRET_KEY": secrets.token_urlsafe(32),
                "REMINDERS_TWILIO_AUTH_TOKEN": token,
                "REMINDERS_TWILIO_ACCOUNT_SID": account,
                "REMINDERS_ONCALL_PHONES": ONCALL_PHONE,
                "REMINDERS_ONCALL_EMAILS": ONCALL_EMAIL,
            }
        )
        proc = daemon.start(env, port)
        print(
            f"daemon up on port {port} (default pass interval {settings.pass_interval_seconds} s); "
            f"{len(phones)} patients; sending {count} signed crisis texts "
            f"{GAP_S[0]:g}-{GAP_S[1]:g} s apart",
            flush=True,
        )

        load = loadavg()
        rng = random.Random(11)
        inbound = Inbound(base, token, account)
        began = time.perf_counter()
        at = 0.0
        with ThreadPoolExecutor(max_workers=32) as pool:
            for n in range(count):
                delay = began + at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(inbound.send_one, phones[n], CRISIS_TEXTS[n % len(CRISIS_TEXTS)])
                at += rng.uniform(*GAP_S)
        inbound.client.close()
        window = time.perf_counter() - began

        deadline = time.time() + SETTLE_S
        while True:
            joined = join(engine, dry)
            if all(s.sid in joined.first_alert for s in inbound.sent) or time.time() > deadline:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode} during the run")
            time.sleep(0.5)
        daemon.stop()
        joined = join(engine, dry)

        sent_at = {s.sid: s.sent_at for s in inbound.sent}

        def since_sent(times: dict[str, datetime]) -> list[float]:
            return [
                (t - sent_at[sid]).total_seconds() for sid, t in times.items() if sid in sent_at
            ]

        page = since_sent(joined.first_alert)
        queued = since_sent(joined.alert_queued)
        handed = [
            (t - joined.alert_queued[sid]).total_seconds()
            for sid, t in joined.first_alert.items()
            if sid in joined.alert_queued and sid in sent_at
        ]
        no_alert = [s.sid for s in inbound.sent if s.sid not in joined.first_alert]
        not_crisis = sorted(
            f"{sid}:{cls}" for sid, cls in joined.classification.items() if cls != "crisis"
        )
        answers: dict[str, int] = {}
        for s in inbound.sent:
            answers[str(s.status)] = answers.get(str(s.status), 0) + 1
        responses = [s.response_s for s in inbound.sent if s.response_s is not None]
        figures: dict[str, Any] = {
            "inbound_sent": len(inbound.sent),
            "patients": len(phones),
            "window_s": round(window, 1),
            "pass_interval_s": settings.pass_interval_seconds,
            "loadavg_before": load,
            "answers": answers,
            "webhook_response_s": delay_stats(responses),
            "page_latency_s": delay_stats(page),
            "page_latency_sms_s": delay_stats(
                since_sent(joined.first_alert_by_channel.get("sms", {}))
            ),
            "page_latency_email_s": delay_stats(
                since_sent(joined.first_alert_by_channel.get("email", {}))
            ),
            "sent_to_alert_queued_s": delay_stats(queued),
            "alert_queued_to_provider_s": delay_stats(handed),
            "crisis_reply_latency_s": delay_stats(since_sent(joined.reply)),
            "alert_lines": joined.alert_lines,
            "not_crisis": not_crisis,
            "no_alert": len(no_alert),
        }
        figures["verdict"] = verdict(figures["page_latency_s"]["p99"], TARGET_P99_S, at_most=True)
        figures["no_alert_verdict"] = (
            "MET (target 0)" if not no_alert else f"MISSED ({len(no_alert)} without a page)"
        )
        print(
            f"  sent {len(inbound.sent)} in {window:.1f} s; answers {answers}; "
            f"classified other than crisis: {not_crisis or 'none'}",
            flush=True,
        )
        print(f"  webhook response (s): {figures['webhook_response_s']}", flush=True)
        print(
            f"  webhook sent -> first alert handed to the provider (s): "
            f"{figures['page_latency_s']} -> p99 {figures['verdict']}",
            flush=True,
        )
        print(f"    on-call SMS only (s): {figures['page_latency_sms_s']}", flush=True)
        print(f"    on-call email only (s): {figures['page_latency_email_s']}", flush=True)
        print(f"    sent -> alert row written (s): {figures['sent_to_alert_queued_s']}", flush=True)
        print(
            f"    alert row written -> provider (s): {figures['alert_queued_to_provider_s']}",
            flush=True,
        )
        print(f"  crisis reply to the patient (s): {figures['crisis_reply_latency_s']}", flush=True)
        print(
            f"  no alert: {len(no_alert)} ({figures['no_alert_verdict']}); "
            f"{joined.alert_lines} alert lines in the dry-run files",
            flush=True,
        )
        report("page", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
