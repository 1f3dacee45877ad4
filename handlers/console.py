"""The console channel: the bot in a terminal, or driven through a pipe by scripts and tests.

Thin: it turns lines into inbound text and replies into lines. In a terminal it shows a prompt;
from a pipe it prints choices as numbered lines `1. …` and exits 0 at end of input. With
`show_keys` every question carries its machine key and every choice its value, for campaign
authors and scripted tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TextIO

from conversations.engine import Reply

Handle = Callable[[str], list[Reply]]


def render_reply(reply: Reply, *, show_keys: bool) -> str:
    """One reply as console text."""
    lines = []
    if show_keys and reply.verdict:
        lines.append(f"[verdict] {reply.verdict}")
    lines.append(f"[{reply.key}] {reply.text}" if show_keys and reply.key else reply.text)
    if reply.hint:
        lines.append(reply.hint)
    for number, option in enumerate(reply.options, start=1):
        suffix = f" [{option.value}]" if show_keys else ""
        lines.append(f"{number}. {option.label}{suffix}")
    return "\n".join(lines)


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
    ) -> None:
        self._open = open_
        self._handle = handle
        self.show_keys = show_keys
        self.out = out if out is not None else sys.stdout

    def open(self) -> str:
        return render_replies(self._open(), show_keys=self.show_keys)

    def send(self, line: str) -> str:
        return render_replies(self._handle(line), show_keys=self.show_keys)

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
