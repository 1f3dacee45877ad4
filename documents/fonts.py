"""The one CJK font every PDF and chart is drawn with, and a clear error when it is missing.

Noto Serif CJK SC (思源宋体, SIL Open Font License 1.1) covers GB 18030's hanzi, so a rare
character of a name never renders as a box. It comes from the `mplfonts` package, a dependency
of the project (pyproject.toml), which ships it as a file; we load that one file and none of the
package's code. `AWARDBOT_CJK_FONT` points to another OpenType/TrueType file instead.

The DOCX documents only *name* their fonts (仿宋_GB2312 for the body, 方正小标宋简体 for titles,
GB/T 9704): Word renders them on the office's own machine.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

ENV = "AWARDBOT_CJK_FONT"
BUNDLED = ("mplfonts", "fonts/NotoSerifCJKsc-Regular.otf")
FAMILY = "Noto Serif CJK SC"


class FontMissing(Exception):
    """No CJK font file: the message says which path was tried and how to install one."""


def font_path(env: dict[str, str] | None = None) -> Path:
    """The CJK font file to draw with: AWARDBOT_CJK_FONT if set, else the bundled Noto Serif."""
    values = os.environ if env is None else env
    configured = values.get(ENV, "").strip()
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FontMissing(
                f"找不到中文字体文件 {path}（{ENV}）：请改为一个 .otf/.ttf 文件，或删去该设置"
                f" (CJK font file {path} named by {ENV} does not exist)"
            )
        return path
    package, name = BUNDLED
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FontMissing(
            "找不到中文字体 Noto Serif CJK SC：请运行 make 重新安装依赖（pip install mplfonts）"
            f"，或用 {ENV} 指定字体文件 (CJK font missing: install mplfonts or set {ENV})"
        )
    return path


__all__ = ["ENV", "FAMILY", "FontMissing", "font_path"]
