"""Draws the README's pictures of the PDFs and the quota chart from made-up sample data.

    .venv/bin/python scripts/readme_pictures.py [OUT_DIR]     # default: docs/img

Writes form.png (page 1 of a 推荐审批表), publicity.png (a 公示名单), book-toc.png (the
material book's table of contents), book-scan.png (a scan as a book page), summary.png (page 1
of the landscape 推荐汇总表), opinions.png (a 征求意见表), cover.png (a 档案袋封面), report.png
(the draft 推荐报告) and quota.png. The
people, units and numbers are invented; the ID numbers carry a valid check digit
(conversations.idnumber.check_digit) but belong to no one. The pages are rendered with
pdfium from the real output of documents.pdf and documents.chart, then reduced to a small
palette so each file stays well under 200 KB.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
from fpdf import FPDF
from PIL import Image, ImageDraw

from bot.catalog import load_catalog
from conversations.crossrules import NominationFacts
from conversations.documents import (
    Audience,
    DocKind,
    Entry,
    FileLine,
    Header,
    entry_of,
    quota_figures,
)
from conversations.forms import form_for
from conversations.idnumber import check_digit
from documents.chart import quota_png
from documents.fonts import FAMILY, font_path
from documents.pdf import (
    book_pdf,
    cover_pdf,
    form_pdf,
    opinions_pdf,
    publicity_pdf,
    report_pdf,
    summary_pdf,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2022, 10, 9, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SKILLS, EMPLOYMENT = "jl-skills-2022", "jl-employment-2022"
catalog = load_catalog(ROOT / "campaigns")


def id_number(body17: str) -> str:
    return body17 + check_digit(body17)


PEOPLE: list[tuple[str, str, str, str, str, str]] = [
    # name, ID body, phone, unit, position, category
    ("王晓峰", "22010419850312003", "13904310001", "一汽解放有限公司", "装配钳工班长",
     "skills_grand_award"),
    ("刘佳琪", "22020219900521004", "13904320002", "吉林化纤集团有限责任公司", "化纤纺丝工",
     "technical_expert"),
    ("金成浩", "22240119881108005", "13904330003", "延边州特种设备检验所", "电焊工",
     "technical_expert"),
]  # fmt: skip


def skills_entry(person: tuple[str, str, str, str, str, str], doc: DocKind, **kw: Any) -> Entry:
    name, body, phone, unit, position, category = person
    campaign = catalog.get(SKILLS)
    form = form_for(campaign, category)
    assert form is not None
    fields = {
        "name": name, "id_number": id_number(body), "mobile": phone, "ethnicity": "汉族",
        "political_status": "cpc_member", "education": "associate", "employer": unit,
        "position": position, "occupation": "装配钳工", "skill_level": "senior_technician",
        "certificate_number": "S000022010400871", "years_in_occupation": 16,
        "awards": ["2018年吉林省技术能手", "2021年长春市五一劳动奖章"],
        "achievements": (
            "从事汽车总装装配工作16年，主持完成驾驶室总成装配工艺改进3项，"
            "年节约成本约120万元；带徒18人，其中5人取得技师资格。"
        ),
        "has_classified_material": False,
    }  # fmt: skip
    return entry_of(
        campaign, form, id=1, code="K7QF-2M9D", category=category, status="county_review",
        unit=unit, region="长春市朝阳区", region_code="220104", fields=fields,
        attachments=kw.get("attachments", []), opinions_recorded=kw.get("recorded", []),
        publicity=None, rank=kw.get("rank", 1),
        audience=kw.get("audience", Audience.UNIT), doc=doc,
    )  # fmt: skip


def certificate_pdf() -> bytes:
    pdf = FPDF(format="A4")
    pdf.add_font(FAMILY, fname=str(font_path()))
    pdf.add_page()
    pdf.set_font(FAMILY, size=26)
    pdf.set_y(90)
    pdf.cell(0, 20, "职业技能等级证书（样例）", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=14)
    pdf.cell(0, 12, "姓名：王晓峰　　职业：装配钳工　　等级：高级技师", align="C")
    return bytes(pdf.output())


def scan_png() -> bytes:
    image = Image.new("RGB", (1200, 760), (236, 240, 246))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((40, 40, 1160, 720), radius=36, outline=(90, 110, 140), width=6)
    draw.rectangle((820, 160, 1080, 480), fill=(200, 210, 225))
    for y in range(180, 620, 80):
        draw.rectangle((100, y, 700, y + 24), fill=(150, 160, 180))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def page_png(pdf: bytes, index: int, out: Path) -> None:
    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[index]
        image = page.render(scale=1.5).to_pil()
        page.close()
    finally:
        doc.close()
    image.convert("RGB").quantize(colors=64).save(out, optimize=True)


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else ROOT / "docs" / "img"
    out_dir.mkdir(parents=True, exist_ok=True)
    skills = catalog.get(SKILLS)
    header = Header(SKILLS, skills.title, "长春市朝阳区", Audience.UNIT, NOW)

    form = io.BytesIO()
    form_pdf(header, skills_entry(PEOPLE[0], DocKind.FORM), form)
    page_png(form.getvalue(), 0, out_dir / "form.png")

    public = [skills_entry(p, DocKind.PUBLICITY, audience=Audience.PUBLIC) for p in PEOPLE]
    listing = io.BytesIO()
    publicity_pdf(
        header, public, listing, period=(dt.date(2022, 10, 10), dt.date(2022, 10, 14)),
        workdays=5, contact="赵敏 0431-8888 6666",
    )  # fmt: skip
    page_png(listing.getvalue(), 0, out_dir / "publicity.png")

    files = {
        1: scan_png(),
        2: certificate_pdf(),
        3: b"PK\x03\x04",  # a DOCX: listed, not merged
    }
    attachments = [
        ("id_card", FileLine(1, "身份证正反面.png", "png")),
        ("qualification_certificate", FileLine(2, "高级技师证书.pdf", "pdf")),
        ("skill_achievements", FileLine(3, "工艺改进报告.docx", "docx")),
    ]
    book = io.BytesIO()
    result = book_pdf(
        header, skills_entry(PEOPLE[0], DocKind.BOOK, attachments=attachments),
        lambda f: files.get(f.attachment_id), book,
    )  # fmt: skip
    page_png(book.getvalue(), 0, out_dir / "book-toc.png")
    scan_at = result.pages - 2  # the scan comes before the certificate's single page
    page_png(book.getvalue(), scan_at, out_dir / "book-scan.png")

    ranked_people = [
        skills_entry(p, DocKind.SUMMARY, rank=rank) for rank, p in enumerate(PEOPLE, 1)
    ]
    summary = io.BytesIO()
    summary_pdf(header, "person", ranked_people, summary)
    page_png(summary.getvalue(), 0, out_dir / "summary.png")

    opinions = io.BytesIO()
    opinions_pdf(
        header, [skills_entry(PEOPLE[0], DocKind.OPINIONS, recorded=["公安部门"])], opinions
    )
    page_png(opinions.getvalue(), 0, out_dir / "opinions.png")

    cover = io.BytesIO()
    cover_pdf(header, [skills_entry(PEOPLE[0], DocKind.COVER, attachments=attachments)], cover)
    page_png(cover.getvalue(), 0, out_dir / "cover.png")

    report = io.BytesIO()
    report_pdf(
        header, [skills_entry(p, DocKind.REPORT, rank=r) for r, p in enumerate(PEOPLE, 1)],
        report, contact="赵敏 0431-8888 6666",
        publicity=(dt.date(2022, 10, 10), dt.date(2022, 10, 14)),
    )  # fmt: skip
    page_png(report.getvalue(), 0, out_dir / "report.png")

    employment = catalog.get(EMPLOYMENT)
    names = {"220100": "长春市", "220200": "吉林市", "220300": "四平市", "220400": "辽源市"}
    counts = {  # (region, category): (places, nominations)
        ("220100", "employment_individual"): (6, 11), ("220200", "employment_individual"): (4, 5),
        ("220300", "employment_individual"): (3, 7), ("220400", "employment_individual"): (2, 4),
        ("220100", "migrant_individual"): (4, 7), ("220200", "migrant_individual"): (3, 4),
        ("220300", "migrant_individual"): (2, 3), ("220400", "migrant_individual"): (2, 5),
    }  # fmt: skip
    facts: list[NominationFacts] = []
    quotas: dict[str, list[tuple[str, int]]] = {}
    for (region, category), (places, made) in counts.items():
        quotas.setdefault(category, []).append((region, places))
        for i in range(made):
            n = len(facts) + 1
            facts.append(
                NominationFacts(
                    n,
                    EMPLOYMENT,
                    category,
                    "individual",
                    n,
                    region[:4] + "02",
                    f"d{n}",
                    "city_review",
                    capped=i % 4 == 0,
                )  # fmt: skip
            )
    figures = quota_figures(
        employment, "吉林省", facts, quotas, region_name=names.__getitem__,
        contains=lambda quota, region: region[:4] == quota[:4],
    )  # fmt: skip
    chart = io.BytesIO()
    quota_png(figures, chart)
    chart.seek(0)
    with Image.open(chart) as image:
        image.convert("RGB").quantize(colors=64).save(out_dir / "quota.png", optimize=True)

    for path in sorted(out_dir.glob("*.png")):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
              f"  {path.stat().st_size // 1024} KB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
