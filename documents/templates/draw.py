"""Draws the Word templates of the official documents (issue 12) with python-docx.

Run `python -m documents.templates.draw` (or `python documents/templates/draw.py`) after changing
this file and commit the .docx files it writes next to it. `documents.word` fills them with
docxtpl: `{{ … }}` placeholders in runs, `{%tr for … %}` rows in tables and `{%p … %}`
paragraphs around whatever repeats per nominee. A template is a real Word document, so an office
can also open one in Word, restyle it and commit it instead; the placeholders must stay whole
(one run each: retyping them in Word can split them).

Layout per GB/T 9704-2012 where it applies: A4, margins top 37 mm, bottom 35 mm, left 28 mm,
right 26 mm; titles 方正小标宋简体 二号 (22 pt), body 仿宋_GB2312 三号 (16 pt), tables 四号
(14 pt) or 小四 (12 pt). Every run names its font for East-Asian text too (w:eastAsia), or
Word falls back to its default CJK font. Output is byte for byte reproducible (fixed zip times
and document dates), so a test can check that the committed files are what this script draws.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.table import WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

if __package__ in (None, ""):  # run as a file: python documents/templates/draw.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from documents.layouts import FORMS, FormLayout  # noqa: E402  # the PDF reads the same texts

HERE = Path(__file__).resolve().parent
BODY_FONT = "仿宋_GB2312"  # the same names as documents.sheet (the XLSX)
TITLE_FONT = "方正小标宋简体"
TITLE_PT, BODY_PT, TABLE_PT, SMALL_PT = 22, 16, 14, 12  # 二号, 三号, 四号, 小四
PAGE = (Mm(210), Mm(297))
MARGINS = {"top": Mm(37), "bottom": Mm(35), "left": Mm(28), "right": Mm(26)}
TEXT_WIDTH_MM = 210 - 28 - 26
FIXED_TIME = dt.datetime(2022, 10, 1, tzinfo=dt.UTC)  # reproducible core properties
STAMP = "（盖章）"
DATE_LINE = "年　　月　　日"


# ----- drawing helpers --------------------------------------------------------------------------


def fonted(element_rpr_owner: object, name: str) -> None:
    """Name `name` for every script of a run or style (ascii, hAnsi, eastAsia, cs)."""
    rpr = element_rpr_owner.get_or_add_rPr()  # type: ignore[attr-defined]
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), name)


def new_document(title: str) -> DocumentObject:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = PAGE
    section.top_margin, section.bottom_margin = MARGINS["top"], MARGINS["bottom"]
    section.left_margin, section.right_margin = MARGINS["left"], MARGINS["right"]
    normal = doc.styles["Normal"]
    normal.font.size = Pt(BODY_PT)
    fonted(normal.element, BODY_FONT)
    props = doc.core_properties
    props.title, props.author, props.last_modified_by = title, "awardbot", "awardbot"
    props.created = props.modified = FIXED_TIME.replace(tzinfo=None)
    props.revision = 1
    return doc


def run(paragraph: Paragraph, text: str, *, size: int = BODY_PT, font: str = BODY_FONT,
        bold: bool = False) -> None:  # fmt: skip
    r = paragraph.add_run(text)
    r.font.size, r.font.bold = Pt(size), bold or None
    fonted(r._r, font)


def spaced(paragraph: Paragraph, *, before: float = 0, after: float = 0) -> Paragraph:
    fmt = paragraph.paragraph_format
    fmt.space_before, fmt.space_after = Pt(before), Pt(after)
    return paragraph


def title(doc: DocumentObject, *lines: str) -> None:
    for line in lines:
        p = spaced(doc.add_paragraph(), after=6)
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run(p, line, size=TITLE_PT, font=TITLE_FONT)


def body(doc: DocumentObject, text: str, *, size: int = BODY_PT, indent: bool = True,
         align: WD_ALIGN_PARAGRAPH | None = None, bold: bool = False) -> Paragraph:  # fmt: skip
    p = spaced(doc.add_paragraph())
    if indent:
        p.paragraph_format.first_line_indent = Pt(size * 2)  # two characters
    if align is not None:
        p.alignment = align
    run(p, text, size=size, bold=bold)
    return p


def tag(doc: DocumentObject, text: str) -> None:
    """A paragraph holding one docxtpl `{%p … %}` tag (docxtpl removes the paragraph)."""
    run(spaced(doc.add_paragraph()), text)


def page_break(doc: DocumentObject) -> None:
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)


def write(cell: _Cell, lines: Sequence[str], *, size: int = TABLE_PT, bold: bool = False,
          align: WD_ALIGN_PARAGRAPH | None = None) -> None:  # fmt: skip
    """Put `lines` in `cell`, one paragraph each (the first reuses the cell's own)."""
    for i, line in enumerate(lines):
        p = cell.paragraphs[0] if i == 0 else cell.add_paragraph()
        spaced(p)
        if align is not None:
            p.alignment = align
        if line:
            run(p, line, size=size, bold=bold)


def grid(doc: DocumentObject, rows: int, widths_mm: Sequence[float]) -> Table:
    table = doc.add_table(rows=rows, cols=len(widths_mm))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm, strict=True):
            cell.width = Mm(width)
    return table


