"""附件5 推荐汇总表 as XLSX, streamed: one row per nomination in ranking order, in constant memory.

The columns are data, one file per campaign (`documents/templates/<campaign>/summary.yaml`, a
list per form kind, person or unit). openpyxl's write-only mode writes each row as it comes, so
a province-wide summary of thousands of rows never sits in memory as a workbook.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import copy
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

import yaml
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from conversations.documents import Entry, Header

TEMPLATES = Path(__file__).with_name("templates")
BODY_FONT = "仿宋_GB2312"  # GB/T 9704: the names Word and WPS render on the office's machine
TITLE_FONT = "方正小标宋简体"
COMPUTED = frozenset({"seq", "category", "rank", "unit", "region", "code"})
HEADER_ROWS = 3  # title, scope line, column labels: the first nomination is on row 4


class TemplateError(Exception):
    """A summary template that cannot be used: the message names the file and the column."""


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    value: str | None = None  # a computed column (COMPUTED)
    fields: tuple[str, ...] = ()
    join: str = ""
    width: int = 12


@cache
def columns(campaign: str, kind: str) -> tuple[Column, ...]:
    """The summary's columns of `campaign` for form kind `kind` (person | unit)."""
    path = TEMPLATES / campaign / "summary.yaml"
    if not path.is_file():
        raise TemplateError(f"没有汇总表模板：{path} (no summary template for {campaign})")
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if kind not in data:
        raise TemplateError(f"{path} 没有 {kind} 的列 (no columns for form kind {kind})")
    found = []
    for i, spec in enumerate(data[kind], 1):
        value, fields = spec.get("value"), tuple(spec.get("fields") or ())
        if (value is None) == (not fields) or (value is not None and value not in COMPUTED):
            raise TemplateError(f"{path} {kind} 第 {i} 列：value 或 fields 必须有且只有一个")
        found.append(
            Column(
                str(spec["label"]),
                value,
                fields,
                str(spec.get("join", "")),
                int(spec.get("width", 12)),
            )  # fmt: skip
        )
    return tuple(found)


def cell_text(column: Column, entry: Entry, seq: int) -> str | int:
    """What column `column` shows for `entry`, the `seq`-th row."""
    if column.value == "seq":
        return seq
    if column.value == "rank":
        return entry.rank if entry.rank is not None else ""
    if column.value == "category":
        return entry.category_label
    if column.value == "unit":
        return entry.unit
    if column.value == "region":
        return entry.region
    if column.value == "code":
        return entry.code
    return column.join.join(t for t in (entry.value(k) for k in column.fields) if t)


def summary_xlsx(
    header: Header, kind: str, entries: Iterable[Entry], out: str | Path | IO[bytes]
) -> int:
    """Write the summary of `entries` (already in ranking order, all of form kind `kind`) to
    `out`; returns the number of rows written."""
    cols = columns(header.campaign, kind)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("汇总表")
    for i, col in enumerate(cols, 1):
        sheet.column_dimensions[get_column_letter(i)].width = col.width
    wrap = Alignment(wrap_text=True, vertical="center")

    def template(font: Font) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet)
        cell.font, cell.alignment = font, wrap  # registers the style once in the workbook
        return cell

    title = template(Font(name=TITLE_FONT, size=16))
    body = template(Font(name=BODY_FONT, size=11))
    bold = template(Font(name=BODY_FONT, size=11, bold=True))

    def styled(value: Any, like: WriteOnlyCell) -> WriteOnlyCell:
        # The style's indices copied, not set again per cell: openpyxl hashes a Font on every
        # assignment, which was half the time of a province's summary (benchmarks/bench_exports).
        cell = WriteOnlyCell(sheet, value=value)
        cell._style = copy(like._style)
        return cell

    sheet.append([styled(f"{header.campaign_title}推荐汇总表", title)])
    when = header.generated_at.strftime("%Y-%m-%d %H:%M")
    sheet.append([styled(f"推荐单位（地区）：{header.scope}　　生成时间：{when}", body)])
    sheet.append([styled(c.label, bold) for c in cols])
    written = 0
    for entry in entries:
        written += 1
        sheet.append([styled(cell_text(c, entry, written), body) for c in cols])
    book.save(out)
    return written


__all__ = ["HEADER_ROWS", "Column", "TemplateError", "cell_text", "columns", "summary_xlsx"]
