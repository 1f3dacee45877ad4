"""The quota chart of `/quota` (issue 12): a valid PNG whose bars are the nominations made up
here, per region and category, with the 150 %–200 % band and the places of each quota; its
text twin names the same rows; no rows is a chart that says so; a missing font is an error."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from PIL import Image
from support.console_harness import catalog

from conversations.crossrules import NominationFacts
from conversations.documents import QuotaFigures, quota_figures, quota_text
from documents.chart import (
    BAND_GID,
    CAP_GID,
    COLOURS,
    EMPTY,
    PLACES_GID,
    quota_chart,
    quota_png,
)
from documents.fonts import ENV, FontMissing

CAMPAIGN = "jl-employment-2022"
NAMES = {"220100": "长春市", "220200": "吉林市", "220300": "四平市"}
PEOPLE, MIGRANTS = "employment_individual", "migrant_individual"
# (region, category) -> (places, nominations that use a place): the band is 1.5..2 × places.
QUOTAS = {
    ("220100", PEOPLE): (4, 5),  # band 6–8: below (不足)
    ("220200", PEOPLE): (3, 9),  # band 5–6: above (超出)
    ("220300", PEOPLE): (2, 3),  # band 3–4: inside
    ("220100", MIGRANTS): (2, 4),  # band 3–4: inside, at the top
    ("220200", MIGRANTS): (5, 7),  # band 8–10: below
    ("220300", MIGRANTS): (3, 7),  # band 5–6: above
}
VERDICTS = ["不足", "超出", "", "", "不足", "超出"]


def made_up_facts() -> list[NominationFacts]:
    facts = []
    for (region, category), (_, count) in QUOTAS.items():
        for i in range(count):
            n = len(facts) + 1
            facts.append(
                NominationFacts(
                    n,
                    CAMPAIGN,
                    category,
                    "individual",
                    n,
                    region[:4] + "02",
                    f"d{n}",
                    "county_review",
                    capped=i == 0,
                )  # fmt: skip
            )
    # Neither a withdrawn nomination nor a draft uses a place.
    for n, status in ((900, "withdrawn"), (901, "draft")):
        facts.append(NominationFacts(n, CAMPAIGN, PEOPLE, "individual", n, "220102", "x", status))
    return facts


@pytest.fixture(scope="module")
def figures() -> QuotaFigures:
    quotas: dict[str, list[tuple[str, int]]] = {}
    for (region, category), (places, _) in QUOTAS.items():
        quotas.setdefault(category, []).append((region, places))
    return quota_figures(
        catalog().get(CAMPAIGN), "吉林省", made_up_facts(), quotas,
        region_name=NAMES.__getitem__, contains=lambda quota, region: region[:4] == quota[:4],
    )  # fmt: skip


def expected_rows() -> list[tuple[str, str, int, int, int, int]]:
    """(label, verdict, nominated, places, low, high) in the chart's order: category by category
    in the campaign's order, the regions as the quotas list them."""
    labels = {c.id: c.name for c in catalog().get(CAMPAIGN).categories}
    rows = []
    for category in (PEOPLE, MIGRANTS):
        for (region, cat), (places, count) in QUOTAS.items():
            if cat == category:
                label = f"{NAMES[region]}·{labels[category]}"
                rows.append(
                    (label, "", count, places, math.ceil(places * 1.5), math.floor(places * 2))
                )
    return [(r[0], v, *r[2:]) for r, v in zip(rows, VERDICTS, strict=True)]


def test_the_bars_are_the_nominations_per_region_and_category(figures: QuotaFigures) -> None:
    expected = expected_rows()
    assert [r.verdict for r in figures.rows] == VERDICTS
    ax = quota_chart(figures).axes[0]
    bars = list(ax.containers[0])
    assert [bar.get_width() for bar in bars] == [row[2] for row in expected]
    assert [bar.get_facecolor() for bar in bars] == [to_rgba(COLOURS[v]) for v in VERDICTS]
    assert [t.get_text() for t in ax.get_yticklabels()] == [row[0] for row in expected]
    bands = {p.get_gid(): p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid()}
    for i, (_, _, _, _, low, high) in enumerate(expected):
        band = bands[f"{BAND_GID}-{i}"]
        assert (band.get_x(), band.get_x() + band.get_width()) == (low, high)
        assert band.get_y() < i < band.get_y() + band.get_height()  # behind its own bar
    (places,) = [c for c in ax.collections if c.get_gid() == PLACES_GID]
    assert isinstance(places, LineCollection)
    assert [seg[0][0] for seg in places.get_segments()] == [row[3] for row in expected]


def test_the_text_twin_names_the_same_rows(figures: QuotaFigures) -> None:
    lines = quota_text(figures).splitlines()
    assert lines[0] == f"吉林省 推荐名额对照（{catalog().get(CAMPAIGN).title}）"
    for line, (label, verdict, count, places, low, high) in zip(
        lines[1:], expected_rows(), strict=False
    ):
        mark = f"（{verdict}）" if verdict else ""
        assert (
            line == f"{label}：已推荐 {count} 名，名额 {places} 名，应推荐 {low}–{high} 名{mark}"
        )
    # The cap: one capped nominee per quota row; 20 % of the campaign's 300 awards.
    assert lines[-1] == "县处级干部：6 名，应控制在评选总数 300 的 20%（60 名）以内"
    assert len(lines) == 1 + len(QUOTAS) + 1


def cap_text(figures: QuotaFigures) -> Text:
    (found,) = quota_chart(figures).findobj(lambda a: a.get_gid() == CAP_GID)
    assert isinstance(found, Text)
    return found


def test_the_chart_shows_the_cap_as_the_text_says_it_and_red_when_over(
    figures: QuotaFigures,
) -> None:
    cap = cap_text(figures)
    assert cap.get_text() == quota_text(figures).splitlines()[-1]
    assert to_rgba(cap.get_color()) != to_rgba(COLOURS["超出"])
    over = cap_text(dataclasses.replace(figures, capped=61))
    assert over.get_text().endswith("（超出）")
    assert to_rgba(over.get_color()) == to_rgba(COLOURS["超出"])


def test_a_campaign_without_a_cap_has_no_cap_line(figures: QuotaFigures) -> None:
    plain = dataclasses.replace(figures, cap_label="", cap_share=None)
    assert quota_chart(plain).findobj(lambda a: a.get_gid() == CAP_GID) == []


def test_the_png_is_a_valid_image_of_a_sane_size(figures: QuotaFigures, tmp_path: Path) -> None:
    out = tmp_path / "quota.png"
    quota_png(figures, out, dpi=100)
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert width == 1000  # 10 inches at 100 dpi
    assert 400 < height < 1500


def test_no_rows_is_a_chart_that_says_there_are_no_places(figures: QuotaFigures) -> None:
    empty = dataclasses.replace(figures, rows=())
    out = io.BytesIO()
    quota_png(empty, out, dpi=50)
    out.seek(0)
    with Image.open(out) as image:
        assert image.format == "PNG"
        image.verify()
    texts = [t.get_text() for t in quota_chart(empty).axes[0].texts]
    assert texts == [EMPTY]
    assert "本地区没有分配名额。" in quota_text(empty)


def test_a_missing_font_is_an_error(
    figures: QuotaFigures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "gone.otf"))
    out = tmp_path / "quota.png"
    with pytest.raises(FontMissing):
        quota_png(figures, out)
    assert not out.exists()
