"""A webhook body's shape, checked once before either library or the store sees it (issue 8).

python-telegram-bot does not check types (a `chat.id` of "abc" or a `text` of 5 go through) and
turns dates into datetimes that overflow; aiogram checks types but not ranges, and both recurse
as deep as the JSON goes. So the core refuses here, with a 400, whatever Telegram itself never
sends: a body that is not UTF-8 JSON, nesting deeper than any real update, numbers outside the
Bot API's ranges, and — in the fields the step reads (update_id, chat and message ids, texts,
button data, files) — a wrong type or a missing field. A bool is not an int here, though Python
says `isinstance(True, int)`: an `update_id` of `true` would be taken for update 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeGuard

BAD_JSON = "bad_json"  # not UTF-8, not JSON, NaN, nested deeper than MAX_DEPTH
NOT_UPDATE = "not_update"  # not an object, or no valid update_id
SHAPE = "shape"  # a field of the wrong type or range, or a required one missing

MAX_DEPTH = 32  # real updates nest about 10 deep (a button in a keyboard in a message...)
MAX_UPDATE_ID = 2**31  # update ids are positive 32-bit integers
MAX_INT = 2**53  # ids and sizes "have at most 52 significant bits" (Bot API)
MAX_DATE = 2**32  # Unix time; 0 is an inaccessible message's date


class Malformed(ValueError):
    """The body is not a Telegram update; `reason` is one of the constants above."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_update(body: bytes) -> dict[str, Any]:
    """The update in a webhook body, its shape checked; Malformed otherwise."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # the C decoder's limit on nesting
        raise Malformed(BAD_JSON, "nested too deep") from None
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, ints of 4300+ digits
        raise Malformed(BAD_JSON, type(exc).__name__) from None
    check_update(data)  # first: a bad update_id is "not an update", whatever else is wrong
    _check_values(data)
    return data  # type: ignore[no-any-return]  # check_update made sure it is an object


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_date_key(key: str) -> bool:
    # The Bot API's timestamps ("date", "edit_date", "until_date", ...): PTB makes datetimes of
    # them, which overflow (OverflowError, OSError) far below any int limit.
    return key == "date" or key.endswith("_date") or key == "unix_time"


def _check_values(data: Any) -> None:
    """Every value, iteratively (no recursion to exhaust): depth, numbers, strings."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            raise Malformed(BAD_JSON, f"nested deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            for name, item in value.items():
                _check_string(name)
                stack.append((item, depth + 1, name))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, key) for item in value)
        elif isinstance(value, str):
            _check_string(value)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if _is_date_key(key) and not 0 <= value < MAX_DATE:
                raise Malformed(SHAPE, f"{key} out of range")
            if not -MAX_INT < value < MAX_INT:
                raise Malformed(SHAPE, f"{key or 'a number'} out of range")
        elif isinstance(value, float):
            if not math.isfinite(value) or abs(value) >= MAX_INT:  # 1e400 parses as inf
                raise Malformed(SHAPE, f"{key or 'a number'} out of range")
            if _is_date_key(key):
                raise Malformed(SHAPE, f"{key} is not an integer")


def _check_string(text: str) -> None:
    # JSON can spell what UTF-8 cannot (a lone surrogate "\ud800"): no database or Bot API call
    # takes it. PostgreSQL text cannot hold NUL either, and Telegram never sends one.
    if "\x00" in text:
        raise Malformed(SHAPE, "a string with NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed(BAD_JSON, "a string that is not Unicode text") from None


# ----- the fields the step reads --------------------------------------------------------------


def check_update(data: Any) -> None:
    """An update object with a valid update_id, its message or button press well formed.

    Other kinds of update (edits, channel posts...) are not for this bot (allowed_updates) and
    are answered without a step; only their values were checked (`_check_values`).
    """
    if not isinstance(data, dict):
        raise Malformed(NOT_UPDATE, "not an object")
    update_id = data.get("update_id")
    if not _is_int(update_id) or not 0 <= update_id < MAX_UPDATE_ID:
        raise Malformed(NOT_UPDATE, "update_id is not an integer in range")
    _optional(data, "message", _message)
    _optional(data, "callback_query", _callback_query)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(SHAPE, f"{where} is not an object")
    return value


def _int(obj: dict[str, Any], name: str, *, required: bool = True) -> None:
    value = obj.get(name)
    if value is None and not required:
        return
    if not _is_int(value):
        raise Malformed(SHAPE, f"{name} is not an integer")


def _str(obj: dict[str, Any], name: str, *, required: bool = True) -> None:
    value = obj.get(name)
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise Malformed(SHAPE, f"{name} is not a string")


def _bool(obj: dict[str, Any], name: str, *, required: bool = True) -> None:
    value = obj.get(name)
    if value is None and not required:
        return
    if not isinstance(value, bool):
        raise Malformed(SHAPE, f"{name} is not a boolean")


def _optional(obj: dict[str, Any], name: str, check: Callable[[Any], None]) -> None:
    """A field the Bot API may leave out; JSON null counts as left out (both libraries agree)."""
    value = obj.get(name)
    if value is not None:
        check(value)


def _user(value: Any) -> None:
    user = _object(value, "from")
    _int(user, "id")
    _bool(user, "is_bot")
    _str(user, "first_name")


def _chat(value: Any) -> None:
    chat = _object(value, "chat")
    _int(chat, "id")
    _str(chat, "type")


def _message(value: Any, *, pressed: bool = False) -> None:
    message = _object(value, "message")
    _int(message, "message_id")
    _int(message, "date")
    _chat(message.get("chat"))
    if pressed and message["date"] == 0:  # a press under an inaccessible message: no more
        return
    _optional(message, "from", _user)
    _str(message, "text", required=False)
    _str(message, "caption", required=False)
    _optional(message, "photo", _photo)
    _optional(message, "document", _document)
    _optional(message, "reply_markup", _markup)


def _file(obj: dict[str, Any]) -> None:
    _str(obj, "file_id")
    _str(obj, "file_unique_id")
    _int(obj, "file_size", required=False)


def _photo(value: Any) -> None:
    if not isinstance(value, list):
        raise Malformed(SHAPE, "photo is not a list")
    for item in value:
        size = _object(item, "photo size")
        _file(size)
        _int(size, "width")
        _int(size, "height")


def _document(value: Any) -> None:
    document = _object(value, "document")
    _file(document)
    _str(document, "file_name", required=False)
    _str(document, "mime_type", required=False)


def _markup(value: Any) -> None:
    markup = _object(value, "reply_markup")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return  # not an inline keyboard: nothing here is read
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise Malformed(SHAPE, "inline_keyboard is not a list of rows")
    for row in rows:
        for item in row:
            button = _object(item, "button")
            _str(button, "text")
            _str(button, "callback_data", required=False)


def _callback_query(value: Any) -> None:
    query = _object(value, "callback_query")
    _str(query, "id")
    _user(query.get("from"))
    _str(query, "chat_instance")
    _str(query, "data", required=False)
    _optional(query, "message", lambda m: _message(m, pressed=True))
