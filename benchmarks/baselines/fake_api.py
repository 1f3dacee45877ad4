"""The Bot API answered in process: what both libraries' request layers hand their serialized
request to instead of the network (`ptb_form.InProcessRequest`, `aiogram_form.InProcessSession`).

It records every call (method, chat, text, body size) and answers with the JSON bytes Telegram
would send back, which each library then parses with its own code.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

BOT_ID = 123456
TOKEN = f"{BOT_ID}:BENCHMARK-offline-token"  # well-formed, never sent anywhere
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
GET_ME = {
    **BOT_USER,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
DATE = 1_666_229_400


class FakeBotApi:
    """Answers Bot API calls; `sent[chat]` is the texts of every sendMessage, in order."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.sent: defaultdict[int, list[str]] = defaultdict(list)
        self.keyboards = 0  # sendMessage calls that carried a reply_markup
        self.body_bytes = 0  # bytes of the serialized requests
        self._message_id = 0

    def answer(
        self, method: str, chat_id: Any, text: Any, body: bytes, markup: bool = False
    ) -> bytes:
        """The raw HTTP response body for one call whose request body the library built."""
        self.calls[method] += 1
        self.body_bytes += len(body)
        if method == "getMe":
            result: Any = GET_ME
        elif method == "sendMessage":
            chat = int(chat_id)
            self.sent[chat].append(str(text))
            self.keyboards += markup
            self._message_id += 1
            result = {
                "message_id": self._message_id,
                "date": DATE,
                "chat": {"id": chat, "type": "private", "first_name": f"u{chat}"},
                "from": BOT_USER,
                "text": str(text),
            }
        else:
            result = True
        return json.dumps({"ok": True, "result": result}, ensure_ascii=False).encode()

    @property
    def messages(self) -> int:
        return self.calls["sendMessage"]

    def reset(self) -> None:
        self.calls.clear()
        self.sent.clear()
        self.keyboards = self.body_bytes = 0
