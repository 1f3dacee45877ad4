"""Attachments a reviewer opened, sent into the chat: a photo (jpg/png) or a document.

`render_reply` makes a reply's text; `files_of` adds one `OutgoingFile` per file the core put in
`Reply.files`, after that text, so the adapter sends them in order through the same limiter
and retries as its messages. The bytes are read only when the file is sent (`Attachments`,
on a worker thread); a file that cannot be read is answered with a line saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conversations.engine import FileOut, Reply
from handlers.base import Gateway, Unavailable
from handlers.files import READ_FAILED, is_image, safe_name
from handlers.ports import Attachments, EdgeError
from handlers.telegram.render import Button, Outgoing
from notifications.senders import DeliveryError

if TYPE_CHECKING:
    from handlers.telegram.core import BotClient

PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto takes at most 10 MB; a larger image goes as a document


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """One attachment to send; it never carries buttons (the sending loop reads `keyboard`)."""

    file: FileOut
    keyboard: tuple[tuple[Button, ...], ...] = ()


def files_of(reply: Reply) -> list[OutgoingFile]:
    return [OutgoingFile(file) for file in reply.files]


class FileSender:
    """Reads an attachment and sends it with the library's client."""

    def __init__(
        self, client: BotClient, attachments: Attachments | None, gateway: Gateway
    ) -> None:
        self._client = client
        self._attachments = attachments
        self._gateway = gateway

    async def send(self, chat: int | str, message: OutgoingFile) -> int:
        """The new message's id; DeliveryError as `send_message` raises it."""
        file = message.file
        if self._attachments is None:
            return await self._client.send_message(chat, Outgoing(READ_FAILED))
        try:
            stored = await self._gateway.run(self._attachments.read, file.attachment_id)
        except (EdgeError, Unavailable):
            return await self._client.send_message(chat, Outgoing(READ_FAILED))
        name = safe_name(stored.filename, file.attachment_id, stored.kind)
        if is_image(stored.kind) and len(stored.data) <= PHOTO_LIMIT:
            try:
                return await self._client.send_photo(chat, name, stored.data)
            except DeliveryError as exc:
                if exc.retryable:
                    raise
                # Telegram refuses some images as photos (dimensions): the file as it is.
        return await self._client.send_document(chat, name, stored.data)
