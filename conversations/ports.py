"""What a conversation step may ask of the outside world: the core's ports.

The runtime hands the engine an implementation bound to the step's own transaction (storage
implements these), so what a port writes commits together with the conversation state, or not at
all. The engine itself still does no I/O: it calls these methods and nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from conversations.crossrules import NominationFacts
from conversations.identity import Actor, Level


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


@dataclass(frozen=True, slots=True)
class NominationDetail:
    """One nomination as the person allowed to open it sees it (the port decides who may)."""

    view: NominationView
    kind: str  # individual | collective
    fields: dict[str, Any]  # form values (shown masked unless the reader is an official)
    facts: dict[str, Any]  # eligibility answers
    uploaded: list[str]  # material keys with a file
    verdict: str | None  # the eligibility verdict the draft was filed under
    opinions: list[str]  # departments whose opinion the clerk has recorded
    publicity: tuple[dt.date, dt.date] | None
    entry_level: Level  # the level of the office the unit reports to
    offices: frozenset[str]  # the regions whose offices the nomination reaches (reports_to)


@dataclass(frozen=True, slots=True)
class RulesInputs:
    """The campaign's nominations and the quota that applies, for conversations.crossrules.

    Regions are those of the quota holders (the most specific region with a quota that
    contains the unit's region), so nominations counted against one quota compare equal.
    """

    others: list[NominationFacts]
    quota: int | None
    region: str  # the quota holder of the nomination being checked


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

    def refused(self, action: str, why: str, *, nomination_id: int | None = None) -> None:
        """Record a refused attempt in the audit trail (who, what, on which nomination, why)."""

    def latest_selfcheck(self, campaign: str, category: str) -> dict[str, Any] | None:
        """The answers of the caller's latest completed self-check for this category."""

    # ----- review ------------------------------------------------------------------------

    def queue(self, statuses: list[str]) -> list[NominationView]:
        """Nominations in `statuses` from the official's region, oldest move first."""

    def open_nomination(
        self, nomination_id: int, *, audit: bool = True
    ) -> NominationDetail | None:
        """The nomination if the caller may see it (clerk: own unit; official: own region;
        applicant: followed), else None — a refusal is audited; so is an official's read of
        full personal data when `audit`."""

    def record_opinion(self, nomination_id: int, department: str) -> None:
        """Tick off (or untick) a department consulted in the 征求意见 stage."""

    def move(
        self,
        nomination_id: int,
        *,
        expected: str,
        to_status: str,
        action: str,
        reason: str | None,
        publicity: tuple[dt.date, dt.date] | None,
        notice: str,
        next_level: str | None,
    ) -> None:
        """The move, its audit record and `notice` to the unit's clerks, the followers and the
        officials of `next_level` over the nomination's region — in one transaction."""

    # ----- filing (a clerk's drafts) ------------------------------------------------------

    def create_draft(
        self, *, campaign: str, category: str, kind: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]:
        """A new draft of the caller's unit: (id, tracking code)."""

    def save_draft(
        self, nomination_id: int, payload: Mapping[str, Any], *, county_division: bool
    ) -> None:
        """Replace a draft's answers and form values."""

    def store_attachment(
        self, nomination_id: int, *, material: str, filename: str, kind: str, data: bytes
    ) -> None:
        """Keep a checked file (sealed, by content hash) as `material` of the nomination."""

    def workday_end(self, start: dt.date, workdays: int) -> dt.date:
        """The last day of a period of `workdays` working days from `start` (counted)."""

    def rules_inputs(self, campaign: str, category: str, region: str) -> RulesInputs:
        """What the rules across nominations need for a nomination of `region`."""

    def submit(
        self,
        nomination_id: int,
        *,
        to_status: str,
        action: str,
        publicity: tuple[dt.date, dt.date] | None,
        notice: str,
    ) -> None:
        """Move a draft on: the status change, its audit record and `notice` to everyone who
        follows it, together."""
