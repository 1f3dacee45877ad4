"""Filing a nomination by chat, end to end on the console: a clerk binds, files, attaches, edits
one field from the summary and submits; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import ConsoleHarness
from support.filing import (
    ELIGIBLE_EXPERT,
    ID_NUMBER,
    REQUIRED,
    SELF_CHECK_EXPERT,
    attach,
    bound_clerk,
    choose,
    file_to_attachments,
)

from storage import nominations as noms
from storage import outbox
from storage.store import Store


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "扫描件.pdf"
    path.write_bytes(b"%PDF-1.7\n% scanned copy\n%%EOF")
    return path


def tracking_code(store: Store) -> str:
    with store.reading() as conn:
        return str(conn.execute(sa.select(noms.nominations.c.tracking_code)).scalar_one())


def test_a_whole_filing_with_refusals_an_edit_and_submit(
    store: Store, tmp_path: Path, pdf: Path
) -> None:
    clerk = bound_clerk(store, tmp_path)
    file_to_attachments(clerk)
    code = tracking_code(store)

    # an applicant follows it before it is submitted
    fan = ConsoleHarness(store, user="zhang")
    fan.open()
    fan.send(f"/track {code}")

    # All but the diploma and the opinions form, which the 征求意见 stage after the publicity
    # produces: the filing shows when it is due and does not wait for it (issue 11).
    assert "推荐对象征求意见表（单位公示结束后、报送县级前提交） [upload:opinions]" in clerk.last
    assert "毕业证书复印件（必需） [upload:diploma]" in clerk.last
    for material in REQUIRED:
        if material not in ("diploma", "opinions"):
            assert "已收到" in attach(clerk, material, pdf)
    choose(clerk, "done")
    assert clerk.asking() == "summary"
    assert "身份证号：220104********0028" in clerk.last
    assert ID_NUMBER not in clerk.last
    assert "联系电话：139****5678" in clerk.last or "手机号码：139****5678" in clerk.last

    assert "尚缺必需附件：毕业证书复印件\n" in clerk.last
    assert (
        "以后阶段提交，不影响现在提交：推荐对象征求意见表（单位公示结束后、报送县级前提交）"
        in clerk.last
    )
    assert "已上传附件：吉林技能大奖（吉林省技术能手）推荐审批表；身份证复印件" in clerk.last
    refused = choose(clerk, "submit")
    assert "缺少必需的附件：毕业证书复印件。" in refused
    choose(clerk, "attach")
    attach(clerk, "diploma", pdf)
    choose(clerk, "done")

    choose(clerk, "edit:position")  # change one field without redoing the rest
    assert clerk.asking() == "position"
    clerk.send("数控车工班组长")
    assert clerk.asking() in ("attach", "summary")
    if clerk.asking() == "attach":
        choose(clerk, "done")
    assert "数控车工班组长" in clerk.last

    done = choose(clerk, "submit")
    assert "已提交，当前状态：单位公示" in done
    assert "公示期：2022-10-20 至 2022-10-26（5 个工作日）" in done
    assert (
        "报送前还须上传：推荐对象征求意见表（单位公示结束后、报送县级前提交）。"
        "届时在 /mine 中打开这项推荐，选择“补充附件”上传。"
    ) in done

    with store.reading() as conn:
        record = noms.by_tracking_code(conn, store.sealer, code)
        files = noms.attachments_of(conn, store.sealer, record.id)  # type: ignore[union-attr]
        trail = noms.audit_trail(conn, store.sealer, nomination_id=record.id)  # type: ignore[union-attr]
    assert record is not None
    assert (record.status, record.publicity_ends_on) == ("unit_publicity", date(2022, 10, 26))
    assert record.payload["fields"]["position"] == "数控车工班组长"
    assert record.payload["fields"]["birth_month"] == "1990-01"
    assert sorted(f.material_key for f in files) == sorted(set(REQUIRED) - {"opinions"})
    assert [(a.from_status, a.to_status, a.allowed) for a in trail] == [
        ("draft", "unit_publicity", True)
    ]
    # the follower is told, through the outbox, in the same transaction as the move ...
    assert outbox.depth(store) == 1
    # ... and reads it the next time they are on the console
    news = fan.send("/whoami")
    assert news.startswith(
        f"【通知】您关注的推荐（跟踪码 {code}）状态变为：单位公示（2022-10-20 至 2022-10-26）。"
    )
    assert outbox.depth(store) == 0
    assert "【通知】" not in fan.send("/whoami")  # delivered once
    assert "单位公示" in clerk.send("/mine")


def test_the_database_holds_no_id_number_or_phone_in_clear(
    store: Store, tmp_path: Path, pdf: Path
) -> None:
    clerk = bound_clerk(store, tmp_path)
    file_to_attachments(clerk)
    with store.reading() as conn:
        dump = " ".join(
            str(value)
            for table in ("nominations", "conversation_sessions", "attachments", "audit_log")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            for value in row
        )
    for clear in (ID_NUMBER, "13912345678", "张小三", "汉族"):
        assert clear not in dump
    # On SQLite, grep the database files themselves (main file and write-ahead log).
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    if store.dialect == "sqlite":
        assert raw
    for clear in (ID_NUMBER, "13912345678", "张小三"):
        assert clear.encode() not in raw


def test_without_consent_nothing_is_collected(store: Store, tmp_path: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    clerk.send("/new")
    assert "未获同意" in clerk.send("不同意")
    with store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(noms.nominations)).scalar() == 0


def test_an_ineligible_nominee_cannot_be_filed(store: Store, tmp_path: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    clerk.send("/new")
    clerk.send("同意")
    clerk.send("jl-skills-2022")
    clerk.send("technical_expert")
    clerk.send("否")  # not working in Jilin: a hard failure
    choose(clerk, "finish")
    assert "[verdict] ineligible" in clerk.last
    assert "不能推荐" in clerk.last
    with store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(noms.nominations)).scalar() == 0


def test_only_clerks_may_file(store: Store) -> None:
    applicant = ConsoleHarness(store, user="someone")
    applicant.open()
    assert "只有绑定了单位的经办人可以填报推荐" in applicant.send("/new")
    assert applicant.asking() == "campaign"


def test_a_wrong_file_is_refused_with_the_reason(store: Store, tmp_path: Path, pdf: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    file_to_attachments(clerk)
    exe = tmp_path / "virus.pdf"
    exe.write_bytes(b"MZ\x90\x00" + b"\x00" * 100)
    out = attach(clerk, "id_card", exe)
    assert "已收到" not in out
    assert clerk.asking() == "file"
    assert "找不到" in clerk.send("/file /no/such/file.pdf") or "无法读取" in clerk.last
    clerk.send("/cancel")
    assert clerk.asking() == "attach"


def test_the_same_person_cannot_be_filed_twice(store: Store, tmp_path: Path, pdf: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    for _ in range(2):
        file_to_attachments(clerk)
        for material in REQUIRED:
            attach(clerk, material, pdf)
        choose(clerk, "done")
        last = choose(clerk, "submit")
    assert "同一推荐对象" in last
    assert "已提交" not in last


def test_cancel_keeps_the_draft_and_leaves_filing(store: Store, tmp_path: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    clerk.send("/new")
    clerk.send("同意")
    for answer in ELIGIBLE_EXPERT:
        clerk.send(answer)
    clerk.send("张小三")
    assert "草稿已保留" in clerk.send("/cancel")
    assert clerk.asking() == "campaign"
    assert "张*三 · 吉林省技术能手 · 草稿" in clerk.send("/mine")
    choose(clerk, clerk.options()[0][1])  # open the draft
    resumed = choose(clerk, "continue_draft")
    assert "继续填报：张*三" in resumed
    assert clerk.asking() == "ethnicity"  # the next field: the name was kept
    clerk.send("汉族")
    assert clerk.asking() == "id_number"


def test_a_self_check_already_done_is_reused_for_filing(store: Store, tmp_path: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    for answer in SELF_CHECK_EXPERT:  # the clerk's own self-check of this category first
        clerk.send(answer)
    assert "[verdict] eligible" in clerk.last
    clerk.send("/new")
    clerk.send("同意")
    clerk.send("jl-skills-2022")
    reused = clerk.send("technical_expert")
    assert "沿用那次的回答" in reused
    assert clerk.asking() == "summary"  # not asked again one by one
    clerk.send("1")
    assert "[verdict] eligible" in clerk.last
    assert clerk.asking() == "name"  # straight on to the form
