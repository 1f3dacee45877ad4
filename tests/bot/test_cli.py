"""`awardbot` commands: results on stdout, bad input as one line on stderr with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.process import awardbot_env, run_awardbot

from bot.cli import main
from storage.crypto import Sealer

TECH_EXPERT_OK = {
    "works_in_jilin": True, "frontline_skill_position": True, "is_unit_head": False,
    "is_retired": False, "applying_both_awards": False, "holds_jilin_technical_expert": False,
    "skill_level": "senior", "years_in_occupation": 6, "achv_leading_method": True,
    "has_violation_record": False, "has_disciplinary_sanction": False,
    "has_accountability_action": False, "on_credit_blacklist": False,
    "under_investigation": False,
}  # fmt: skip


def check(capsys: pytest.CaptureFixture[str], tmp_path: Path, answers: object, *extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "answers.json"
    path.write_text(answers if isinstance(answers, str) else json.dumps(answers), encoding="utf-8")
    args = ["check", "--campaign", "jl-skills-2022", "--category", "technical_expert"]
    code = main([*args, "--answers", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_prints_one_json_object(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = check(capsys, tmp_path, TECH_EXPERT_OK)
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["verdict"] == "eligible"
    assert set(result) >= {"campaign", "category", "verdict", "reasons", "missing", "materials"}
    assert result["missing"] == []
    assert "身份证复印件" in result["materials"]
    assert {"clause", "message", "fact", "value"} <= set(result["reasons"][0])


def test_check_ineligible_names_clause_fact_and_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = check(capsys, tmp_path, TECH_EXPERT_OK | {"years_in_occupation": 4})
    result = json.loads(out)
    assert code == 0
    assert result["verdict"] == "ineligible"
    assert [(r["clause"], r["fact"], r["value"]) for r in result["reasons"]] == [
        ("二、（二）", "years_in_occupation", 4)
    ]


def test_check_incomplete_lists_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    answers = {k: v for k, v in TECH_EXPERT_OK.items() if k != "is_retired"}
    code, out, _ = check(capsys, tmp_path, answers)
    assert code == 0
    assert json.loads(out)["verdict"] == "incomplete"
    assert json.loads(out)["missing"] == ["is_retired"]


def test_check_reads_answers_from_stdin(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db")
    args = ["check", "--campaign", "jl-skills-2022", "--category", "technical_expert"]
    done = run_awardbot(
        [*args, "--answers", "-"], cwd=tmp_path, env=env, stdin=json.dumps(TECH_EXPERT_OK)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "eligible"


BAD_ANSWERS = [
    ({"nope": True}, "unknown fact key 'nope'"),
    ({"works_in_jilin": "yes"}, "works_in_jilin: 'yes' 不是有效值"),
    ({"years_in_occupation": "six"}, "years_in_occupation"),
    ({"years_in_occupation": 99}, "范围 0 – 60"),
    ({"skill_level": "grandmaster"}, "skill_level: 'grandmaster'"),
    ("{not json", "malformed JSON at line 1 column 2"),
    ("[1, 2]", "expected a JSON object"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS)
def test_bad_answers_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, answers: object, message: str
) -> None:
    code, out, err = check(capsys, tmp_path, answers)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("awardbot: ")
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--campaign", "x", "--category", "y", "--answers", "-"],
         "unknown campaign 'x'"),
        (["check", "--campaign", "jl-skills-2022", "--category", "y", "--answers", "-"],
         "unknown category 'y'"),
        (["check", "--campaign", "jl-skills-2022", "--category", "technical_expert",
          "--answers", "/no/such/file.json"], "no such file"),
        (["calendar", "end", "--start", "2022-02-30", "--workdays", "5"], "not a real date"),
        (["calendar", "end", "--start", "2027-03-01", "--workdays", "5"], "2027"),
        (["calendar", "end", "--start", "2022-09-29", "--workdays", "0"], "must be 1 or more"),
        (["calendar", "end", "--start", "2022-09-29", "--workdays", "x"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)  # fmt: skip
def test_bad_command_lines_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("awardbot: ")
    assert message in err


def test_calendar_end_counts_make_up_workdays(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "end", "--start", "2022-09-29", "--workdays", "5"]) == 0
    assert capsys.readouterr().out == "2022-10-10\n"


def test_campaigns_lists_both_with_categories_and_places(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["campaigns"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "jl-skills-2022", "jl-employment-2022", "skills_grand_award", "吉林技能大奖",
        "名额 不超过10", "technical_expert", "名额 不超过50", "employment_collective",
        "名额 65", "migrant_collective", "名额 35", "employment_individual", "名额 130",
        "migrant_individual", "名额 70",
    ):  # fmt: skip
        assert expected in out


def test_bad_settings_are_one_line_and_exit_2(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db", AWARDBOT_TIMEZONE="Mars/Olympus")
    done = run_awardbot(["campaigns"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == "awardbot: AWARDBOT_TIMEZONE: unknown time zone 'Mars/Olympus'"


def test_broken_campaign_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "camps").mkdir()
    (tmp_path / "camps" / "bad.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    env = awardbot_env(tmp_path / "x.db", AWARDBOT_CAMPAIGNS_DIR=str(tmp_path / "camps"))
    done = run_awardbot(["campaigns"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "bad.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db")
    env["AWARDBOT_DATABASE_URL"] = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    done = run_awardbot(["console"], cwd=tmp_path, env=env, stdin="")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert "secret" not in done.stderr


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db", AWARDBOT_ENV="production")
    del env["AWARDBOT_SECRET_KEY"]
    done = run_awardbot(["console"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "AWARDBOT_SECRET_KEY is required when AWARDBOT_ENV=production" in done.stderr
    assert not (tmp_path / "x.db").exists()


def test_development_generates_a_private_key_once_with_a_warning(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db")
    del env["AWARDBOT_SECRET_KEY"]
    first = run_awardbot(["console", "--user", "a"], cwd=tmp_path, env=env, stdin="1\n")
    key_file = tmp_path / "data" / "secret.key"
    assert first.returncode == 0
    assert "generated a development key" in first.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = run_awardbot(["console", "--user", "a"], cwd=tmp_path, env=env)
    assert second.returncode == 0
    assert second.stderr == ""
    assert "欢迎回来" in second.stdout  # the same key read back what the first run saved


def test_a_malformed_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db", AWARDBOT_SECRET_KEY="hunter2")
    done = run_awardbot(["console"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "AWARDBOT_SECRET_KEY" in done.stderr


def test_keygen_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    from storage.crypto import Sealer

    assert main(["keygen"]) == 0
    key = capsys.readouterr().out.strip()
    sealer = Sealer.from_setting(key)
    assert sealer.open(sealer.seal("是")) == "是"


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"birth_date": "1990-02-30"}, "birth_date: '1990-02-30' 不是有效值"),
        ({"birth_date": "30/02/1990"}, "ISO 日期"),
        ({"id_number": "220104199001010025"}, "校验位不符"),
        ({"age": 30}, "'age' is derived"),
        ({"person_type": "astronaut"}, "person_type: 'astronaut'"),
    ],
)
def test_bad_employment_answers_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, answers: object, message: str
) -> None:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    argv = ["check", "--campaign", "jl-employment-2022", "--category", "migrant_individual"]
    assert main([*argv, "--answers", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


def test_age_is_derived_from_the_id_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from conversations.idnumber import check_digit

    body = "22010419610315002"  # 61 on the campaign's as_of date (2022-12-01)
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"id_number": body + check_digit(body)}), encoding="utf-8")
    argv = ["check", "--campaign", "jl-employment-2022", "--category", "migrant_individual"]
    assert main([*argv, "--answers", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "ineligible"
    assert [(r["fact"], r["value"]) for r in result["reasons"]] == [("age", 61)]


@pytest.mark.parametrize("command", [["console", "--user", "kim"], ["serve", "--port", "0"]])
def test_a_wrong_secret_key_is_one_line_and_exit_2_at_start(
    tmp_path: Path, command: list[str]
) -> None:
    # Issue 8: a well-formed but wrong key made the console die with a 36-line traceback and
    # let serve start, report ok on /healthz and fail every existing user's step.
    first = run_awardbot(
        ["console", "--user", "kim"],
        cwd=tmp_path,
        env=awardbot_env(tmp_path / "bot.db"),
        stdin="/start\n",
    )
    assert first.returncode == 0, first.stderr
    wrong = awardbot_env(tmp_path / "bot.db", AWARDBOT_SECRET_KEY=Sealer.new_key())
    result = run_awardbot(command, cwd=tmp_path, env=wrong, stdin="/start\n")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "AWARDBOT_SECRET_KEY does not open" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening on" not in result.stdout
