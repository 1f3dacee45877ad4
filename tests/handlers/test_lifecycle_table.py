"""The lifecycle as a table, through the chat path (runtime, ports, store, audit trail):
every move of both campaigns made by the right person succeeds and is audited as allowed; the
same move asked for by a wrong role, a wrong level, an office of another region or a clerk of
another unit fails, leaves the status as it was, and is audited as refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, catalog, regions
from support.review_rig import IN_WINDOW

from conversations.forms import form_for
from conversations.identity import Level, Role
from conversations.keys import Channel, ConversationKey
from conversations.lifecycle import Lifecycle, Transition, opinion_departments
from conversations.review import ReviewStage, ReviewState
from storage import invites, tables
from storage import nominations as noms
from storage.store import Store
from storage.tables import users

# Where a nomination enters the review chain -> the region of its unit (regions.yaml).
ENTRY_REGION = {Level.COUNTY: "220104", Level.CITY: "220581", Level.PROVINCE: "220000"}
OFFICE_OF = {  # the office over each unit region, by level
    ("220104", Level.COUNTY): "220104",
    ("220104", Level.CITY): "220100",
    ("220104", Level.PROVINCE): "220000",
    ("220581", Level.CITY): "220581",
    ("220581", Level.PROVINCE): "220000",
    ("220000", Level.PROVINCE): "220000",
}
ELSEWHERE = {Level.COUNTY: "220105", Level.CITY: "220200", Level.PROVINCE: None}


@dataclass
class People:
    store: Store
    consoles: dict[str, ConsoleHarness]
    units: dict[str, int]  # unit region -> unit id

    def console(self, name: str) -> ConsoleHarness:
        return self.consoles[name]


def bind(store: Store, name: str, **invite: object) -> ConsoleHarness:
    with store.transaction() as conn:
        code = invites.create_invite(
            conn,
            now=FIXED_NOW,
            ttl=timedelta(days=30),
            **invite,  # type: ignore[arg-type]
        ).code
    # Inside the skills campaign's strict window, so that the moves delivering to the province
    # are allowed today (test_reminder_windows proves they are refused on other days).
    console = ConsoleHarness(store, user=name, clock=lambda: IN_WINDOW)
    console.open()
    assert "绑定成功" in console.send(f"/bind {code}")
    return console


def uscc(n: int) -> str:
    from conversations.validators import uscc_check_char

    body = f"91220104MA{n:07d}"
    return body + uscc_check_char(body)


@pytest.fixture
def people(store: Store) -> People:
    consoles: dict[str, ConsoleHarness] = {}
    for i, region in enumerate(sorted(set(ENTRY_REGION.values()))):
        spec = invites.UnitSpec(name=f"单位{region}", uscc=uscc(i + 1))
        consoles[f"clerk:{region}"] = bind(
            store, f"clerk{region}", role=Role.CLERK, region=regions().get(region), unit=spec
        )
    spec = invites.UnitSpec(name="另一单位", uscc=uscc(99))
    consoles["other_clerk"] = bind(
        store, "otherclerk", role=Role.CLERK, region=regions().get("220104"), unit=spec
    )
    offices = set(OFFICE_OF.values()) | {r for r in ELSEWHERE.values() if r}
    for region in sorted(offices):
        level = regions().get(region).review_level
        consoles[f"official:{region}"] = bind(
            store,
            f"official{region}",
            role=Role.OFFICIAL,
            region=regions().get(region),
            level=level,
        )
    with store.reading() as conn:
        units = {
            r.region_code: r.id
            for r in conn.execute(sa.select(tables.units))
            if r.name.startswith("单位")  # the region's own unit, not the other clerk's
        }
    return People(store, consoles, units)


def cases(lifecycle: Lifecycle) -> list[tuple[Transition, str]]:
    return [(t, f) for t in lifecycle.transitions for f in t.from_]


def place(people: People, campaign: str, lifecycle: Lifecycle, status: str, region: str) -> int:
    """A nomination of the region's unit, already in `status`, ready for any move out of it."""
    store = people.store
    category = next(iter(catalog().get(campaign).categories)).id
    with store.transaction() as conn:
        clerk_id = conn.execute(sa.select(sa.func.min(users.c.id))).scalar_one()
        record = noms.create_draft(
            conn,
            store.sealer,
            campaign=campaign,
            category=category,
            kind="individual",
            unit_id=people.units[region],
            region=region,
            created_by=clerk_id,
            payload={
                "fields": {"name": "张小三"},
                "facts": {},
                "opinions": opinion_departments(lifecycle, {"nominee_kind": "individual"}),
            },
            now=FIXED_NOW,
            initial_status=status,
        )
        # Every material of the form is there: the entry moves are gated on them.
        form = form_for(catalog().get(campaign), category)
        for material in form.materials if form is not None else []:
            noms.add_attachment(
                conn, store.sealer, nomination_id=record.id, material_key=material.key,
                file_ref="0" * 64, media_type="pdf", size=1, filename="材料.pdf", now=FIXED_NOW,
            )  # fmt: skip
        # A publicity that ended yesterday: it may be closed today.
        yesterday = FIXED_NOW.date() - timedelta(days=1)
        conn.execute(
            sa.update(noms.nominations)
            .where(noms.nominations.c.id == record.id)
            .values(
                publicity_started_on=yesterday - timedelta(days=7), publicity_ends_on=yesterday
            )
        )
    return record.id


