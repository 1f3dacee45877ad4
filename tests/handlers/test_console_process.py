"""The console as a user runs it: a real process, a real SQLite file, pipes."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from support.keys import TEST_SEALER
from support.process import LiveConsole, awardbot_env, run_awardbot

GRAND_ANSWERS = [
    ("works_in_jilin", "是"), ("frontline_skill_position", "是"), ("is_unit_head", "否"),
    ("is_retired", "否"), ("applying_both_awards", "否"),
    ("holds_jilin_skills_grand_award", "否"), ("holds_jilin_technical_expert", "是"),
    ("skill_level", "6"), ("years_in_occupation", "12年"),
    ("achv_competition_bronze_plus", "否"), ("achv_labor_model_or_may1_medal", "是"),
    ("achv_technical_breakthrough", "否"), ("achv_unique_skill_mentoring", "否"),
    ("achv_advanced_tech_promotion", "否"), ("consent", "同意"), ("has_violation_record", "否"),
    ("has_disciplinary_sanction", "否"), ("has_accountability_action", "否"),
    ("on_credit_blacklist", "否"), ("under_investigation", "否"),
]  # fmt: skip


def saved_state(db: Path, user: str) -> dict[str, object]:
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT s.state FROM conversation_sessions s JOIN users u ON u.id = s.user_id"
            " WHERE u.channel = 'console' AND u.external_id = ?",
            (user,),
        ).fetchone()
    assert row is not None, "no saved session"
    return json.loads(TEST_SEALER.open(row[0]))


def test_pipe_mode_numbers_choices_and_exits_0_at_end_of_input(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "bot.db")
    done = run_awardbot(["console", "--user", "ann"], cwd=tmp_path, env=env, stdin="1\n")
    assert done.returncode == 0, done.stderr
    assert "1. 第八届吉林技能大奖和吉林省技术能手" in done.stdout or "1. " in done.stdout
    assert "请选择申报类别" in done.stdout
    assert "[" not in done.stdout.split("请选择申报类别")[1]  # no keys without --show-keys
    assert done.stderr == ""


def test_killed_process_resumes_at_the_same_question_with_answers_kept(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    env = awardbot_env(db)
    first = LiveConsole(cwd=tmp_path, env=env, user="kim")
    first.expect("[campaign]")
    first.send("jl-skills-2022")
    first.expect("[category]")
    first.send("skills_grand_award")
    for key, answer in GRAND_ANSWERS[:8]:
        first.expect(f"[{key}]")
        first.send(answer)
    first.expect("[years_in_occupation]")  # the 9th question is on screen: its state is saved
    first.kill()

    state = saved_state(db, "kim")
    assert state["question"] == "years_in_occupation"
    assert len(state["answers"]) == 8  # type: ignore[arg-type]

    second = LiveConsole(cwd=tmp_path, env=env, user="kim")
    greeting = second.expect("[years_in_occupation]")
    assert "欢迎回来" in greeting
    assert "[campaign]" not in greeting
    second.send(GRAND_ANSWERS[8][1])
    for key, answer in GRAND_ANSWERS[9:]:
        second.expect(f"[{key}]")
        second.send(answer)
    second.expect("[summary]")
    summary = second.expect("[edit:under_investigation]")
    assert "已获吉林省技术能手称号：是 [edit:holds_jilin_technical_expert]" in summary
    assert "职业资格（职业技能等级）：高级技师（一级）" in summary
    second.send("1")
    second.expect("[verdict] eligible")
    assert second.close() == 0
    assert "Traceback" not in second.errors
    # Answers (disciplinary ones among them) are encrypted at rest: none is in the file in clear.
    dump = b"".join(p.read_bytes() for p in tmp_path.glob("bot.db*"))
    for clear in (b"has_disciplinary_sanction", b"senior_technician", b"answers", "是".encode()):
        assert clear not in dump


HOSTILE = [
    "",
    "a" * 10_000,
    "😀🎉👍",
    "\x1b[31m\x07\x00",
    "'; DROP TABLE users; --",
    "Robert'); DELETE FROM conversation_sessions; --",
    "<script>alert(1)</script>",
    "/../../etc/passwd",
    "\u202eevil",
    "9" * 400,
]


def test_hostile_input_is_answered_politely_and_nothing_wrong_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    env = awardbot_env(db)
    lines = ["jl-skills-2022", "skills_grand_award", *HOSTILE, "是", *HOSTILE, "/status"]
    done = run_awardbot(
        ["console", "--show-keys", "--user", "mallory"],
        cwd=tmp_path,
        env=env,
        stdin="\n".join(lines) + "\n",
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr + done.stdout
    out = done.stdout
    assert out.count("没有收到内容") >= 2  # empty and control-only lines
    assert out.count("输入太长了") == 2  # the 10,000-character line, twice
    assert out.count("请回答“是”或“否”") >= 12  # everything else was re-asked politely
    assert "已回答 1 题" in out
    state = saved_state(db, "mallory")
    assert state["answers"] == {"works_in_jilin": True}
    dump = db.read_bytes()
    assert b"DROP TABLE" not in dump
    assert "😀".encode() not in dump
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_two_users_on_one_database_do_not_see_each_other(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "bot.db")
    run_awardbot(["console", "--user", "a"], cwd=tmp_path, env=env, stdin="1\n")
    done = run_awardbot(["console", "--show-keys", "--user", "b"], cwd=tmp_path, env=env)
    assert "[campaign]" in done.stdout
    assert "欢迎回来" not in done.stdout
