"""The campaign loader: YAML text to a `Campaign`, with every load-time cross-check.

The models (campaign, facts, forms, lifecycle, crossrules) each check what they can see alone;
what spans several of them (a form against the categories and facts, an opinion rule against
what the forms collect, the share cap against its fact) is checked here, after the models are
built. Reading files is the caller's job (bot/catalog.py), so this stays free of I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import TypeAdapter, ValidationError

from conversations.campaign import Campaign, CampaignError
from conversations.conditions import All, Any_, Compare, Condition, Not, facts_in
from conversations.consistency import check_spec as check_consistency
from conversations.facts import FactType
from conversations.forms import FieldType, Form, FormField, FormKind, form_for
from conversations.lifecycle import NOMINEE_KIND, check_lifecycle, facts_to_decide
from conversations.material_stages import check_stages
from conversations.reminder_spec import COMMON_VARIABLES, TOPIC_VARIABLES
from conversations.texts import text_variables

# A form's contracts (FormField.identifies/names): why each is needed, which types may carry it.
_CONTRACTS = {
    "identifies": "the rules across nominations tell nominees apart by it",
    "names": "lists show the nominee by it",
}
_CONTRACT_TYPES = {
    "identifies": frozenset({FieldType.ID_NUMBER, FieldType.USCC, FieldType.TEXT}),
    "names": frozenset({FieldType.TEXT}),
}


def check_campaign(campaign: Campaign) -> None:
    """The checks across the parts of a campaign, in the order they report; raise ValueError
    naming the YAML path."""
    if campaign.lifecycle is not None:
        check_lifecycle(campaign.lifecycle)
    if campaign.cross_rules is not None:
        campaign.cross_rules.check()
        _check_cap(campaign)
    check_forms(campaign)  # categories, fields and facts the forms name; see check_forms
    _check_opinion_facts(campaign)
    _check_windows(campaign)
    check_consistency(campaign)


def _check_windows(campaign: Campaign) -> None:
    """Window keys are unique; a move bound to a window names one; reminder texts use only the
    variables their topic has (conversations.reminder_spec.TOPIC_VARIABLES)."""
    keys = [w.key for w in campaign.windows]
    if len(set(keys)) != len(keys):
        raise ValueError("windows: a key appears twice")
    if campaign.lifecycle is not None:
        for i, t in enumerate(campaign.lifecycle.transitions):
            if t.window is not None and t.window not in keys:
                raise ValueError(f"lifecycle.transitions[{i}].window: unknown window '{t.window}'")
    if campaign.reminders is None:
        return
    for topic, text in campaign.reminders.texts.items():
        allowed = TOPIC_VARIABLES[topic] | COMMON_VARIABLES
        for part in ("title", "body"):
            try:
                used = text_variables(getattr(text, part))
            except TemplateSyntaxError as exc:
                raise ValueError(f"reminders.texts.{topic.value}.{part}: {exc.message}") from None
            unknown = sorted(used - allowed)
            if unknown:
                raise ValueError(
                    f"reminders.texts.{topic.value}.{part}: unknown variable "
                    f"{', '.join(unknown)} (this text may use {', '.join(sorted(allowed))})"
                )


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


_KIND_OF_CATEGORY = {FormKind.PERSON: "individual", FormKind.UNIT: "collective"}


def check_forms(campaign: Campaign) -> None:
    """Check a campaign's forms against its categories and facts; raise ValueError naming the
    YAML path.

    - a form names existing categories of its kind (person → individual, unit → collective);
    - once any form is declared, every category has exactly one form;
    - `relevant` and `required_when` name fields of the form or facts of the campaign; a field
      they name must come before the field they make relevant; enum and bool constants must be
      values the field or fact can have;
    - `reuse` names a fact of the same type. An enum field that reuses an enum fact must list the
      fact's choice values first, in the fact's order (labels may differ), and may add more after
      them (an individual's employer may be 无工作单位, a value no unit's self-check gives): every
      self-check answer is then a valid form value, and order comparisons mean the same in both
      places;
    - a field named like a fact must reuse that fact, so that a condition on that name means the
      same thing whether it reads the form or the self-check;
    - exactly one field `identifies` the nominee and one `names` it (the code finds them by
      these flags, never by their keys), each required and asked of every nominee;
    - a material's `required_by` names a stage of the lifecycle the unit's clerk can attach it
      in (conversations.material_stages.check_stages).
    """
    if not campaign.forms:
        return
    facts = {f.key: f for f in campaign.facts}
    categories = {c.id: c for c in campaign.categories}
    _unique("forms", (f.id for f in campaign.forms))
    owner: dict[str, str] = {}
    for i, form in enumerate(campaign.forms):
        at = f"forms[{i}] ({form.id})"
        for cat_id in form.categories:
            category = categories.get(cat_id)
            if category is None:
                raise ValueError(f"{at}.categories: unknown category '{cat_id}'")
            if category.kind.value != _KIND_OF_CATEGORY[form.kind]:
                raise ValueError(
                    f"{at}.categories: '{cat_id}' is {category.kind.value},"
                    f" a {form.kind.value} form serves {_KIND_OF_CATEGORY[form.kind]} categories"
                )
            if cat_id in owner:
                raise ValueError(f"{at}.categories: '{cat_id}' already has form '{owner[cat_id]}'")
            owner[cat_id] = form.id
        before: set[str] = set()
        for j, f in enumerate(form.fields):
            where = f"{at}.fields[{j}] ({f.key})"
            fact = facts.get(f.key)
            if fact is not None and f.reuse != f.key:
                raise ValueError(f"{where}: a field named like fact '{f.key}' must reuse it")
            if f.reuse is not None:
                _check_reuse(f, facts, f"{where}.reuse")
            if f.relevant is not None:
                _check_condition(f.relevant, form, facts, f"{where}.relevant", before=before)
            before.add(f.key)
        _check_contracts(form, at)
        for j, m in enumerate(form.materials):
            if m.required_when is not None:
                where = f"{at}.materials[{j}] ({m.key}).required_when"
                _check_condition(m.required_when, form, facts, where, before=None)
        check_stages(form, campaign.lifecycle, at)  # required_by names a stage of the lifecycle
    for i, category in enumerate(campaign.categories):
        if category.id not in owner:
            raise ValueError(f"categories[{i}] ({category.id}): no form serves this category")


def _unique(what: str, items: Iterable[str]) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{what}: '{item}' appears twice")
        seen.add(item)


def _check_contracts(form: Form, at: str) -> None:
    """Exactly one field `identifies` the nominee and one `names` it, asked of every nominee."""
    for flag, why in _CONTRACTS.items():
        flagged = [(i, f) for i, f in enumerate(form.fields) if getattr(f, flag)]
        if len(flagged) != 1:
            found = ", ".join(f.key for _, f in flagged) or "none"
            raise ValueError(
                f"{at}.fields: exactly one field has `{flag}: true` ({why}), not {found}"
            )
        i, f = flagged[0]
        where = f"{at}.fields[{i}] ({f.key}).{flag}"
        if f.type not in _CONTRACT_TYPES[flag]:
            kinds = ", ".join(sorted(t.value for t in _CONTRACT_TYPES[flag]))
            raise ValueError(f"{where}: a {f.type.value} field cannot; it must be {kinds}")
        if not f.required or f.relevant is not None:
            raise ValueError(f"{where}: the field must be asked of every nominee")


def _check_reuse(f: FormField, facts: Mapping[str, Any], where: str) -> None:
    fact = facts.get(f.reuse or "")
    if fact is None:
        raise ValueError(f"{where}: unknown fact '{f.reuse}'")
    if fact.type.value != f.type.value:
        raise ValueError(
            f"{where}: fact '{fact.key}' is {fact.type.value}, the field is {f.type.value}"
        )
    expected = fact.choice_values()
    if f.type is FieldType.ENUM and f.choice_values()[: len(expected)] != expected:
        raise ValueError(
            f"{where}: choices {f.choice_values()} differ from fact '{fact.key}'"
            f" {expected} (the fact's values first, in the same order, are required)"
        )


def _check_condition(
    cond: Condition,
    form: Form,
    facts: Mapping[str, Any],
    where: str,
    *,
    before: set[str] | None,
) -> None:
    fields = {f.key: f for f in form.fields}
    for key in facts_in(cond):
        if key in fields:
            if before is not None and key not in before:
                raise ValueError(f"{where}: field '{key}' is not asked before this one")
        elif key not in facts:
            raise ValueError(f"{where}: unknown field or fact '{key}'")
    check_constants(cond, form, facts, where)


def check_constants(
    cond: Condition,
    form: Form | None,
    facts: Mapping[str, Any],
    where: str,
    *,
    only: Iterable[str] | None = None,
) -> None:
    """Every constant `cond` compares a field or fact with is a value it can have: an enum's
    choice, a bool for a bool, … The form's field wins over the fact of the same name; with
    `only`, comparisons of other names are not checked (they must be known otherwise)."""
    fields = {f.key: f for f in form.fields} if form is not None else {}
    names = None if only is None else set(only)
    for leaf in _comparisons(cond):
        if names is not None and leaf.fact not in names:
            continue
        values = leaf.value if leaf.op == "in" else [leaf.value]
        if leaf.op == "in" and not isinstance(leaf.value, list):
            raise ValueError(f"{where}: 'in' needs a list")
        field = fields.get(leaf.fact)
        if field is not None:
            kind = field.type.value
            choices = field.choice_values() if field.type is FieldType.ENUM else None
            if field.type is FieldType.LIST:
                raise ValueError(f"{where}: list field '{field.key}' cannot be compared")
        else:
            fact = facts[leaf.fact]
            kind = fact.type.value
            choices = fact.choice_values() if kind == "enum" else None
        for v in values:
            if choices is not None:
                if v not in choices:
                    raise ValueError(f"{where}: '{v}' is not a choice of '{leaf.fact}'")
            elif not _fits(kind, v):
                raise ValueError(f"{where}: '{leaf.fact}' is {kind}, compared with {v!r}")


def _comparisons(cond: Condition) -> Iterator[Compare]:
    if isinstance(cond, All):
        for part in cond.all_:
            yield from _comparisons(part)
    elif isinstance(cond, Any_):
        for part in cond.any_:
            yield from _comparisons(part)
    elif isinstance(cond, Not):
        yield from _comparisons(cond.not_)
    elif isinstance(cond, Compare):
        yield cond


def _fits(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "date":
        if isinstance(value, dt.date):
            return True
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return False
        return True
    return isinstance(value, str)


_ADAPTER = TypeAdapter(Campaign)
# libyaml's safe loader is ~20x faster than the pure-Python one; same documents, same errors.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text to data, with duplicate keys refused; errors name `source` and the line."""
    try:
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CampaignError(f"{source}:{where} invalid YAML: {problem}") from None


