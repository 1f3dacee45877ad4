"""The console channel: the bot in a terminal, or driven through a pipe by scripts and tests.

Thin: it turns lines into inbound text and replies into lines. In a terminal it shows a prompt;
from a pipe it prints choices as numbered lines `1. …` and exits 0 at end of input. With
`show_keys` every question carries its machine key and every choice its value, for campaign
authors and scripted tests. An attachment a reviewer opens is written into the downloads folder
(AWARDBOT_DOWNLOADS_DIR) and its path printed after the reply.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from conversations.engine import FileOut, Reply
from conversations.filing import Upload
from handlers.base import MAX_FILE, Unavailable, load_replies, render_text
from handlers.files import READ_FAILED, SAVED_TO, save_file
from handlers.ports import Attachments, EdgeError

Handle = Callable[..., list[Reply]]  # (text, upload=None) -> replies


def render_reply(reply: Reply, *, show_keys: bool) -> str:
    """One reply as console text."""
    return render_text(reply, show_keys=show_keys)


def render_replies(replies: Iterable[Reply], *, show_keys: bool) -> str:
    return "\n\n".join(render_reply(r, show_keys=show_keys) for r in replies)


class ConsoleChannel:
    """Reads lines, hands them to the runtime, prints what comes back."""

    def __init__(
        self,
        open_: Callable[[], list[Reply]],
        handle: Handle,
        *,
        show_keys: bool = False,
        out: TextIO | None = None,
        notifications: Callable[[], str] | None = None,
        attachments: Attachments | None = None,
        downloads: Path | None = None,
    ) -> None:
        self._open = open_
        self._handle = handle
        self._notifications = notifications
        self._attachments = attachments
        self._downloads = downloads if downloads is not None else Path("data/downloads")
        self.show_keys = show_keys
        self.out = out if out is not None else sys.stdout

    def open(self) -> str:
        return self._with_notifications(self._render(self._open()))

    def send(self, line: str) -> str:
        """One typed line; `/file PATH` sends that file, as a chat app's attachment would."""
        if line.strip().startswith("/file"):
            out = self._send_file(line.strip().removeprefix("/file").strip())
        else:
            out = self._render(self._handle(line))
        return self._with_notifications(out)

    def _render(self, replies: list[Reply]) -> str:
        """The replies as text; each file one of them hands over saved, its path printed."""
        parts = []
        for reply in replies:
            text = render_reply(reply, show_keys=self.show_keys)
            lines = [self._save(file) for file in reply.files]
            parts.append("\n".join([text, *lines]))
        return "\n\n".join(parts)

    def render_stored(self, payload: str) -> str:
        """Replies kept in the outbox (JSON, handlers.base.dump_replies), printed like a step's:
        what comes later than its step, e.g. the documents a job made."""
        return self._render(load_replies(payload))

    def _save(self, file: FileOut) -> str:
        if self._attachments is None:
            return READ_FAILED
        try:
            stored = self._attachments.read(file.attachment_id)
        except (EdgeError, Unavailable):
            return READ_FAILED
        try:
            path = save_file(self._downloads, file, stored)
        except OSError as exc:
            return f"无法保存附件到 {self._downloads}：{exc.strerror or exc}"
        return SAVED_TO.format(path=path)

    def _with_notifications(self, text: str) -> str:
        """Notifications waiting for this user come first: they are news, the reply asks."""
        waiting = self._notifications() if self._notifications is not None else ""
        return f"{waiting}\n\n{text}" if waiting else text

    def _send_file(self, name: str) -> str:
        if not name:
            return "请在 /file 后面写上文件路径，例如：/file ~/扫描件/身份证.pdf"
        path = Path(name).expanduser()
        try:
            with path.open("rb") as f:
                data = f.read(MAX_FILE + 1)  # enough for the core to refuse what is too big
                size = os.fstat(f.fileno()).st_size  # the real size, which the refusal states
        except OSError as exc:
            return f"无法读取文件 {name}：{exc.strerror or exc}"
        upload = Upload(filename=path.name, data=data, size=max(size, len(data)))
        return self._render(self._handle("", upload))

    def run(self, stdin: TextIO | None = None) -> int:
        """Converse until end of input (Ctrl-C / Ctrl-D in a terminal); return the exit code."""
        stdin = stdin if stdin is not None else sys.stdin
        interactive = stdin.isatty() and self.out.isatty()
        self._print(self.open())
        while True:
            try:
                line = input("> ") if interactive else stdin.readline()
            except (EOFError, KeyboardInterrupt):
                if interactive:
                    self._print("\n已保存进度，下次运行会从这里继续。")
                return 0
            if not interactive and line == "":
                return 0
            self._print(self.send(line.rstrip("\r\n")))

    def _print(self, text: str) -> None:
        self.out.write(text + "\n\n")
        self.out.flush()
