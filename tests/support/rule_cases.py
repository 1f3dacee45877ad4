"""The table of eligibility cases (tests/conversations/fixtures/rule_cases.yaml), loaded once.

Shared by the rule tests and the console-agrees-with-check test; the fixture format is described
at the top of the fixture file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conversations.answers import coerce_value
from conversations.campaign import Campaign, FactType, Rule
from conversations.eligibility import Verdict
from conversations.idnumber import check_digit
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_DIR = ROOT / "campaigns"
FIXTURE = ROOT / "tests" / "conversations" / "fixtures" / "rule_cases.yaml"

CASE_KEYS = frozenset(
    {
        "name",
        "base",
        "set",
        "unset",
        "verdict",
        "failing",
        "missing",
        "ignored",
        "materials",
        "self_declared",
    }
)
CATEGORY_KEYS = frozenset({"bases", "rules", "scenarios"})


@functools.cache
def campaigns() -> dict[str, Campaign]:
    """Every campaign file under campaigns/ (other YAML there, like a calendar, is skipped)."""
    out: dict[str, Campaign] = {}
    for path in sorted(CAMPAIGN_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if isinstance(data, Mapping) and "categories" in data:
            campaign = parse_campaign(text, str(path))
            out[campaign.id] = campaign
    return out


def campaign_rule(campaign: Campaign, rule_id: str) -> Rule:
    return next(r for r in campaign.rules if r.id == rule_id)


@dataclass(frozen=True)
class Case:
    """One row of the table: answers for one category and what assess() must say about them."""

    id: str
    campaign: str
    category: str
    answers: Mapping[str, Any]  # as written in the fixture: base + set - unset
    verdict: str
    failing: list[str]
    missing: list[str]
    ignored: list[str] | None = None
    materials: list[str] | None = None
    self_declared: list[str] | None = None
    rule: str | None = None  # for rule cases: the rule under test ...
    expect: str | None = None  # ... and whether it must pass or fail


def fixture() -> dict[str, Any]:
    data = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{FIXTURE}: expected a mapping of campaign ids"
    return data


def _case(raw: Mapping[str, Any], *, where: str, bases: Mapping[str, Any], **extra: Any) -> Case:
    unknown = set(raw) - CASE_KEYS
    assert not unknown, f"{where}: unknown keys {sorted(unknown)}"
    assert raw.get("verdict") in {v.value for v in Verdict}, f"{where}: verdict is required"
    base_name = raw.get("base", next(iter(bases)))
    assert base_name in bases, f"{where}: unknown base {base_name!r}"
    answers = {**bases[base_name], **(raw.get("set") or {})}
    for key in raw.get("unset") or []:
        assert key in answers, f"{where}: unset {key!r} is not answered in base {base_name!r}"
        del answers[key]
    return Case(
        answers=answers,
        verdict=raw["verdict"],
        failing=list(raw.get("failing") or []),
        missing=list(raw.get("missing") or []),
        ignored=raw.get("ignored"),
        materials=raw.get("materials"),
        self_declared=raw.get("self_declared"),
        **extra,
    )


def iter_cases() -> Iterator[Case]:
    for campaign_id, categories in fixture().items():
        for category_id, entry in categories.items():
            where = f"{campaign_id}/{category_id}"
            unknown = set(entry) - CATEGORY_KEYS
            assert not unknown, f"{where}: unknown keys {sorted(unknown)}"
            bases = entry.get("bases") or {}
            common = {"campaign": campaign_id, "category": category_id}
            for rule_id, by_expect in (entry.get("rules") or {}).items():
                assert set(by_expect) <= {"pass", "fail"}, f"{where}/{rule_id}: pass or fail only"
                for expect in ("pass", "fail"):
                    for i, raw in enumerate(by_expect.get(expect) or []):
                        name = f"{where}/{rule_id}/{expect}[{i}]"
                        if raw.get("name"):
                            name += f" {raw['name']}"
                        yield _case(
                            raw,
                            where=name,
                            bases=bases,
                            id=name,
                            rule=rule_id,
                            expect=expect,
                            **common,
                        )
            for raw in entry.get("scenarios") or []:
                assert raw.get("name"), f"{where}: a scenario needs a name"
                name = f"{where}/{raw['name']}"
                yield _case(raw, where=name, bases=bases, id=name, **common)


def iter_bases() -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    for campaign_id, categories in fixture().items():
        for category_id, entry in categories.items():
            for name, answers in (entry.get("bases") or {}).items():
                yield campaign_id, category_id, name, answers


CASES = list(iter_cases())
BASES = list(iter_bases())


def stored_answers(campaign: Campaign, written: Mapping[str, Any]) -> dict[str, Any]:
    """Fixture values checked and stored as the `check` command stores them.

    An id_number written as 17 digits and "?" gets its GB 11643 check digit here.
    """
    out = {}
    for key, value in written.items():
        fact = campaign.fact(key)
        if fact.type is FactType.ID_NUMBER and isinstance(value, str) and value.endswith("?"):
            value = value[:-1] + check_digit(value[:-1])
        out[key] = coerce_value(fact, value, today=campaign.as_of)
    return out