def loop_rows(doc: DocumentObject, widths_mm: Sequence[float], loop: str,
              cells: Sequence[str], *, size: int = TABLE_PT,
              header: Sequence[str] = ()) -> Table:  # fmt: skip
    """A table whose body row repeats with docxtpl's `{%tr for … %}` … `{%tr endfor %}`."""
    table = grid(doc, (1 if header else 0) + 3, widths_mm)
    first = 0
    if header:
        for cell, text in zip(table.rows[0].cells, header, strict=True):
            write(cell, [text], size=size, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
        first = 1
    write(table.rows[first].cells[0], [f"{{%tr for {loop} %}}"], size=size)
    for cell, text in zip(table.rows[first + 1].cells, cells, strict=True):
        write(cell, [text], size=size)
    write(table.rows[first + 2].cells[0], ["{%tr endfor %}"], size=size)
    return table


def pairs(doc: DocumentObject, rows: Sequence[tuple[str, str]], widths_mm: Sequence[float],
          *, size: int = TABLE_PT) -> Table:  # fmt: skip
    """A label | value table, two or four cells a row."""
    per_row = len(widths_mm) // 2
    lines = [rows[i : i + per_row] for i in range(0, len(rows), per_row)]
    table = grid(doc, len(lines), widths_mm)
    for row, line in zip(table.rows, lines, strict=True):
        for i, (label, value) in enumerate(line):
            write(row.cells[2 * i], [label], size=size, bold=True)
            write(row.cells[2 * i + 1], [value], size=size)
    return table


def approvals(doc: DocumentObject, levels: Sequence[str]) -> None:
    """One row per level: who gives the opinion | room to write it, 盖章 and the date."""
    table = grid(doc, len(levels), (40, TEXT_WIDTH_MM - 40))
    for row, level in zip(table.rows, levels, strict=True):
        row.height, row.height_rule = Mm(38), WD_ROW_HEIGHT_RULE.AT_LEAST
        write(row.cells[0], [level], bold=True)
        write(row.cells[1], ["", "", STAMP, DATE_LINE], align=WD_ALIGN_PARAGRAPH.RIGHT)


# ----- the templates ----------------------------------------------------------------------------


def form(layout: FormLayout) -> DocumentObject:
    """附件6 推荐审批表: one nomination, every form value in form order, then the approvals."""
    doc = new_document("推荐审批表")
    title(doc, "{{ campaign_title }}", "{{ form_title }}")
    pairs(
        doc,
        [
            ("跟踪编号", "{{ code }}"),
            ("申报类别", "{{ category }}"),
            ("推荐单位", "{{ unit }}"),
            ("所在地区", "{{ region }}"),
        ],
        (24, 54, 24, 54),
    )
    body(doc, layout.heading, size=TABLE_PT, indent=False, bold=True)
    loop_rows(doc, (40, TEXT_WIDTH_MM - 40), "v in values", ["{{ v.label }}", "{{ v.text }}"],
              size=SMALL_PT)  # fmt: skip
    body(doc, "审批意见", size=TABLE_PT, indent=False, bold=True)
    approvals(doc, layout.levels)
    body(doc, "生成时间：{{ generated }}", size=SMALL_PT, indent=False)
    return doc


def cover() -> DocumentObject:
    """附件4 档案袋封面: one page per nominee with the material list and the file counts."""
    doc = new_document("档案袋封面")
    tag(doc, "{%p for e in entries %}")
    title(doc, "{{ campaign_title }}", "申报材料档案袋封面")
    pairs(
        doc,
        [
            ("{{ e.name_label }}", "{{ e.name }}"),
            ("申报类别", "{{ e.category }}"),
            ("推荐单位", "{{ e.unit }}"),
            ("地区", "{{ e.region }}"),
            ("跟踪编号", "{{ e.code }}"),
        ],
        (40, TEXT_WIDTH_MM - 40),
    )
    body(doc, "材料清单", size=TABLE_PT, indent=False, bold=True)
    loop_rows(doc, (16, TEXT_WIDTH_MM - 16 - 22, 22), "m in e.materials",
              ["{{ m.seq }}", "{{ m.name }}", "{{ m.count }}"],
              header=["序号", "材料名称", "份数"])  # fmt: skip
    tag(doc, "{%p if not loop.last %}")
    page_break(doc)
    tag(doc, "{%p endif %}")
    tag(doc, "{%p endfor %}")
    return doc


def opinions() -> DocumentObject:
    """附件2 推荐对象征求意见表: per nominee, a row per department to consult."""
    doc = new_document("征求意见表")
    tag(doc, "{%p for e in entries %}")
    title(doc, "{{ campaign_title }}", "推荐对象征求意见表")
    pairs(
        doc,
        [
            ("{{ e.name_label }}", "{{ e.name }}"),
            ("推荐单位", "{{ e.unit }}"),
            ("申报类别", "{{ e.category }}"),
            ("跟踪编号", "{{ e.code }}"),
        ],
        (40, TEXT_WIDTH_MM - 40),
    )
    body(doc, "征求意见情况", size=TABLE_PT, indent=False, bold=True)
    table = loop_rows(doc, (34, 62, 36, 24), "d in e.departments",
                      ["{{ d.name }}", "意见：", f"{STAMP}\n{DATE_LINE}", "{{ d.state }}"],
                      header=["征求意见部门", "意见", "盖章及日期", "是否已取得"])  # fmt: skip
    table.rows[2].height, table.rows[2].height_rule = Mm(30), WD_ROW_HEIGHT_RULE.AT_LEAST
    tag(doc, "{%p if not e.departments %}")
    body(doc, "本推荐对象无需征求部门意见。", size=TABLE_PT)
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if not loop.last %}")
    page_break(doc)
    tag(doc, "{%p endif %}")
    tag(doc, "{%p endfor %}")
    return doc


