"""Filing by chat checks the form against the self-check answers, itself and the records (issue
11): each disagreement names both values; a refusal re-asks, a warning is said and kept. The
unit's code: registered to another unit or used by another unit's nomination — refused; issued
outside the clerk's region — warned, and the nomination still goes out. On SQLite and
PostgreSQL, through the console as a clerk uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.console_harness import ConsoleHarness
from support.filing import ACHIEVEMENTS, bound_clerk, choose
from support.review_rig import clerk as region_clerk
from support.review_rig import place

from conversations.idnumber import check_digit
from conversations.validators import uscc_check_char
from storage import nominations as noms
from storage.store import Store

# The clerk of support.filing: 长春市朝阳区示例有限公司, 91220104MA14ABCD3K, region 220104.
OWN_NAME, OWN_CODE = "长春市朝阳区示例有限公司", "91220104MA14ABCD3K"
OTHER = "吉林某某物流有限公司"  # a unit another unit nominates
ENTERPRISE = [
    "jl-employment-2022", "employment_collective", "企业", "否", "否", "否", "否", "10",
    "是", "是", "是", "是", "否", "否", "是", "1",
]  # fmt: skip


def uscc(body17: str) -> str:
    return body17 + uscc_check_char(body17)


def id_number(born: str) -> str:
    body = f"220104{born.replace('-', '')}002"
    return body + check_digit(body)


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "扫描件.pdf"
    path.write_bytes(b"%PDF-1.7\n% scanned copy\n%%EOF")
    return path


def to_unit_form(store: Store, tmp_path: Path, answers: list[str] = ENTERPRISE) -> ConsoleHarness:
    clerk = bound_clerk(store, tmp_path)
    clerk.send("/new")
    clerk.send("同意")
    for answer in answers:
        clerk.send(answer)
    assert "[verdict] eligible" in clerk.last
    assert clerk.asking() == "unit_name"
    return clerk


def test_a_code_registered_to_another_unit_name_is_refused(store: Store, tmp_path: Path) -> None:
    clerk = to_unit_form(store, tmp_path)
    clerk.send("长春市朝阳区另一有限公司")
    said = clerk.send(OWN_CODE)
    assert (
        f"统一社会信用代码 {OWN_CODE} 已登记为「{OWN_NAME}」，与本表填写的单位名称"
        "「长春市朝阳区另一有限公司」不是同一单位" in said
    )
    assert "/back" in said
    assert clerk.asking() == "uscc"
    clerk.send("/back")  # the name was the mistake
    assert clerk.asking() == "unit_name"
    clerk.send(OWN_NAME)
    clerk.send(OWN_CODE)
    assert clerk.asking() == "is_non_public"


def test_a_code_another_units_nomination_uses_is_refused(store: Store, tmp_path: Path) -> None:
    clerk = to_unit_form(store, tmp_path)
    region_clerk(store, "meihekou", "220581")  # another unit, in 梅河口市
    code = uscc("91220104MA14QWER9")
    place(
        store, campaign="jl-employment-2022", category="migrant_collective", status="draft",
        kind="collective", region="220581", fields={"unit_name": OTHER, "uscc": code},
    )  # fmt: skip
    clerk.send("长春市朝阳区第三有限公司")
    said = clerk.send(code)
    assert f"统一社会信用代码 {code} 已用于另一项推荐的「{OTHER}」" in said
    assert clerk.asking() == "uscc"
    # The same unit, under its own name: another unit nominates it in this campaign already.
    clerk.send("/back")
    clerk.send(OTHER)
    said = clerk.send(code)
    assert "「四、（三）」推荐对象不能重复申报" in said
    assert clerk.asking() == "uscc"


def test_a_withdrawn_nomination_holds_no_code(store: Store, tmp_path: Path) -> None:
    clerk = to_unit_form(store, tmp_path)
    region_clerk(store, "meihekou", "220581")
    code = uscc("91220104MA14QWER9")
    place(
        store, campaign="jl-employment-2022", category="migrant_collective", status="withdrawn",
        kind="collective", region="220581", fields={"unit_name": OTHER, "uscc": code},
    )  # fmt: skip
    clerk.send("长春市朝阳区第三有限公司")
    clerk.send(code)
    assert clerk.asking() == "is_non_public"


def test_a_code_issued_outside_the_region_is_a_warning_that_does_not_block(
    store: Store, tmp_path: Path, pdf: Path
) -> None:
    clerk = to_unit_form(store, tmp_path)
    code = uscc("91220581MA14QWER9")  # 梅河口市's registration authority
    clerk.send("梅河口市某某有限公司")
    said = clerk.send(code)
    assert (
        "统一社会信用代码第 3–8 位（登记管理机关行政区划码）是 220581（梅河口市），"
        "不在本单位所在的" in said
    )
    assert "如该单位在外地登记，可以继续" in said
    assert clerk.asking() == "is_non_public"  # kept, on to the next field
    for answer in ("否", "2010-05-20", "120", "10", "李四", "13912345678", ACHIEVEMENTS):
        clerk.send(answer)
    assert clerk.asking() == "attach"
    needed = [v for _, v in clerk.options() if v.startswith("upload:")]
    for material in needed:
        choose(clerk, material)
        clerk.send(f"/file {pdf}")
    choose(clerk, "done")
    assert clerk.asking() == "summary"
    assert "不在本单位所在的" in clerk.last  # said again on the summary
    assert "改正后才能提交" not in clerk.last
    done = choose(clerk, "submit")
    assert "已提交，当前状态：单位公示" in done
    assert "不在本单位所在的" in done


def test_a_founding_date_giving_fewer_years_than_answered_is_refused(
    store: Store, tmp_path: Path
) -> None:
    clerk = to_unit_form(store, tmp_path)  # 依法成立年限: 10 years
    clerk.send(OWN_NAME)
    clerk.send(OWN_CODE)
    clerk.send("否")
    assert clerk.asking() == "founded_on"
    said = clerk.send("2020-01-01")
    assert "按成立日期（2020-01-01），到今天（2022-10-20）满 2 年" in said
    assert "少于资格自检时回答的依法成立年限（10 年）" in said
    assert "/new" in said  # the way out when the date is the right one
    assert clerk.asking() == "founded_on"
    said = clerk.send("2005-01-01")  # more years than answered: possible, said, kept
    assert "资格自检时回答的依法成立年限是 10 年，两者不一致" in said
    assert clerk.asking() == "staff_count"
    clerk.send("/back")
    said = clerk.send("2012-03-01")  # 10 years: agrees
    assert "不一致" not in said
    assert clerk.asking() == "staff_count"


def test_the_id_numbers_birth_date_must_be_the_one_answered(store: Store, tmp_path: Path) -> None:
    answers = ["jl-employment-2022", "employment_individual", "1", "1985-06-15", "无", "否",
               "5", "是", "否", "否", "否", "否", "1"]  # fmt: skip
    clerk = to_unit_form_of(store, tmp_path, answers, first="name")
    for answer in ("张小三", "汉族"):
        clerk.send(answer)
    assert clerk.asking() == "id_number"
    said = clerk.send(id_number("1980-05-06"))
    assert (
        "身份证号第 7–14 位的出生日期（1980-05-06）与资格自检时回答的出生日期（1985-06-15）不一致"
        in said
    )
    assert clerk.asking() == "id_number"
    clerk.send(id_number("1985-06-15"))
    assert clerk.asking() == "political_status"


def to_unit_form_of(
    store: Store, tmp_path: Path, answers: list[str], *, first: str
) -> ConsoleHarness:
    clerk = bound_clerk(store, tmp_path)
    clerk.send("/new")
    clerk.send("同意")
    for answer in answers:
        clerk.send(answer)
    assert "[verdict] eligible" in clerk.last
    assert clerk.asking() == first
    return clerk


def test_years_in_the_occupation_beyond_the_age_less_16_are_asked_again(
    store: Store, tmp_path: Path
) -> None:
    expert = [
        "jl-skills-2022", "technical_expert", "是", "是", "否", "否", "否", "否", "高级工", "6",
        "是", "否", "否", "否", "否", "否", "否", "否", "否", "1",
    ]  # fmt: skip
    clerk = to_unit_form_of(store, tmp_path, expert, first="name")
    clerk.send("张小三")
    clerk.send("汉族")
    # Born 2004-01-01: 18 on 2022-10-20, so at most 2 years of work; the self-check said 6.
    said = clerk.send(id_number("2004-01-01"))
    assert "从事本职业（工种）年限（6 年）与年龄不符" in said
    assert "按身份证号中的出生日期，到 2022-10-20 年满 18 周岁" in said
    assert "《中华人民共和国劳动法》第十五条" in said
    assert "“从事本职业（工种）年限”原来填写的内容已清除" in said
    answers = {"political_status": "中共党员", "education": "大学本科", "employer": OWN_NAME,
               "position": "车工", "occupation": "车工", "skill_level": "高级工",
               "certificate_number": "GZ-2020-001"}  # fmt: skip
    while clerk.asking() in answers:
        clerk.send(answers[clerk.asking()])
    assert clerk.asking() == "years_in_occupation"
    said = clerk.send("6")
    assert "最多 2 年" in said
    assert "如“身份证号”有误，请发送 /back 返回修改" in said
    assert clerk.asking() == "years_in_occupation"
    clerk.send("2")
    assert clerk.asking() == "awards"


def test_a_draft_that_disagrees_cannot_leave_the_unit(store: Store, tmp_path: Path) -> None:
    """The gate every way off the unit's desk passes (here /mine) checks it too."""
    clerk = bound_clerk(store, tmp_path)
    nomination = place(
        store, campaign="jl-employment-2022", category="employment_collective", status="draft",
        kind="collective", fields={"unit_name": "长春市朝阳区另一有限公司", "uscc": OWN_CODE},
    )  # fmt: skip
    clerk.send("/mine")
    choose(clerk, clerk.options()[0][1])
    moves = [v for _, v in clerk.options() if v.startswith("move:")]
    said = choose(clerk, moves[0])
    assert f"已登记为「{OWN_NAME}」" in said
    with store.reading() as conn:
        record = noms.get(conn, store.sealer, nomination)
    assert record is not None
    assert record.status == "draft"
