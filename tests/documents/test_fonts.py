"""The CJK font the PDFs and charts use: found, really CJK, and a clear error when missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from documents.fonts import ENV, FontMissing, font_path


def test_the_bundled_font_covers_the_characters_of_names_beyond_gb2312() -> None:
    path = font_path({})
    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap()
    # 吉林 and the full-width colon of a form, and 喆 堃 玥 (names outside GB 2312).
    for char in "吉林省推荐审批表：喆堃玥·":
        assert ord(char) in cmap, char


def test_a_configured_font_file_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.otf"
    with pytest.raises(FontMissing, match="找不到中文字体文件") as caught:
        font_path({ENV: str(missing)})
    assert str(missing) in str(caught.value)


def test_a_configured_font_file_is_used(tmp_path: Path) -> None:
    chosen = tmp_path / "mine.ttf"
    chosen.write_bytes(b"not checked here")
    assert font_path({ENV: str(chosen)}) == chosen
