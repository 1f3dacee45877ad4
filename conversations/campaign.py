"""The campaign model: what a campaign YAML may say, checked when it is loaded.

A campaign is data (DESIGN §2): adding next year's campaign needs no code change. This module
parses YAML *text*; reading files is the caller's job, so the engine stays free of I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from conversations.conditions import Condition, facts_in
from conversations.crossrules import CrossRulesSpec
from conversations.forms import Choice, Form, check_constants, check_forms, form_for
from conversations.idnumber import mask_id_number
from conversations.lifecycle import NOMINEE_KIND, Lifecycle, check_lifecycle, facts_to_decide


class FactType(StrEnum):
    """How an answer is typed and parsed."""

    BOOL = "bool"
    INT = "int"
    DATE = "date"
    ENUM = "enum"
    TEXT = "text"
    ID_NUMBER = "id_number"


class RuleSeverity(StrEnum):
    """Hard rules refuse; soft rules ("原则上") send the case to a reviewer."""

    HARD = "hard"
    SOFT = "soft"


class CategoryKind(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactDerivation(_Model):
    """How a fact that is never asked is computed from others."""

    kind: Literal["age_at_as_of"]
    sources: list[str] = Field(min_length=1)  # tried in order: a date fact or an id_number fact


class Fact(_Model):
    """One eligibility fact: a question to ask, or a value derived from other answers."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FactType
    label: str  # short name for summaries, e.g. 从事本职业年限
    question: str | None = None
    help: str | None = None
    choices: list[Choice] = Field(default_factory=list)
    min: int | dt.date | None = None
    max: int | dt.date | None = None
    min_message: str | None = None
    max_message: str | None = None
    max_length: int = 200
    relevant: Condition | None = None
    derived: FactDerivation | None = None
    sensitive: bool = False  # disciplinary answers, ID numbers: masked in logs

    @model_validator(mode="after")
    def _check(self) -> Fact:
        if self.derived is None and not self.question:
            raise ValueError("a fact that is not derived needs a question")
        if self.type is FactType.ENUM and not self.choices:
            raise ValueError("an enum fact needs choices")
        if self.type is not FactType.ENUM and self.choices:
            raise ValueError(f"choices are only for enum facts, not {self.type.value}")
        if self.type not in (FactType.INT, FactType.DATE) and (
            self.min is not None or self.max is not None
        ):
            raise ValueError("min/max are only for int and date facts")
        return self

    def choice_values(self) -> list[str]:
        return [c.value for c in self.choices]

    def label_of(self, value: Any) -> str:
        """The Chinese text for a stored value, as the user sees it."""
        if value is None:
            return "（未回答）"
        if self.type is FactType.BOOL:
            return "是" if value else "否"
        if self.type is FactType.ENUM:
            for c in self.choices:
                if c.value == value:
                    return c.label
        if self.type is FactType.ID_NUMBER:
            return mask_id_number(str(value))
        return str(value)


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


class Window(_Model):
    key: str
    label: str
    start: dt.date
    end: dt.date
    place: str | None = None
    strict: bool = False  # delivery outside the window is refused
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(
                f"window {self.key} ends ({self.end}) before it starts ({self.start})"
            )
        return self


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
        if self.lifecycle is not None:
            check_lifecycle(self.lifecycle)
        if self.cross_rules is not None:
            self.cross_rules.check()
            _check_cap(self)
        return self

    @model_validator(mode="after")
    def _forms(self) -> Campaign:
        check_forms(self)  # categories, fields and facts the forms name; see check_forms
        _check_opinion_facts(self)
        return self

    def fact(self, key: str) -> Fact:
        for f in self.facts:
            if f.key == key:
                return f
        raise KeyError(key)

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
        return [r for r in self.rules if category_id in r.categories]

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


def _check_cap(campaign: Campaign) -> None:
    """`cross_rules.cap` names a self-check enum fact and one of its choices (the filing stamps a
    nomination as capped from that answer: conversations.crossrules.is_capped)."""
    cap = campaign.cross_rules.cap if campaign.cross_rules is not None else None
    if cap is None:
        return
    if not campaign.has_fact(cap.fact):
        raise ValueError(f"cross_rules.cap.fact: unknown fact '{cap.fact}'")
    fact = campaign.fact(cap.fact)
    if fact.type is not FactType.ENUM:
        raise ValueError(f"cross_rules.cap.fact: '{cap.fact}' is {fact.type.value}, not an enum")
    if cap.value not in fact.choice_values():
        raise ValueError(f"cross_rules.cap.value: '{cap.value}' is not a choice of '{cap.fact}'")


