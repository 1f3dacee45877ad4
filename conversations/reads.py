"""What a step may read of the outside world, and what it is given: `Reads` and `Context`.

A step is `resume(session, inbound, reads, ctx) -> Step(session, replies, effects)`. `Reads` is
read-only (storage implements it over the step's transaction, so it sees what was committed
before the step, never half a step); the core wraps it in `Memo`, so one step loads one
nomination once however many screens ask for it. `Context` carries the clock and the
generators (tracking codes), injected so goldens stay deterministic.

What a step wants written comes back as effects (conversations.effects). When the writer refuses
one (another official moved the nomination first, the invitation was used meanwhile) it raises a
`Refusal`; the core turns it into the user's answer (`Assistant.refused`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from conversations.campaign import Window
from conversations.crossrules import NominationFacts
from conversations.effects import Effect
from conversations.identity import Actor, Level


class PortRefusal(Exception):
    """A read the outside world cannot answer (a year with no published calendar); str() is
    for the user."""


class RefusalKind(StrEnum):
    STALE = "stale"  # the nomination moved since the core saw it
    NOT_ALLOWED = "not_allowed"  # decide() on the row as it is now says no
    NOT_YOURS = "not_yours"  # the nomination is not of the caller's unit / not visible
    BIND = "bind"  # the invitation is no longer valid (detail: invalid|expired|used|revoked)


class Refusal(Exception):
    """The writer refused an effect; nothing of the step was written. Typed, no user text."""

    def __init__(self, kind: RefusalKind, *, nomination: int | None = None, detail: str = ""):
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.nomination = nomination
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Context:
    """The step's time and generators."""

    now: dt.datetime
    new_code: Callable[[], str]  # a fresh tracking code

    @property
    def today(self) -> dt.date:
        return self.now.date()


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
    version: int = 1


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """One stored file of a nomination (the bytes stay in the file store)."""

    id: int
    material: str
    filename: str
    kind: str
    size: int


@dataclass(frozen=True, slots=True)
class MoveRecord:
    """One move of the audit trail: who (role and level), when, from and to, why."""

    action: str
    role: str
    at: dt.datetime
    from_status: str | None
    to_status: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class NominationDetail:
    """One nomination as stored; `policy.may_see` decides who may open it."""

    view: NominationView
    kind: str  # individual | collective
    fields: dict[str, Any]  # form values (shown masked unless the reader is an official)
    facts: dict[str, Any]  # eligibility answers
    attachments: list[AttachmentView]
    verdict: str | None  # the eligibility verdict the draft was filed under
    opinions: list[str]  # departments whose opinion the clerk has recorded
    publicity: tuple[dt.date, dt.date] | None
    county_division: bool = False
    moves: list[MoveRecord] = field(default_factory=list)  # oldest first
    consent_at: dt.datetime | None = None  # when the nominee consented in chat (PIPL), if so

    @property
    def uploaded(self) -> list[str]:
        return sorted({a.material for a in self.attachments})

    @property
    def last_return(self) -> MoveRecord | None:
        """The move that sent it back to the unit, if that is where it stands."""
        back = [m for m in self.moves if m.reason is not None and m.to_status == self.view.status]
        return back[-1] if back else None


@dataclass(frozen=True, slots=True)
class InviteView:
    """An invitation as `/bind` needs it; `state` is valid, mine (bound me already), used,
    revoked or expired."""

    state: str
    role: str
    region: str
    level: str | None
    unit_id: int | None


@dataclass(frozen=True, slots=True)
class ReminderView:
    """A reminder the caller will receive: when (aware), what, of which kind and campaign."""

    due: dt.datetime
    title: str
    kind: str  # window | deadline | digest
    campaign: str


@dataclass(frozen=True, slots=True)
class MyDataView:
    """What the caller has told the bot that `/forget` deletes, counted."""

    selfchecks: int  # completed self-check results
    reminder_settings: int  # reminder preferences they set
    tracked: int  # nominations they follow


@dataclass(frozen=True, slots=True)
class RegionEntry:
    """A nomination as an office's overview (`/region`) lists and searches it."""

    view: NominationView  # what the list shows (the name masked, as every list shows it)
    name: str  # the nominee's name in full, or the unit's for a collective: matched, not shown
    unit: str  # the nominating unit's registered name


