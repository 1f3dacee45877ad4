"""The PDFs (issue 12): the 推荐审批表 (附件6), the 公示名单, the bound material book, and the
PDF twins of the documents that are DOCX/XLSX too: the 推荐汇总表 (附件5, landscape), the
征求意见表 (附件2), the 档案袋封面 (附件4) and the draft 推荐报告.

Drawn with fpdf2 on A4 with GB/T 9704's margins (天头 37 mm, 订口 28 mm, a 156 × 225 mm text
block) and the one CJK font of `documents.fonts`, embedded as a subset; a missing font raises
`FontMissing` before a page is drawn, so a document never shows boxes for hanzi.

The material book (申报材料册, seed 001 三（三）3) is its table of contents on page 1, then the
推荐审批表, then every attached file in the notice's order of materials: PDFs merged page by page
(pypdf), JPEG/PNG scans each on an A4 page of their own, scaled to fit. What cannot be merged
(a DOCX, a corrupt or encrypted file, a file the store no longer has) is named in the table of
contents with the reason and left out: the book is still made.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fpdf import FPDF, FontFace
from fpdf.enums import WrapMode, XPos, YPos
from PIL import Image, ImageOps
from pypdf import PdfReader, PdfWriter

from conversations.documents import (
    DOC_TITLES,
    DocKind,
    Entry,
    FileLine,
    Header,
    MaterialLine,
    ranked,
)
from documents.fonts import FAMILY, font_path
from documents.layouts import layout_for
from documents.sheet import Column, cell_text, columns
from documents.word import TO_FILL, date_text, name_label, period_text, shown

# GB/T 9704-2012 5.2.1: 天头 37 mm, 订口 28 mm, 版心 156 mm × 225 mm; so 26 mm right, 35 mm below.
LEFT, TOP, RIGHT, BOTTOM = 28.0, 37.0, 26.0, 35.0
WIDTH = 210.0 - LEFT - RIGHT  # 156 mm
BODY_PT, TITLE_PT, SUBTITLE_PT = 12, 18, 14
LINE_MM = 7.0
LABEL_MM = 42.0  # 9 hanzi at 12 pt: 从事本职业（工种） stays on one line
SCAN_MARGIN = 12.0  # an attached scan gets most of its page
SCAN_MAX_PX = 2480  # 300 dpi across A4: larger photos are scaled down before they are embedded

STAMP = "\n\n\n（盖章）\n年　　月　　日"
APPROVAL_MM = 5 * (LINE_MM - 1) + 3  # one approval block: its five lines and the padding
NOT_MERGED = "未合并（{kind} 请另附）"
UNREADABLE = "文件无法读取"
ENCRYPTED = "文件已加密，无法合并"
EMPTY_FILE = "文件没有页面"
NOT_ATTACHED = "未附"
IMAGE_KINDS = frozenset({"jpg", "jpeg", "png"})
WIDE_MARGIN = 15.0  # the landscape summary: 267 mm across for its 11–14 columns
SUMMARY_PT = 9  # the summary's table: 14 columns of seed 001 fit A4 across at 9 pt
DATE_LINE = "年　　月　　日"
NO_DEPARTMENTS = "本推荐对象无需征求部门意见。"

Out = str | Path | IO[bytes]


@dataclass(frozen=True, slots=True)
class BookResult:
    """What went into a material book: its pages, the files merged, those left out and why."""

    pages: int
    merged: tuple[str, ...]  # filenames, in book order
    skipped: tuple[tuple[str, str], ...]  # (filename, reason as the table of contents says it)


class _Page(FPDF):
    """An A4 page set-up with the CJK font; `numbered` puts 「— n —」 below the text block.
    `landscape`: A4 across with 15 mm margins (the summary's wide table), GB/T 9704 otherwise."""

    def __init__(
        self, header: Header, *, title: str, numbered: bool = True, landscape: bool = False
    ) -> None:
        path = font_path()  # FontMissing before anything is drawn
        super().__init__(orientation="L" if landscape else "P", format="A4")
        self.numbered = numbered
        self.add_font(FAMILY, fname=str(path))
        if landscape:
            self.set_margins(WIDE_MARGIN, WIDE_MARGIN, WIDE_MARGIN)
            self.set_auto_page_break(True, margin=WIDE_MARGIN + 5)
        else:
            self.set_margins(LEFT, TOP, RIGHT)
            self.set_auto_page_break(True, margin=BOTTOM)
        self.set_font(FAMILY, size=BODY_PT)
        self.set_title(title)
        self.set_lang("zh-CN")
        self.set_creator("awardbot")
        self.set_creation_date(header.generated_at)

    def footer(self) -> None:
        if not self.numbered:
            return
        # GB/T 9704 7.5: 4号 Arabic numerals between 一字线, 7 mm below the text block.
        self.set_y(self.h - self.b_margin + 7.0)
        self.set_font(FAMILY, size=14)
        self.cell(0, 6, f"— {self.page_no()} —", align="C")
        self.set_font(FAMILY, size=BODY_PT)

    def heading(self, *lines: tuple[str, int]) -> None:
        """Centred title lines, each (text, size in pt), then a blank line."""
        for text, size in lines:
            self.set_font(FAMILY, size=size)
            self.multi_cell(
                self.epw, size * 0.55, text, align="C", wrapmode=WrapMode.CHAR,
                new_x=XPos.LMARGIN, new_y=YPos.NEXT,
            )  # fmt: skip
        self.set_font(FAMILY, size=BODY_PT)
        self.ln(LINE_MM / 2)

    def paragraph(self, text: str, *, align: str = "L") -> None:
        self.multi_cell(
            self.epw, LINE_MM, text, align=align, wrapmode=WrapMode.CHAR,
            new_x=XPos.LMARGIN, new_y=YPos.NEXT,
        )  # fmt: skip


# One face is embedded (no bold): headings are set apart by a grey fill instead.
PLAIN = FontFace(family=FAMILY, emphasis="", fill_color=(235, 235, 235))
LABEL = FontFace(family=FAMILY, emphasis="", fill_color=(245, 245, 245))


def _write(data: bytes, out: Out) -> None:
    if isinstance(out, str | Path):
        Path(out).write_bytes(data)
    else:
        out.write(data)


def _pairs(pdf: _Page, pairs: list[tuple[str, str]]) -> None:
    """A label | value | label | value table (the form's tracking code, category, unit, region)."""
    with pdf.table(
        col_widths=(24, 54, 24, 54), width=WIDTH, first_row_as_headings=False,
        wrapmode=WrapMode.CHAR, text_align=("CENTER", "LEFT", "CENTER", "LEFT"),
        line_height=LINE_MM - 1, padding=1.5,
    ) as table:  # fmt: skip
        for at in range(0, len(pairs), 2):
            row = table.row()
            for label, text in pairs[at : at + 2]:
                row.cell(label, style=LABEL)
                row.cell(text)


def _form(header: Header, entry: Entry, *, numbered: bool) -> bytes:
    layout = layout_for(entry.campaign, entry.kind)
    pdf = _Page(header, title=f"{entry.form_title}（{entry.name}）", numbered=numbered)
    pdf.add_page()
    pdf.heading((header.campaign_title, SUBTITLE_PT), (entry.form_title, TITLE_PT))
    _pairs(
        pdf,
        [
            ("跟踪编号", entry.code),
            ("申报类别", entry.category_label),
            ("推荐单位", entry.unit),
            ("所在地区", entry.region),
        ],
    )
    pdf.ln(2)
    pdf.paragraph(layout.heading)
    with pdf.table(
        col_widths=(LABEL_MM, WIDTH - LABEL_MM), width=WIDTH, first_row_as_headings=False,
        wrapmode=WrapMode.CHAR, text_align=("CENTER", "LEFT"), line_height=LINE_MM - 1,
        padding=1.5,
    ) as table:  # fmt: skip
        for value in entry.values:
            row = table.row()
            row.cell(value.label, style=LABEL)
            # Masked again for the audience: an entry made for another document cannot leak.
            row.cell(shown(header, DocKind.FORM, value.type, value.text))
    # The approval blocks stay together: each office signs on the same sheet.
    if pdf.will_page_break(LINE_MM + len(layout.levels) * APPROVAL_MM):
        pdf.add_page()
    pdf.ln(2)
    pdf.paragraph("审批意见")
    with pdf.table(
        col_widths=(LABEL_MM, WIDTH - LABEL_MM), width=WIDTH, first_row_as_headings=False,
        wrapmode=WrapMode.CHAR, text_align=("CENTER", "RIGHT"), line_height=LINE_MM - 1,
        padding=1.5,
    ) as table:  # fmt: skip
        for level in layout.levels:
            row = table.row()
            row.cell(level, style=LABEL)
            row.cell(STAMP)
    return bytes(pdf.output())


def form_pdf(header: Header, entry: Entry, out: Out) -> None:
    """Write the 推荐审批表 of `entry` to `out`: the titles, tracking code, category, unit and
    region, every value in form order (masked for `header.audience`), then the approval blocks
    of the campaign's procedure (`documents.layouts`) to sign and stamp."""
    _write(_form(header, entry, numbered=True), out)


def publicity_pdf(
    header: Header,
    entries: Iterable[Entry],
    out: Out,
    *,
    period: tuple[dt.date, dt.date],
    workdays: int,
    contact: str = "",
) -> None:
    """Write the 公示名单 of `entries` (in the order given) to `out`: 序号、姓名、单位、申报类别
    and nothing else of a nominee — no ID number, no phone — with the publicity period in
    working days; the same text as `documents.word.publicity_docx`."""
    found = list(entries)
    pdf = _Page(header, title=f"{header.scope}{DOC_TITLES[DocKind.PUBLICITY]}")
    pdf.add_page()
    pdf.heading((header.campaign_title, SUBTITLE_PT), ("拟推荐人选公示名单", TITLE_PT))
    pdf.paragraph(
        f"　　经{header.scope}集体研究，拟推荐以下{len(found)}名人选，现予以公示。"
        f"公示期为 {period_text(period)}（{workdays}个工作日）。公示期间，对公示人选有异议的，"
        f"请以书面或电话形式向{header.scope}反映。"
    )
    pdf.ln(2)
    with pdf.table(
        col_widths=(16, 40, WIDTH - 106, 50), width=WIDTH, headings_style=PLAIN,
        wrapmode=WrapMode.CHAR, text_align=("CENTER", "CENTER", "LEFT", "LEFT"),
        line_height=LINE_MM - 1, padding=1.5,
    ) as table:  # fmt: skip
        heading = table.row()
        for label in ("序号", name_label(found), "单位", "申报类别"):
            heading.cell(label, align="CENTER")
        for seq, entry in enumerate(found, 1):
            row = table.row()
            for text in (str(seq), entry.name, entry.unit, entry.category_label):
                row.cell(text)
    pdf.ln(2)
    pdf.paragraph(f"联系人及电话：{contact.strip() or TO_FILL}")
    pdf.ln(LINE_MM)
    pdf.paragraph(header.scope, align="R")
    pdf.paragraph(date_text(period[0]), align="R")
    _write(bytes(pdf.output()), out)


# ----- the twins of the DOCX/XLSX documents ----------------------------------------------------


def _summary_cell(header: Header, column: Column, entry: Entry, seq: int) -> str:
    """The XLSX's cell (`documents.sheet.cell_text`), each value masked again for the audience
    (`shown`): an entry made for another document cannot leak an ID number or a phone."""
    if column.value is not None:
        return str(cell_text(column, entry, seq))
    types = {v.key: v.type for v in entry.values}
    texts = (
        shown(header, DocKind.SUMMARY, types.get(k, ""), entry.value(k)) for k in column.fields
    )
    return column.join.join(t for t in texts if t)


class _Grid:
    """The summary's table drawn row by row as the entries come: each row is wrapped, measured,
    drawn and forgotten, the labels drawn again at the top of every page. fpdf2's `table()`
    keeps every row until it closes and lays each cell out twice (about 40 ms a row: two
    minutes for a province's 3,000); wrapping hanzi by their cached widths is ten times faster."""

    LINE = SUMMARY_PT * 0.5  # mm per line
    PAD = 1.0

    def __init__(self, pdf: _Page, cols: tuple[Column, ...]) -> None:
        self.pdf = pdf
        total = sum(c.width for c in cols)
        self.widths = [pdf.epw * c.width / total for c in cols]
        self.labels = [c.label for c in cols]
        self.advance: dict[str, float] = {}

    def _lines(self, text: str, width: float) -> list[str]:
        room = width - 2 * self.PAD
        lines, line, used = [], "", 0.0
        for char in text:
            if char == "\n":
                lines.append(line)
                line, used = "", 0.0
                continue
            step = self.advance.get(char)
            if step is None:
                step = self.advance[char] = self.pdf.get_string_width(char)
            if line and used + step > room:
                lines.append(line)
                line, used = "", 0.0
            line += char
            used += step
        lines.append(line)
        return lines

    def row(self, texts: list[str], *, heading: bool = False) -> None:
        pdf = self.pdf
        wrapped = [self._lines(t, w) for t, w in zip(texts, self.widths, strict=True)]
        height = max(len(lines) for lines in wrapped) * self.LINE + 2 * self.PAD
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
            if not heading:
                self.row(self.labels, heading=True)
        x, y = pdf.l_margin, pdf.get_y()
        rise = (self.LINE + pdf.font_size * 0.7) / 2  # from a line's top to its baseline
        for lines, width in zip(wrapped, self.widths, strict=True):
            pdf.rect(x, y, width, height, style="DF" if heading else "D")
            top = y + (height - len(lines) * self.LINE) / 2
            for i, line in enumerate(lines):
                if line:
                    w = sum(self.advance[c] for c in line)
                    pdf.text(x + (width - w) / 2, top + i * self.LINE + rise, line)
            x += width
        pdf.set_y(y + height)


def summary_pdf(header: Header, kind: str, entries: Iterable[Entry], out: Out) -> int:
    """Write the 推荐汇总表 (附件5) of `entries` (already in ranking order, all of form kind
    `kind`) to `out` as a table across A4 landscape pages at 9 pt: the same title, scope line,
    columns and cells as `documents.sheet.summary_xlsx` (masked again for the audience), the
    column labels repeated on every page. Returns the number of rows written."""
    cols = columns(header.campaign, kind)
    title = f"{header.campaign_title}{DOC_TITLES[DocKind.SUMMARY]}"
    pdf = _Page(header, title=title, landscape=True)
    pdf.add_page()
    pdf.heading((title, SUBTITLE_PT))
    when = header.generated_at.strftime("%Y-%m-%d %H:%M")
    pdf.paragraph(f"推荐单位（地区）：{header.scope}　　生成时间：{when}")
    pdf.ln(1)
    pdf.set_font(FAMILY, size=SUMMARY_PT)
    pdf.set_fill_color(235, 235, 235)  # the labels grey, as PLAIN has them
    pdf.set_line_width(0.2)
    grid = _Grid(pdf, cols)
    grid.row(grid.labels, heading=True)
    written = 0
    for entry in entries:
        written += 1
        grid.row([_summary_cell(header, c, entry, written) for c in cols])
    pdf.set_font(FAMILY, size=BODY_PT)
    _write(bytes(pdf.output()), out)
    return written


def _labelled(pdf: _Page, pairs: list[tuple[str, str]]) -> None:
    """A label | value table, one pair a row (the cover's and the opinions' particulars)."""
    with pdf.table(
        col_widths=(40, WIDTH - 40), width=WIDTH, first_row_as_headings=False,
        wrapmode=WrapMode.CHAR, text_align=("CENTER", "LEFT"), line_height=LINE_MM - 1,
        padding=1.5,
    ) as table:  # fmt: skip
        for label, text in pairs:
            row = table.row()
            row.cell(label, style=LABEL)
            row.cell(text)


def _nobody(pdf: _Page, header: Header, title: str) -> None:
    """The one page of a set without nominees: its titles and the reason it is empty."""
    pdf.add_page()
    pdf.heading((header.campaign_title, SUBTITLE_PT), (title, TITLE_PT))
    pdf.paragraph("没有推荐对象。")


def opinions_pdf(header: Header, entries: Iterable[Entry], out: Out) -> None:
    """Write the 推荐对象征求意见表 (附件2) of `entries`, one page each, to `out`: a row per
    department to consult with room for its opinion, stamp and date, and whether its written
    opinion is already recorded (已取得) or not (待征求); as `documents.word.opinions_docx`."""
    title = "推荐对象征求意见表"
    pdf = _Page(header, title=f"{header.scope}{title}")
    for entry in entries:
        pdf.add_page()
        pdf.heading((header.campaign_title, SUBTITLE_PT), (title, TITLE_PT))
        _labelled(
            pdf,
            [
                (name_label([entry]), entry.name),
                ("推荐单位", entry.unit),
                ("申报类别", entry.category_label),
                ("跟踪编号", entry.code),
            ],
        )
        pdf.ln(2)
        pdf.paragraph("征求意见情况")
        if not entry.opinions:
            pdf.paragraph(NO_DEPARTMENTS)
            continue
        with pdf.table(
            col_widths=(34, 62, 36, 24), width=WIDTH, headings_style=PLAIN,
            wrapmode=WrapMode.CHAR, text_align=("CENTER", "LEFT", "RIGHT", "CENTER"),
            line_height=LINE_MM - 1, padding=1.5,
        ) as table:  # fmt: skip
            heading = table.row()
            for label in ("征求意见部门", "意见", "盖章及日期", "是否已取得"):
                heading.cell(label, align="CENTER")
            for department in entry.opinions:
                row = table.row()
                row.cell(department)
                row.cell("意见：\n\n\n\n")  # room to write it
                row.cell(f"\n\n（盖章）\n{DATE_LINE}")
                row.cell("已取得" if department in entry.opinions_recorded else "待征求")
    if pdf.page_no() == 0:
        _nobody(pdf, header, title)
    _write(bytes(pdf.output()), out)


def cover_pdf(header: Header, entries: Iterable[Entry], out: Out) -> None:
    """Write the 档案袋封面 (附件4) of `entries`, one page each, to `out`: the nominee, category,
    unit, region and tracking code, then the material list with the number of files attached;
    as `documents.word.cover_docx`."""
    title = "申报材料档案袋封面"
    pdf = _Page(header, title=f"{header.scope}{DOC_TITLES[DocKind.COVER]}", numbered=False)
    for entry in entries:
        pdf.add_page()
        pdf.heading((header.campaign_title, SUBTITLE_PT), (title, TITLE_PT))
        _labelled(
            pdf,
            [
                (name_label([entry]), entry.name),
                ("申报类别", entry.category_label),
                ("推荐单位", entry.unit),
                ("地区", entry.region),
                ("跟踪编号", entry.code),
            ],
        )
        pdf.ln(2)
        pdf.paragraph("材料清单")
        with pdf.table(
            col_widths=(16, WIDTH - 38, 22), width=WIDTH, headings_style=PLAIN,
            wrapmode=WrapMode.CHAR, text_align=("CENTER", "LEFT", "CENTER"),
            line_height=LINE_MM - 1, padding=1.5,
        ) as table:  # fmt: skip
            heading = table.row()
            for label in ("序号", "材料名称", "份数"):
                heading.cell(label, align="CENTER")
            for seq, material in enumerate(entry.materials, 1):
                row = table.row()
                for text in (str(seq), material.name, str(len(material.files))):
                    row.cell(text)
    if pdf.page_no() == 0:
        _nobody(pdf, header, title)
    _write(bytes(pdf.output()), out)


def report_pdf(
    header: Header,
    entries: Iterable[Entry],
    out: Out,
    *,
    contact: str = "",
    publicity: tuple[dt.date, dt.date] | None = None,
) -> None:
    """Write a draft 推荐报告 of `entries` (in ranking order) to `out`, the text of
    `documents.word.report_docx`: what the bot does not know (the experts' review, the
    publicity's outcome, the addressee) is marked 【请填写】."""
    rows = ranked(list(entries))
    title = DOC_TITLES[DocKind.REPORT]
    pdf = _Page(header, title=f"{header.scope}{title}")
    pdf.add_page()
    pdf.heading((f"关于推荐{header.campaign_title}人选的报告", TITLE_PT))
    pdf.paragraph(f"{TO_FILL}（主送单位）：")
    pdf.paragraph(
        f"　　按照{header.campaign_title}工作的有关要求，{header.scope}组织开展了推荐工作。"
        "现将有关情况报告如下："
    )
    pdf.paragraph("　　一、推荐人选")
    pdf.paragraph(f"　　经集体研究，推荐以下{len(rows)}名人选（按推荐顺序排列）：")
    for seq, entry in enumerate(rows, 1):
        pdf.paragraph(f"　　{seq}. {entry.name}，{entry.unit}，{entry.category_label}")
    pdf.paragraph("　　二、专家评议情况")
    pdf.paragraph(
        f"　　{TO_FILL}专家评议的时间、方式、参加人员和评议结果。"
        "专家评审意见书作为本报告附件附后。"
    )
    pdf.paragraph("　　三、公示情况")
    if publicity is not None:
        said = (
            f"推荐人选已于{period_text(publicity)}在{header.scope}进行公示，"
            f"公示期间{TO_FILL}（有无异议及核查情况）。公示截图作为本报告附件附后。"
        )
    else:
        said = f"{TO_FILL}公示的时间、范围和结果。公示截图作为本报告附件附后。"
    pdf.paragraph(f"　　{said}")
    pdf.paragraph("　　四、联系人及联系方式")
    who = contact.strip() or f"{TO_FILL}（姓名、联系电话）"
    pdf.paragraph(f"　　联系人：{who}")
    pdf.ln(LINE_MM)
    pdf.paragraph(f"{header.scope}（盖章）", align="R")
    pdf.paragraph(DATE_LINE, align="R")
    _write(bytes(pdf.output()), out)


# ----- the material book -----------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    """One line of the table of contents; `piece` is what it puts into the book (None: none)."""

    seq: str
    title: str
    piece: PdfReader | None = None
    note: str = ""  # why there is no piece, or NOT_ATTACHED
    first: int = 0  # the book page it starts on (0: none)


def _pdf_piece(data: bytes) -> PdfReader | str:
    """The attached PDF, re-read after a trial write so that a file pypdf cannot copy is caught
    here, one file at a time, and not when the whole book is written; or the reason why not."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return ENCRYPTED
        if not reader.pages:
            return EMPTY_FILE
        trial = PdfWriter()
        for page in reader.pages:
            trial.add_page(page)
        copy = io.BytesIO()
        trial.write(copy)
        return PdfReader(copy)
    except Exception:  # noqa: BLE001 - any file a person uploads: its failure is "unreadable"
        return UNREADABLE


def _image_piece(data: bytes) -> PdfReader | str:
    """The scan on an A4 page of its own (landscape when the scan is), scaled to fit."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)  # a phone photo taken sideways stands up
            fmt = opened.format
            turned = opened.getexif().get(0x0112, 1) != 1
            if max(image.size) > SCAN_MAX_PX or turned or fmt not in ("JPEG", "PNG"):
                image.thumbnail((SCAN_MAX_PX, SCAN_MAX_PX))
                if image.mode not in ("RGB", "L"):
                    image = image.convert("RGB")
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=88)
                data = buffer.getvalue()
            width_px, height_px = image.size
        landscape = width_px > height_px
        pdf = FPDF(orientation="L" if landscape else "P", format="A4")
        pdf.set_auto_page_break(False)
        pdf.add_page()
        room_w, room_h = pdf.w - 2 * SCAN_MARGIN, pdf.h - 2 * SCAN_MARGIN
        scale = min(room_w / width_px, room_h / height_px)
        w, h = width_px * scale, height_px * scale
        pdf.image(io.BytesIO(data), x=(pdf.w - w) / 2, y=(pdf.h - h) / 2, w=w, h=h)
        return PdfReader(io.BytesIO(bytes(pdf.output())))
    except Exception:  # noqa: BLE001 - a corrupt or truncated upload
        return UNREADABLE


