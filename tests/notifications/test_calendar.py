"""Working-day calendar: 调休, the shipped override file, failing closed, bad override files."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import holidays
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.calendar import (
    DEFAULT_OVERRIDE_FILE,
    CalendarError,
    UnknownYearError,
    WorkdayCalendar,
)

D = date.fromisoformat
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- 调休 around National Day 2022 (DESIGN §4) -------------------------------------------------


def test_publicity_from_2022_09_29_for_5_working_days_ends_2022_10_10(
    cal: WorkdayCalendar,
) -> None:
    # 09-29, 09-30, [10-01..07 off], 10-08 (Sat), 10-09 (Sun), 10-10.
    assert cal.nth_workday(D("2022-09-29"), 5) == D("2022-10-10")
    assert cal.workdays_between(D("2022-09-29"), D("2022-10-10")) == 5


@pytest.mark.parametrize("day", ["2022-10-08", "2022-10-09"])
def test_make_up_weekend_days_are_working_days(cal: WorkdayCalendar, day: str) -> None:
    assert D(day).weekday() >= 5
    assert cal.is_workday(D(day))


@pytest.mark.parametrize("day", _days(D("2022-10-01"), D("2022-10-07")))
def test_national_day_week_is_not_working(cal: WorkdayCalendar, day: date) -> None:
    assert not cal.is_workday(day)


def test_an_ordinary_week(cal: WorkdayCalendar) -> None:
    week = _days(D("2022-09-19"), D("2022-09-25"))  # Mon..Sun, no holiday
    assert [cal.is_workday(d) for d in week] == [True] * 5 + [False] * 2


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2022-09-30", 1, "2022-09-30"),  # a working day counts itself
        ("2022-09-30", 2, "2022-10-08"),
        ("2022-10-01", 1, "2022-10-08"),  # a rest day does not count
        ("2022-10-07", 2, "2022-10-09"),
        ("2022-09-24", 1, "2022-09-26"),  # an ordinary Saturday does not count
    ],
)
def test_start_day_counts_only_when_working(
    cal: WorkdayCalendar, start: str, n: int, expected: str
) -> None:
    assert cal.nth_workday(D(start), n) == D(expected)


def test_workdays_between_is_inclusive_and_zero_when_reversed(cal: WorkdayCalendar) -> None:
    assert cal.workdays_between(D("2022-09-30"), D("2022-09-30")) == 1
    assert cal.workdays_between(D("2022-10-01"), D("2022-10-07")) == 0
    assert cal.workdays_between(D("2022-10-01"), D("2022-10-09")) == 2
    assert cal.workdays_between(D("2022-10-10"), D("2022-09-29")) == 0


@pytest.mark.parametrize("n", [0, -1])
def test_n_below_one_is_refused(cal: WorkdayCalendar, n: int) -> None:
    with pytest.raises(CalendarError, match="n must be 1 or more") as info:
        cal.nth_workday(D("2022-09-29"), n)
    assert "\n" not in str(info.value)


def test_datetimes_are_refused(cal: WorkdayCalendar) -> None:
    # Which day a datetime falls on depends on its time zone: the caller must convert first.
    with pytest.raises(TypeError, match="datetime.date"):
        cal.is_workday(datetime(2022, 10, 8, 12, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(TypeError, match="datetime.date"):
        cal.nth_workday(datetime(2022, 10, 8, 12, 0), 1)  # noqa: DTZ001


# --- the shipped override file -----------------------------------------------------------------


def test_default_override_file_is_the_shipped_one() -> None:
    assert REPO_ROOT / "campaigns" / "calendar.yaml" == DEFAULT_OVERRIDE_FILE
    assert DEFAULT_OVERRIDE_FILE.is_file()


def test_2005_12_31_correction_is_applied(cal: WorkdayCalendar) -> None:
    # The 2006 New Year notice: 12月31日（星期六）上班. chinese_calendar 1.11.0 lacks it.
    assert cal.is_workday(D("2005-12-31"))
    assert not WorkdayCalendar(override_file=None).is_workday(D("2005-12-31"))
    assert cal.nth_workday(D("2005-12-30"), 2) == D("2005-12-31")
    assert WorkdayCalendar(None).nth_workday(D("2005-12-30"), 2) == D("2006-01-04")


def test_known_years(cal: WorkdayCalendar) -> None:
    assert set(cal.known_years()) == set(range(2004, 2027))
    assert 2027 not in cal.known_years()


# --- failing closed ----------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["2027-03-01", "2027-01-01", "2003-12-31"])
def test_a_day_in_an_unknown_year_raises(cal: WorkdayCalendar, day: str) -> None:
    year = D(day).year
    with pytest.raises(UnknownYearError) as info:
        cal.is_workday(D(day))
    message = str(info.value)
    assert info.value.year == year
    assert info.value.override_file == DEFAULT_OVERRIDE_FILE
    assert f"{year} 年" in message
    assert f"no data for {year}" in message
    assert str(DEFAULT_OVERRIDE_FILE) in message
    assert "\n" not in message
    assert message.startswith("工作日历")


def test_counting_into_an_unknown_year_raises(cal: WorkdayCalendar) -> None:
    # 2026-12-28..31 are four working days; the fifth would be in 2027.
    assert cal.nth_workday(D("2026-12-28"), 4) == D("2026-12-31")
    with pytest.raises(UnknownYearError) as info:
        cal.nth_workday(D("2026-12-28"), 10)
    assert info.value.year == 2027
    assert "2027" in str(info.value)
    assert str(DEFAULT_OVERRIDE_FILE) in str(info.value)
    with pytest.raises(UnknownYearError):
        cal.workdays_between(D("2026-12-30"), D("2027-01-02"))


def test_unknown_year_without_override_file_says_so() -> None:
    with pytest.raises(UnknownYearError, match="no override file is in use") as info:
        WorkdayCalendar(None).is_workday(D("2027-06-01"))
    assert info.value.override_file is None
    assert "\n" not in str(info.value)


# --- an override file that adds a year ---------------------------------------------------------

YEAR_2027 = """\
corrections:
  2005-12-31: workday
  2027-01-04: restday   # corrections win over years
