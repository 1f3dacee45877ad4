"""The core's ports (conversations.ports) implemented on the store, inside one step's transaction.

Everything here runs on the connection of the conversation step that called it, so a binding, a
subscription or an audit record commits together with the conversation state, or not at all.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from conversations.identity import Actor
from conversations.ports import NominationView, PortRefusal
from storage import identity
from storage import nominations as noms
from storage.crypto import Sealer
from storage.store import ConversationTx


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
    ) -> None:
        self._tx = tx
        self._conn = tx.connection
        self._sealer = sealer
        self._regions = regions
        self._now = now

    def actor(self) -> Actor | None:
        return identity.actor_of(self._conn, self._tx.user_id)

    def region_name(self, code: str) -> str:
        return self._regions.full_name(code) if code in self._regions else code

    def bind(self, code: str) -> Actor:
        try:
            return identity.bind(self._conn, self._tx.user_id, code, now=self._now)
        except identity.BindError as exc:
            self.refused("bind", exc.reason.value)
            raise PortRefusal(str(exc)) from None

    def track(self, code: str) -> NominationView | None:
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

    def refused(self, action: str, why: str) -> None:
        actor = self.actor()
        noms.audit(
            self._conn,
            self._sealer,
            user_id=self._tx.user_id,
            role=actor.role.value if actor else "applicant",
            action=action,
            allowed=False,
            detail={"why": why},
            now=self._now,
        )

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
