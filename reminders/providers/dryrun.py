"""Dry-run provider: appends one JSON line per message to ``sms.jsonl`` / ``email.jsonl``.

Its file is its record of what it was given, so it can also answer the reconcile pass's
question (:meth:`DryRunProvider.lookup`): was this message written, or not?"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from reminders.logs import event
from reminders.providers.base import OutgoingMessage, Provider, SentRequest

log = logging.getLogger(__name__)
_file_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class DryRunProvider(Provider):
    name: ClassVar[str] = "dryrun"
    lookup_supported: ClassVar[bool] = True

    def __init__(self, *, channel: str, directory: Path, rate_per_second: float = 0.0) -> None:
        super().__init__(rate_per_second=rate_per_second)
        self.channel = channel  # type: ignore[misc]
        self.path = Path(directory) / f"{channel}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locks_guard:
            self._lock = _file_locks.setdefault(self.path.resolve(), threading.Lock())

    def send(self, message: OutgoingMessage) -> str:
        provider_id = f"dryrun-{message.channel}-{message.message_id}"
        record = {
            "message_id": message.message_id,
            "provider_message_id": provider_id,
            "channel": message.channel,
            "to": message.to,
            "subject": message.subject,
            "body": message.body,
            "html": message.html,
            "rule": message.rule,
            "kind": message.kind,
            "session_id": message.session_id,
            "patient_id": message.patient_id,
            "attachments": [a.filename for a in message.attachments],
            "sent_at": datetime.now(UTC).isoformat(),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        # One write call per line under a lock, opened in append mode: lines from several
        # threads (and processes, O_APPEND) never interleave.
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
        event(
            log, "dry-run send", id=message.message_id, channel=message.channel, rule=message.rule
        )
        return provider_id

    def lookup(self, sent: SentRequest) -> list[str] | None:
        """The line written for this outbox id, if any (a scan of the file: in-doubt rows are
        rare, and the dry-run provider is for demos and tests)."""
        marker = f'"message_id": {sent.message_id},'
        found: list[str] = []
        try:
            with self._lock, open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    if marker not in line:
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash was never a whole send
                    if record.get("message_id") == sent.message_id:
                        found.append(str(record.get("provider_message_id") or ""))
        except FileNotFoundError:
            return []
        except OSError:
            return None
        return found[::-1]
