"""The self-check facts of a campaign: what is asked (or derived) to assess eligibility."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conversations.conditions import Condition
from conversations.idnumber import mask_id_number


class FactType(StrEnum):
    """How an answer is typed and parsed."""

    BOOL = "bool"
    INT = "int"
    DATE = "date"
    ENUM = "enum"
    TEXT = "text"
    ID_NUMBER = "id_number"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Model):
    """One option of an enum self-check fact or form field (conversations.forms uses it too)."""

    value: str  # stored, compared in conditions (by position: the order is meaningful)
    label: str  # as printed on the form


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


__all__ = ["Choice", "Fact", "FactDerivation", "FactType"]
