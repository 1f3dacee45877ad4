"""What a conversation step may ask of the outside world: the core's ports.

The runtime hands the engine an implementation bound to the step's own transaction (storage
implements these), so what a port writes commits together with the conversation state, or not at
all. The engine itself still does no I/O: it calls these methods and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from conversations.identity import Actor


class PortRefusal(Exception):
    """The outside world said no (a wrong invitation code, say); str() is for the user."""


@dataclass(frozen=True, slots=True)
class NominationView:
    """A nomination as a list shows it: no personal data beyond a masked name."""

    id: int
    campaign: str
    category: str
    status: str
    tracking_code: str
    nominee: str  # masked: 张*三, or the unit name for collectives
    region: str
    unit_id: int


class Ports(Protocol):
    """Reads and writes a conversation step may make, inside its transaction."""

    def actor(self) -> Actor | None:
        """The caller's binding (clerk or official), or None for an applicant."""

    def region_name(self, code: str) -> str:
        """The name of an administrative region (长春市朝阳区), or the code if unknown."""

    def bind(self, code: str) -> Actor:
        """Bind the caller to the invitation's role; raises PortRefusal with the reason."""

    def track(self, code: str) -> NominationView | None:
        """Subscribe the caller to a nomination's status changes; None if no such code."""

    def tracked(self) -> list[NominationView]:
        """The nominations the caller follows."""

    def unit_nominations(self, unit_id: int) -> list[NominationView]:
        """A unit's nominations, oldest first."""

    def refused(self, action: str, why: str) -> None:
        """Record a refused attempt in the audit trail (who, what, why)."""
