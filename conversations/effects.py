"""What a step wants done, as values: the core returns them, one writer applies them.

A step never writes (DESIGN §5, "effects out"). It returns its new state, its replies and these
effects; the runtime hands them to the writer (storage.writer), which applies them in the step's
own transaction and re-checks what it must (a move against the row's current status and
version, a bind against the invitation) — so a stale or forged effect changes nothing.

A nomination is named by its id, or — for a draft this very conversation created, before the
writer gave it an id — by its tracking code (`NominationRef = int | str`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

NominationKey = int | str  # an id, or the tracking code of a draft created by this conversation


@dataclass(frozen=True, slots=True)
class CreateDraft:
    """A new draft of the caller's unit, under a tracking code the core generated."""

    code: str
    campaign: str
    category: str
    kind: str
    payload: dict[str, Any]

    def summary(self) -> str:
        return f"CreateDraft({self.campaign}/{self.category})"


@dataclass(frozen=True, slots=True)
class SaveDraft:
    """Replace the answers and form values of a nomination of the caller's unit."""

    nomination: NominationKey
    payload: dict[str, Any]
    county_division: bool

    def summary(self) -> str:
        return "SaveDraft()"


@dataclass(frozen=True, slots=True)
class StoreAttachment:
    """Keep a checked file (sealed, content-addressed) as `material` of the nomination."""

    nomination: NominationKey
    material: str
    filename: str
    kind: str
    data: bytes = field(repr=False)

    def summary(self) -> str:
        return f"StoreAttachment({self.material}, {self.kind})"


@dataclass(frozen=True, slots=True)
class RecordOpinion:
    """Tick off (or untick) a department consulted, on the version the clerk saw."""

    nomination: int
    department: str
    version: int

    def summary(self) -> str:
        return f"RecordOpinion({self.department})"


@dataclass(frozen=True, slots=True)
class Move:
    """A lifecycle move the core decided; the writer re-decides it against the row.

    `transition` names the lifecycle transition; `expected_status`/`expected_version` are what
    the core saw. The writer refuses (typed, see reads.Refusal) when the row has moved since, or
    when `lifecycle.decide()` on the row as it is now does not allow the move.
    """

    nomination: NominationKey
    transition: str
    expected_status: str
    expected_version: int
    to_status: str
    reason: str | None = None
    publicity: tuple[dt.date, dt.date] | None = None

    def summary(self) -> str:
        why = f", reason={self.reason}" if self.reason else ""
        return f"Move({self.expected_status} → {self.to_status}{why})"


@dataclass(frozen=True, slots=True)
class Bind:
    """Bind the caller to what the invitation grants (the writer re-checks the code)."""

    code: str

    def summary(self) -> str:
        return "Bind()"


@dataclass(frozen=True, slots=True)
class Subscribe:
    """The caller follows a nomination's status changes."""

    nomination: int

    def summary(self) -> str:
        return "Subscribe()"


@dataclass(frozen=True, slots=True)
class Audit:
    """One row of the audit trail: who (the caller), what, on which nomination, allowed or not."""

    action: str
    allowed: bool
    nomination: NominationKey | None = None
    detail: dict[str, Any] | None = None

    def summary(self) -> str:
        verb = "" if self.allowed else ", refused"
        return f"Audit({self.action}{verb})"


@dataclass(frozen=True, slots=True)
class Audience:
    """Who is told of something about one nomination (conversations.policy decides who)."""

    nomination: NominationKey
    unit: bool = False  # the clerks of the nomination's unit
    followers: bool = False  # everyone who follows it (/track)
    officials_at: str | None = None  # the officials of this level over the nomination's region
    not_the_caller: bool = True  # the caller reads the reply instead
    caller: bool = False  # the caller too, as a receipt (with not_the_caller=False)

    def summary(self) -> str:
        who = [w for w, on in (("clerk", self.unit), ("followers", self.followers)) if on]
        if self.caller:
            who.append("caller")
        if self.officials_at:
            who.append(f"officials@{self.officials_at}")
        return ", ".join(who)