def attempt(
    people: People, who: str, nomination_id: int, move: Transition, *, offered: bool
) -> str:
    """`who` has the nomination open and asks for the move (choosing it when offered)."""
    console = people.console(who)
    state = ReviewState(stage=ReviewStage.DETAIL, items=[nomination_id], nomination=nomination_id)
    key = ConversationKey(Channel.CONSOLE.value, console_user(people, who))
    with people.store.conversation(key) as tx:
        tx.save(state.model_dump(mode="json"))
    if offered:
        out = console.send(f"move:{move.id}")
        if console.asking() == "reason":
            out = console.send("材料需要补充完善")
        if console.asking() == "confirm":  # a withdrawal is confirmed (issue 11)
            out = console.send("confirm")
        return out
    return console.send(move.label)


def console_user(people: People, who: str) -> str:
    return who.replace(":", "").replace("_", "")


def status_of(people: People, nomination_id: int) -> str:
    with people.store.reading() as conn:
        record = noms.get(conn, people.store.sealer, nomination_id)
    assert record is not None
    return record.status


def audits(people: People, nomination_id: int) -> list[tuple[str, bool]]:
    with people.store.reading() as conn:
        trail = noms.audit_trail(conn, people.store.sealer)
    return [(a.action, a.allowed) for a in trail if a.nomination_id == nomination_id]


def right_and_wrong(move: Transition, region: str) -> tuple[str, list[str]]:
    mover = move.by[0]
    if mover.role is Role.CLERK:
        right = f"clerk:{region}"
        wrong = ["other_clerk"] + [f"official:{OFFICE_OF[(region, lv)]}" for lv in Level
                                   if (region, lv) in OFFICE_OF][:1]  # fmt: skip
        return right, wrong
    assert mover.level is not None
    right = f"official:{OFFICE_OF[(region, mover.level)]}"
    wrong = [f"clerk:{region}"]
    wrong += [f"official:{OFFICE_OF[(region, lv)]}" for lv in Level
              if lv is not mover.level and (region, lv) in OFFICE_OF]  # fmt: skip
    if ELSEWHERE[mover.level]:
        wrong.append(f"official:{ELSEWHERE[mover.level]}")
    return right, wrong


@pytest.mark.parametrize("campaign", ["jl-skills-2022", "jl-employment-2022"])
def test_every_move_by_the_right_person_only(people: People, campaign: str) -> None:
    lifecycle = catalog().get(campaign).lifecycle
    assert lifecycle is not None
    problems: list[str] = []
    checked = 0
    for move, source in cases(lifecycle):
        region = ENTRY_REGION[move.entry_level or Level.COUNTY]
        right, wrong = right_and_wrong(move, region)
        for who in wrong:
            nomination = place(people, campaign, lifecycle, source, region)
            attempt(people, who, nomination, move, offered=False)
            if status_of(people, nomination) != source:
                problems.append(f"{move.id} from {source}: {who} moved it")
            refusals = [a for a, allowed in audits(people, nomination) if not allowed]
            if not refusals or not set(refusals) <= {"open", move.action.value}:
                problems.append(f"{move.id} from {source}: {who}'s refusal is not audited")
            checked += 1
        nomination = place(people, campaign, lifecycle, source, region)
        out = attempt(people, right, nomination, move, offered=True)
        if status_of(people, nomination) != move.to:
            problems.append(f"{move.id} from {source}: {right} could not: {out[-200:]}")
        elif (move.action.value, True) not in audits(people, nomination):
            problems.append(f"{move.id} from {source}: the move is not audited")
        checked += 1
    assert problems == []
    assert checked > 2 * len(cases(lifecycle))  # every case had a right and a wrong actor
