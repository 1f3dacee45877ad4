"""A campaign copy with every status, fact, field and material key renamed behaves as the shipped
one (issue: statuses the YAML seemed to own were hard-coded; a copy renaming `withdrawn` loaded
cleanly and its nominations kept counting against duplicates, quotas and the 20 % cap).

The copies prefix every such key with `zz_` (tests/conversations/test_contracts.py checks no
key is in the code). Every filing golden transcript and the review-chain golden replay on them
and give the same conversation once the prefix is taken out; a renamed final status (the old
`withdrawn`) counts toward no duplicate, quota or cap, as its `counts: []` declares.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from support.console_harness import CAMPAIGNS, FIXED_NOW, SHARED_FILES, ConsoleHarness, regions
from support.filing_golden import UNITS, fill, seeded_tracking_codes
from support.keys import TEST_SEALER

from bot.catalog import load_catalog
from bot.runtime import Runtime
from bot.wiring import console_notifier, workday_end_from
from conversations.assistant import Assistant
from conversations.campaign import Catalog
from conversations.crossrules import check, limits_for
from conversations.effects import describe
from conversations.engine import Engine
from conversations.identity import Level, Role
from conversations.keys import Channel, ConversationKey
from conversations.moves import facts_of
from conversations.policy import rules_inputs
from handlers.console import ConsoleChannel
from notifications.calendar import WorkdayCalendar
from storage import invites, tables
from storage import nominations as noms
from storage.files import FileStore
from storage.quotas import set_quota
from storage.reads import StoreReads
from storage.store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FILINGS = sorted((GOLDEN / "filing").glob("filing_*.txt"))
PREFIX = "zz_"
NOT_KEYS = {"type", "kind"}  # their values are schema words (id_number, gender), never keys


def renamed(data: dict[str, Any]) -> dict[str, Any]:
    """The campaign with every status, fact, form field and material key prefixed, and every
    place that names one (conditions, questions, reuse, sources, transitions, the cap)."""
    keys = {s["key"] for s in data["lifecycle"]["statuses"]} | {f["key"] for f in data["facts"]}
    for form in data["forms"]:
        keys |= {f["key"] for f in form["fields"]} | {m["key"] for m in form["materials"]}

    def walk(node: Any, parent: str | None) -> Any:
        if isinstance(node, dict):
            return {
                (PREFIX + k if parent == "choices" and k in keys else k): walk(v, k)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(item, parent) for item in node]
        if isinstance(node, str) and node in keys and parent not in NOT_KEYS:
            return PREFIX + node
        return node

    out: dict[str, Any] = walk(data, None)
    return out


@pytest.fixture(scope="module")
def renamed_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    folder = tmp_path_factory.mktemp("campaigns")
    for path in sorted(CAMPAIGNS.glob("jl-*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        text = yaml.safe_dump(renamed(data), allow_unicode=True, sort_keys=False)
        assert "withdrawn" in path.read_text(encoding="utf-8")
        (folder / path.name).write_text(text, encoding="utf-8")
    # The reminder defaults name no status or field: they come along as they are.
    (folder / "reminders.yaml").write_text(
        (CAMPAIGNS / "reminders.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    catalog = load_catalog(folder)
    for campaign in catalog:
        assert campaign.lifecycle is not None
        assert all(s.key.startswith(PREFIX) for s in campaign.lifecycle.statuses)
        assert all(f.key.startswith(PREFIX) for form in campaign.forms for f in form.fields)
    return catalog


class Console(ConsoleHarness):
    """The console harness over another catalog (the renamed copies)."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        user: str,
        files_dir: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        engine = Engine(catalog, clock=clock or (lambda: FIXED_NOW))
        runtime = Runtime(
            Assistant(catalog, engine),
            store,
            regions(),
            files=FileStore(files_dir or SHARED_FILES, store.sealer),
            workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
        )
        self.runtime = runtime
        self.effects: list[str] = []
        runtime.effects_seen = lambda effects: self.effects.extend(describe(effects))
        key = ConversationKey(Channel.CONSOLE.value, user)
        self.channel = ConsoleChannel(
            lambda: runtime.open(key),
            lambda text, upload=None: runtime.handle(key, text, upload),
            show_keys=True,
            notifications=console_notifier(store, user, engine.clock),
        )
        self.parts: list[str] = []
        self.last = ""


