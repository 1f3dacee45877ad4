"""Declarative conditions: a small tree evaluated with three-valued logic, never with `eval`.

A condition is one of
    {all: [cond, ...]}          true when every part is true
    {any: [cond, ...]}          true when some part is true
    {not: cond}                 the opposite
    {fact: KEY, OP: VALUE}      a comparison, OP one of eq ne lt le gt ge in
    {fact: KEY, answered: bool} whether the fact has a value

An unanswered fact makes a comparison *unknown* (None). `all` is false as soon as one part is false
even when others are unknown, and `any` is true as soon as one part is true: so a hard failure is
seen before every question is answered (DESIGN §2.2). Enum facts compare by their declared order:
`{fact: skill_level, ge: senior_technician}` means "高级技师 or above".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in"]
OPS: tuple[Op, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "in")


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Compare(_Node):
    """Compare one fact with a constant."""

    fact: str
    op: Op
    value: Any

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, dict) and "op" not in data:
            ops = [k for k in data if k in OPS]
            if len(ops) != 1:
                raise ValueError(f"a comparison needs exactly one operator of {', '.join(OPS)}")
            rest = {k: v for k, v in data.items() if k != ops[0]}
            return {**rest, "op": ops[0], "value": data[ops[0]]}
        return data


class Answered(_Node):
    """True when the fact has a value."""

    fact: str
    answered: bool


class All(_Node):
    all_: list[Condition] = Field(alias="all", min_length=1)


class Any_(_Node):
    any_: list[Condition] = Field(alias="any", min_length=1)


class Not(_Node):
    not_: Condition = Field(alias="not")


def _discriminate(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("all", "any", "not"):
            if key in data:
                return key
        return "answered" if "answered" in data else "compare"
    for tag, cls in (("all", All), ("any", Any_), ("not", Not), ("answered", Answered)):
        if isinstance(data, cls):
            return tag
    return "compare"


Condition = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Answered, Tag("answered")]
    | Annotated[Compare, Tag("compare")],
    Discriminator(_discriminate),
]
All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()


def facts_in(cond: Condition) -> Iterator[str]:
    """Every fact key a condition mentions, in order of appearance (with repeats)."""
    if isinstance(cond, All):
        for part in cond.all_:
            yield from facts_in(part)
    elif isinstance(cond, Any_):
        for part in cond.any_:
            yield from facts_in(part)
    elif isinstance(cond, Not):
        yield from facts_in(cond.not_)
    else:
        yield cond.fact


@dataclass(frozen=True, slots=True)
class Outcome:
    """A condition's value — True, False or None (unknown) — and the leaf that decided it."""

    value: bool | None
    fact: str | None = None  # the fact whose answer decided the outcome (first deciding leaf)


Ordinal = Callable[[str, Any], Any]
"""Maps (fact key, value) to something comparable: enum values to their position in the order."""


def evaluate(cond: Condition, facts: Mapping[str, Any], ordinal: Ordinal) -> Outcome:
    """Evaluate `cond` over `facts` (missing key = unknown)."""
    if isinstance(cond, All):
        unknown: str | None = None
        for part in cond.all_:
            out = evaluate(part, facts, ordinal)
            if out.value is False:
                return out
            if out.value is None and unknown is None:
                unknown = out.fact
        return Outcome(None, unknown) if unknown is not None else Outcome(True, _first(cond))
    if isinstance(cond, Any_):
        unknown = None
        first_false: str | None = None
        for part in cond.any_:
            out = evaluate(part, facts, ordinal)
            if out.value is True:
                return out
            if out.value is None and unknown is None:
                unknown = out.fact
            if out.value is False and first_false is None:
                first_false = out.fact
        return Outcome(None, unknown) if unknown is not None else Outcome(False, first_false)
    if isinstance(cond, Not):
        out = evaluate(cond.not_, facts, ordinal)
        return Outcome(None if out.value is None else not out.value, out.fact)
    if isinstance(cond, Answered):
        return Outcome((facts.get(cond.fact) is not None) == cond.answered, cond.fact)
    value = facts.get(cond.fact)
    if value is None:
        return Outcome(None, cond.fact)
    return Outcome(_compare(cond, value, ordinal), cond.fact)


def _first(cond: Condition) -> str | None:
    return next(facts_in(cond), None)


def _compare(cond: Compare, value: Any, ordinal: Ordinal) -> bool:
    left = ordinal(cond.fact, value)
    if cond.op == "in":
        return any(left == ordinal(cond.fact, v) for v in cond.value)
    right = ordinal(cond.fact, cond.value)
    match cond.op:
        case "eq":
            return bool(left == right)
        case "ne":
            return bool(left != right)
        case "lt":
            return bool(left < right)
        case "le":
            return bool(left <= right)
        case "gt":
            return bool(left > right)
        case _:
            return bool(left >= right)
