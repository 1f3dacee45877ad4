"""`awardbot export KIND --campaign ID [--region CODE | --unit UNIT] [--for AUDIENCE] --out DIR`
(issue 12): the same files /documents sends, written to a folder from one snapshot, audited;
bad input is one line on stderr and exit 2, never a traceback.

`bot.cli.main` runs in process with the environment set, as tests/bot/test_privacy_cli.py does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook
from support.cli import cli_store, run
from support.console_harness import catalog
from support.review_rig import audit_rows, clerk, place

from conversations.idnumber import check_digit
from storage.store import Store

SKILLS, EMPLOYMENT = "jl-skills-2022", "jl-employment-2022"
ID = "22010419900315002" + check_digit("22010419900315002")


@pytest.fixture
def db(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    yield from cli_store(store_url, tmp_path, monkeypatch)


def sheet_rows(path: Path) -> list[list[object]]:
    book = load_workbook(path, read_only=True)
    try:
        return [list(r) for r in book.active.iter_rows(min_row=4, values_only=True)]
    finally:
        book.close()


def test_the_provinces_summary_in_full_and_a_units_masked(
    db: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clerk(db)
    place(db, fields={"name": "张小三", "id_number": ID, "mobile": "13912345678"})
    place(db, fields={"name": "李小四"}, status="draft")  # not filed: not in any document
    code, out, err = run(capsys, "export", "summary", "--campaign", SKILLS, "--out", "prov")
    assert code == 0, err
    paths = [Path(line) for line in out.splitlines()]
    assert sorted(p.suffix for p in paths) == [".pdf", ".xlsx"]  # the sheet and its twin
    (path,) = [p for p in paths if p.suffix == ".xlsx"]
    assert path.parent == Path("prov")
    assert path.name.endswith("推荐汇总表.xlsx")
    (row,) = sheet_rows(path)
    assert (row[1], row[13]) == ("张小三", "13912345678")  # the province: in full
    assert "共 2 个文件，1 件推荐" in err
    code, out, _ = run(
        capsys, "export", "summary", "--campaign", SKILLS, "--unit", "91220104MA14ABCD3K",
        "--out", "unit",
    )  # fmt: skip
    assert code == 0
    (row,) = sheet_rows(next(Path(p) for p in out.split() if p.endswith(".xlsx")))
    assert row[13] == "139****5678"
    assert audit_rows(db).count(("export", True)) == 2


def test_the_public_list_of_a_region_and_every_document_at_once(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clerk(db)
    place(db, fields={"name": "张小三", "id_number": ID, "mobile": "13912345678"})
    code, out, err = run(
        capsys, "export", "publicity", "--campaign", SKILLS, "--region", "220100", "--for",
        "public", "--out", "pub",
    )  # fmt: skip
    assert code == 0, err
    (docx,) = [Path(p) for p in out.split() if p.endswith(".docx")]
    text = "\n".join(c.text for t in Document(str(docx)).tables for r in t.rows for c in r.cells)
    assert "张小三" in text
    assert not re.search(r"\d{17}[\dX]|1\d{10}", text)
    code, out, err = run(capsys, "export", "all", "--campaign", SKILLS, "--out", "all")
    assert code == 0, err
    names = [Path(p).name for p in out.split()]
    for title in ("推荐汇总表", "推荐审批表", "档案袋封面", "征求意见表", "公示名单", "推荐报告"):
        assert any(title in n for n in names), title


def test_the_employment_campaign_gets_one_summary_per_kind(
    db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clerk(db)
    lifecycle = catalog().get(EMPLOYMENT).lifecycle
    assert lifecycle is not None
    person = next(c.id for c in catalog().get(EMPLOYMENT).categories if "individual" in c.id)
    unit = next(c.id for c in catalog().get(EMPLOYMENT).categories if "collective" in c.id)
    place(db, campaign=EMPLOYMENT, category=person, status="county_review",
          fields={"name": "王小五"})  # fmt: skip
    place(db, campaign=EMPLOYMENT, category=unit, kind="collective", status="county_review",
          fields={"unit_name": "朝阳区就业服务中心"})  # fmt: skip
    code, out, err = run(capsys, "export", "summary", "--campaign", EMPLOYMENT, "--out", "emp")
    assert code == 0, err
    paths = sorted(Path(p) for p in out.split() if p.endswith(".xlsx"))
    assert [p.name.split("-")[-2:] for p in paths] == [
        ["推荐汇总表", "个人.xlsx"], ["推荐汇总表", "集体.xlsx"],
    ]  # fmt: skip
    assert [len(sheet_rows(p)) for p in paths] == [1, 1]
    assert "王小五" in sheet_rows(paths[0])[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["summary", "--campaign", "nope", "--out", "x"], "--campaign: 没有评选 'nope'"),
        (["summary", "--campaign", SKILLS, "--region", "999999", "--out", "x"], "未知地区代码"),
        (["summary", "--campaign", SKILLS, "--unit", "没有的单位", "--out", "x"], "没有单位"),
        (["quota", "--campaign", SKILLS, "--unit", "1", "--out", "x"], "请用 --region"),
        (["summary", "--campaign", SKILLS, "--out", "afile"], "不是文件夹"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    db: Store, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    clerk(db)
    Path("afile").write_text("x")
    code, out, err = run(capsys, "export", *args)
    assert code == 2
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
