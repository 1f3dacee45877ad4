"""Vocabularies of the nomination forms, as data: the closed lists of the approval form (民族,
政治面貌, 文化程度) and the formats of names and numbers.

A form field names one with `vocabulary:` (conversations.forms; an unknown name is a load error):
- on a text field a closed list stores its canonical label for what the clerk types — the label,
  a short form or the national-standard code (汉, 汉族, 01 → 汉族); a format checks and normalises
  the text instead (阿依古丽・买买提 → 阿依古丽·买买提). Anything else is refused, saying what is
  accepted (`VocabularyError`, a `ValidationError`);
- on an enum field a closed list lets its codes and short forms name the field's choices
  (党员 → 中共党员, 民盟 → 民主党派, 本科 or 21 → 大学本科); the stored value stays the choice's
  value. Every choice label must be a term of the list (`choice_index`, checked at load).

Sources: GB/T 3304-1991 民族代码 (the 56 groups 01–56, 97 其他, 98 外国血统中国籍人士);
GB/T 4762-1984 政治面貌代码 (01–13; its 无党派民主人士 is the forms' 无党派人士); GB/T 4658-2006
文化程度代码, folded into the short list officials use on approval forms: the heading of each level
and its 毕业 codes (结业 and 肄业 do not give the level's 学历, so they are left out).

Pure data and string work: no I/O.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from conversations.validators import (
    ValidationError,
    parse_certificate_number,
    parse_person_name,
    parse_unit_name,
)


class VocabularyError(ValidationError):
    """The text is no term of the vocabulary; the message (Chinese) says what is accepted."""


@dataclass(frozen=True)
class Term:
    """One entry of a closed list: its canonical label, national-standard codes, short forms,
    and the broader term of a short list it falls under (民革 → 民主党派)."""

    label: str
    codes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    broader: str | None = None


_NOTE = re.compile(r"[（(][^（）()]*[）)]")
_OUTER = "。.!！？?，,、；;：:\"'“”‘’「」"


def without_notes(label: str) -> str:
    """A label without its bracketed notes, full or half width: 初级工（五级） → 初级工."""
    return _NOTE.sub("", label).strip()


def notes_of(label: str) -> list[str]:
    """The bracketed notes of a label: 初级工（五级） → [五级]."""
    return [m.group(0)[1:-1].strip() for m in _NOTE.finditer(label)]


def term_key(text: str) -> str:
    """How typed text is compared with terms: width-folded, lower case, without spaces and outer
    punctuation."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(folded.split()).strip(_OUTER).lower()


@dataclass(frozen=True)
class Vocabulary:
    """A closed list: terms looked up by label, short form or code."""

    name: str  # as a field names it: vocabulary: ethnic_groups
    title: str  # 民族
    terms: tuple[Term, ...]
    examples: str  # shown when input is refused: 汉族、朝鲜族、满族、蒙古族
    hint: str  # the other ways to say a term, ditto
    _index: dict[str, Term] = field(init=False, repr=False, compare=False)
    _codes: dict[str, Term] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Term] = {}
        codes: dict[str, Term] = {}
        labels = {t.label for t in self.terms}
        for term in self.terms:
            if term.broader is not None and term.broader not in labels:
                raise ValueError(f"{self.name}: {term.label}'s broader term is unknown")
            for word in (term.label, *term.aliases):
                key = term_key(word)
                if index.setdefault(key, term) is not term:
                    raise ValueError(f"{self.name}: '{word}' names two terms")
            for code in term.codes:
                if not code.isdigit() or codes.setdefault(code, term) is not term:
                    raise ValueError(f"{self.name}: code '{code}' is not one term's digits")
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_codes", codes)

    @property
    def code_width(self) -> int:
        return max((len(c) for c in self._codes), default=0)

    def by_code(self, digits: str) -> Term | None:
        """The term of a code exactly as the standard writes it (05, not 5)."""
        return self._codes.get(digits)

    def term(self, label: str) -> Term:
        return next(t for t in self.terms if t.label == label)

    def lookup(self, text: str) -> Term | None:
        """The term `text` names: its label, a short form, or its code (leading zeros may be
        left out: 1 for 01). None when it names none."""
        key = term_key(text)
        if key.isdigit() and self._codes:
            return self.by_code(key.zfill(self.code_width))
        return self._index.get(key)

    def lookup_label(self, label: str) -> Term | None:
        """The term a choice label names, with or without its bracketed note."""
        return self.lookup(label) or self.lookup(without_notes(label))

    def broader_terms(self, term: Term) -> list[Term]:
        """The term and the terms it falls under, narrowest first."""
        chain = [term]
        while chain[-1].broader is not None:
            chain.append(self.term(chain[-1].broader))
        return chain

    def accepted(self) -> str:
        """What the list accepts, said after a refusal."""
        return f"请填写{self.title}，例如 {self.examples}；{self.hint}。"

    def parse(self, text: str, *, label: str | None = None) -> str:
        """The canonical label of the term `text` names; `VocabularyError` if none."""
        term = self.lookup(text)
        if term is None:
            shown = text.strip()
            shown = shown if len(shown) <= 20 else shown[:20] + "…"
            raise VocabularyError(f"无法识别{label or self.title}“{shown}”。{self.accepted()}")
        return term.label


