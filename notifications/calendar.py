"""Working days in mainland China, including the State Council's make-up working days (调休).

Answers come from chinese_calendar (the State Council schedules it ships, 2004–2026) and an
override YAML file (default `campaigns/calendar.yaml`; its format is documented at its top) in
which an admin adds whole years chinese_calendar lacks and corrects single days it gets wrong.

Fail closed (DESIGN §4): a day in a year that neither source knows raises UnknownYearError. A
deadline computed from a guessed Mon–Fri calendar would be silently wrong around 调休, so callers
must surface the error (an admin then adds the year) rather than fall back to anything.

Callers pass `datetime.date` values that are already Asia/Shanghai calendar days; there is no
time of day here, and a `datetime` is refused.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar  # type: ignore[import-untyped]  # ships no type hints
import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

DEFAULT_OVERRIDE_FILE: Path = (
    Path(__file__).resolve().parent.parent / "campaigns" / "calendar.yaml"
)

# The years chinese_calendar answers for, computed the way chinese_calendar itself checks them
# (min..max year of its holiday table), so we never call it for a year it would refuse.
_CC_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)

_ONE_DAY = timedelta(days=1)
_VERDICTS = {"workday": True, "restday": False}
# Exactly YYYY-MM-DD: date.fromisoformat alone would also take "20271001" or "2027-W40-5".
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class CalendarError(Exception):
    """Bad override file or impossible request. str(exc) is one line, Chinese first."""

    def __init__(self, message: str) -> None:
        # One line for stderr and logs, whatever an embedded YAML or OS message contained.
        super().__init__(" ".join(message.splitlines()))


class UnknownYearError(CalendarError):
    """Neither chinese_calendar nor the override file knows `year`: add it to the override file.

    `override_file` is the file in use, or None when the calendar was built without one.
    """

    year: int
    override_file: Path | None

    def __init__(self, year: int, override_file: Path | None) -> None:
        self.year = year
        self.override_file = override_file
        if override_file is None:
            message = (
                f"工作日历没有 {year} 年的放假安排，且未使用覆盖文件：请按国务院办公厅公布的安排在"
                f"覆盖文件（默认 {DEFAULT_OVERRIDE_FILE}）的 years 下补充 {year} 年（calendar has "
                f"no data for {year} and no override file is in use; add {year} under years "
                f"in one, e.g. {DEFAULT_OVERRIDE_FILE}）"
            )
        else:
            message = (
                f"工作日历没有 {year} 年的放假安排：请按国务院办公厅公布的安排在 {override_file} "
                f"的 years 下补充 {year} 年（calendar has no data for {year}; add it under years "
                f"in {override_file}）"
            )
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _YearSchedule:
    holidays: frozenset[date]  # Mon–Fri rest days
    workdays: frozenset[date]  # Sat/Sun make-up working days


class WorkdayCalendar:
    """Answers "is this a working day" and counts working days; raises rather than guesses."""

    def __init__(self, override_file: Path | None = DEFAULT_OVERRIDE_FILE) -> None:
        """Load and validate `override_file` now (None = chinese_calendar alone).

        Raises CalendarError if the file is missing, unreadable or malformed.
        """
        self._override_file = override_file
        self._corrections: dict[date, bool] = {}
        self._years: dict[int, _YearSchedule] = {}
        if override_file is not None:
            self._corrections, self._years = _load_overrides(override_file)

    def known_years(self) -> frozenset[int]:
        """Years every day of which this calendar can answer for."""
        return frozenset(_CC_YEARS) | frozenset(self._years)

    def is_workday(self, day: date) -> bool:
        """True if `day` is a working day. Raises UnknownYearError for a year nobody knows."""
        _require_date(day, "day")
        verdict = self._corrections.get(day)
        if verdict is not None:
            return verdict
        schedule = self._years.get(day.year)
        if schedule is not None:
            return day in schedule.workdays or (day.weekday() < 5 and day not in schedule.holidays)
        if day.year in _CC_YEARS:
            return bool(chinese_calendar.is_workday(day))
        raise UnknownYearError(day.year, self._override_file)

    def nth_workday(self, start: date, n: int) -> date:
        """The n-th working day from `start`, counting `start` itself when it is a working day.

        n must be >= 1 (else CalendarError). Raises UnknownYearError if the count reaches a
        year nobody knows. Example: 2022-09-29 with n=5 is 2022-10-10.
        """
        _require_date(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 1:
            raise CalendarError(f"工作日数必须至少为 1，收到 {n}（n must be 1 or more, got {n}）")
        day, remaining = start, n
        while True:
            if self.is_workday(day):
                remaining -= 1
                if remaining == 0:
                    return day
            if day == date.max:
                raise CalendarError(
                    f"从 {start} 起数不到 {n} 个工作日（no {n}th working day from {start})"
                )
            day += _ONE_DAY

    def workdays_between(self, start: date, end: date) -> int:
        """Working days from `start` to `end`, both included; 0 when start > end.

        Raises UnknownYearError if the range touches a year nobody knows.
        """
        _require_date(start, "start")
        _require_date(end, "end")
        count, day = 0, start
        while day <= end:
            count += self.is_workday(day)
            if day == date.max:
                break
            day += _ONE_DAY
        return count


def _require_date(value: object, name: str) -> None:
    # A datetime is a date subclass but never equals the date of the same day, so it would miss
    # the override tables; and which day it falls on depends on a time zone we can't know here.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(
            f"{name} must be a datetime.date (an Asia/Shanghai calendar day), "
            f"got {type(value).__name__}"
        )


class _OverrideLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text (we parse them strictly) and refuses duplicate keys.

    PyYAML would otherwise keep the last of two identical keys silently, and would turn
    2027-02-30 into a bare ValueError with no position.
    """

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return mapping


_OverrideLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Bad(Exception):
    """A problem inside the override file; _load_overrides adds the file name."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en


def _load_overrides(path: Path) -> tuple[dict[date, bool], dict[int, _YearSchedule]]:
    try:
        return _parse_overrides(_read_yaml(path))
    except _Bad as exc:
        raise CalendarError(
            f"工作日历覆盖文件 {path} 有误：{exc.zh}"
            f"（bad calendar override file {path}: {exc.en}）"
        ) from None


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Bad("文件不存在", "no such file") from None
    except UnicodeDecodeError:
        raise _Bad("不是 UTF-8 文本", "not UTF-8 text") from None
    except OSError as exc:
        raise _Bad("无法读取", f"cannot read it: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_OverrideLoader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"第 {mark.line + 1} 行" if mark else ""
        where_en = f" at line {mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise _Bad(f"{where}YAML 无法解析", f"YAML error{where_en}: {problem}") from None
    except yaml.YAMLError as exc:
        raise _Bad("YAML 无法解析", f"YAML error: {exc}") from None


def _parse_overrides(data: object) -> tuple[dict[date, bool], dict[int, _YearSchedule]]:
    if not isinstance(data, Mapping):
        raise _Bad(
            "顶层应为包含 corrections 和 years 的映射",
            f"expected a mapping with corrections and years at the top, got {_kind(data)}",
        )
    unknown = sorted(str(key) for key in data if key not in ("corrections", "years"))
    if unknown:
        raise _Bad(
            f"未知的顶层键 {', '.join(unknown)}",
            f"unknown top-level key(s) {', '.join(unknown)}; only corrections and years",
        )
    years = _parse_years(data.get("years"))
    corrections = _parse_corrections(data.get("corrections"), set(_CC_YEARS) | set(years))
    return corrections, years


def _parse_corrections(raw: object, known: set[int]) -> dict[date, bool]:
    if raw is None:  # `corrections:` with nothing under it
        return {}
    if not isinstance(raw, Mapping):
        raise _Bad(
            "corrections 应为 日期: workday|restday 的映射",
            f"corrections must map dates to workday or restday, got {_kind(raw)}",
        )
    corrections: dict[date, bool] = {}
    for key, value in raw.items():
        day = _parse_date(key, "corrections")
        if not isinstance(value, str) or value not in _VERDICTS:
            raise _Bad(
                f"corrections 中 {day} 的值应为 workday 或 restday",
                f"corrections {day}: expected workday or restday, got {value!r}",
            )
        # A correction alone must not make one day of an unknown year answerable while the
        # rest of that year would still raise: the whole year belongs under `years`.
        if day.year not in known:
            raise _Bad(
                f"corrections 中的 {day} 所在的 {day.year} 年没有数据，请在 years 下定义整年",
                f"corrections {day}: no data for {day.year}; define the whole year under years",
            )
        corrections[day] = _VERDICTS[value]
    return corrections


def _parse_years(raw: object) -> dict[int, _YearSchedule]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _Bad(
            "years 应为 年份: {holidays, workdays} 的映射",
            f"years must map a year to its holidays and workdays, got {_kind(raw)}",
        )
    years: dict[int, _YearSchedule] = {}
    for key, spec in raw.items():
        year = _parse_year(key)
        if not isinstance(spec, Mapping) or set(spec) != {"holidays", "workdays"}:
            keys = ", ".join(sorted(map(str, spec))) if isinstance(spec, Mapping) else _kind(spec)
            raise _Bad(
                f"years 中的 {year} 应恰好包含 holidays 和 workdays 两个列表",
                f"years {year}: expected exactly holidays and workdays lists, got {keys}",
            )
        holidays = _parse_day_list(spec["holidays"], year, "holidays", weekend=False)
        workdays = _parse_day_list(spec["workdays"], year, "workdays", weekend=True)
        years[year] = _YearSchedule(holidays, workdays)
    return years


def _parse_year(key: object) -> int:
    if isinstance(key, str) and re.fullmatch(r"\d{4}", key):
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= 9999:
        raise _Bad(f"years 的键 {key!r} 不是年份", f"years: {key!r} is not a year")
    return key


def _parse_day_list(raw: object, year: int, name: str, *, weekend: bool) -> frozenset[date]:
    # Holidays listed here are the Mon–Fri ones and workdays the Sat/Sun ones: anything else has
    # no effect on the answer, so it can only be a typo in the date.
    where = f"years {year} {name}"
    if not isinstance(raw, list):
        raise _Bad(
            f"{where} 应为日期列表（没有就写 []）",
            f"{where}: expected a list of dates ([] for none), got {_kind(raw)}",
        )
    days: set[date] = set()
    for item in raw:
        day = _parse_date(item, where)
        if day.year != year:
            raise _Bad(f"{where} 中的 {day} 不在 {year} 年", f"{where}: {day} is not in {year}")
        if (day.weekday() >= 5) != weekend:
            expected_zh, expected_en = (
                ("周六或周日", "Sat or Sun") if weekend else ("周一至周五", "Mon-Fri")
            )
            raise _Bad(
                f"{where} 中的 {day} 应是{expected_zh}",
                f"{where}: {day} is a {_WEEKDAYS[day.weekday()]}, expected {expected_en}",
            )
        days.add(day)
    return frozenset(days)


def _parse_date(raw: object, where: str) -> date:
    if isinstance(raw, date) and not isinstance(raw, datetime):  # an explicit !!timestamp
        return raw
    if isinstance(raw, str) and _ISO_DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise _Bad(
        f"{where} 中的 {raw!r} 不是 YYYY-MM-DD 形式的真实日期",
        f"{where}: {raw!r} is not a real date in YYYY-MM-DD form",
    )


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
