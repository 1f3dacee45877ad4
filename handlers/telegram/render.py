"""Telegram's view of the conversation, the same for both libraries.

Replies become messages (text + hint, split under Telegram's 4096-character limit, the inline
keyboard on the last piece); option buttons carry, as `callback_data`, the turn of the question
they answer and the option's value — `7|true` — or its 1-based number when the value is long
(the engine accepts both). The turn lets the core refuse a press meant for another question (a
double tap, an old keyboard) on any worker, after any restart. Inbound updates arrive here
as `Incoming` values the library modules build, so what a message means is decided once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conversations.engine import Option, Reply
from conversations.form_files import format_mb
from handlers.base import split_text, utf8_len

MAX_TEXT = 4096  # characters (UTF-16 code units) of one message
MAX_CALLBACK_DATA = 64  # bytes
SHORT_LABEL = 8  # labels this short go two to a row

TOO_BIG = "文件超过 20 MB，无法接收。请压缩后重新发送，或分成几个文件。"


def too_big(size: int | None) -> str:
    """The refusal of a file over 20 MB, with its real size when Telegram told it."""
    if size is None:
        return TOO_BIG
    return f"文件太大：{format_mb(size)}，超过 20 MB，无法接收。请压缩后重新发送，或分成几个文件。"


UNSUPPORTED = "抱歉，目前只能识别文字、图片和文件。请用文字回答，或点选下方按钮。"
PRIVATE_ONLY = "请在与本机器人的私聊中使用。"
STALE_BUTTON = "这个按钮已过期，请使用最新消息中的按钮。"
CHOSEN = "✅ 已选择：{label}"
DOWNLOAD_FAILED = "文件没有收到，请稍后重新发送。"


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str  # callback_data, at most 64 bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Telegram message to send; `keyboard` rows of inline buttons (empty: none)."""

    text: str
    keyboard: tuple[tuple[Button, ...], ...] = ()


def callback_data(option: Option, number: int, asks: str | None = None) -> str:
    """What pressing the option's button sends: `turn|value`, or `turn|number` if the value
    is long (no `turn|` for a reply that asks nothing)."""
    turn = asks.rpartition("#")[2] if asks else ""
    head = f"{turn}|" if turn else ""
    value = option.value
    if value and utf8_len(head + value) <= MAX_CALLBACK_DATA:
        return head + value
    return head + str(number)


def pressed(data: str) -> tuple[str | None, str]:
    """(the question a button answers, as `Reply.asks` compares it, or None; its value)."""
    turn, sep, value = data.partition("|")
    if sep and turn.isdigit():
        return f"#{turn}", value
    return None, data


def keyboard(
    options: tuple[Option, ...], asks: str | None = None
) -> tuple[tuple[Button, ...], ...]:
    """One button per row; two per row when every label is short."""
    buttons = [
        Button(option.label, callback_data(option, number, asks))
        for number, option in enumerate(options, start=1)
    ]
    if buttons and all(len(b.label) <= SHORT_LABEL for b in buttons):
        return tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
    return tuple((b,) for b in buttons)


def render_reply(reply: Reply) -> list[Outgoing]:
    """The messages for one reply; the keyboard goes on the last piece."""
    text = reply.text if not reply.hint else f"{reply.text}\n{reply.hint}"
    pieces = split_text(text, MAX_TEXT, measure=utf16_len) or ["…"]
    board = keyboard(reply.options, reply.asks)
    return [
        Outgoing(piece, board if i == len(pieces) - 1 else ()) for i, piece in enumerate(pieces)
    ]


def render_notification(text: str) -> list[Outgoing]:
    return [Outgoing(piece) for piece in split_text(text, MAX_TEXT, measure=utf16_len)]


def chosen_text(message_text: str, label: str) -> str | None:
    """The pressed message's text with the choice shown, or None if that would be too long."""
    text = f"{message_text}\n\n{CHOSEN.format(label=label)}"
    return text if utf16_len(text) <= MAX_TEXT else None


def command_text(text: str) -> str:
    """`/start@MyBot payload` → `/start payload` (group-style commands name the bot)."""
    if not text.startswith("/"):
        return text
    head, sep, rest = text.partition(" ")
    return head.split("@", 1)[0] + sep + rest