@dataclass(frozen=True, slots=True)
class QuotaView:
    region: str
    places: int


@dataclass(frozen=True, slots=True)
class CodeHolder:
    """A unit a unified social credit code already stands for (Reads.code_holders): a
    registered unit (`campaign` None), or the nominee of a nomination of a unit form."""

    name: str  # as registered, or as the nomination's form names its nominee
    unit_id: int  # the registered unit; for a nomination, the unit that filed it
    campaign: str | None = None
    tracking_code: str | None = None
    active: bool = True  # a nomination whose status still holds its nominee (lifecycle counts)


class Reads(Protocol):
    """Read-only, on the step's transaction."""

    def actor(self) -> Actor | None:
        """The caller's binding (clerk or official), or None for an applicant."""

    def region_name(self, code: str) -> str:
        """The name of an administrative region (长春市朝阳区), or the code if unknown."""

    def unit_title(self, unit_id: int) -> str | None:
        """The registered name of a unit (吉林某某有限公司), None if there is no such unit."""

    def contains(self, outer: str, inner: str) -> bool:
        """Whether region `inner` lies in `outer`, following `reports_to`."""

    def entry_level(self, region: str) -> Level:
        """The level of the office a unit of `region` reports to."""

    def offices(self, region: str) -> frozenset[str]:
        """The regions whose offices a nomination of `region` reaches."""

    def invite(self, code: str) -> InviteView | None:
        """The invitation `code` names, None if none does (or the code is malformed)."""

    def recent_refusals(self, action: str, since: dt.datetime) -> int:
        """How many times the caller was refused `action` since `since`."""

    def nomination(self, key: int | str) -> NominationDetail | None:
        """A nomination by id or tracking code, whoever asks (the core decides who may)."""

    def follows(self, nomination_id: int) -> bool:
        """Whether the caller follows the nomination."""

    def tracked(self) -> list[NominationView]:
        """The nominations the caller follows."""

    def unit_nominations(self, unit_id: int) -> list[NominationView]:
        """A unit's nominations, oldest first."""

    def in_statuses(self, statuses: tuple[str, ...], region: str) -> list[NominationView]:
        """Nominations in `statuses` whose region code shares `region`'s province, oldest move
        first (the core keeps those of the official's region)."""

    def region_nominations(self, campaign: str, region: str) -> list[RegionEntry]:
        """Every nomination of `campaign` (every status) from `region` and the regions under
        it, oldest first."""

    def ranking(self, campaign: str) -> dict[int, int]:
        """The order the caller's scope keeps for `campaign` (/rank): nomination id -> position,
        1 the best; empty when nothing is ranked or the caller ranks nothing (an applicant)."""

    def latest_selfcheck(self, campaign: str, category: str) -> dict[str, Any] | None:
        """The answers of the caller's latest completed self-check for this category."""

    def code_holders(self, code: str) -> list[CodeHolder]:
        """Who already holds a unified social credit code: the unit registered under it, then
        the nominations (of every campaign) whose unit form gives it, oldest first."""

    def campaign_facts(self, campaign: str) -> list[NominationFacts]:
        """Every nomination of a campaign as the rules across nominations see it (region: the
        unit's own)."""

    def quotas(self, campaign: str, category: str) -> list[QuotaView]:
        """The quotas set for a category, by region."""

    def workday_end(self, start: dt.date, workdays: int) -> dt.date:
        """The last day of a period of `workdays` working days from `start` (counted)."""

    def windows(self, campaign: str) -> list[Window]:
        """The campaign's windows as in force (an admin may have moved one)."""

    def my_reminders(self, limit: int) -> list[ReminderView]:
        """The caller's next pending reminders, soonest first."""

    def reminder_settings(self, campaign: str) -> dict[str, bool]:
        """What the caller receives of a campaign, by kind (window, deadline, digest)."""

    def my_data(self) -> MyDataView:
        """The caller's own data that `/forget` deletes, counted."""


