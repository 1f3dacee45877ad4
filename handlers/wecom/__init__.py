"""WeCom (企业微信): callbacks at `/wecom` and app messages to officials (wechatpy.enterprise)."""

from handlers.wecom.adapter import WecomAdapter, make_adapter

__all__ = ["WecomAdapter", "make_adapter"]