years:
  2027:
    holidays: [2027-01-01]   # a Friday
    workdays: [2027-01-09]   # a Saturday
"""


def test_an_override_year_makes_it_answerable(tmp_path: Path) -> None:
    cal = WorkdayCalendar(_write(tmp_path, YEAR_2027))
    assert 2027 in cal.known_years()
    assert not cal.is_workday(D("2027-01-01"))  # listed holiday on a weekday
    assert not cal.is_workday(D("2027-01-02"))  # ordinary Saturday
    assert not cal.is_workday(D("2027-01-04"))  # Monday, corrected to rest
    assert cal.is_workday(D("2027-01-05"))  # ordinary Tuesday
    assert cal.is_workday(D("2027-01-09"))  # make-up Saturday
    assert not cal.is_workday(D("2027-01-10"))  # ordinary Sunday
    # 12-28..31 (4), [01-01 off, 01-04 corrected], 01-05..08 (8), 01-09 (9), 01-11 (10).
    assert cal.nth_workday(D("2026-12-28"), 10) == D("2027-01-11")
    assert cal.is_workday(D("2005-12-31"))
    with pytest.raises(UnknownYearError) as info:
        cal.is_workday(D("2028-01-03"))
    assert str(tmp_path / "calendar.yaml") in str(info.value)


def test_an_override_year_replaces_chinese_calendar_for_that_year(tmp_path: Path) -> None:
    # A year under `years` is defined by the file alone: here 2022 without any 调休.
    path = _write(tmp_path, "years:\n  2022:\n    holidays: [2022-10-03]\n    workdays: []\n")
    cal = WorkdayCalendar(path)
    assert not cal.is_workday(D("2022-10-03"))
    assert cal.is_workday(D("2022-10-04"))
    assert not cal.is_workday(D("2022-10-08"))
    assert cal.is_workday(D("2021-10-09"))  # other years still come from chinese_calendar


def test_an_empty_sections_file_means_chinese_calendar_alone(tmp_path: Path) -> None:
    cal = WorkdayCalendar(_write(tmp_path, "corrections: {}\nyears: {}\n"))
    assert not cal.is_workday(D("2005-12-31"))


# --- malformed override files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- 2005-12-31\n", "expected a mapping"),
        ("", "got nothing"),
        ("correction:\n  2005-12-31: workday\n", "unknown top-level key(s) correction"),
        ("corrections: [2005-12-31]\n", "corrections must map dates"),
        ("corrections:\n  2005-12-31: holiday\n", "expected workday or restday, got 'holiday'"),
        ("corrections:\n  2005-12-31: yes\n", "expected workday or restday, got True"),
        ("corrections:\n  2005-02-30: workday\n", "'2005-02-30' is not a real date"),
        ("corrections:\n  31/12/2005: workday\n", "'31/12/2005' is not a real date"),
        ("corrections:\n  20051231: workday\n", "20051231 is not a real date"),
        ("corrections:\n  2027-01-04: restday\n", "no data for 2027"),
        ("corrections:\n  2005-12-31: workday\n  2005-12-31: restday\n", "duplicate key"),
        ("corrections: [\n", "YAML error at line 2"),
        ("years: [2027]\n", "years must map a year"),
        ("years:\n  next: {holidays: [], workdays: []}\n", "'next' is not a year"),
        ("years:\n  2027:\n    holidays: [2027-01-01]\n", "expected exactly holidays and"),
        ("years:\n  2027:\n", "expected exactly holidays and workdays"),
        (
            "years:\n  2027: {holidays: [2027-01-01], workdays: [], extra: []}\n",
            "got extra, holidays, workdays",
        ),
        ("years:\n  2027: {holidays: 2027-01-01, workdays: []}\n", "expected a list of dates"),
        ("years:\n  2027: {holidays: [2027-01-01], workdays:}\n", "expected a list of dates"),
        ("years:\n  2027: {holidays: [2028-01-03], workdays: []}\n", "not in 2027"),
        ("years:\n  2027: {holidays: [2027-01-02], workdays: []}\n", "is a Sat, expected Mon-Fri"),
        ("years:\n  2027: {holidays: [], workdays: [2027-01-04]}\n", "is a Mon, expected Sat or"),
        ("years:\n  2027: {holidays: [], workdays: []}\n  2027: {holidays: [], workdays: []}\n",
         "duplicate key 2027"),
    ],
)  # fmt: skip
def test_malformed_override_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CalendarError) as info:
        WorkdayCalendar(path)
    message = str(info.value)
    assert message.startswith(f"工作日历覆盖文件 {path} 有误：")
    assert f"bad calendar override file {path}: " in message
    assert fragment in message
    assert "\n" not in message


def test_a_missing_override_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CalendarError, match="no such file") as info:
        WorkdayCalendar(path)
    assert str(path) in str(info.value)


def test_an_unreadable_override_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read it") as info:
        WorkdayCalendar(tmp_path)  # a directory
    assert str(tmp_path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_non_utf8_override_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_bytes("corrections: {} # 调休\n".encode("gb18030"))
    with pytest.raises(CalendarError, match="not UTF-8"):
        WorkdayCalendar(path)


# --- properties --------------------------------------------------------------------------------


@settings(deadline=None)
@given(
    # The latest start keeps 30 working days (at most ~7 weeks with a Golden Week) inside 2026.
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 10, 31)),
    n=st.integers(min_value=1, max_value=30),
)
def test_nth_workday_is_the_first_day_with_n_working_days(
    cal: WorkdayCalendar, start: date, n: int
) -> None:
    result = cal.nth_workday(start, n)
    assert start <= result <= date(2026, 12, 31)
    assert cal.is_workday(result)
    assert cal.workdays_between(start, result) == n
    earlier = _days(start, result - timedelta(days=1)) if result > start else []
    assert not any(cal.is_workday(d) and cal.workdays_between(start, d) == n for d in earlier)


# --- cross-check against the `holidays` package (platforms.md §5) -----------------------------

CROSS_CHECK_DAYS = _days(date(2004, 1, 1), date(2026, 12, 31))


def _holidays_disagreements(cal: WorkdayCalendar) -> list[date]:
    china = holidays.China(years=range(2004, 2027))
    return [d for d in CROSS_CHECK_DAYS if cal.is_workday(d) != china.is_working_day(d)]


def test_calendar_agrees_with_holidays_package_every_day_2004_2026(cal: WorkdayCalendar) -> None:
    # With the shipped corrections applied the two independent sources agree on every day.
    assert _holidays_disagreements(cal) == []


def test_chinese_calendar_differs_from_holidays_only_on_corrected_days() -> None:
    shipped = yaml.safe_load(DEFAULT_OVERRIDE_FILE.read_text(encoding="utf-8"))
    corrected = set(shipped["corrections"])
    assert corrected == {date(2005, 12, 31)}
    assert set(_holidays_disagreements(WorkdayCalendar(None))) <= corrected