@dataclass(frozen=True, slots=True)
class Notify:
    """A notification to an audience, through the outbox, once per recipient and `key`."""

    audience: Audience
    text: str
    key: str  # with the recipient, the idempotency key of each message

    def summary(self) -> str:
        return f"Notify({self.audience.summary()})"


@dataclass(frozen=True, slots=True)
class SelfCheckCompleted:
    """A verdict was given; the writer stores it as a self-check result."""

    campaign: str
    category: str
    verdict: str
    result: dict[str, Any]
    completed_at: dt.datetime

    def summary(self) -> str:
        return f"SelfCheckCompleted({self.verdict})"


@dataclass(frozen=True, slots=True)
class Scope:
    """A part of a campaign's reminder plan: all of it, or one nomination's, or one user's."""

    campaign: str
    nomination: NominationKey | None = None
    user: int | None = None  # None with `mine`: the caller

    def summary(self) -> str:
        parts = [self.campaign]
        if self.nomination is not None:
            parts.append("nomination")
        if self.user is not None:
            parts.append("user")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Replan:
    """Plan again what this step's change touches (conversations.reminders.plan, run by the
    writer on the state the step leaves, in the same transaction): stale reminders are
    superseded, new ones stored. `mine` narrows the scope to the caller."""

    scope: Scope
    mine: bool = False

    def summary(self) -> str:
        return f"Replan({self.scope.summary()}{', mine' if self.mine else ''})"


@dataclass(frozen=True, slots=True)
class SetReminders:
    """The caller turns a kind of reminders (window|deadline|digest|all) of a campaign (None:
    every campaign) on or off."""

    campaign: str | None
    kind: str
    on: bool

    def summary(self) -> str:
        return f"SetReminders({self.campaign or '*'}, {self.kind}, {'on' if self.on else 'off'})"


@dataclass(frozen=True, slots=True)
class RecordConsent:
    """The caller, holding the tracking code, gives (or revokes) the nominee's consent to the
    processing of their personal information (PIPL; conversations.consent). The writer
    re-checks it (conversations.consent.consent_refusal) and audits it."""

    nomination: int
    given: bool

    def summary(self) -> str:
        return f"RecordConsent({'given' if self.given else 'taken back'})"


@dataclass(frozen=True, slots=True)
class Forget:
    """Delete the caller's own self-check results, reminder settings and tracking
    subscriptions (`/forget`); their bindings and the nominations they filed stay."""

    def summary(self) -> str:
        return "Forget()"


@dataclass(frozen=True, slots=True)
class RequestDocuments:
    """Produce the official documents `kinds` (conversations.documents.DocKind values) of
    `campaign` for the caller's scope — their unit, or their office's region and level — and
    send them into this chat. The writer queues it as a job (storage.exports.request), which
    a document worker (bot.exports) renders outside the step and answers through the outbox."""

    campaign: str
    kinds: tuple[str, ...]

    def summary(self) -> str:
        return f"RequestDocuments({self.campaign}: {', '.join(self.kinds)})"


@dataclass(frozen=True, slots=True)
class SetRanking:
    """The caller's ranking (推荐排序) of the nominations of their scope in `campaign`, best
    first: ids. The writer keeps only those of the caller's unit (clerk) or region (official)."""

    campaign: str
    order: tuple[int, ...]

    def summary(self) -> str:
        return f"SetRanking({self.campaign}, {len(self.order)})"


Effect = (
    CreateDraft
    | SaveDraft
    | StoreAttachment
    | RecordOpinion
    | Move
    | Bind
    | Subscribe
    | Audit
    | Notify
    | SelfCheckCompleted
    | Replan
    | SetReminders
    | RecordConsent
    | Forget
    | RequestDocuments
    | SetRanking
)


def describe(effects: list[Effect]) -> list[str]:
    """One line per effect, as the golden transcripts record them (`= Move(…)`)."""
    return [effect.summary() for effect in effects]