def clerk(
    store: Store, catalog: Catalog, tmp_path: Path, clock: Callable[[], dt.datetime] | None = None
) -> tuple[Console, dict[str, str]]:
    """As support.filing_golden.clerk_console, on `catalog`."""
    with store.transaction() as conn:
        code = invites.create_invite(
            conn, role=Role.CLERK, region=regions().get("220104"), unit=UNITS["person"],
            now=FIXED_NOW, ttl=dt.timedelta(days=7),
        ).code  # fmt: skip
    pdf = tmp_path / "扫描件.pdf"
    pdf.write_bytes(b"%PDF-1.7\n% scanned copy\n%%EOF")
    console = Console(
        store, catalog, user="clerk", files_dir=tmp_path / "attachments", clock=clock
    )
    return console, {"{INVITE}": code, "{PDF}": str(pdf)}


def keyed(typed: str) -> str:
    """A choice that carries a material or field key (upload:id_card) names the copy's key."""
    for choice in ("upload:", "edit:"):
        if typed.startswith(choice):
            return choice + PREFIX + typed.removeprefix(choice)
    return typed


def inputs(path: Path) -> list[str]:
    return [line[2:] for line in path.read_text("utf-8").splitlines() if line.startswith("> ")]


@pytest.mark.parametrize("path", FILINGS, ids=[p.stem for p in FILINGS])
def test_a_filing_on_the_renamed_copy_is_the_golden_one(
    path: Path, tmp_path: Path, renamed_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'renamed.db'}", sealer=TEST_SEALER)
    try:
        with seeded_tracking_codes(monkeypatch):
            console, placeholders = clerk(store, renamed_catalog, tmp_path)
            parts = [console.open() + console.effect_lines()]
            for line in inputs(path):
                out = console.send(fill(keyed(line), placeholders))
                parts.append(f"> {line}\n{out}{console.effect_lines()}")
    finally:
        store.close()
    actual = "\n\n".join(parts) + "\n"
    assert PREFIX in actual  # the question keys shown are the copy's
    assert actual.replace(PREFIX, "") == path.read_text(encoding="utf-8")


