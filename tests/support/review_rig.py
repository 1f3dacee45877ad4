"""People and nominations for review tests: bound consoles, nominations placed at a status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.wiring import workday_end_from
from conversations.effects import Effect
from conversations.forms import form_for
from conversations.identity import Level, Role
from conversations.keys import Channel, ConversationKey
from conversations.lifecycle import opinion_departments, opinion_facts
from notifications.calendar import WorkdayCalendar
from storage import invites, tables
from storage import nominations as noms
from storage.files import FileStore
from storage.reads import StoreReads
from storage.store import Store
from storage.writer import Writer
from support.console_harness import CAMPAIGNS, FIXED_NOW, ConsoleHarness, catalog, regions

# A day inside the skills campaign's strict submission window (2022-11-03 to 11-04, 三、（三）):
# the moves that deliver to the province are refused on any other day.
IN_WINDOW = dt.datetime(2022, 11, 3, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))

UNIT = invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K")


def bound(
    store: Store, user: str, *, clock: Callable[[], dt.datetime] | None = None, **invite: Any
) -> ConsoleHarness:
    """A console user bound with a fresh invitation (role, region, level or unit)."""
    with store.transaction() as conn:
        code = invites.create_invite(conn, now=FIXED_NOW, ttl=timedelta(days=30), **invite).code
    console = ConsoleHarness(store, user=user, clock=clock)
    console.open()
    assert "绑定成功" in console.send(f"/bind {code}")
    return console


def clerk(
    store: Store,
    user: str = "clerk",
    region: str = "220104",
    *,
    clock: Callable[[], dt.datetime] | None = None,
) -> ConsoleHarness:
    """The clerk of the unit of `region` (one unit per region)."""
    unit = (
        UNIT
        if region == "220104"
        else invites.UnitSpec(name=f"单位{region}", uscc=REGION_UNITS[region])
    )
    return bound(
        store, user, role=Role.CLERK, region=regions().get(region), unit=unit, clock=clock
    )


# Units of regions whose nominations enter the chain at the city (梅河口市) or the province.
REGION_UNITS = {"220581": "91220581MA14ABCD2M", "220000": "91220000MA14ABCD1E"}


def official(
    store: Store,
    user: str,
    region: str,
    level: Level,
    *,
    clock: Callable[[], dt.datetime] | None = None,
) -> ConsoleHarness:
    return bound(
        store, user, role=Role.OFFICIAL, region=regions().get(region), level=level, clock=clock
    )


def unit_id(store: Store) -> int:
    with store.reading() as conn:
        return int(conn.execute(sa.select(sa.func.min(tables.units.c.id))).scalar_one())


def place(
    store: Store,
    *,
    campaign: str = "jl-skills-2022",
    category: str = "technical_expert",
    status: str = "county_review",
    fields: dict[str, Any] | None = None,
    materials: bool = True,
    kind: str = "individual",
    region: str = "220104",
    signed_consent: bool = True,
) -> int:
    """A nomination of the unit in `status`, every opinion recorded; with every material of its
    form unless not (the nominee's signed consent form unless `signed_consent` is False)."""
    fields = fields or {"name": "张小三"}
    lifecycle = catalog().get(campaign).lifecycle
    assert lifecycle is not None
    consulted = opinion_departments(lifecycle, opinion_facts(kind, fields, {}))
    with store.transaction() as conn:
        creator = conn.execute(sa.select(sa.func.min(tables.memberships.c.user_id))).scalar_one()
        record = noms.create_draft(
            conn,
            store.sealer,
            campaign=campaign,
            category=category,
            kind=kind,
            unit_id=int(
                conn.execute(
                    sa.select(sa.func.min(tables.units.c.id)).where(
                        tables.units.c.region_code == region
                    )
                ).scalar_one()
            ),
            region=region,
            created_by=creator,
            payload={"fields": fields, "facts": {}, "opinions": consulted},
            now=FIXED_NOW,
            initial_status=status,
        )
        form = form_for(catalog().get(campaign), category)
        for material in form.materials if form is not None and materials else []:
            if material.consent and not signed_consent:
                continue
            noms.add_attachment(
                conn, store.sealer, nomination_id=record.id, material_key=material.key,
                file_ref="0" * 64, media_type="pdf", size=1, filename="材料.pdf", now=FIXED_NOW,
            )  # fmt: skip
    return record.id


def status_of(store: Store, nomination_id: int) -> str:
    with store.reading() as conn:
        record = noms.get(conn, store.sealer, nomination_id)
    assert record is not None
    return record.status


def audit_rows(store: Store, nomination_id: int | None = None) -> list[tuple[str, bool]]:
    with store.reading() as conn:
        trail = noms.audit_trail(conn, store.sealer, nomination_id=nomination_id)
    return [(a.action, a.allowed) for a in trail]


def write(
    store: Store, user: str, effects: Sequence[Effect], files: Path = Path("/nonexistent")
) -> None:
    """The writer, on console `user`'s own step transaction, given `effects` as a step (or a
    forger) would: a refusal raises, and the step's transaction rolls back."""
    key = ConversationKey(Channel.CONSOLE.value, user)
    with store.conversation(key) as tx:
        reads = StoreReads(
            tx, store.sealer, regions(), catalog=catalog(), now=FIXED_NOW,
            workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
        )  # fmt: skip
        writer = Writer(
            tx, store.sealer, reads, catalog(), files=FileStore(files, store.sealer), now=FIXED_NOW
        )
        writer.apply(effects)
