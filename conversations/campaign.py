"""The campaign model: what a campaign YAML may say (loading it: conversations.loader).

A campaign is data (DESIGN §2): adding next year's campaign needs no code change. This module
parses YAML *text*; reading files is the caller's job, so the engine stays free of I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conversations.conditions import Condition, facts_in
from conversations.consistency import ConsistencySpec
from conversations.crossrules import CrossRulesSpec
from conversations.facts import Fact, FactDerivation, FactType
from conversations.forms import Form
from conversations.lifecycle import Lifecycle
from conversations.reminder_spec import ReminderSpec


class RuleSeverity(StrEnum):
    """Hard rules refuse; soft rules ("原则上") send the case to a reviewer."""

    HARD = "hard"
    SOFT = "soft"


class CategoryKind(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Model):
    """One eligibility rule with the clause of the notice it comes from."""

    id: str
    categories: list[str] = Field(min_length=1)
    when: Condition | None = None  # the rule applies only when this holds
    require: Condition
    severity: RuleSeverity = RuleSeverity.HARD
    clause: str
    message: str  # the rule in plain Chinese
    self_declared: bool = False  # a merit the bot cannot verify; the verdict says so
    evidence: str | None = None  # what to prepare to prove it


class MaterialToPrepare(_Model):
    name: str
    note: str | None = None
    when: Condition | None = None


class Category(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    places: int | None = None
    places_note: str | None = None  # e.g. 不超过
    kind: CategoryKind
    questions: list[str] = Field(min_length=1)  # fact keys in the order they are asked
    # Offer only some choices of an enum fact in this category (person_type: its two kinds).
    choices: dict[str, list[str]] = Field(default_factory=dict)
    materials: list[MaterialToPrepare] = Field(default_factory=list)

    @cached_property
    def asked(self) -> frozenset[str]:
        """The questions as a set (the model is frozen: built once)."""
        return frozenset(self.questions)


class Window(_Model):
    key: str
    label: str
    start: dt.date
    end: dt.date
    place: str | None = None
    strict: bool = False  # delivery outside the window is refused
    note: str | None = None
    clause: str | None = None  # where the notice sets the window

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(
                f"window {self.key} ends ({self.end}) before it starts ({self.start})"
            )
        return self

    def is_open(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class Notice(_Model):
    title: str
    number: str | None = None
    issuer: str
    date: dt.date | None = None
    seed: str | None = None  # the source file in shared/seeds


class Campaign(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    short_title: str
    notice: Notice
    as_of: dt.date
    lookback: str | None = None
    contact: str | None = None
    windows: list[Window] = Field(default_factory=list)
    categories: list[Category] = Field(min_length=1)
    facts: list[Fact] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)
    forms: list[Form] = Field(default_factory=list)  # nomination forms (conversations/forms.py)
    lifecycle: Lifecycle | None = None  # statuses, moves and who makes them (DESIGN §3)
    cross_rules: CrossRulesSpec | None = None  # DESIGN §2.3, conversations.crossrules
    reminders: ReminderSpec | None = None  # DESIGN §4, conversations.reminders
    consistency: ConsistencySpec | None = None  # conversations.consistency (issue 11)

    @model_validator(mode="after")
    def _references(self) -> Campaign:
        keys = {f.key for f in self.facts}
        _unique("facts", (f.key for f in self.facts))
        _unique("categories", (c.id for c in self.categories))
        _unique("rules", (r.id for r in self.rules))
        category_ids = {c.id for c in self.categories}
        for i, fact in enumerate(self.facts):
            if fact.relevant is not None:
                _known(f"facts[{i}].relevant", facts_in(fact.relevant), keys)
            if fact.derived is not None:
                _known(f"facts[{i}].derived.sources", fact.derived.sources, keys)
        for i, cat in enumerate(self.categories):
            _known(f"categories[{i}].questions", cat.questions, keys)
            for q in cat.questions:
                if self.fact(q).derived is not None:
                    raise ValueError(
                        f"categories[{i}].questions: '{q}' is derived and cannot be asked"
                    )
            for j, m in enumerate(cat.materials):
                if m.when is not None:
                    _known(f"categories[{i}].materials[{j}].when", facts_in(m.when), keys)
            for key, values in cat.choices.items():
                where = f"categories[{i}].choices.{key}"
                if key not in cat.questions:
                    raise ValueError(f"{where}: '{key}' is not one of this category's questions")
                fact = self.fact(key)
                if fact.type is not FactType.ENUM:
                    raise ValueError(f"{where}: '{key}' is not an enum fact")
                for value in values:
                    if value not in fact.choice_values():
                        raise ValueError(f"{where}: '{value}' is not a choice of fact '{key}'")
        for i, rule in enumerate(self.rules):
            for cat_id in rule.categories:
                if cat_id not in category_ids:
                    raise ValueError(f"rules[{i}] ({rule.id}): unknown category '{cat_id}'")
            _known(f"rules[{i}] ({rule.id}).require", facts_in(rule.require), keys)
            if rule.when is not None:
                _known(f"rules[{i}] ({rule.id}).when", facts_in(rule.when), keys)
        return self  # the checks across forms, lifecycle and cross rules: conversations.loader

    # Indexes built on first use (the model is frozen, so they never go stale; a copy made
    # with `model_copy(update=...)` changes windows only). A step looks facts up ~80 times.
    @cached_property
    def _facts_by_key(self) -> dict[str, Fact]:
        return {f.key: f for f in self.facts}

    @cached_property
    def _rules_by_category(self) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {c.id: [] for c in self.categories}
        for rule in self.rules:
            for cat_id in rule.categories:
                out.setdefault(cat_id, []).append(rule)
        return out

    @cached_property
    def derived_facts(self) -> tuple[Fact, ...]:
        """The facts computed from others (an age from a birth date), in declared order."""
        return tuple(f for f in self.facts if f.derived is not None)

    @cached_property
    def _hard_rules_by_category(self) -> dict[str, tuple[Rule, ...]]:
        return {
            cat: tuple(r for r in rules if r.severity is RuleSeverity.HARD)
            for cat, rules in self._rules_by_category.items()
        }

    def hard_rules_for(self, category_id: str) -> tuple[Rule, ...]:
        return self._hard_rules_by_category.get(category_id, ())

    def fact(self, key: str) -> Fact:
        return self._facts_by_key[key]

    def question_fact(self, category_id: str, key: str) -> Fact:
        """The fact as asked in this category: an enum offers only the category's choices."""
        fact = self.fact(key)
        allowed = self.category(category_id).choices.get(key)
        if allowed is None:
            return fact
        return fact.model_copy(update={"choices": [c for c in fact.choices if c.value in allowed]})

    def has_fact(self, key: str) -> bool:
        return any(f.key == key for f in self.facts)

    def category(self, category_id: str) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)

    def rules_for(self, category_id: str) -> list[Rule]:
        return list(self._rules_by_category.get(category_id, ()))

    def ordinal(self, key: str, value: Any) -> Any:
        """Enum values compare by their position in the declared choices."""
        fact = self.fact(key)
        if fact.type is FactType.ENUM and isinstance(value, str):
            values = fact.choice_values()
            return values.index(value) if value in values else value
        if fact.type is FactType.DATE and isinstance(value, str):
            return dt.date.fromisoformat(value)
        return value


