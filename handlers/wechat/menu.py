"""The account's custom menu (`awardbot wechat menu`) and what its CLICK keys mean.

Each button is a CLICK button whose key the adapter turns into an engine command:
- 自查资格 (SELF_CHECK) → `/restart`: a fresh eligibility self-check (leaves a filing too);
- 填报推荐 (FILING) → `/new`: start filing a nomination;
- 查询进度 (TRACK) → `/track`: the nominations this user follows and where they stand.
"""

from __future__ import annotations

from typing import Any

MENU: tuple[tuple[str, str, str], ...] = (  # (label, click key, command)
    ("自查资格", "SELF_CHECK", "/restart"),
    ("填报推荐", "FILING", "/new"),
    ("查询进度", "TRACK", "/track"),
)
CLICK_COMMANDS: dict[str, str] = {key: command for _, key, command in MENU}


def menu_definition() -> dict[str, Any]:
    """The body of `menu/create`."""
    return {"button": [{"type": "click", "name": label, "key": key} for label, key, _ in MENU]}


# Said first when someone follows the account: the menu is how they come back later.
FOLLOW_NOTE = "感谢关注！随时可用底部菜单：" + " / ".join(label for label, _, _ in MENU) + "。"
