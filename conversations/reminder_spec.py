"""What a campaign YAML says about its reminders (`reminders:`): when they go and what they say.

The planner (conversations.reminders) reads only this; offsets and texts are data, so a next
year's campaign changes them without code. Texts are jinja2 templates rendered in the sandbox
(conversations.texts.render_text); each topic has a short `title` (a WeChat template field holds
20 characters) and a `body`. The variables each topic's texts may use are listed in
`TOPIC_VARIABLES` and checked when the campaign loads, so a typo fails at start, not on the day.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Topic(StrEnum):
    """What a reminder is about (one text each)."""

    WINDOW_SOON = "window_soon"  # a window opens in 7, 3, 1 days
    WINDOW_OPEN = "window_open"  # each day a window is open
    PUBLICITY_LAST_DAY = "publicity_last_day"  # the last day of a publicity
    PUBLICITY_OUTCOME = "publicity_outcome"  # the next working day: record the outcome
    OPINIONS_MISSING = "opinions_missing"  # opinions still missing before the window
    RETURNED_WAITING = "returned_waiting"  # a returned nomination not yet resubmitted
    WAITING_AT_LEVEL = "waiting_at_level"  # officials: waiting at their level > N working days
    WINDOW_CLOSING = "window_closing"  # officials: nominations at their level, window closing
    DIGEST = "digest"  # officials: the daily digest (composed when it is sent)


# The variables a topic's texts may use. Every topic has campaign (short title) and contact.
_WINDOW = {"window", "start", "end", "place", "note", "strict", "days"}
_NOMINATION = {"code", "nominee", "category", "status", "date"}
TOPIC_VARIABLES: dict[Topic, frozenset[str]] = {
    Topic.WINDOW_SOON: frozenset(_WINDOW),
    Topic.WINDOW_OPEN: frozenset(_WINDOW | {"first", "last"}),
    Topic.PUBLICITY_LAST_DAY: frozenset(_NOMINATION | {"start", "end"}),
    Topic.PUBLICITY_OUTCOME: frozenset(_NOMINATION | {"start", "end"}),
    Topic.OPINIONS_MISSING: frozenset(_NOMINATION | {"window", "start", "missing"}),
    Topic.RETURNED_WAITING: frozenset(_NOMINATION | {"days", "reason"}),
    Topic.WAITING_AT_LEVEL: frozenset(_NOMINATION | {"days", "level"}),
    Topic.WINDOW_CLOSING: frozenset(_NOMINATION | _WINDOW | {"level"}),
    Topic.DIGEST: frozenset({"date", "level", "region", "lines"}),
}
COMMON_VARIABLES = frozenset({"campaign", "contact"})

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReminderText(_Model):
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)


class DigestSpec(_Model):
    """Officials' daily digest: on working days from the notice date until `until`."""

    at: str = "08:30"
    until: dt.date | None = None  # default: the last day of the last window

    @field_validator("at")
    @classmethod
    def _time(cls, value: str) -> str:
        return _daytime(value)


def _daytime(value: str) -> str:
    """A send time outside the quiet hours (nothing is sent 21:00–08:00)."""
    if not _HHMM.match(value):
        raise ValueError(f"'{value}' is not a time HH:MM")
    if not "08:00" <= value < "21:00":
        raise ValueError(f"'{value}' is in the quiet hours: nothing is sent 21:00–08:00")
    return value


class ReminderSpec(_Model):
    at: str = "08:30"  # local time (Asia/Shanghai) reminders go out on their day
    window_days_before: list[int] = Field(default_factory=lambda: [7, 3, 1])
    returned_after_workdays: list[int] = Field(default_factory=lambda: [2, 5])
    opinions_before_workdays: int = Field(default=3, ge=1)
    digest: DigestSpec = Field(default_factory=DigestSpec)
    texts: dict[Topic, ReminderText]

    @field_validator("at")
    @classmethod
    def _time(cls, value: str) -> str:
        return _daytime(value)

    @field_validator("window_days_before", "returned_after_workdays")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values) or len(set(values)) != len(values):
            raise ValueError("offsets must be distinct whole numbers ≥ 1")
        return sorted(values, reverse=True)

    @model_validator(mode="after")
    def _texts(self) -> ReminderSpec:
        missing = [t.value for t in Topic if t not in self.texts]
        if missing:
            raise ValueError(f"texts: no text for {', '.join(missing)}")
        return self

    def time(self) -> dt.time:
        return dt.time.fromisoformat(self.at)


__all__ = [
    "COMMON_VARIABLES",
    "TOPIC_VARIABLES",
    "DigestSpec",
    "ReminderSpec",
    "ReminderText",
    "Topic",
]
