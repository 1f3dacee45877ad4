"""The one writer: applies a step's effects (conversations.effects) in the step's transaction.

The core decided; the writer does not trust it blindly. Each effect is checked against the
rows as they are now, with the core's own rules (conversations.policy, conversations.moves):
a draft or a file only for a clerk of the nomination's unit, a move only if the nomination is
still at the status and version the core saw and `lifecycle.decide()` plus the entry gate still
allow it, a bind only with an invitation still valid. What fails raises a typed
`conversations.reads.Refusal` (no user text: the core says it) and the runtime rolls the step's
effects back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from conversations.campaign import Catalog
from conversations.consent import consent_refusal
from conversations.documents import DocKind, documents_for
from conversations.effects import (
    Audience,
    Audit,
    Bind,
    CreateDraft,
    Effect,
    Forget,
    Move,
    Notify,
    RecordConsent,
    RecordOpinion,
    Replan,
    RequestDocuments,
    SaveDraft,
    Scope,
    SelfCheckCompleted,
    SetRanking,
    SetReminders,
    StoreAttachment,
    Subscribe,
)
from conversations.forms import form_for
from conversations.identity import Actor, Role
from conversations.lifecycle import StatusKind
from conversations.material_stages import attachable_later
from conversations.moves import lifecycle_of, recheck
from conversations.policy import may_edit, may_see
from conversations.reads import Refusal, RefusalKind
from storage import exports, outbox, privacy
from storage import nominations as noms
from storage.crypto import Sealer
from storage.files import FileStore
from storage.invites import BindError, bind
from storage.planning import Planning
from storage.rankings import scope_of, set_ranking
from storage.reads import StoreReads
from storage.reminders import set_pref
from storage.store import ConversationTx
from storage.tables import memberships, users


class Writer:
    """Applies effects for one step (one caller, one transaction)."""

    def __init__(
        self,
        tx: ConversationTx,
        sealer: Sealer,
        reads: StoreReads,
        catalog: Catalog,
        *,
        files: FileStore,
        now: datetime,
        planning: Planning | None = None,
    ) -> None:
        self._tx = tx
        self._conn = tx.connection
        self._sealer = sealer
        self._reads = reads  # unmemoised: sees what earlier effects of this step wrote
        self._catalog = catalog
        self._files = files
        self._now = now
        self._planning = planning  # None: no reminders are planned (a rig without a calendar)

    def apply(self, effects: Iterable[Effect]) -> None:
        replans: list[Replan] = []
        for effect in effects:
            match effect:
                case CreateDraft():
                    self._create(effect)
                case SaveDraft():
                    record = self._editable(effect.nomination)
                    noms.save_payload(
                        self._conn, self._sealer, record.id, effect.payload,
                        county_division=effect.county_division, now=self._now,
                    )  # fmt: skip
                case StoreAttachment():
                    record = self._attachable(effect.nomination, effect.material)
                    noms.add_attachment(
                        self._conn, self._sealer, nomination_id=record.id,
                        material_key=effect.material, file_ref=self._files.put(effect.data),
                        media_type=effect.kind, size=len(effect.data), filename=effect.filename,
                        now=self._now,
                    )  # fmt: skip
                case RecordOpinion():
                    self._opinion(effect)
                case Move():
                    self._move(effect)
                case Bind():
                    self._bind(effect)
                case Subscribe():
                    noms.subscribe(
                        self._conn, user_id=self._tx.user_id, nomination_id=effect.nomination,
                        now=self._now,
                    )  # fmt: skip
                case Audit():
                    self.audit(effect)
                case Notify():
                    self._notify(effect)
                case SelfCheckCompleted():
                    self._tx.add_result(
                        campaign=effect.campaign, category=effect.category,
                        verdict=effect.verdict, result=effect.result,
                        completed_at=effect.completed_at,
                    )  # fmt: skip
                case SetReminders():
                    set_pref(
                        self._conn, self._tx.user_id, effect.campaign, effect.kind, effect.on,
                        now=self._now,
                    )  # fmt: skip
                case Replan():
                    replans.append(effect)  # on the state the other effects leave
                case RecordConsent():
                    self._consent(effect)
                case Forget():
                    privacy.forget(self._conn, self._tx.user_id, now=self._now)
                case SetRanking():
                    self._rank(effect)
                case RequestDocuments():
                    self._documents(effect)
        for effect in dict.fromkeys(replans):
            self._replan(effect)

    def _rank(self, effect: SetRanking) -> None:
        """The caller's order of their scope's nominations: every id must be of the campaign and
        of the caller's unit (clerk) or lie in their office's region (official)."""
        actor = self._reads.actor()
        scope = scope_of(actor) if actor is not None else None
        if actor is None or scope is None:
            raise Refusal(RefusalKind.NOT_YOURS, detail="only a clerk or an official ranks")
        if len(set(effect.order)) != len(effect.order):
            raise Refusal(RefusalKind.NOT_ALLOWED, detail="a nomination ranked twice")
        for nomination_id in effect.order:
            record = noms.get(self._conn, self._sealer, nomination_id)
            if record is None or record.campaign != effect.campaign:
                raise Refusal(RefusalKind.NOT_YOURS, detail="no such nomination")
            mine = (
                record.unit_id == actor.unit_id
                if actor.role is Role.CLERK
                else self._reads.contains(actor.region or "", record.region)
            )
            if not mine:
                raise Refusal(
                    RefusalKind.NOT_YOURS, nomination=record.id, detail="not in the caller's scope"
                )
        set_ranking(
            self._conn, campaign=effect.campaign, scope=scope, order=effect.order,
            user_id=self._tx.user_id, now=self._now,
        )  # fmt: skip

    def _documents(self, effect: RequestDocuments) -> None:
        """A job for the document worker (bot.exports): only a clerk or an official, only the
        documents of their role, only a campaign the bot runs. The same request still waiting
        is not queued twice."""
        actor = self._reads.actor()
        allowed = {k.value for k in documents_for(actor)}
        if actor is not None and actor.role is Role.OFFICIAL:
            allowed.add(DocKind.QUOTA.value)
        if not effect.kinds or not set(effect.kinds) <= allowed:
            raise Refusal(RefusalKind.NOT_YOURS, detail="documents not of the caller's role")
        if effect.campaign not in self._catalog:
            raise Refusal(RefusalKind.NOT_ALLOWED, detail="no such campaign")
        exports.request(
            self._conn, user_id=self._tx.user_id, campaign=effect.campaign,
            kinds=effect.kinds, now=self._now,
        )  # fmt: skip

    def _replan(self, effect: Replan) -> None:
        if self._planning is None:
            return
        nomination = effect.scope.nomination
        if isinstance(nomination, str):
            nomination = self._record(nomination).id
        scope = Scope(
            effect.scope.campaign,
            nomination,
            self._tx.user_id if effect.mine else effect.scope.user,
        )
        self._planning.replan(self._conn, self._sealer, scope, now=self._now)

    def audit(self, effect: Audit) -> None:
        actor = self._reads.actor()
        nomination = effect.nomination
        if isinstance(nomination, str):
            record = noms.by_tracking_code(self._conn, self._sealer, nomination)
            nomination = None if record is None else record.id
        noms.audit(
            self._conn,
            self._sealer,
            user_id=self._tx.user_id,
            role=actor.role.value if actor else Role.APPLICANT.value,
            action=effect.action,
            allowed=effect.allowed,
            nomination_id=nomination,
            detail=effect.detail,
            now=self._now,
        )

    # ----- drafts -------------------------------------------------------------------------

    def _create(self, effect: CreateDraft) -> None:
        actor = self._reads.actor()
        if actor is None or actor.role is not Role.CLERK or actor.unit_id is None:
            raise Refusal(RefusalKind.NOT_YOURS, detail="only a unit's clerk files")
        lifecycle = lifecycle_of(self._catalog.get(effect.campaign))
        noms.create_draft(
            self._conn,
            self._sealer,
            campaign=effect.campaign,
            category=effect.category,
            kind=effect.kind,
            unit_id=actor.unit_id,
            region=actor.region or "",
            created_by=self._tx.user_id,
            payload=effect.payload,
            now=self._now,
            code=effect.code,
            initial_status=lifecycle.initial,
        )

    def _record(self, key: int | str) -> noms.NominationRecord:
        record = (
            noms.get(self._conn, self._sealer, key)
            if isinstance(key, int)
            else noms.by_tracking_code(self._conn, self._sealer, key)
        )
        if record is None:
            raise Refusal(RefusalKind.NOT_YOURS, detail="no such nomination")
        return record

    def _editable(self, key: int | str) -> noms.NominationRecord:
        """The nomination, if the caller's unit may still change it (a draft, a return)."""
        record = self._record(key)
        view = self._reads.nomination(record.id)
        assert view is not None
        if not may_edit(self._reads.actor(), view.view):
            raise Refusal(RefusalKind.NOT_YOURS, nomination=record.id, detail="not of this unit")
        lifecycle = lifecycle_of(self._catalog.get(record.campaign))
        status = lifecycle.status(record.status) if lifecycle.has_status(record.status) else None
        if status is None or (
            record.status != lifecycle.initial and status.kind is not StatusKind.SIDE
        ):
            raise Refusal(RefusalKind.STALE, nomination=record.id, detail="no longer editable")
        return record

    def _attachable(self, key: int | str, material: str) -> noms.NominationRecord:
        """The nomination, if the caller's unit may attach `material` to it now: any material
        while it is editable; a later stage's (the publicity proof, the opinions) while it is
        filed and still in the unit's hands (conversations.material_stages, issue 11)."""
        record = self._record(key)
        campaign = self._catalog.get(record.campaign)
        form = form_for(campaign, record.category)
        found = next((m for m in form.materials if m.key == material), None) if form else None
        if found is None or not attachable_later(lifecycle_of(campaign), record.status, found):
            return self._editable(key)
        view = self._reads.nomination(record.id)
        assert view is not None
        if not may_edit(self._reads.actor(), view.view):
            raise Refusal(RefusalKind.NOT_YOURS, nomination=record.id, detail="not of this unit")
        return record

    def _opinion(self, effect: RecordOpinion) -> None:
        record = self._record(effect.nomination)
        detail = self._reads.nomination(record.id)
        assert detail is not None
        if not may_edit(self._reads.actor(), detail.view):
            raise Refusal(RefusalKind.NOT_YOURS, nomination=record.id, detail="not of this unit")
        if record.version != effect.version:
            raise Refusal(RefusalKind.STALE, nomination=record.id, detail="opinion on old version")
        payload = dict(record.payload)
        opinions = list(payload.get("opinions", []))
        if effect.department in opinions:
            opinions.remove(effect.department)
        else:
            opinions.append(effect.department)
        payload["opinions"] = opinions
        noms.save_payload(
            self._conn, self._sealer, record.id, payload,
            county_division=record.county_division, now=self._now,
        )  # fmt: skip

    # ----- moves --------------------------------------------------------------------------

    def _move(self, effect: Move) -> None:
        record = self._record(effect.nomination)
        detail = self._reads.nomination(record.id)
        assert detail is not None
        actor = self._reads.actor() or Actor(role=Role.APPLICANT)
        if not may_see(actor, detail.view, self._reads):
            raise Refusal(RefusalKind.NOT_YOURS, nomination=record.id, detail="not visible")
        campaign = self._catalog.get(record.campaign)
        why = recheck(campaign, detail, actor, effect, self._reads, self._now.date())
        if why == "stale":
            raise Refusal(RefusalKind.STALE, nomination=record.id, detail=record.status)
        if why is not None:
            raise Refusal(RefusalKind.NOT_ALLOWED, nomination=record.id, detail=why)
        lifecycle = lifecycle_of(campaign)
        action = next(t.action for t in lifecycle.transitions if t.id == effect.transition)
        try:
            noms.move(
                self._conn,
                self._sealer,
                nomination_id=record.id,
                expected_status=effect.expected_status,
                expected_version=effect.expected_version,
                to_status=effect.to_status,
                user_id=self._tx.user_id,
                role=actor.role.value,
                action=action.value,
                reason=effect.reason,
                now=self._now,
                publicity=effect.publicity,
            )
        except noms.NominationConflict:
            raise Refusal(
                RefusalKind.STALE, nomination=record.id, detail="moved meanwhile"
            ) from None

    def _consent(self, effect: RecordConsent) -> None:
        """The nominee's consent (PIPL), re-checked on the row as it is now."""
        record = self._record(effect.nomination)
        detail = self._reads.nomination(record.id)
        assert detail is not None
        actor = self._reads.actor()
        campaign = self._catalog.get(record.campaign)
        follows = self._reads.follows(record.id)
        why = consent_refusal(campaign, detail, actor, follows, given=effect.given)
        if why is not None:
            raise Refusal(RefusalKind.NOT_ALLOWED, nomination=record.id, detail=why)
        privacy.set_consent(
            self._conn, self._sealer, nomination_id=record.id, user_id=self._tx.user_id,
            role=(actor.role if actor else Role.APPLICANT).value, given=effect.given,
            now=self._now,
        )  # fmt: skip

    def _bind(self, effect: Bind) -> None:
        try:
            bind(self._conn, self._tx.user_id, effect.code, now=self._now)
        except BindError as exc:
            raise Refusal(RefusalKind.BIND, detail=exc.reason.value) from None

    # ----- notifications ------------------------------------------------------------------

    def _notify(self, effect: Notify) -> None:
        record = self._record(effect.audience.nomination)
        user_ids = sorted(self._audience(record, effect.audience))
        if not user_ids:
            return
        rows = self._conn.execute(
            sa.select(users.c.id, users.c.channel, users.c.external_id).where(
                users.c.id.in_(user_ids)
            )
        ).all()
        outbox.enqueue(
            self._conn,
            self._sealer,
            [
                outbox.OutboxMessage(
                    idempotency_key=f"{effect.key}:{r.id}",
                    channel=r.channel,
                    recipient_id=r.external_id,
                    text=effect.text,
                )
                for r in rows
            ],
            now=self._now,
        )

    def _audience(self, record: noms.NominationRecord, audience: Audience) -> set[int]:
        found: set[int] = set()
        if audience.followers:
            found |= set(noms.subscribers(self._conn, record.id))
        if audience.unit:
            found |= set(
                self._conn.execute(
                    sa.select(memberships.c.user_id).where(memberships.c.unit_id == record.unit_id)
                ).scalars()
            )
        if audience.officials_at is not None:
            officials = self._conn.execute(
                sa.select(memberships.c.user_id, memberships.c.region_code).where(
                    memberships.c.role == Role.OFFICIAL.value,
                    memberships.c.level == audience.officials_at,
                )
            ).all()
            found |= {
                o.user_id for o in officials if self._reads.contains(o.region_code, record.region)
            }
        if audience.caller:
            found.add(self._tx.user_id)
        if audience.not_the_caller:
            found.discard(self._tx.user_id)
        return found


__all__ = ["Writer"]