def _check_opinion_facts(campaign: Campaign) -> None:
    """Every fact an opinion rule needs to decide a category's nominees is produced by that
    category's form or its self-check (三、（一）; issue: every individual was asked for all ten
    departments because `unit_type`, `is_non_public` and `is_unit_head` were never collected).

    Per category, `nominee_kind` is known (its kind) and decides parts of a rule; the facts the
    rest tests must be a field of the form serving the category or a fact its self-check asks
    (or derives). Their constants must be values those fields or facts can take.
    """
    lifecycle = campaign.lifecycle
    if lifecycle is None:
        return
    facts = {f.key: f for f in campaign.facts}
    for category in campaign.categories:
        form = form_for(campaign, category.id)
        asked = set(category.questions)
        derived = {
            f.key for f in campaign.facts if f.derived and asked.intersection(f.derived.sources)
        }
        fields = {f.key for f in form.fields} if form is not None else set()
        produced = fields | asked | derived
        kind = {NOMINEE_KIND: category.kind.value}
        for i, rule in enumerate(lifecycle.opinions):
            if rule.when is None:
                continue
            where = f"lifecycle.opinions[{i}].when"
            needed = facts_to_decide(rule.when, kind)
            for key in needed:
                if key not in produced:
                    by_form = (
                        f"form '{form.id}'" if form is not None else "any form (none serves it)"
                    )
                    raise ValueError(
                        f"{where}: fact '{key}' is produced neither by {by_form} nor by the"
                        f" self-check of category '{category.id}' ({category.kind.value}):"
                        " the departments to consult about its nominees cannot be decided"
                    )
            check_constants(rule.when, form, facts, where, only=needed)


class CampaignError(Exception):
    """A campaign file is wrong. The message names the file, the YAML path and the problem."""


_ADAPTER = TypeAdapter(Campaign)
# libyaml's safe loader is ~20x faster than the pure-Python one; same documents, same errors.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_campaign(text: str, source: str) -> Campaign:
    """Parse and check one campaign from YAML text; `source` names the file in error messages."""
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CampaignError(f"{source}:{where} invalid YAML: {problem}") from None
    if not isinstance(data, Mapping):
        raise CampaignError(f"{source}: a campaign file must be a mapping at the top level")
    try:
        campaign = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _yaml_path(err["loc"], data)
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        where = f"{path}: " if path else ""  # whole-file checks name their own path
        raise CampaignError(f"{source}: {where}{msg}{more}") from None
    _check_enum_constants(campaign, source)
    return campaign


def _yaml_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn pydantic's location into a YAML path, dropping union tags that are not in the file."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            parts.append(f"[{item}]")
            node = node[item] if item < len(node) else None
        elif isinstance(node, Mapping) and item in node:
            parts.append(f".{item}" if parts else str(item))
            node = node[item]
        elif isinstance(item, str) and item.endswith("_") and isinstance(node, Mapping):
            key = item.rstrip("_")
            parts.append(f".{key}" if parts else key)
            node = node.get(key)
        elif isinstance(node, Mapping) and isinstance(item, str) and item not in node:
            # a missing field, or a union tag pydantic adds (compare, all, ...): keep real fields
            if item in ("compare", "all", "any", "not", "answered", "op", "value"):
                continue
            parts.append(f".{item}" if parts else str(item))
            node = None
    return "".join(parts)


def _check_enum_constants(campaign: Campaign, source: str) -> None:
    """A condition comparing an enum fact with a value it does not have is a load error."""
    from conversations.conditions import All, Any_, Compare, Not

    def walk(cond: Condition, where: str) -> None:
        if isinstance(cond, All):
            for part in cond.all_:
                walk(part, where)
        elif isinstance(cond, Any_):
            for part in cond.any_:
                walk(part, where)
        elif isinstance(cond, Not):
            walk(cond.not_, where)
        elif isinstance(cond, Compare):
            fact = campaign.fact(cond.fact)
            values = cond.value if cond.op == "in" else [cond.value]
            if fact.type is FactType.ENUM:
                for v in values:
                    if v not in fact.choice_values():
                        raise CampaignError(
                            f"{source}: {where}: '{v}' is not a choice of fact '{fact.key}'"
                        )
            else:
                for v in values:
                    if not _constant_fits(fact.type, v):
                        raise CampaignError(
                            f"{source}: {where}: fact '{fact.key}' is {fact.type.value},"
                            f" compared with {v!r}"
                        )

    for i, rule in enumerate(campaign.rules):
        walk(rule.require, f"rules[{i}] ({rule.id}).require")
        if rule.when is not None:
            walk(rule.when, f"rules[{i}] ({rule.id}).when")
    for i, fact in enumerate(campaign.facts):
        if fact.relevant is not None:
            walk(fact.relevant, f"facts[{i}].relevant")
    for i, cat in enumerate(campaign.categories):
        for j, m in enumerate(cat.materials):
            if m.when is not None:
                walk(m.when, f"categories[{i}].materials[{j}].when")


def _constant_fits(kind: FactType, value: Any) -> bool:
    """Whether a constant in a condition can be compared with answers of this type."""
    if kind is FactType.BOOL:
        return isinstance(value, bool)
    if kind is FactType.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is FactType.DATE:
        if isinstance(value, dt.date):
            return True
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return False
        return True
    return isinstance(value, str)


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
    "parse_campaign",
]