@dataclass(frozen=True)
class Format:
    """A checked form of free text (a name, a number): `check` normalises it or raises
    `ValidationError` saying what is wrong and what is expected."""

    name: str
    title: str
    check: Callable[..., str]  # (text, *, label) → the value to store

    def parse(self, text: str, *, label: str | None = None) -> str:
        return self.check(text, label=label or self.title)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --------------------------------------------------------------------------------------------
# GB/T 3304-1991 民族代码
# --------------------------------------------------------------------------------------------

_GROUP_NAMES = _words(
    "汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 白族"
    " 土家族 哈尼族 哈萨克族 傣族 黎族 傈僳族 佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族"
    " 景颇族 柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 毛南族 仡佬族 锡伯族"
    " 阿昌族 普米族 塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族"
    " 塔塔尔族 独龙族 鄂伦春族 赫哲族 门巴族 珞巴族 基诺族"
)  # in the order of their codes, 01–56
# Short forms beyond the name without 族 (汉, 朝鲜): the ones in everyday use.
_ETHNIC_EXTRA = {"蒙古族": ("蒙族",), "维吾尔族": ("维族",)}

ETHNIC_GROUPS = Vocabulary(
    name="ethnic_groups",
    title="民族",
    terms=(
        *(
            Term(
                label=name,
                codes=(f"{i:02d}",),
                aliases=(name.removesuffix("族"), *_ETHNIC_EXTRA.get(name, ())),
            )
            for i, name in enumerate(_GROUP_NAMES, 1)
        ),
        Term(label="其他", codes=("97",), aliases=("其它", "其他民族")),
        Term(label="外国血统中国籍人士", codes=("98",), aliases=("外国血统",)),
    ),
    examples="汉族、朝鲜族、满族、蒙古族",
    hint=(
        "也可以写简称（汉、朝鲜）或民族代码（01 汉族 … 56 基诺族，97 其他，98 外国血统中国籍人士）"
    ),
)

# --------------------------------------------------------------------------------------------
# GB/T 4762-1984 政治面貌代码, with the short list of the approval forms as broader terms
# --------------------------------------------------------------------------------------------

_DEMOCRATIC = "民主党派"
POLITICAL_STATUSES = Vocabulary(
    name="political_statuses",
    title="政治面貌",
    terms=(
        Term("中国共产党党员", ("01",), ("中共党员", "共产党员", "党员", "中国共产党员")),
        Term("中国共产党预备党员", ("02",), ("中共预备党员", "预备党员")),
        Term("中国共产主义青年团团员", ("03",), ("共青团员", "团员", "青年团员")),
        Term(_DEMOCRATIC, (), ("民主党派成员", "民主党派人士")),
        Term("中国国民党革命委员会会员", ("04",), ("民革", "民革会员", "民革党员"), _DEMOCRATIC),
        Term("中国民主同盟盟员", ("05",), ("民盟", "民盟盟员"), _DEMOCRATIC),
        Term("中国民主建国会会员", ("06",), ("民建", "民建会员"), _DEMOCRATIC),
        Term("中国民主促进会会员", ("07",), ("民进", "民进会员"), _DEMOCRATIC),
        Term("中国农工民主党党员", ("08",), ("农工党", "农工民主党", "农工党党员"), _DEMOCRATIC),
        Term("中国致公党党员", ("09",), ("致公党", "致公党党员"), _DEMOCRATIC),
        Term("九三学社社员", ("10",), ("九三学社", "九三"), _DEMOCRATIC),
        Term("台湾民主自治同盟盟员", ("11",), ("台盟", "台盟盟员"), _DEMOCRATIC),
        Term("无党派人士", ("12",), ("无党派", "无党派民主人士")),
        Term("群众", ("13",), ("普通群众",)),
    ),
    examples="中共党员、共青团员、群众",
    hint="也可以写简称（党员、团员、民盟）或政治面貌代码（01 中国共产党党员 … 13 群众）",
)

