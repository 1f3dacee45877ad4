"""`awardbot wechat menu`: create the Official Account menu (自查资格 / 填报推荐 / 查询进度).

The menu's CLICK keys are the ones the WeChat adapter understands (`handlers.wechat.menu`).
The call uses the database-shared access_token like every worker. One line out, exit 2 on error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from bot.settings import Settings

COMMANDS = frozenset({"wechat"})
EXIT_ERROR = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `wechat menu` to the awardbot command line."""
    wechat = subparsers.add_parser("wechat", help="WeChat Official Account set-up")
    wechat_sub = wechat.add_subparsers(dest="wechat_command", required=True, metavar="{menu}")
    wechat_sub.add_parser("menu", help="create the account menu: 自查资格 / 填报推荐 / 查询进度")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a `wechat` command; 0, or 2 after one line on stderr."""
    from bot.edges import StoreTokenCache
    from bot.wiring import open_store
    from handlers.base import Unavailable
    from handlers.ports import EdgeError
    from handlers.wechat.client import WechatApiError, WechatClient
    from handlers.wechat.menu import MENU, menu_definition
    from storage.store import StoreError

    if settings.wechat is None:
        return _fail("wechat is off: set AWARDBOT_WECHAT_APP_ID, _APP_SECRET and _TOKEN")
    wechat = settings.wechat
    try:
        store = open_store(settings)
    except StoreError as exc:
        return _fail(str(exc))
    client = WechatClient(
        wechat.app_id,
        wechat.app_secret,
        api_base=wechat.api_base,
        tokens=StoreTokenCache(store),
        clock=lambda: dt.datetime.now(dt.UTC),
    )
    try:
        client.create_menu(menu_definition())
    except WechatApiError as exc:
        return _fail(f"menu not created: WeChat API error {exc.errcode}: {exc.detail}")
    except (Unavailable, EdgeError) as exc:  # the shared token's store failed
        return _fail(str(exc))
    finally:
        client._http.close()
        store.close()
    print(f"菜单已创建：{' / '.join(label for label, _, _ in MENU)} (menu created)")
    return 0


def _fail(message: str) -> int:
    print(f"awardbot: {message}", file=sys.stderr)
    return EXIT_ERROR