def test_the_review_chain_on_the_renamed_copy_is_the_golden_one(
    tmp_path: Path, renamed_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As tests/handlers/test_review_golden.py: file, follow, return, resubmit, two officials."""
    expected = (GOLDEN / "review" / "review_chain.txt").read_text(encoding="utf-8")
    now = [FIXED_NOW]
    store = Store(f"sqlite:///{tmp_path / 'renamed.db'}", sealer=TEST_SEALER)
    parts: list[str] = []
    offices = {"县级": ("220104", Level.COUNTY), "市级A": ("220100", Level.CITY),
               "市级B": ("220100", Level.CITY)}  # fmt: skip
    try:
        with seeded_tracking_codes(monkeypatch):
            filer, placeholders = clerk(store, renamed_catalog, tmp_path, clock=lambda: now[0])
            filer.open()
            for line in inputs(GOLDEN / "filing" / "filing_technical_expert.txt"):
                filer.send(fill(line, placeholders))
            people: dict[str, Console] = {"经办人": filer}
            people["被推荐人"] = Console(
                store, renamed_catalog, user="nominee", clock=lambda: now[0]
            )
            people["被推荐人"].open()
            for who, (region, level) in offices.items():
                with store.transaction() as conn:
                    code = invites.create_invite(
                        conn, role=Role.OFFICIAL, region=regions().get(region), level=level,
                        now=FIXED_NOW, ttl=dt.timedelta(days=30),
                    ).code  # fmt: skip
                people[who] = Console(
                    store, renamed_catalog, user=f"office{len(people)}", clock=lambda: now[0]
                )
                people[who].open()
                people[who].send(f"/bind {code}")
            for line in expected.splitlines():
                if not (line.startswith("[") and "] > " in line):
                    continue
                who, _, typed = line[1:].partition("] > ")
                if who == "clock":
                    now[0] = dt.datetime.combine(dt.date.fromisoformat(typed), FIXED_NOW.timetz())
                    parts.append(f"[clock] > {typed}")
                    continue
                person = people[who]
                out = person.send(fill(keyed(typed), placeholders))
                parts.append(f"[{who}] > {typed}\n{out}{person.effect_lines()}")
    finally:
        store.close()
    actual = "\n\n".join(parts) + "\n"
    assert "Move(" in actual  # the officials' moves happened on the copy
    assert actual.replace(PREFIX, "") == expected


# --- what a renamed final status counts toward -----------------------------------------------

EMPLOYMENT = "jl-employment-2022"
CATEGORY = "employment_individual"
PERSON = "220104198005060028"


class Rig:
    """A clerk's unit with nominations of the renamed employment copy placed at a status."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store, self.catalog = store, catalog
        with store.transaction() as conn:
            code = invites.create_invite(
                conn, role=Role.CLERK, region=regions().get("220104"), unit=UNITS["person"],
                now=FIXED_NOW, ttl=dt.timedelta(days=7),
            ).code  # fmt: skip
        console = Console(store, catalog, user="clerk")
        console.open()
        assert "绑定成功" in console.send(f"/bind {code}")
        with store.reading() as conn:
            self.unit = conn.execute(sa.select(sa.func.min(tables.units.c.id))).scalar_one()
            self.user = conn.execute(
                sa.select(sa.func.min(tables.memberships.c.user_id))
            ).scalar_one()
        self.count = 0

    def place(self, status: str, *, person: str | None = None, capped: bool = False) -> int:
        """A nomination in `status` (a key of the shipped campaign; the copy's is prefixed)."""
        self.count += 1
        fields = {
            f"{PREFIX}name": "张小三",
            f"{PREFIX}id_number": person or f"2201041980050600{self.count:02d}",
        }
        payload = {"fields": fields, "facts": {}, "opinions": []}
        with self.store.transaction() as conn:
            record = noms.create_draft(
                conn, self.store.sealer, campaign=EMPLOYMENT, category=CATEGORY,
                kind="individual", unit_id=self.unit, region="220104", created_by=self.user,
                payload=payload, now=FIXED_NOW, initial_status=PREFIX + status,
            )  # fmt: skip
            if capped:
                noms.save_payload(
                    conn, self.store.sealer, record.id, payload, county_division=True,
                    now=FIXED_NOW,
                )  # fmt: skip
        return record.id

    def findings(self, nomination: int) -> list[str]:
        """The rules across nominations as a submit and a reviewer see them (moves.gate,
        review._findings): the real reads over the store, the copy's declarations."""
        campaign = self.catalog.get(EMPLOYMENT)
        key = ConversationKey(Channel.CONSOLE.value, "clerk")
        with self.store.conversation(key) as tx:
            reads = StoreReads(
                tx, self.store.sealer, regions(), catalog=self.catalog, now=FIXED_NOW,
                workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
            )  # fmt: skip
            detail = reads.nomination(nomination)
            assert detail is not None
            inputs = rules_inputs(reads, campaign.id, CATEGORY, detail.view.region)
            me = facts_of(campaign, detail, region=inputs.region)
            found = check(me, inputs.others, limits_for(campaign), quota=inputs.quota)
        return [f.rule for f in found]


@pytest.fixture
def rig(store: Store, renamed_catalog: Catalog) -> Rig:
    return Rig(store, renamed_catalog)


def test_a_renamed_withdrawal_frees_its_nominee(rig: Rig) -> None:
    rig.place("withdrawn", person=PERSON)
    candidate = rig.place("draft", person=PERSON)
    assert rig.findings(candidate) == []
    rig.place("county_review", person=PERSON)  # the same person, still on the way
    assert rig.findings(candidate) == ["duplicate_nominee"]


def test_renamed_withdrawals_and_drafts_take_no_quota_place(rig: Rig, store: Store) -> None:
    with store.transaction() as conn:
        set_quota(conn, campaign=EMPLOYMENT, category=CATEGORY, region=regions().get("220104"),
                  places=2, now=FIXED_NOW)  # fmt: skip
    for _ in range(4):
        rig.place("withdrawn")
        rig.place("draft")
    candidate = rig.place("draft")
    assert rig.findings(candidate) == ["quota_ratio_low"]  # 1 of at least 3
    for _ in range(4):
        rig.place("county_review")
    assert rig.findings(candidate) == ["quota_ratio_high"]  # 5 of at most 4


def test_renamed_withdrawals_do_not_fill_the_share_cap(rig: Rig) -> None:
    # 300 awards: 20 % is 60 县处级干部; 60 withdrawn ones leave room for this one.
    for _ in range(60):
        rig.place("withdrawn", capped=True)
    candidate = rig.place("draft", capped=True)
    assert rig.findings(candidate) == []
    for _ in range(60):
        rig.place("city_review", capped=True)
    assert rig.findings(candidate) == ["share_cap"]
