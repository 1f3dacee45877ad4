"""The console channel: the bot in a terminal, or driven through a pipe by scripts and tests.

Thin: it turns lines into inbound text and replies into lines. In a terminal it shows a prompt;
from a pipe it prints choices as numbered lines `1. …` and exits 0 at end of input. With
`show_keys` every question carries its machine key and every choice its value, for campaign
authors and scripted tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from conversations.engine import Reply
from conversations.filing import Upload
from handlers.base import MAX_FILE, render_text

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
    ) -> None:
        self._open = open_
        self._handle = handle
        self._notifications = notifications
        self.show_keys = show_keys
        self.out = out if out is not None else sys.stdout

    def open(self) -> str:
        return self._with_notifications(render_replies(self._open(), show_keys=self.show_keys))

    def send(self, line: str) -> str:
        """One typed line; `/file PATH` sends that file, as a chat app's attachment would."""
        if line.strip().startswith("/file"):
            out = self._send_file(line.strip().removeprefix("/file").strip())
        else:
            out = render_replies(self._handle(line), show_keys=self.show_keys)
        return self._with_notifications(out)

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
        except OSError as exc:
            return f"无法读取文件 {name}：{exc.strerror or exc}"
        upload = Upload(filename=path.name, data=data)
        return render_replies(self._handle("", upload), show_keys=self.show_keys)

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
