"""The core's ports (conversations.ports) implemented on the store, inside one step's transaction.

Everything here runs on the connection of the conversation step that called it, so a binding, a
subscription or an audit record commits together with the conversation state, or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from conversations.crossrules import NominationFacts
from conversations.identity import Actor, Level, Role, region_prefix
from conversations.ports import NominationDetail, NominationView, PortRefusal, RulesInputs
from storage import identity, outbox
from storage import nominations as noms
from storage.crypto import Sealer
from storage.files import FileStore
from storage.store import ConversationTx
from storage.tables import selfcheck_results, users

WorkdayEnd = Callable[[dt.date, int], dt.date]
GUESS_ATTEMPTS = 5  # wrong invitation or tracking codes a chat identity may send ...
GUESS_WINDOW = dt.timedelta(hours=1)  # ... within this window, for each of the two commands
GUESSED = {  # the refusal once the limit is reached, per command
    "bind": f"邀请码错误次数过多，请 1 小时后再试（每小时最多 {GUESS_ATTEMPTS} 次）。",
    "track": f"跟踪码错误次数过多，请 1 小时后再试（每小时最多 {GUESS_ATTEMPTS} 次）。",
}


def mask_name(name: str) -> str:
    """张* / 欧*娜: enough to recognise in a list, not enough to identify."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


