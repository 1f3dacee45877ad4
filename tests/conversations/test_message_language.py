"""No English tails in Chinese messages (issue 11: 「邀请码无效…(invalid invitation code)」).

What a user reads is Chinese: the message catalogue (conversations.texts) and every other string
the core and the channels word for a person. A Chinese message that ends in English, or carries
a parenthesis of English words, fails here with its file and line. Operator-facing reasons (a
notification the platform refused, kept in the outbox for `awardbot reminders list`) follow the
command line's convention instead, Chinese first with the English in parentheses; they are the
arguments of our `…Error` exceptions in handlers/, and the few functions listed below.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conversations.texts import TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("conversations", "handlers")
# Functions in handlers/ that word a reason for the operator, not a message for a user.
OPERATOR_FUNCTIONS = {("handlers/wechat/sender.py", "undeliverable_reason")}

CJK = re.compile(r"[\u3400-\u9fff]")
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
# A parenthesis, half or full width, holding English words only: (invalid invitation code).
ENGLISH_PARENTHESIS = re.compile(
    r"[(（]\s*[A-Za-z][A-Za-z'’-]*(?:[\s,;:/]+[A-Za-z][A-Za-z'’-]*)+\s*[)）]"
)
# Two English words after the last Chinese character: 已过期 this link has expired.
ENGLISH_TAIL = re.compile(
    r"[\u3400-\u9fff][^\u3400-\u9fff]*?\b[A-Za-z][a-z]+\s+[A-Za-z][a-z]+\b[^\u3400-\u9fff]*$"
)


def english_tail(text: str) -> str | None:
    """The English part of a Chinese message, if it has one (templates' tags left out)."""
    text = JINJA.sub(" ", text).strip()
    if not CJK.search(text):
        return None
    found = ENGLISH_PARENTHESIS.search(text) or ENGLISH_TAIL.search(text)
    return found.group(0) if found else None


def user_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module a user may read: not docstrings; in handlers/, not the
    arguments of an `…Error` (delivery and API errors are for the operator) nor the strings of
    an operator function."""
    where = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        error = isinstance(node, ast.Call) and _callee(node).endswith("Error")
        listed = isinstance(node, ast.FunctionDef) and (where, node.name) in OPERATOR_FUNCTIONS
        operator = where.startswith("handlers/") and (error or listed)
        if operator:
            skipped.update(id(n) for n in ast.walk(node))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
    ]


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_no_message_of_the_catalogue_has_an_english_tail(name: str) -> None:
    assert english_tail(TEMPLATES[name]) is None


def test_no_user_facing_string_has_an_english_tail() -> None:
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {tail!r} in {value[:60]!r}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, value in user_strings(path)
        if (tail := english_tail(value)) is not None
    ]
    assert found == []


def test_the_operator_functions_still_exist() -> None:
    for where, name in OPERATOR_FUNCTIONS:
        tree = ast.parse((ROOT / where).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.FunctionDef) and n.name == name for n in ast.walk(tree))


@pytest.mark.parametrize(
    ("text", "tail"),
    [
        ("邀请码无效，请核对后重新输入。(invalid invitation code)", "(invalid invitation code)"),
        ("邀请码已作废（invitation code revoked）", "（invitation code revoked）"),
        ("此下载链接已过期 this link has expired", "期 this link has expired"),
        ("请在 /bind 后面加上邀请码，例如：/bind ABCD-EFGH", None),
        ("邀请码无效，请核对 8 位邀请码（形如 ABCD-EFGH）后重新输入。", None),
        ("管理员尚未设置本服务的公开访问地址（AWARDBOT_PUBLIC_URL）。", None),
        ("发送 /unsubscribe 报送 取消", None),
        ("invalid invitation code", None),  # not a Chinese message
        ("{% if x %}（{{ r.kind }}）{% endif %}提醒", None),
    ],
)
def test_what_counts_as_an_english_tail(text: str, tail: str | None) -> None:
    assert english_tail(text) == tail
