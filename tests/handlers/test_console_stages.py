"""A later stage's materials by chat (issue 11), on the console over SQLite and PostgreSQL: the
draft enters its unit publicity without the opinions form, the move to the county is refused
naming it, the clerk attaches it from /mine (补充附件) while the nomination is in 征求意见, and
the move is made."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness
from support.filing import REQUIRED, attach, bound_clerk, choose, file_to_attachments
from support.review_rig import audit_rows, status_of

from storage import nominations as noms
from storage.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = FIXED_NOW

    def __call__(self) -> dt.datetime:
        return self.now


def nomination(store: Store) -> tuple[int, str]:
    with store.reading() as conn:
        row = conn.execute(
            sa.select(noms.nominations.c.id, noms.nominations.c.tracking_code)
        ).one()
    return int(row.id), str(row.tracking_code)


def stored(store: Store, nomination_id: int) -> list[str]:
    with store.reading() as conn:
        files = noms.attachments_of(conn, store.sealer, nomination_id)
    return sorted(f.material_key for f in files)


def open_mine(clerk: ConsoleHarness) -> str:
    clerk.send("/mine")
    return choose(clerk, clerk.options()[0][1])


def test_the_opinions_form_is_attached_in_its_stage_and_gates_the_move_out(
    store: Store, tmp_path: Path
) -> None:
    clock = Clock()
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%%EOF")
    clerk = bound_clerk(store, tmp_path, clock=clock)
    file_to_attachments(clerk)
    for material in REQUIRED:
        if material != "opinions":
            assert "已收到" in attach(clerk, material, pdf)
    choose(clerk, "done")

    # The draft enters its unit publicity without the opinions form ...
    submitted = choose(clerk, "submit")
    assert "已提交，当前状态：单位公示" in submitted
    later = "报送前还须上传：推荐对象征求意见表（单位公示结束后、报送县级前提交）"
    assert later in submitted
    nomination_id, code = nomination(store)
    assert "opinions" not in stored(store, nomination_id)

    # The nominee consents in chat, as the move out of the unit needs of a person (PIPL).
    nominee = ConsoleHarness(store, user="nominee", clock=clock)
    nominee.open()
    nominee.send(f"/track {code}")
    nominee.send("同意")

    # ... the publicity ends, the departments are ticked off ...
    clock.now = FIXED_NOW + timedelta(days=6)  # 2022-10-26, the publicity's last day
    open_mine(clerk)
    assert "补充附件（尚缺 1 项） [continue_draft]" in clerk.last
    choose(clerk, "move:finish_unit_publicity")
    assert status_of(store, nomination_id) == "opinions"
    open_mine(clerk)
    for department in [v for _, v in clerk.options() if v.startswith("opinion:")]:
        choose(clerk, department)

    # ... and the move to the county is refused, naming the missing form.
    refused = choose(clerk, "move:submit_to_county")
    assert (
        "还不能“报送县级人社部门”：缺少这一步须提交的附件：推荐对象征求意见表。"
        "请在这项推荐中选择“补充附件”上传后再办理。"
    ) in refused
    assert status_of(store, nomination_id) == "opinions"
    assert ("submit", False) in audit_rows(store, nomination_id)

    # 补充附件 offers this stage's materials only; the form is attached and stored.
    choose(clerk, "continue_draft")
    assert clerk.asking() == "attach"
    assert "补充附件：选择要上传的材料" in clerk.last
    assert [v for _, v in clerk.options()] == [
        "upload:opinions", "upload:nominee_consent", "done",  # the signed consent form too
    ]  # fmt: skip
    assert "推荐对象征求意见表（必需） [upload:opinions]" in clerk.last
    assert "已收到“推荐对象征求意见表”（pdf）" in attach(clerk, "opinions", pdf)
    assert "推荐对象征求意见表（✓） [upload:opinions]" in clerk.last
    done = choose(clerk, "done")
    assert "附件已保存。发送 /mine 打开这项推荐继续办理。" in done
    assert stored(store, nomination_id) == sorted(REQUIRED)

    # Now the move out of the unit is made.
    detail = open_mine(clerk)
    assert "[continue_draft]" in detail  # 补充附件 stays offered while in the unit's hands
    assert "补充附件（尚缺" not in detail
    assert "已办理：报送县级人社部门，当前状态：县级人社部门审核" in choose(
        clerk, "move:submit_to_county"
    )
    assert status_of(store, nomination_id) == "county_review"
    assert "[continue_draft]" not in open_mine(clerk)  # out of the unit: nothing more to attach