class StorePorts:
    """`conversations.ports.Ports` over the step's transaction."""

    def __init__(
        self,
        tx: ConversationTx,
        sealer: Sealer,
        regions: identity.Regions,
        *,
        now: datetime,
        files: FileStore,
        workday_end: WorkdayEnd,
    ) -> None:
        self._tx = tx
        self._conn = tx.connection
        self._sealer = sealer
        self._regions = regions
        self._now = now
        self._files = files
        self._workday_end = workday_end

    def actor(self) -> Actor | None:
        return identity.actor_of(self._conn, self._tx.user_id)

    def region_name(self, code: str) -> str:
        return self._regions.full_name(code) if code in self._regions else code

    def _limit_guessing(self, action: str) -> None:
        """Refuse `action` once this chat identity got it wrong GUESS_ATTEMPTS times lately.

        Guessing codes by chat (an invitation binds a role; a tracking code shows a
        nomination's status): a handful of wrong ones per hour is plenty for typos. The
        refusal itself is audited, so an operator sees the guessing go on.
        """
        recent = self._conn.execute(
            sa.select(sa.func.count())
            .select_from(noms.audit_log)
            .where(
                noms.audit_log.c.user_id == self._tx.user_id,
                noms.audit_log.c.action == action,
                noms.audit_log.c.allowed.is_(False),
                noms.audit_log.c.at > self._now - GUESS_WINDOW,
            )
        ).scalar_one()
        if recent >= GUESS_ATTEMPTS:
            self.refused(action, "too many wrong codes")
            raise PortRefusal(GUESSED[action])

    def bind(self, code: str) -> Actor:
        self._limit_guessing("bind")
        try:
            return identity.bind(self._conn, self._tx.user_id, code, now=self._now)
        except identity.BindError as exc:
            self.refused("bind", exc.reason.value)
            raise PortRefusal(str(exc)) from None

    def track(self, code: str) -> NominationView | None:
        self._limit_guessing("track")
        record = noms.by_tracking_code(self._conn, self._sealer, code)
        if record is None:
            self.refused("track", "unknown tracking code")
            return None
        noms.subscribe(
            self._conn, user_id=self._tx.user_id, nomination_id=record.id, now=self._now
        )
        return self._view(record)

    def tracked(self) -> list[NominationView]:
        ids = self._conn.execute(
            sa.select(noms.subscriptions.c.nomination_id)
            .where(noms.subscriptions.c.user_id == self._tx.user_id)
            .order_by(noms.subscriptions.c.created_at, noms.subscriptions.c.nomination_id)
        ).scalars()
        records = [noms.get(self._conn, self._sealer, i) for i in ids]
        return [self._view(r) for r in records if r is not None]

    def unit_nominations(self, unit_id: int) -> list[NominationView]:
        return [self._view(r) for r in noms.for_unit(self._conn, self._sealer, unit_id)]

    def refused(self, action: str, why: str, *, nomination_id: int | None = None) -> None:
        actor = self.actor()
        noms.audit(
            self._conn,
            self._sealer,
            user_id=self._tx.user_id,
            role=actor.role.value if actor else "applicant",
            action=action,
            allowed=False,
            nomination_id=nomination_id,
            detail={"why": why},
            now=self._now,
        )

    def latest_selfcheck(self, campaign: str, category: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            sa.select(selfcheck_results.c.result)
            .where(
                selfcheck_results.c.user_id == self._tx.user_id,
                selfcheck_results.c.campaign == campaign,
                selfcheck_results.c.category == category,
            )
            .order_by(selfcheck_results.c.completed_at.desc(), selfcheck_results.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if row is None:
            return None
        answers = json.loads(self._sealer.open(row)).get("answers")
        return dict(answers) if isinstance(answers, dict) else None

    # ----- review ----------------------------------------------------------------------------

    def queue(self, statuses: list[str]) -> list[NominationView]:
        actor = self.actor()
        if actor is None or actor.region is None:
            return []
        prefix = region_prefix(actor.region)
        records = noms.in_statuses(self._conn, self._sealer, statuses, region_prefix=prefix[:2])
        return [self._view(r) for r in records if self._regions.contains(actor.region, r.region)]

    def open_nomination(
        self, nomination_id: int, *, audit: bool = True
    ) -> NominationDetail | None:
        record = noms.get(self._conn, self._sealer, nomination_id)
        actor = self.actor()
        if record is None or not self._may_see(actor, record):
            self.refused("open", "not visible to this user", nomination_id=nomination_id)
            return None
        if audit and actor is not None and actor.role is Role.OFFICIAL:
            # Officials see ID numbers and phones in full: every such read is recorded.
            noms.audit(
                self._conn,
                self._sealer,
                user_id=self._tx.user_id,
                role=actor.role.value,
                action="read_personal_data",
                allowed=True,
                nomination_id=record.id,
                now=self._now,
            )
        files = noms.attachments_of(self._conn, self._sealer, record.id)
        region = self._regions.get(record.region) if record.region in self._regions else None
        publicity = None
        if record.publicity_started_on and record.publicity_ends_on:
            publicity = (record.publicity_started_on, record.publicity_ends_on)
        return NominationDetail(
            view=self._view(record),
            kind=record.kind,
            fields=dict(record.payload.get("fields", {})),
            facts=dict(record.payload.get("facts", {})),
            uploaded=sorted({f.material_key for f in files}),
            verdict=record.payload.get("verdict"),
            opinions=list(record.payload.get("opinions", [])),
            publicity=publicity,
            entry_level=region.review_level if region else Level.COUNTY,
            offices=self._offices(record.region),
        )

    def record_opinion(self, nomination_id: int, department: str) -> None:
        record = self._own(nomination_id)
        payload = dict(record.payload)
        opinions = list(payload.get("opinions", []))
        if department in opinions:
            opinions.remove(department)
        else:
            opinions.append(department)
        payload["opinions"] = opinions
        noms.save_payload(
            self._conn,
            self._sealer,
            nomination_id,
            payload,
            county_division=record.county_division,
            now=self._now,
        )

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
        record = noms.get(self._conn, self._sealer, nomination_id)
        actor = self.actor()
        if record is None or actor is None or not self._may_see(actor, record):
            self.refused(action, "not visible to this user", nomination_id=nomination_id)
            raise PortRefusal("您无权办理这项推荐。")
        try:
            noms.move(
                self._conn,
                self._sealer,
                nomination_id=nomination_id,
                expected_status=expected,
                to_status=to_status,
                user_id=self._tx.user_id,
                role=actor.role.value,
                action=action,
                reason=reason,
                now=self._now,
                publicity=publicity,
            )
        except noms.NominationConflict as exc:
            raise PortRefusal(str(exc)) from None
        recipients = set(noms.subscribers(self._conn, record.id))
        recipients |= set(
            self._conn.execute(
                sa.select(identity.memberships.c.user_id).where(
                    identity.memberships.c.unit_id == record.unit_id
                )
            ).scalars()
        )
        if next_level is not None:
            officials = self._conn.execute(
                sa.select(
                    identity.memberships.c.user_id, identity.memberships.c.region_code
                ).where(
                    identity.memberships.c.role == Role.OFFICIAL.value,
                    identity.memberships.c.level == next_level,
                )
            ).all()
            recipients |= {
                o.user_id
                for o in officials
                if self._regions.contains(o.region_code, record.region)
            }
        recipients.discard(self._tx.user_id)  # the mover reads the reply instead
        self._enqueue(record, to_status, notice, sorted(recipients))

    def _offices(self, region: str) -> frozenset[str]:
        """The region and every region its nominations go on to, following `reports_to`."""
        return frozenset(r.code for r in self._regions if self._regions.contains(r.code, region))

    def _may_see(self, actor: Actor | None, record: noms.NominationRecord) -> bool:
        if actor is not None and actor.role is Role.CLERK:
            return record.unit_id == actor.unit_id
        if actor is not None and actor.role is Role.OFFICIAL and actor.region is not None:
            return self._regions.contains(actor.region, record.region)
        return self._tx.user_id in noms.subscribers(self._conn, record.id)

    def _enqueue(
        self, record: noms.NominationRecord, to_status: str, notice: str, user_ids: list[int]
    ) -> None:
        if not user_ids:
            return
        recipients = self._conn.execute(
            sa.select(users.c.id, users.c.channel, users.c.external_id).where(
                users.c.id.in_(user_ids)
            )
        ).all()
        outbox.enqueue(
            self._conn,
            self._sealer,
            [
                outbox.OutboxMessage(
                    idempotency_key=f"{record.id}:{record.version}:{to_status}:{r.id}",
                    channel=r.channel,
                    recipient_id=r.external_id,
                    text=notice,
                )
                for r in recipients
            ],
            now=self._now,
        )

    # ----- filing ----------------------------------------------------------------------------

    def create_draft(
        self, *, campaign: str, category: str, kind: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]:
        actor = self._clerk()
        record = noms.create_draft(
            self._conn,
            self._sealer,
            campaign=campaign,
            category=category,
            kind=kind,
            unit_id=actor.unit_id or 0,
            region=actor.region or "",
            created_by=self._tx.user_id,
            payload=payload,
            now=self._now,
        )
        return record.id, record.tracking_code

    def save_draft(
        self, nomination_id: int, payload: Mapping[str, Any], *, county_division: bool
    ) -> None:
        self._own(nomination_id)
        noms.save_payload(
            self._conn,
            self._sealer,
            nomination_id,
            payload,
            county_division=county_division,
            now=self._now,
        )

    def store_attachment(
        self, nomination_id: int, *, material: str, filename: str, kind: str, data: bytes
    ) -> None:
        self._own(nomination_id)
        digest = self._files.put(data)
        noms.add_attachment(
            self._conn,
            self._sealer,
            nomination_id=nomination_id,
            material_key=material,
            file_ref=digest,
            media_type=kind,
            size=len(data),
            filename=filename,
            now=self._now,
        )

    def workday_end(self, start: dt.date, workdays: int) -> dt.date:
        """`workday_end` as wired by the runtime (it raises PortRefusal for an unknown year)."""
        return self._workday_end(start, workdays)

    def rules_inputs(self, campaign: str, category: str, region: str) -> RulesInputs:
        out = []
        for record in noms.in_campaign(self._conn, self._sealer, campaign):
            fields = record.payload.get("fields", {})
            identity_key = fields.get("id_number") or fields.get("uscc")
            out.append(
                NominationFacts(
                    id=record.id,
                    campaign=record.campaign,
                    category=record.category,
                    kind=record.kind,
                    unit_id=record.unit_id,
                    region=self._quota_region(record.campaign, record.category, record.region),
                    nominee_digest=str(identity_key) if identity_key else None,
                    county_division=record.county_division,
                    status=record.status,
                    submitted=record.status != "draft",
                )
            )
        holder = self._quota_region(campaign, category, region)
        places = next(
            (
                q.places
                for q in identity.quotas(self._conn, campaign, category)
                if q.region_code == holder
            ),
            None,
        )
        return RulesInputs(others=out, quota=places, region=holder)

    def submit(
        self,
        nomination_id: int,
        *,
        to_status: str,
        action: str,
        publicity: tuple[dt.date, dt.date] | None,
        notice: str,
    ) -> None:
        record = self._own(nomination_id)
        actor = self._clerk()
        noms.move(
            self._conn,
            self._sealer,
            nomination_id=nomination_id,
            expected_status=record.status,
            to_status=to_status,
            user_id=self._tx.user_id,
            role=actor.role.value,
            action=action,
            reason=None,
            now=self._now,
            publicity=publicity,
        )
        self._notify_subscribers(record, to_status, notice)

    def _notify_subscribers(
        self, record: noms.NominationRecord, to_status: str, notice: str
    ) -> None:
        """Tell everyone following the nomination, in this transaction (DESIGN §3)."""
        followers = [u for u in noms.subscribers(self._conn, record.id) if u != self._tx.user_id]
        self._enqueue(record, to_status, notice, followers)

    def _clerk(self) -> Actor:
        actor = self.actor()
        if actor is None or actor.unit_id is None:
            raise PortRefusal("只有绑定了单位的经办人可以填报推荐。")
        return actor

    def _own(self, nomination_id: int) -> noms.NominationRecord:
        """The nomination, if it belongs to the caller's unit; refused and audited otherwise."""
        record = noms.get(self._conn, self._sealer, nomination_id)
        actor = self.actor()
        if record is None or actor is None or record.unit_id != actor.unit_id:
            self.refused("edit_nomination", "not of this unit", nomination_id=nomination_id)
            raise PortRefusal("这项推荐不属于您的单位。")
        return record

    def _quota_region(self, campaign: str, category: str, region: str) -> str:
        """The region whose quota a unit's nominations count against: the most specific
        region with a quota that contains the unit's region (else the unit's region)."""
        holders = [
            q.region_code
            for q in identity.quotas(self._conn, campaign, category)
            if q.region_code in self._regions and self._regions.contains(q.region_code, region)
        ]
        return max(holders, key=lambda c: len(region_prefix(c)), default=region)

    @staticmethod
    def _view(record: noms.NominationRecord) -> NominationView:
        fields = record.payload.get("fields", {})
        if record.kind == "collective":
            nominee = str(fields.get("unit_name") or "（未填单位名称）")
        else:
            nominee = (
                mask_name(str(fields.get("name") or "")) if fields.get("name") else "（未填姓名）"
            )
        return NominationView(
            id=record.id,
            campaign=record.campaign,
            category=record.category,
            status=record.status,
            tracking_code=record.tracking_code,
            nominee=nominee,
            region=record.region,
            unit_id=record.unit_id,
        )