def report() -> DocumentObject:
    """推荐报告 (seed 001 三（三）1): a draft for the unit or office to complete and stamp."""
    doc = new_document("推荐报告")
    title(doc, "关于推荐{{ campaign_title }}人选的报告")
    body(doc, "{{ addressee }}：", indent=False)
    body(doc, "按照{{ campaign_title }}工作的有关要求，{{ scope }}组织开展了推荐工作。"
              "现将有关情况报告如下：")  # fmt: skip
    body(doc, "一、推荐人选", bold=True)
    body(doc, "经集体研究，推荐以下{{ count }}名人选（按推荐顺序排列）：")
    tag(doc, "{%p for r in rows %}")
    body(doc, "{{ r.seq }}. {{ r.name }}，{{ r.unit }}，{{ r.category }}")
    tag(doc, "{%p endfor %}")
    body(doc, "二、专家评议情况", bold=True)
    body(doc, "{{ experts }}")
    body(doc, "三、公示情况", bold=True)
    body(doc, "{{ publicity }}")
    body(doc, "四、联系人及联系方式", bold=True)
    body(doc, "联系人：{{ contact }}")
    body(doc, "")
    body(doc, "{{ scope }}" + STAMP, indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT)
    body(doc, DATE_LINE, indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT)
    return doc


def publicity() -> DocumentObject:
    """公示名单: name, unit and category of each nominee, and nothing else (no ID, no phone)."""
    doc = new_document("公示名单")
    title(doc, "{{ campaign_title }}", "拟推荐人选公示名单")
    body(doc, "经{{ scope }}集体研究，拟推荐以下{{ count }}名人选，现予以公示。"
              "公示期为 {{ period }}（{{ workdays }}个工作日）。公示期间，对公示人选有异议的，"
              "请以书面或电话形式向{{ scope }}反映。")  # fmt: skip
    loop_rows(doc, (16, 40, TEXT_WIDTH_MM - 16 - 40 - 50, 50), "r in rows",
              ["{{ r.seq }}", "{{ r.name }}", "{{ r.unit }}", "{{ r.category }}"],
              header=["序号", "{{ name_label }}", "单位", "申报类别"])  # fmt: skip
    body(doc, "联系人及电话：{{ contact }}")
    body(doc, "")
    body(doc, "{{ scope }}", indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT)
    body(doc, "{{ date }}", indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT)
    return doc


def templates() -> dict[str, Callable[[], DocumentObject]]:
    """Every template this script draws, by its path under documents/templates/."""
    drawn: dict[str, Callable[[], DocumentObject]] = {
        f"{campaign}/form_{kind}.docx": (lambda layout=layout: form(layout))
        for (campaign, kind), layout in FORMS.items()
    }
    drawn.update(
        {
            "common/cover.docx": cover,
            "common/opinions.docx": opinions,
            "common/report.docx": report,
            "common/publicity.docx": publicity,
        }
    )
    return drawn


def reproducible(doc: DocumentObject) -> bytes:
    """The .docx bytes with fixed zip entry times, so drawing twice gives the same file."""
    raw = io.BytesIO()
    doc.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            fixed = zipfile.ZipInfo(item.filename, date_time=(2022, 10, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(item.filename))
    return out.getvalue()


def draw(root: Path = HERE) -> list[Path]:
    """Write every template under `root`; returns the paths written."""
    written = []
    for name, make in templates().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(reproducible(make()))
        written.append(path)
    return written


def main(argv: Sequence[str] = ()) -> int:
    root = Path(argv[0]) if argv else HERE
    for path in draw(root):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