def _file_piece(file: FileLine, read: Callable[[FileLine], bytes | None]) -> PdfReader | str:
    kind = file.kind.lower()
    if kind != "pdf" and kind not in IMAGE_KINDS:
        return NOT_MERGED.format(kind=kind.upper())
    try:
        data = read(file)
    except Exception:  # noqa: BLE001 - the store lost it or cannot open it: the book goes on
        data = None
    if not data:
        return UNREADABLE
    return _pdf_piece(data) if kind == "pdf" else _image_piece(data)


def _is_form(material: MaterialLine, entry: Entry) -> bool:
    """Whether the notice lists the 推荐审批表 itself as a material (seed 001 lists it first)."""
    form = DOC_TITLES[DocKind.FORM]
    return material.name == entry.form_title or material.name.endswith(form)


def _lines(header: Header, entry: Entry, read: Callable[[FileLine], bytes | None]) -> list[_Line]:
    """The table of contents' lines in book order: the 推荐审批表 first, then each material of
    the notice in its order with its files under it."""
    form = PdfReader(io.BytesIO(_form(header, entry, numbered=False)))
    materials = list(entry.materials)
    at = next((i for i, m in enumerate(materials) if _is_form(m, entry)), None)
    if at is None:
        materials.insert(0, MaterialLine("", entry.form_title, True))
    else:
        materials.insert(0, materials.pop(at))  # the form is the first item, whatever the order
    lines: list[_Line] = []
    for seq, material in enumerate(materials, 1):
        head = _Line(str(seq), material.name)
        lines.append(head)
        if seq == 1:
            head.piece = form
        elif not material.files:
            head.note = NOT_ATTACHED
        for file in material.files:
            got = _file_piece(file, read)
            if isinstance(got, str):
                lines.append(_Line("", file.filename, note=got))
            else:
                lines.append(_Line("", file.filename, piece=got))
    return lines


