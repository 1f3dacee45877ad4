"""The WeChat Official Account (公众号) channel (wechatpy 1.8.18); see `adapter`."""

from handlers.wechat.adapter import WechatAdapter, make_adapter

__all__ = ["WechatAdapter", "make_adapter"]
