"""What a dispatch pass did: one count per outcome (the ``tick`` summary, benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0
    retrying: int = 0
    in_doubt: int = 0
    lost_lease: int = 0
    interrupted: int = 0  # the database failed before the provider call: still planned

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def merge(self, other: DispatchReport) -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        return sum(vars(self).values())

    def line(self) -> str:
        return (
            f"sent {self.sent}, failed {self.failed}, skipped {self.skipped}, cancelled {self.cancelled}, "
            f"deferred {self.deferred}, retrying {self.retrying}"
            + (f", in doubt {self.in_doubt}" if self.in_doubt else "")
            + (f", interrupted {self.interrupted}" if self.interrupted else "")
        )
