"""`awardbot check` refuses answers that cannot be true (issue 11): a birth date after today,
after the campaign's as_of (a negative age on the day the age rule counts it) or before 1900, a
birth date and an ID number that give two birth dates, years of work beyond the age less 16.
Each is one line on stderr, exit 2, and no verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from conversations.idnumber import check_digit

ARGS = ["check", "--campaign", "jl-employment-2022", "--category", "employment_individual"]


def id_number(born: str) -> str:
    body = f"220104{born.replace('-', '')}002"
    return body + check_digit(body)


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, answers: dict[str, Any]):  # type: ignore[no-untyped-def]
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    code = main([*ARGS, "--answers", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ({"birth_date": "2999-01-01"}, "birth_date: 出生日期 2999-01-01 晚于今天"),
        # The day after the campaign's as_of: before today, but an age of −1 on 2022-12-01.
        ({"birth_date": "2022-12-02"}, "晚于本次评选计算年龄的日期 2022-12-01"),
        ({"birth_date": "1899-12-31"}, "早于 1900-01-01"),
        ({"id_number": id_number("2022-12-02")}, "公民身份号码中的出生日期 2022-12-02 晚于"),
        (
            {"birth_date": "1990-01-01", "id_number": id_number("1985-06-15")},
            "出生日期（1990-01-01）与公民身份号码第 7–14 位的出生日期（1985-06-15）不一致",
        ),
        (
            # 19 on the as_of, older on a later today: 40 years of work are too many either way
            {"birth_date": "2003-06-01", "person_type": "employment_staff",
             "years_in_role_consecutive": 40},
            "连续从事本职工作年限（40 年）与年龄不符",
        ),
    ],
)  # fmt: skip
def test_answers_that_cannot_be_true_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, answers: dict[str, Any], said: str
) -> None:
    code, out, err = run(capsys, tmp_path, answers)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert said in err
    assert err.startswith("awardbot: ")


def test_the_error_names_both_facts_and_hides_the_id_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    number = id_number("1985-06-15")
    _, _, err = run(capsys, tmp_path, {"birth_date": "1990-01-01", "id_number": number})
    assert "birth_date / id_number" in err
    assert "(birth_date and id_number give different birth dates)" in err
    assert number not in err


def test_a_birth_date_and_an_id_number_that_agree_give_a_verdict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    answers = {"birth_date": "1985-06-15", "id_number": id_number("1985-06-15")}
    code, out, err = run(capsys, tmp_path, answers)
    assert (code, err) == (0, "")
    assert json.loads(out)["verdict"] == "incomplete"


def test_years_of_work_up_to_the_age_less_16_are_judged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    answers = {"birth_date": "2003-06-01", "person_type": "employment_staff",
               "years_in_role_consecutive": 3}  # fmt: skip
    code, _, err = run(capsys, tmp_path, answers)
    assert (code, err) == (0, "")
