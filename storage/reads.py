"""The core's reads (conversations.reads.Reads) over one step's transaction.

Read-only: everything a step wants written comes back as effects and goes through
storage.writer. What a list shows of a nominee (the masked name) and what identifies one are
the core's policy (conversations.policy.nominee_label, nominee_key) over the campaign's
declarations, applied here where the row is turned into a view: storage knows no field key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from conversations.campaign import Catalog, Window
from conversations.crossrules import NominationFacts
from conversations.forms import Form, FormKind
from conversations.identity import Actor, Level
from conversations.lifecycle import Counts
from conversations.policy import nomination_form, nominee_key, nominee_label
from conversations.reads import (
    AttachmentView,
    CodeHolder,
    InviteView,
    MoveRecord,
    MyDataView,
    NominationDetail,
    NominationView,
    QuotaView,
    RegionEntry,
    ReminderView,
)
from storage import nominations as noms
from storage import privacy
from storage.crypto import Sealer
from storage.invites import actor_of, code_hash, normalize_code
from storage.quotas import quotas as stored_quotas
from storage.rankings import ranking as stored_ranking
from storage.rankings import scope_of
from storage.regions import Regions
from storage.reminders import entries as reminder_entries
from storage.reminders import wanted, windows_in_force
from storage.store import ConversationTx
from storage.tables import invites, memberships, nominations, selfcheck_results, units

WorkdayEnd = Callable[[dt.date, int], dt.date]


def campaign_facts(
    conn: sa.Connection, sealer: Sealer, catalog: Catalog, campaign: str
) -> list[NominationFacts]:
    """Every nomination of the campaign as the rules across nominations count it (also the
    quota chart's, read in a document job's snapshot: storage.exports)."""
    out = []
    for record in noms.in_campaign(conn, sealer, campaign):
        form = nomination_form(catalog, record.campaign, record.category)
        out.append(
            NominationFacts(
                id=record.id,
                campaign=record.campaign,
                category=record.category,
                kind=record.kind,
                unit_id=record.unit_id,
                region=record.region,
                nominee_digest=nominee_key(form, record.payload.get("fields", {})),
                capped=record.county_division,
                status=record.status,
            )
        )
    return out


class StoreReads:
    """`conversations.reads.Reads` on the step's transaction."""

    def __init__(
        self,
        tx: ConversationTx,
        sealer: Sealer,
        regions: Regions,
        *,
        catalog: Catalog,
        now: datetime,
        workday_end: WorkdayEnd,
    ) -> None:
        self._tx = tx
        self._catalog = catalog
        self._conn = tx.connection
        self._sealer = sealer
        self._regions = regions
        self._now = now
        self._workday_end = workday_end

    def actor(self) -> Actor | None:
        return actor_of(self._conn, self._tx.user_id)

    def region_name(self, code: str) -> str:
        return self._regions.full_name(code) if code in self._regions else code

    def unit_title(self, unit_id: int) -> str | None:
        name: str | None = self._conn.execute(
            sa.select(units.c.name).where(units.c.id == unit_id)
        ).scalar_one_or_none()
        return name

    def contains(self, outer: str, inner: str) -> bool:
        return self._regions.contains(outer, inner)

    def entry_level(self, region: str) -> Level:
        return self._regions.get(region).review_level if region in self._regions else Level.COUNTY

    def offices(self, region: str) -> frozenset[str]:
        return frozenset(r.code for r in self._regions if self._regions.contains(r.code, region))

    def invite(self, code: str) -> InviteView | None:
        normal = normalize_code(code)
        if normal is None:
            return None
        row = self._conn.execute(
            sa.select(invites).where(invites.c.code_hash == code_hash(normal))
        ).one_or_none()
        if row is None:
            return None
        if row.used_at is not None:
            current = self._conn.execute(
                sa.select(memberships.c.invite_id).where(memberships.c.user_id == self._tx.user_id)
            ).scalar_one_or_none()
            state = "mine" if current == row.id else "used"
        elif row.revoked_at is not None:
            state = "revoked"
        elif row.expires_at <= self._now:
            state = "expired"
        else:
            state = "valid"
        return InviteView(state, row.role, row.region_code, row.level, row.unit_id)

    def recent_refusals(self, action: str, since: datetime) -> int:
        count: int = self._conn.execute(
            sa.select(sa.func.count())
            .select_from(noms.audit_log)
            .where(
                noms.audit_log.c.user_id == self._tx.user_id,
                noms.audit_log.c.action == action,
                noms.audit_log.c.allowed.is_(False),
                noms.audit_log.c.at > since,
            )
        ).scalar_one()
        return count

    def nomination(self, key: int | str) -> NominationDetail | None:
        if isinstance(key, int):
            record = noms.get(self._conn, self._sealer, key)
        else:
            record = noms.by_tracking_code(self._conn, self._sealer, key)
        return None if record is None else self._detail(record)

    def follows(self, nomination_id: int) -> bool:
        return self._tx.user_id in noms.subscribers(self._conn, nomination_id)

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

    def in_statuses(self, statuses: tuple[str, ...], region: str) -> list[NominationView]:
        records = noms.in_statuses(self._conn, self._sealer, statuses, region_prefix=region[:2])
        return [self._view(r) for r in records]

    def region_nominations(self, campaign: str, region: str) -> list[RegionEntry]:
        inside = sorted(r.code for r in self._regions if self._regions.contains(region, r.code))
        rows = self._conn.execute(
            sa.select(nominations, units.c.name.label("registered_unit"))
            .join(units, units.c.id == nominations.c.unit_id)
            .where(nominations.c.campaign == campaign, nominations.c.region_code.in_(inside))
            .order_by(nominations.c.id)
        ).all()
        out = []
        for row in rows:
            record = noms.record_of(row, self._sealer)
            form = nomination_form(self._catalog, record.campaign, record.category)
            fields = record.payload.get("fields", {})
            field = form.name_field() if form is not None else None
            name = str(fields.get(field.key) or "") if field is not None else ""
            out.append(RegionEntry(view_of(record, form), name, row.registered_unit))
        return out

    def ranking(self, campaign: str) -> dict[int, int]:
        actor = self.actor()
        scope = scope_of(actor) if actor is not None else None
        if scope is None:
            return {}
        return stored_ranking(self._conn, campaign=campaign, scope=scope)

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

    def code_holders(self, code: str) -> list[CodeHolder]:
        out = [
            CodeHolder(name=row.name, unit_id=row.id)
            for row in self._conn.execute(sa.select(units).where(units.c.uscc == code))
        ]
        for campaign in self._catalog:
            gone = campaign.lifecycle.not_counting(Counts.NOMINEE) if campaign.lifecycle else ()
            for record in noms.in_campaign(self._conn, self._sealer, campaign.id):
                form = nomination_form(self._catalog, record.campaign, record.category)
                fields = record.payload.get("fields", {})
                if form is None or form.kind is not FormKind.UNIT:
                    continue
                if nominee_key(form, fields) == code:
                    out.append(
                        CodeHolder(
                            name=nominee_label(form, fields),
                            unit_id=record.unit_id,
                            campaign=record.campaign,
                            tracking_code=record.tracking_code,
                            active=record.status not in gone,
                        )
                    )
        return out

    def campaign_facts(self, campaign: str) -> list[NominationFacts]:
        return campaign_facts(self._conn, self._sealer, self._catalog, campaign)

    def quotas(self, campaign: str, category: str) -> list[QuotaView]:
        return [
            QuotaView(q.region_code, q.places)
            for q in stored_quotas(self._conn, campaign, category)
            if q.region_code in self._regions
        ]

    def workday_end(self, start: dt.date, workdays: int) -> dt.date:
        """As wired by the runtime (it raises PortRefusal for a year with no calendar)."""
        return self._workday_end(start, workdays)

    def windows(self, campaign: str) -> list[Window]:
        if campaign not in self._catalog:
            return []
        return list(windows_in_force(self._conn, self._catalog.get(campaign))[0])

    def my_reminders(self, limit: int) -> list[ReminderView]:
        return [
            ReminderView(e.due_at, e.title, e.kind, e.campaign)
            for e in reminder_entries(
                self._conn, self._sealer, status="pending", user_id=self._tx.user_id, limit=limit
            )
        ]

    def reminder_settings(self, campaign: str) -> dict[str, bool]:
        return wanted(self._conn, campaign, [self._tx.user_id])[self._tx.user_id]

    def my_data(self) -> MyDataView:
        return privacy.my_data(self._conn, self._tx.user_id)

    def _detail(self, record: noms.NominationRecord) -> NominationDetail:
        files = noms.attachments_of(self._conn, self._sealer, record.id)
        publicity = None
        if record.publicity_started_on and record.publicity_ends_on:
            publicity = (record.publicity_started_on, record.publicity_ends_on)
        moves = [
            MoveRecord(
                action=a.action,
                role=a.role,
                at=a.at,
                from_status=a.from_status,
                to_status=a.to_status,
                reason=(a.detail or {}).get("reason"),
            )
            for a in noms.audit_trail(self._conn, self._sealer, nomination_id=record.id)
            if a.allowed and a.to_status is not None
        ]
        return NominationDetail(
            view=self._view(record),
            kind=record.kind,
            fields=dict(record.payload.get("fields", {})),
            facts=dict(record.payload.get("facts", {})),
            attachments=[
                AttachmentView(f.id, f.material_key, f.filename, f.media_type, f.size)
                for f in files
            ],
            verdict=record.payload.get("verdict"),
            opinions=list(record.payload.get("opinions", [])),
            publicity=publicity,
            county_division=record.county_division,
            moves=moves,
            consent_at=privacy.consent_at(self._conn, record.id),
        )

    def _view(self, record: noms.NominationRecord) -> NominationView:
        return view_of(record, nomination_form(self._catalog, record.campaign, record.category))


def view_of(record: noms.NominationRecord, form: Form | None) -> NominationView:
    """A row as lists show it; `form` is the one it was filed on (its `names` field)."""
    return NominationView(
        id=record.id,
        campaign=record.campaign,
        category=record.category,
        status=record.status,
        tracking_code=record.tracking_code,
        nominee=nominee_label(form, record.payload.get("fields", {})),
        region=record.region,
        unit_id=record.unit_id,
        version=record.version,
    )
