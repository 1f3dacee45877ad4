"""The quota chart of `/quota` (issue 12): nominations per region and category against the
150 %–200 % band and the places, with the share cap, as a PNG.

matplotlib's object API on the Agg canvas (a `Figure` of our own, never pyplot's global state),
so the worker can draw in any thread and no window or display is needed. The CJK font is the
one of `documents.fonts`, registered with matplotlib's font manager and named per text. The
figures are `conversations.documents.QuotaFigures`, the same that `quota_text` writes out.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import IO

from matplotlib import font_manager
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from conversations.documents import QuotaFigures, quota_text
from documents.fonts import font_path

# Bar colours by verdict (QuotaRow.verdict): inside the band, below it, above it.
COLOURS = {"": "#2e7d32", "不足": "#ef6c00", "超出": "#c62828"}
VERDICT_LABELS = {
    "": "已推荐（在应推荐范围内）",
    "不足": "已推荐（不足）",
    "超出": "已推荐（超出）",
}
BAND_COLOUR = "#90caf9"
BAND_GID = "band"  # the band rectangles carry gid band-0, band-1, … (row order)
PLACES_GID = "places"
CAP_GID = "cap"
EMPTY = "本地区没有分配名额"


@cache
def _family(path: Path) -> str:
    """Register the font file once per process and return its family name."""
    font_manager.fontManager.addfont(str(path))
    return FontProperties(fname=str(path)).get_name()


def _font(size: float) -> FontProperties:
    return FontProperties(family=_family(font_path()), size=size)


def _cap_line(figures: QuotaFigures) -> tuple[str, bool]:
    """The cap's line exactly as the text twin says it, and whether the cap is exceeded."""
    if figures.cap_share is None or not figures.cap_label:
        return "", False
    limit = int(figures.total_places * figures.cap_share)
    return quota_text(figures).splitlines()[-1], figures.capped > limit


def quota_chart(figures: QuotaFigures) -> Figure:
    """The chart of `figures`: one horizontal bar per row (its width: the nominations), the
    band low..high shaded behind it, the places as a dashed line, the cap as a note below."""
    rows = figures.rows
    cap, over = _cap_line(figures)
    height = 2.8 + 0.5 * max(len(rows), 2) + (0.4 if cap else 0)
    fig = Figure(figsize=(10, height), layout="constrained")
    FigureCanvasAgg(fig)
    title = f"{figures.scope} 推荐名额对照\n{figures.campaign_title}"
    fig.suptitle(title, fontproperties=_font(14))
    ax = fig.add_subplot()
    if not rows:
        ax.set_axis_off()
        ax.text(0.5, 0.5, EMPTY, ha="center", va="center", fontproperties=_font(16))
        return fig
    ys = list(range(len(rows)))
    ax.barh(
        ys,
        [r.nominated for r in rows],
        height=0.5,
        color=[COLOURS[r.verdict] for r in rows],
        zorder=3,
    )
    for i, r in enumerate(rows):
        ax.add_patch(
            Rectangle(
                (r.low, i - 0.4),
                r.high - r.low,
                0.8,
                facecolor=BAND_COLOUR,
                alpha=0.45,
                edgecolor="none",
                zorder=1,
                gid=f"{BAND_GID}-{i}",
            )  # fmt: skip
        )
        ax.text(
            r.nominated + 0.1, i, f"{r.nominated}{f'（{r.verdict}）' if r.verdict else ''}",
            va="center", fontproperties=_font(10), zorder=4,
        )  # fmt: skip
    places = ax.vlines(
        [r.places for r in rows],
        [i - 0.42 for i in ys],
        [i + 0.42 for i in ys],
        colors="#212121",
        linestyles="dashed",
        linewidth=1.5,
        zorder=4,
    )
    places.set_gid(PLACES_GID)
    ax.set_yticks(ys, [f"{r.region_name}·{r.category_label}" for r in rows])
    for label in ax.get_yticklabels():
        label.set_fontproperties(_font(10))
    ax.invert_yaxis()  # the first row on top, as the text twin lists it
    most = max(max(r.high, r.nominated, r.places) for r in rows)
    ax.set_xlim(0, most * 1.15 + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("推荐人数（名）", fontproperties=_font(10))
    ax.grid(axis="x", linestyle=":", alpha=0.6, zorder=0)
    shown = dict.fromkeys(r.verdict for r in rows)
    handles: list[Artist] = [
        Patch(color=COLOURS[v], label=VERDICT_LABELS[v]) for v in COLOURS if v in shown
    ]
    if any(r.high > r.low for r in rows):  # a campaign without a ratio has no band to show
        handles.append(Patch(color=BAND_COLOUR, alpha=0.45, label="应推荐范围（按名额比例）"))
    handles.append(places)
    places.set_label("分配名额")
    fig.legend(handles=handles, prop=_font(9), loc="outside lower center", ncols=3)
    if cap:
        colour = COLOURS["超出"] if over else "#212121"
        ax.set_title(cap, loc="left", fontproperties=_font(10), color=colour).set_gid(CAP_GID)
    return fig


def quota_png(figures: QuotaFigures, out: str | Path | IO[bytes], *, dpi: int = 150) -> None:
    """Write the chart of `figures` to `out` as a PNG."""
    fig = quota_chart(figures)
    fig.savefig(out, format="png", dpi=dpi)


__all__ = ["BAND_GID", "CAP_GID", "COLOURS", "EMPTY", "PLACES_GID", "quota_chart", "quota_png"]