class Memo:
    """`Reads`, each answer kept for the rest of the step (reads see the step's start)."""

    def __init__(self, reads: Reads) -> None:
        self._reads = reads
        self._kept: dict[tuple[Any, ...], Any] = {}

    def _get(self, name: str, *args: Any) -> Any:
        key = (name, *args)
        if key not in self._kept:
            self._kept[key] = getattr(self._reads, name)(*args)
        return self._kept[key]

    def actor(self) -> Actor | None:
        out: Actor | None = self._get("actor")
        return out

    def region_name(self, code: str) -> str:
        out: str = self._get("region_name", code)
        return out

    def unit_title(self, unit_id: int) -> str | None:
        out: str | None = self._get("unit_title", unit_id)
        return out

    def contains(self, outer: str, inner: str) -> bool:
        out: bool = self._get("contains", outer, inner)
        return out

    def entry_level(self, region: str) -> Level:
        out: Level = self._get("entry_level", region)
        return out

    def offices(self, region: str) -> frozenset[str]:
        out: frozenset[str] = self._get("offices", region)
        return out

    def invite(self, code: str) -> InviteView | None:
        out: InviteView | None = self._get("invite", code)
        return out

    def recent_refusals(self, action: str, since: dt.datetime) -> int:
        out: int = self._get("recent_refusals", action, since)
        return out

    def nomination(self, key: int | str) -> NominationDetail | None:
        out: NominationDetail | None = self._get("nomination", key)
        if out is not None:  # by id or by code: the same load
            self._kept.setdefault(("nomination", out.view.id), out)
            self._kept.setdefault(("nomination", out.view.tracking_code), out)
        return out

    def follows(self, nomination_id: int) -> bool:
        out: bool = self._get("follows", nomination_id)
        return out

    def tracked(self) -> list[NominationView]:
        out: list[NominationView] = self._get("tracked")
        return out

    def unit_nominations(self, unit_id: int) -> list[NominationView]:
        out: list[NominationView] = self._get("unit_nominations", unit_id)
        return out

    def in_statuses(self, statuses: tuple[str, ...], region: str) -> list[NominationView]:
        out: list[NominationView] = self._get("in_statuses", statuses, region)
        return out

    def region_nominations(self, campaign: str, region: str) -> list[RegionEntry]:
        out: list[RegionEntry] = self._get("region_nominations", campaign, region)
        return out

    def ranking(self, campaign: str) -> dict[int, int]:
        out: dict[int, int] = self._get("ranking", campaign)
        return out

    def latest_selfcheck(self, campaign: str, category: str) -> dict[str, Any] | None:
        out: dict[str, Any] | None = self._get("latest_selfcheck", campaign, category)
        return out

    def code_holders(self, code: str) -> list[CodeHolder]:
        out: list[CodeHolder] = self._get("code_holders", code)
        return out

    def campaign_facts(self, campaign: str) -> list[NominationFacts]:
        out: list[NominationFacts] = self._get("campaign_facts", campaign)
        return out

    def quotas(self, campaign: str, category: str) -> list[QuotaView]:
        out: list[QuotaView] = self._get("quotas", campaign, category)
        return out

    def workday_end(self, start: dt.date, workdays: int) -> dt.date:
        out: dt.date = self._get("workday_end", start, workdays)
        return out

    def windows(self, campaign: str) -> list[Window]:
        out: list[Window] = self._get("windows", campaign)
        return out

    def my_reminders(self, limit: int) -> list[ReminderView]:
        out: list[ReminderView] = self._get("my_reminders", limit)
        return out

    def reminder_settings(self, campaign: str) -> dict[str, bool]:
        out: dict[str, bool] = self._get("reminder_settings", campaign)
        return out

    def my_data(self) -> MyDataView:
        out: MyDataView = self._get("my_data")
        return out


@dataclass(slots=True)
class Env:
    """One step's reads (memoised), context, and the effects the step has asked for so far."""

    reads: Memo
    ctx: Context
    effects: list[Effect] = field(default_factory=list)

    @classmethod
    def of(cls, reads: Reads, ctx: Context) -> Env:
        return cls(reads if isinstance(reads, Memo) else Memo(reads), ctx)

    def actor(self) -> Actor | None:
        return self.reads.actor()

    def add(self, *effects: Effect) -> None:
        self.effects.extend(effects)
