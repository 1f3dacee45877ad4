"""What an outbox row of a notice kind says, so each channel can render it its own way.

The outbox knows what kind of notice each row is (`NoticeKind`): a status change, a window
reminder, a deadline alert, a daily digest. A status change's row holds plain text (as it always
has); the other kinds hold a `Notice` as JSON, with a short `title` (a WeChat template field holds
at most 20 characters, a WeCom textcard shows its title in bold), the full `body`, and `when` —
the local date or time the notice is about ("2022-11-03" or "2022-11-03 08:30"), if any.

Channels that show plain text send `notice.text()`; the WeChat and WeCom senders use the parts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class NoticeKind(StrEnum):
    """What a notice is; the outbox row's `kind` (besides `reply`, a step's stored replies)."""

    STATUS = "notice"  # a nomination's status changed (plain text rows, the historic kind)
    WINDOW = "window"  # a campaign window opens soon, is open, closes
    DEADLINE = "deadline"  # a deadline alert: publicity ends, opinions missing, returned waiting
    DIGEST = "digest"  # an official's daily digest

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    NoticeKind.STATUS: "状态变更",
    NoticeKind.WINDOW: "报送提醒",
    NoticeKind.DEADLINE: "截止提醒",
    NoticeKind.DIGEST: "每日汇总",
}

NOTICE_KINDS = frozenset(k.value for k in NoticeKind)


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    title: str  # one line; short (≤ 20 characters reads best everywhere)
    body: str  # the full text, may hold line breaks
    when: str | None = None  # local "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" the notice is about

    def text(self) -> str:
        """The notice as one plain message: the title, then the body."""
        return f"【{self.title}】\n{self.body}" if self.title else self.body

    def dumps(self) -> str:
        return json.dumps(
            {"kind": self.kind.value, "title": self.title, "body": self.body, "when": self.when},
            ensure_ascii=False,
        )

    @classmethod
    def of_row(cls, kind: str, text: str) -> Notice:
        """The notice an outbox row of `kind` holds (a status row holds plain text)."""
        if kind == NoticeKind.STATUS.value:
            return cls(NoticeKind.STATUS, "", text)
        data = json.loads(text)
        return cls(NoticeKind(data["kind"]), data["title"], data["body"], data.get("when"))


__all__ = ["NOTICE_KINDS", "Notice", "NoticeKind"]