def parse_campaign(
    text: str, source: str, *, reminders: Mapping[str, Any] | None = None
) -> Campaign:
    """Parse and check one campaign from YAML text; `source` names the file in error messages.

    `reminders` is the defaults file's mapping (campaigns/reminders.yaml): the campaign's own
    `reminders:` keys win over it, its `texts` topic by topic.
    """
    data = parse_yaml(text, source)
    if not isinstance(data, Mapping):
        raise CampaignError(f"{source}: a campaign file must be a mapping at the top level")
    if reminders is not None:
        own = data.get("reminders") or {}
        if not isinstance(own, Mapping):
            raise CampaignError(f"{source}: reminders: must be a mapping")
        texts = {**(reminders.get("texts") or {}), **(own.get("texts") or {})}
        data = {**data, "reminders": {**reminders, **own, "texts": texts}}
    try:
        campaign = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _yaml_path(err["loc"], data)
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        where = f"{path}: " if path else ""  # whole-file checks name their own path
        raise CampaignError(f"{source}: {where}{msg}{more}") from None
    try:
        check_campaign(campaign)
    except ValueError as exc:  # a whole-campaign check: its message names its own YAML path
        raise CampaignError(f"{source}: {exc}") from None
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


__all__ = ["CampaignError", "check_campaign", "check_constants", "check_forms", "parse_campaign"]