def _contents(header: Header, entry: Entry, lines: list[_Line], offset: int) -> bytes:
    """The table of contents, the pieces numbered as if it had `offset` pages."""
    page = offset + 1
    for line in lines:
        line.first = page if line.piece is not None else 0
        page += len(line.piece.pages) if line.piece is not None else 0
    for i, line in enumerate(lines):  # a material without its own piece starts at its first file
        if line.seq and not line.first:
            line.first = next((f.first for f in _files_of(lines, i) if f.first), 0)
    pdf = _Page(header, title=f"{DOC_TITLES[DocKind.BOOK]}（{entry.name}）", numbered=False)
    pdf.add_page()
    pdf.heading((DOC_TITLES[DocKind.BOOK], TITLE_PT))
    pdf.paragraph(f"推荐对象：{entry.name}　　申报类别：{entry.category_label}")
    pdf.paragraph(f"推荐单位：{entry.unit}　　跟踪编号：{entry.code}")
    pdf.ln(2)
    with pdf.table(
        col_widths=(14, WIDTH - 68, 54), width=WIDTH, headings_style=PLAIN,
        wrapmode=WrapMode.CHAR, text_align=("CENTER", "LEFT", "CENTER"),
        line_height=LINE_MM - 1, padding=1.5,
    ) as table:  # fmt: skip
        heading = table.row()
        for label in ("序号", "材料名称", "页码"):
            heading.cell(label, align="CENTER")
        for line in lines:
            row = table.row()
            row.cell(line.seq)
            row.cell(line.title if line.seq else f"　　{line.title}")
            row.cell(str(line.first) if line.first else (line.note or "—"))
    return bytes(pdf.output())