# --------------------------------------------------------------------------------------------
# 文化程度: the short list of the approval forms; GB/T 4658-2006 names and codes as aliases
# --------------------------------------------------------------------------------------------

EDUCATION_LEVELS = Vocabulary(
    name="education_levels",
    title="文化程度",
    terms=(
        Term(
            "研究生",
            ("10", "11", "14", "17"),
            _words(
                "研究生教育 研究生毕业 博士研究生毕业 硕士研究生毕业 研究生班毕业"
                " 博士研究生 硕士研究生 博士 硕士"
            ),
        ),
        Term("大学本科", ("20", "21"), ("本科", "大学本科教育", "大学本科毕业", "本科毕业")),
        Term(
            "大学专科",
            ("30", "31"),
            ("大专", "专科", "大学专科教育", "大学专科毕业", "大专毕业", "专科毕业", "高职"),
        ),
        Term(
            "中专",
            ("40", "41", "44", "47"),
            _words(
                "中等职业教育 中等专科 中等专科毕业 中等专业学校 中职 中技"
                " 职业高中 职业高中毕业 职高 技工学校 技工学校毕业 技校"
            ),
        ),
        Term("高中", ("60", "61"), ("普通高中", "普通高级中学教育", "普通高中毕业", "高中毕业")),
        Term(
            "初中及以下",
            ("70", "71", "80", "81"),
            ("初中", "初级中学教育", "初中毕业", "小学", "小学教育", "小学毕业"),
        ),
    ),
    examples="大学本科、大学专科、中专、高中",
    hint="也可以写简称（本科、大专、技校）或文化程度代码（21 大学本科毕业、31 大学专科毕业）",
)

PERSON_NAME = Format("person_name", "姓名", parse_person_name)
WORK_UNIT = Format("work_unit", "工作单位", parse_unit_name)
CERTIFICATE_ID = Format("certificate_id", "证书编号", parse_certificate_number)

VOCABULARIES: Mapping[str, Vocabulary | Format] = {
    v.name: v
    for v in (
        ETHNIC_GROUPS,
        POLITICAL_STATUSES,
        EDUCATION_LEVELS,
        PERSON_NAME,
        WORK_UNIT,
        CERTIFICATE_ID,
    )
}


def vocabulary(name: str) -> Vocabulary | Format:
    """The vocabulary of that name; ValueError naming the known ones (a campaign load error)."""
    found = VOCABULARIES.get(name)
    if found is None:
        known = ", ".join(sorted(VOCABULARIES))
        raise ValueError(f"unknown vocabulary '{name}' (known: {known})")
    return found


@functools.cache
def choice_index(name: str, labels: tuple[str, ...]) -> dict[str, int]:
    """For each term of closed list `name`, the index of the choice it falls under (the choice
    whose label names it or a broader term); terms under no choice are left out.

    Raises ValueError (a load error) when the list is a format, a label names no term, or two
    labels name the same term.
    """
    vocab = vocabulary(name)
    if not isinstance(vocab, Vocabulary):
        raise ValueError(f"vocabulary '{name}' is a format of free text, it cannot name choices")
    named: dict[str, int] = {}
    for i, label in enumerate(labels):
        term = vocab.lookup_label(label)
        if term is None:
            raise ValueError(f"choices[{i}]: '{label}' is not a term of vocabulary '{name}'")
        if term.label in named:
            raise ValueError(
                f"choices[{i}]: '{label}' names the same term as choices[{named[term.label]}]"
            )
        named[term.label] = i
    index: dict[str, int] = {}
    for term in vocab.terms:
        for t in vocab.broader_terms(term):
            if t.label in named:
                index[term.label] = named[t.label]
                break
    return index


def choice_of(name: str, labels: Sequence[str], term: Term) -> int | None:
    """The index of the choice `term` falls under, or None."""
    return choice_index(name, tuple(labels)).get(term.label)


__all__ = [
    "CERTIFICATE_ID",
    "EDUCATION_LEVELS",
    "ETHNIC_GROUPS",
    "PERSON_NAME",
    "POLITICAL_STATUSES",
    "VOCABULARIES",
    "WORK_UNIT",
    "Format",
    "Term",
    "Vocabulary",
    "VocabularyError",
    "choice_index",
    "choice_of",
    "notes_of",
    "term_key",
    "vocabulary",
    "without_notes",
]
