"""Reminders, planned (DESIGN §4): what is due, to whom, when — a pure function of the state.

`plan(facts, workdays)` derives every reminder a campaign's state calls for: its windows (7, 3, 1
days before each opens, each day it is open, a strict window's warning), each nomination's
deadlines (a publicity's last day and the next working day's prompt to record its outcome,
opinions still missing before the window, a return not resubmitted), the officials' alerts
(waiting at their level too long, a window closing on nominations at their level) and their
daily digests. Offsets and texts are the campaign's (`reminders:`, conversations.reminder_spec).

Each reminder has a stable key — what, for whom, for which day, and the version of the plan it
was made from (the nomination's version, or the window's) — so a re-plan that yields the same
reminder keeps it, and a stage change or a moved window yields new keys while the old ones are
superseded: nothing stale is sent. The one writer stores a plan (storage.reminders.apply_plan)
for the part of the state a step changed (`Scope`, returned by the step as a `Replan` effect).

Times are Asia/Shanghai (UTC+8, no daylight saving since 1991, so a fixed offset is exact);
nothing is due 21:00–08:00 (moved to 08:00). Working days come from `workdays`, which raises
`PortRefusal` for a year the calendar lacks: that reminder is `Unplanned`, with the reason —
never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from conversations.campaign import Campaign, Window
from conversations.crossrules import NominationFacts, limits_for
from conversations.effects import Scope
from conversations.identity import LEVEL_NAMES, Level
from conversations.lifecycle import Lifecycle, StatusKind
from conversations.reads import PortRefusal, QuotaView
from conversations.reminder_spec import ReminderSpec, Topic
from conversations.texts import render_text

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
QUIET_FROM = dt.time(21, 0)  # nothing is sent from 21:00 ...
QUIET_UNTIL = dt.time(8, 0)  # ... until 08:00

# What the outbox calls each topic's notices (notifications.notice.NoticeKind values).
KIND_WINDOW, KIND_DEADLINE, KIND_DIGEST = "window", "deadline", "digest"
KIND_OF_TOPIC: dict[Topic, str] = {
    Topic.WINDOW_SOON: KIND_WINDOW,
    Topic.WINDOW_OPEN: KIND_WINDOW,
    Topic.DIGEST: KIND_DIGEST,
}
REMINDER_KINDS = (KIND_WINDOW, KIND_DEADLINE, KIND_DIGEST)
KIND_LABELS = {
    KIND_WINDOW: "报送时间提醒",
    KIND_DEADLINE: "截止与待办提醒",
    KIND_DIGEST: "每日汇总",
}
ALL_KINDS = "all"  # a preference for every kind of a campaign


def kind_of(topic: Topic) -> str:
    return KIND_OF_TOPIC.get(topic, KIND_DEADLINE)


class Workdays(Protocol):
    """The working-day calendar (notifications.calendar behind a port); raises PortRefusal."""

    def is_workday(self, day: dt.date) -> bool: ...

    def nth_workday(self, start: dt.date, n: int) -> dt.date: ...


# ----- what the planner is given ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanNomination:
    """A nomination as the planner sees it: its stage, and who is told about it."""

    id: int
    version: int
    category: str
    status: str
    since: dt.datetime  # when it entered `status` (aware)
    tracking_code: str
    nominee: str  # masked
    publicity: tuple[dt.date, dt.date] | None = None
    missing_opinions: tuple[str, ...] = ()
    return_reason: str | None = None
    clerks: frozenset[int] = frozenset()  # the unit's clerks (user ids)
    officials: Mapping[str, frozenset[int]] = field(default_factory=dict)  # level → over region


@dataclass(frozen=True, slots=True)
class DigestReader:
    """An official who gets the daily digest: where they sit."""

    level: Level
    region: str  # code
    region_name: str


@dataclass(frozen=True, slots=True)
class PlanFacts:
    campaign: Campaign
    windows: tuple[Window, ...]  # as in force (the YAML's, moved by an admin)
    window_versions: Mapping[str, int]  # window key → how often an admin moved it
    now: dt.datetime  # aware
    window_audience: frozenset[int] = frozenset()  # clerks and applicants who asked
    digest_audience: Mapping[int, DigestReader] = field(default_factory=dict)
    off: Mapping[int, frozenset[str]] = field(default_factory=dict)  # user → kinds turned off
    nominations: tuple[PlanNomination, ...] = ()
    waiting_workdays: int = 5  # officials are alerted past this many working days at their level


# ----- what it gives back -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reminder:
    key: str  # stable: what, for whom, for which day, which version of the plan
    topic: Topic
    user_id: int
    campaign: str
    nomination: int | None
    due: dt.datetime  # aware; never in quiet hours
    deadline: dt.datetime  # past this it is no use: skipped, with the reason
    title: str
    body: str  # empty for a digest: composed when it is sent (compose_digest)
    when: str  # the local day (or day and time) it is about

    @property
    def kind(self) -> str:
        return kind_of(self.topic)


@dataclass(frozen=True, slots=True)
class Unplanned:
    """A reminder that cannot be planned (the calendar lacks a year): recorded, never guessed."""

    key: str
    topic: Topic
    user_id: int
    campaign: str
    nomination: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    reminders: tuple[Reminder, ...] = ()
    unplanned: tuple[Unplanned, ...] = ()

    def within(self, scope: Scope) -> Plan:
        return Plan(
            tuple(r for r in self.reminders if _covers(scope, r)),
            tuple(u for u in self.unplanned if _covers(scope, u)),
        )


def _covers(scope: Scope, reminder: Reminder | Unplanned) -> bool:
    return (
        reminder.campaign == scope.campaign
        and (scope.nomination is None or reminder.nomination == scope.nomination)
        and (scope.user is None or reminder.user_id == scope.user)
    )


# ----- times ------------------------------------------------------------------------------------


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(SHANGHAI)


def at(day: dt.date, time: dt.time) -> dt.datetime:
    """`time` on `day` in Asia/Shanghai, as an aware datetime."""
    return dt.datetime.combine(day, time, SHANGHAI)


def out_of_quiet_hours(moment: dt.datetime) -> dt.datetime:
    """`moment`, or 08:00 after it when it falls 21:00–08:00 local."""
    there = local(moment)
    if there.time() >= QUIET_FROM:
        return at(there.date() + dt.timedelta(days=1), QUIET_UNTIL)
    if there.time() < QUIET_UNTIL:
        return at(there.date(), QUIET_UNTIL)
    return moment


def end_of(day: dt.date) -> dt.datetime:
    """The last moment a reminder about `day` may still go out that day."""
    return at(day, QUIET_FROM)


# ----- the planner ------------------------------------------------------------------------------


class _Planner:
    def __init__(self, facts: PlanFacts, workdays: Workdays) -> None:
        self.facts = facts
        self.workdays = workdays
        self.campaign = facts.campaign
        spec = facts.campaign.reminders
        assert spec is not None
        self.spec: ReminderSpec = spec
        self.time = spec.time()
        self.reminders: list[Reminder] = []
        self.unplanned: list[Unplanned] = []

    def wants(self, user: int, topic: Topic) -> bool:
        off = self.facts.off.get(user, frozenset())
        return ALL_KINDS not in off and kind_of(topic) not in off

    def text(self, topic: Topic, values: Mapping[str, Any]) -> tuple[str, str]:
        texts = self.spec.texts[topic]
        common = {"campaign": self.campaign.short_title, "contact": self.campaign.contact or ""}
        context = {**common, **values}
        body = render_text(texts.body, **context) if topic is not Topic.DIGEST else ""
        return render_text(texts.title, **context), body

    def add(
        self,
        topic: Topic,
        subject: str,
        users: Iterable[int],
        day: dt.date,
        deadline: dt.datetime,
        values: Mapping[str, Any],
        *,
        nomination: int | None = None,
        time: dt.time | None = None,
    ) -> None:
        due = out_of_quiet_hours(max(at(day, time or self.time), self.facts.now))
        if due > deadline:
            return  # no use any more
        title, body = self.text(topic, values)
        for user in sorted(set(users)):
            if not self.wants(user, topic):
                continue
            self.reminders.append(
                Reminder(
                    key=f"{self.campaign.id}:{topic.value}:{subject}:u{user}:{day.isoformat()}",
                    topic=topic,
                    user_id=user,
                    campaign=self.campaign.id,
                    nomination=nomination,
                    due=due,
                    deadline=deadline,
                    title=title,
                    body=body,
                    when=day.isoformat(),
                )
            )

    def gap(
        self, topic: Topic, subject: str, users: Iterable[int], why: PortRefusal,
        nomination: int | None = None,
    ) -> None:  # fmt: skip
        for user in sorted(set(users)):
            if self.wants(user, topic):
                self.unplanned.append(
                    Unplanned(
                        key=f"{self.campaign.id}:{topic.value}:{subject}:u{user}:unplanned",
                        topic=topic,
                        user_id=user,
                        campaign=self.campaign.id,
                        nomination=nomination,
                        reason=str(why),
                    )
                )

    # -- windows --

    def windows(self) -> None:
        audience = self.facts.window_audience
        for w in self.facts.windows:
            subject = f"w:{w.key}@{self.facts.window_versions.get(w.key, 0)}"
            values = _window_values(w)
            for days in self.spec.window_days_before:
                # About its own day: "7 days to go" is no use on day 6 (then "3 days" comes).
                day = w.start - dt.timedelta(days=days)
                self.add(
                    Topic.WINDOW_SOON,
                    subject,
                    audience,
                    day,
                    end_of(day),
                    {**values, "days": days},
                )
            for day in _days(w.start, w.end):
                edges = {"first": day == w.start, "last": day == w.end}
                self.add(Topic.WINDOW_OPEN, subject, audience, day, end_of(day),
                         {**values, "days": 0, **edges})  # fmt: skip

    # -- nominations --

    def nomination(self, n: PlanNomination) -> None:
        lifecycle = self.campaign.lifecycle
        if lifecycle is None or not lifecycle.has_status(n.status):
            return
        status = lifecycle.status(n.status)
        level = status.queue_level.value if status.queue_level else None
        holders = n.officials.get(level, frozenset()) if level else n.clerks
        subject = f"n{n.id}@{n.version}"
        values = {
            "code": n.tracking_code,
            "nominee": n.nominee,
            "category": _category_name(self.campaign, n.category),
            "status": status.label,
            "date": n.since.astimezone(SHANGHAI).date().isoformat(),
            "level": LEVEL_NAMES.get(status.queue_level, "") if status.queue_level else "本单位",
        }

        def guarded(topic: Topic, users: Iterable[int], fn: Callable[[], None]) -> None:
            try:
                fn()
            except PortRefusal as why:
                self.gap(topic, subject, users, why, n.id)

        if status.publicity_workdays and n.publicity is not None:
            start, end = n.publicity
            pv = {**values, "start": start.isoformat(), "end": end.isoformat()}
            self.add(Topic.PUBLICITY_LAST_DAY, subject, holders, end, end_of(end), pv,
                     nomination=n.id)  # fmt: skip

            def outcome() -> None:
                day = self.workdays.nth_workday(end + dt.timedelta(days=1), 1)
                self.add(Topic.PUBLICITY_OUTCOME, subject, holders, day,
                         end_of(day + dt.timedelta(days=7)), pv, nomination=n.id)  # fmt: skip

            guarded(Topic.PUBLICITY_OUTCOME, holders, outcome)
        if status.opinions and n.missing_opinions:
            ahead = self.next_window()
            if ahead is not None:
                ov = {**values, "window": ahead.label, "start": ahead.start.isoformat(),
                      "missing": "、".join(n.missing_opinions)}  # fmt: skip

                def opinions(window: Window = ahead) -> None:
                    day = self.workdays_before(window.start, self.spec.opinions_before_workdays)
                    self.add(Topic.OPINIONS_MISSING, subject, n.clerks, day,
                             at(window.start, dt.time(0, 0)), ov, nomination=n.id)  # fmt: skip

                guarded(Topic.OPINIONS_MISSING, n.clerks, opinions)
        if status.kind is StatusKind.SIDE:
            since = n.since.astimezone(SHANGHAI).date()
            for days in self.spec.returned_after_workdays:
                rv = {**values, "days": days, "reason": n.return_reason or ""}

                def returned(days: int = days, rv: dict[str, Any] = rv) -> None:
                    day = self.workdays.nth_workday(since + dt.timedelta(days=1), days)
                    self.add(Topic.RETURNED_WAITING, subject, n.clerks, day,
                             end_of(day + dt.timedelta(days=2)), rv, nomination=n.id)  # fmt: skip

                guarded(Topic.RETURNED_WAITING, n.clerks, returned)
        if level is not None:
            since = n.since.astimezone(SHANGHAI).date()
            waited = self.facts.waiting_workdays

            def waiting() -> None:
                day = self.workdays.nth_workday(since + dt.timedelta(days=1), waited)
                self.add(Topic.WAITING_AT_LEVEL, subject, holders, day,
                         end_of(day + dt.timedelta(days=2)), {**values, "days": waited},
                         nomination=n.id)  # fmt: skip

            guarded(Topic.WAITING_AT_LEVEL, holders, waiting)
        for window in self.windows_out_of(lifecycle, n.status):
            wv = {**values, **_window_values(window)}
            for day, days in ((window.end - dt.timedelta(days=1), 1), (window.end, 0)):
                if day < window.start - dt.timedelta(days=1):
                    continue
                self.add(Topic.WINDOW_CLOSING, f"{subject}:w:{window.key}", holders, day,
                         end_of(day), {**wv, "days": days}, nomination=n.id)  # fmt: skip

    def next_window(self) -> Window | None:
        today = local(self.facts.now).date()
        ahead = [w for w in self.facts.windows if w.start > today]
        return min(ahead, key=lambda w: w.start) if ahead else None

    def windows_out_of(self, lifecycle: Lifecycle, status: str) -> list[Window]:
        keys = {t.window for t in lifecycle.transitions if status in t.from_ and t.window}
        return [w for w in self.facts.windows if w.key in keys]

    def workdays_before(self, day: dt.date, n: int) -> dt.date:
        """The working day `n` working days before `day` (not counting `day`)."""
        found = 0
        while found < n:
            day -= dt.timedelta(days=1)
            if self.workdays.is_workday(day):
                found += 1
        return day

    # -- digests --

    def digests(self) -> None:
        if not self.facts.digest_audience:
            return
        spec = self.spec.digest
        until = spec.until or max((w.end for w in self.facts.windows), default=None)
        if until is None:
            return
        first = max(local(self.facts.now).date(), self.campaign.notice.date or until)
        time = dt.time.fromisoformat(spec.at)
        readers = sorted(self.facts.digest_audience.items())
        for day in _days(first, until):
            try:
                if not self.workdays.is_workday(day):
                    continue
            except PortRefusal as why:
                for user, _ in readers:
                    self.gap(Topic.DIGEST, f"d{day.year}", [user], why)
                return
            for user, reader in readers:
                level = LEVEL_NAMES.get(reader.level, "")
                self.add(Topic.DIGEST, "d", [user], day, end_of(day),
                         {"date": day.isoformat(), "level": level, "region": reader.region_name,
                          "lines": []}, time=time)  # fmt: skip


def plan(facts: PlanFacts, workdays: Workdays, scope: Scope | None = None) -> Plan:
    """Every reminder the state calls for (within `scope`), in due order."""
    if facts.campaign.reminders is None:
        return Plan()
    planner = _Planner(facts, workdays)
    if scope is None or scope.nomination is None:
        planner.windows()
        planner.digests()
    for n in facts.nominations:
        if scope is None or scope.nomination in (None, n.id):
            planner.nomination(n)
    result = Plan(
        tuple(sorted(planner.reminders, key=lambda r: (r.due, r.key))),
        tuple(planner.unplanned),
    )
    return result.within(scope) if scope is not None else result


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def _window_values(w: Window) -> dict[str, Any]:
    return {
        "window": w.label,
        "start": w.start.isoformat(),
        "end": w.end.isoformat(),
        "place": w.place or "",
        "note": w.note or "",
        "strict": w.strict,
    }


def _category_name(campaign: Campaign, category: str) -> str:
    try:
        return campaign.category(category).name
    except KeyError:
        return category


# ----- the digest, composed when it is sent ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestItem:
    """A nomination at the reader's level and region, as the digest counts it."""

    category: str
    status: str
    publicity_ends: dt.date | None