def _unique(what: str, items: Iterable[str]) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{what}: '{item}' appears twice")
        seen.add(item)


def _known(where: str, used: Iterable[str], keys: set[str]) -> None:
    for key in used:
        if key not in keys:
            raise ValueError(f"{where}: unknown fact '{key}'")


class CampaignError(Exception):
    """A campaign file is wrong. The message names the file, the YAML path and the problem."""


class Catalog:
    """The campaigns the bot offers, in a stable order."""

    def __init__(self, campaigns: Iterable[Campaign]) -> None:
        self._campaigns: dict[str, Campaign] = {}
        for c in campaigns:
            if c.id in self._campaigns:
                raise CampaignError(f"campaign id '{c.id}' is defined twice")
            self._campaigns[c.id] = c

    def __iter__(self) -> Any:
        return iter(self._campaigns.values())

    def __len__(self) -> int:
        return len(self._campaigns)

    def get(self, campaign_id: str) -> Campaign:
        return self._campaigns[campaign_id]

    def __contains__(self, campaign_id: object) -> bool:
        return campaign_id in self._campaigns


__all__ = [
    "Campaign",
    "CampaignError",
    "Catalog",
    "Category",
    "CategoryKind",
    "Fact",
    "FactDerivation",
    "FactType",
    "MaterialToPrepare",
    "Rule",
    "RuleSeverity",
    "Window",
    "dt",
]