def _files_of(lines: list[_Line], at: int) -> list[_Line]:
    """The file lines under the material line at index `at`."""
    found = []
    for line in lines[at + 1 :]:
        if line.seq:
            break
        found.append(line)
    return found


def book_pdf(
    header: Header,
    entry: Entry,
    read: Callable[[FileLine], bytes | None],
    out: Out,
) -> BookResult:
    """Write the material book of `entry` to `out`: the table of contents (申报材料目录) with the
    page each item starts on, the 推荐审批表, then the attached files; `read` gives a file's
    bytes (None: not available). Returns what was merged and what was left out, and why."""
    lines = _lines(header, entry, read)
    offset = 1
    for _ in range(3):  # a long list may need a second page of contents: number again
        contents = PdfReader(io.BytesIO(_contents(header, entry, lines, offset)))
        if len(contents.pages) == offset:
            break
        offset = len(contents.pages)
    writer = PdfWriter()
    writer.append(contents, import_outline=False)
    for line in lines:
        if line.piece is not None:
            writer.append(line.piece, import_outline=False)
    for line in lines:  # bookmarks: one per material, at the page it starts on
        if line.seq and line.first:
            writer.add_outline_item(title=line.title, page_number=line.first - 1)
    writer.add_metadata({"/Title": f"{DOC_TITLES[DocKind.BOOK]}（{entry.name}）"})
    if isinstance(out, str | Path):
        with Path(out).open("wb") as stream:
            writer.write(stream)
    else:
        writer.write(out)
    return BookResult(
        pages=len(writer.pages),
        merged=tuple(line.title for line in lines if not line.seq and line.piece is not None),
        skipped=tuple((line.title, line.note) for line in lines if not line.seq and line.note),
    )


__all__ = [
    "BookResult",
    "NOT_MERGED",
    "UNREADABLE",
    "book_pdf",
    "cover_pdf",
    "form_pdf",
    "opinions_pdf",
    "publicity_pdf",
    "report_pdf",
    "summary_pdf",
]