def compose_digest(
    campaign: Campaign,
    reader: DigestReader,
    today: dt.date,
    items: Iterable[DigestItem],
    region_facts: Iterable[NominationFacts],
    quotas: Mapping[str, list[QuotaView]],
) -> list[str]:
    """The digest's lines for `reader` today; empty when there is nothing to say.

    `items`: nominations waiting at the reader's level in their region; `region_facts`: every
    nomination of the campaign in the reader's region (for quotas, the cap and duplicates);
    `quotas`: category → the quota places of the reader's region (and the regions under it).
    """
    lifecycle = campaign.lifecycle
    if lifecycle is None:
        return []
    lines: list[str] = []
    waiting = list(items)
    counts: dict[str, int] = {}
    for item in waiting:
        counts[item.status] = counts.get(item.status, 0) + 1
    if counts:
        lines.append(
            "待处理："
            + "，".join(
                f"{lifecycle.status(s).label} {n} 件" for s, n in counts.items()
                if lifecycle.has_status(s)
            )
        )  # fmt: skip
    ending = [i for i in waiting if i.publicity_ends == today]
    if ending:
        lines.append(f"今天公示期满：{len(ending)} 件（明天起可记录公示结果）")
    facts = list(region_facts)
    limits = limits_for(campaign)
    counting = [f for f in facts if f.status not in limits.not_places]
    if limits.quota_ratio is not None:
        low, high = limits.quota_ratio
        for category, views in quotas.items():
            places = sum(v.places for v in views)
            if not places:
                continue
            used = sum(1 for f in counting if f.category == category)
            lines.append(
                f"{_category_name(campaign, category)}：已推荐 {used} 名，名额 {places} 名，"
                f"差额推荐应为 {_ceil(places * low)}–{int(places * high)} 名"
                + (
                    "（不足）"
                    if used < places * low
                    else "（超出）"
                    if used > places * high
                    else ""
                )
            )
    if limits.cap_share is not None:
        capped = sum(1 for f in counting if f.capped)
        if capped:
            total = sum(limits.places.values())
            lines.append(
                f"{limits.cap_label}：{capped} 名（应控制在评选总数 {total} 的"
                f"{limits.cap_share:.0%} 以内）"
            )
    seen: dict[str, int] = {}
    for f in facts:
        if f.nominee_digest and f.status not in limits.not_nominee:
            seen[f.nominee_digest] = seen.get(f.nominee_digest, 0) + 1
    duplicates = sum(1 for n in seen.values() if n > 1)
    if duplicates:
        lines.append(f"发现重复推荐：{duplicates} 人被推荐不止一次，请核查")
    only_quotas = bool(lines) and not counts and not ending and not duplicates
    return [] if only_quotas else lines


def _ceil(value: float) -> int:
    whole = int(value)
    return whole if whole == value else whole + 1


def digest_body(campaign: Campaign, reader: DigestReader, today: dt.date, lines: list[str]) -> str:
    spec = campaign.reminders
    assert spec is not None
    return render_text(
        spec.texts[Topic.DIGEST].body,
        campaign=campaign.short_title,
        contact=campaign.contact or "",
        date=today.isoformat(),
        level=LEVEL_NAMES.get(reader.level, ""),
        region=reader.region_name,
        lines=lines,
    )


__all__ = [
    "ALL_KINDS",
    "KIND_LABELS",
    "REMINDER_KINDS",
    "SHANGHAI",
    "DigestItem",
    "DigestReader",
    "Plan",
    "PlanFacts",
    "PlanNomination",
    "Reminder",
    "Scope",
    "Unplanned",
    "Workdays",
    "compose_digest",
    "digest_body",
    "kind_of",
    "out_of_quiet_hours",
    "plan",
]