class Kind(StrEnum):
    TEXT = "text"
    CALLBACK = "callback"
    FILE = "file"  # a photo or a document
    OTHER = "other"  # stickers, voice, locations...
    IGNORED = "ignored"  # edits, channel posts, service messages: anything not for us
    MALFORMED = "malformed"  # the library took it, but a field we read is not what it says


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update as the shared logic needs it, whichever library parsed it."""

    update_id: int
    kind: Kind
    chat_id: int | None = None
    private: bool = True
    text: str = ""
    # callback queries
    answers: str | None = None  # the question the button belonged to (see `pressed`)
    callback_id: str | None = None
    message_id: int | None = None  # the message whose button was pressed
    message_text: str | None = None
    pressed_label: str | None = None
    # photos and documents
    file_id: str | None = None
    file_size: int | None = None
    filename: str | None = None


# Service messages: what a chat tells about itself (a pin, members joined or left, a new title,
# a topic opened, a video chat...), not a person writing; answered with nothing (issue 8).
SERVICE_FIELDS = (
    "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo",
    "delete_chat_photo", "group_chat_created", "supergroup_chat_created", "channel_chat_created",
    "message_auto_delete_timer_changed", "migrate_to_chat_id", "migrate_from_chat_id",
    "pinned_message", "successful_payment", "refunded_payment", "users_shared", "user_shared",
    "chat_shared", "gift", "unique_gift", "gift_upgrade_sent", "connected_website",
    "write_access_allowed", "passport_data", "proximity_alert_triggered", "boost_added",
    "chat_background_set", "checklist_tasks_done", "checklist_tasks_added",
    "direct_message_price_changed", "paid_message_price_changed", "forum_topic_created",
    "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened",
    "general_forum_topic_hidden", "general_forum_topic_unhidden", "giveaway_created",
    "giveaway_completed", "giveaway_winners", "video_chat_scheduled", "video_chat_started",
    "video_chat_ended", "video_chat_participants_invited", "web_app_data", "chat_owner_left",
    "chat_owner_changed", "managed_bot_created", "suggested_post_approved",
    "suggested_post_approval_failed", "suggested_post_declined", "suggested_post_paid",
    "suggested_post_refunded", "poll_option_added", "poll_option_deleted",
)  # fmt: skip


def is_service(message: Any) -> bool:
    """Whether the message is a service message, in either library's object.

    A field this library version does not know is still seen: PTB keeps it in `api_kwargs`,
    aiogram in `model_extra`.
    """
    unknown = {**(getattr(message, "api_kwargs", None) or {})}
    unknown.update(getattr(message, "model_extra", None) or {})
    for name in SERVICE_FIELDS:
        value = getattr(message, name, None)
        if value is None:
            value = unknown.get(name)
        if value is not None and value is not False and value != () and value != []:
            return True
    return False


def photo_name(file_unique_id: str | None) -> str:
    return f"photo_{file_unique_id or 'telegram'}.jpg"


def read_update(update: Any, message_type: type) -> Incoming:
    """`incoming`, or MALFORMED when a field it reads is not what the Bot API says.

    The webhook's shape check (`shape.check_update`) refuses such bodies before they get here;
    this is for what it does not cover (and for polling, whose updates it does not see).
    """
    try:
        return incoming(update, message_type)
    except Exception:  # noqa: BLE001 - any failure to read it means it is not a valid update
        update_id = getattr(update, "update_id", None)
        return Incoming(update_id if isinstance(update_id, int) else -1, Kind.MALFORMED)


def incoming(update: Any, message_type: type) -> Incoming:
    """A python-telegram-bot or aiogram `Update` as the shared logic reads it.

    Both libraries mirror the Bot API's field names, so one reading serves both;
    `message_type` is the library's `Message` (a press on an inaccessible message has none).
    """
    uid = update.update_id
    query = update.callback_query
    if query is not None:
        message = query.message if isinstance(query.message, message_type) else None
        chat = query.message.chat if query.message is not None else None
        label = None
        if message is not None and message.reply_markup is not None:
            for row in message.reply_markup.inline_keyboard:
                for button in row:
                    if button.callback_data == query.data:
                        label = button.text
        answers, value = pressed(query.data if isinstance(query.data, str) else "")
        return Incoming(
            uid,
            Kind.CALLBACK,
            chat_id=chat.id if chat is not None else query.from_user.id,
            private=chat is None or chat.type == "private",
            text=value,
            answers=answers,
            callback_id=query.id,
            message_id=message.message_id if message is not None else None,
            message_text=message.text if message is not None else None,
            pressed_label=label,
        )
    message = update.message
    if message is None:
        return Incoming(uid, Kind.IGNORED)
    chat_id, private = message.chat.id, message.chat.type == "private"
    if is_service(message):
        return Incoming(uid, Kind.IGNORED, chat_id=chat_id, private=private)
    if message.text is not None:
        return Incoming(uid, Kind.TEXT, chat_id=chat_id, private=private, text=message.text)
    if message.photo:
        photo = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Incoming(
            uid,
            Kind.FILE,
            chat_id=chat_id,
            private=private,
            file_id=photo.file_id,
            file_size=photo.file_size,
            filename=photo_name(photo.file_unique_id),
        )
    if message.document is not None:
        document = message.document
        return Incoming(
            uid,
            Kind.FILE,
            chat_id=chat_id,
            private=private,
            file_id=document.file_id,
            file_size=document.file_size,
            filename=document.file_name or "document",
        )
    return Incoming(uid, Kind.OTHER, chat_id=chat_id, private=private)
