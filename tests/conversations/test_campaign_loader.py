"""Campaign loader errors name the file, the YAML path and what is wrong.

Each bad campaign is the real skills campaign loaded with yaml.safe_load, changed in one place and
dumped back, so the error is the only thing wrong with it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conversations.campaign import CampaignError
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "campaigns" / "jl-skills-2022.yaml"
SOURCE = "campaigns/bad.yaml"

Data = dict[str, Any]


def skills() -> Data:
    data = yaml.safe_load(SKILLS.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def dump(data: Data) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


def error_of(text: str) -> str:
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, SOURCE)
    return str(info.value)


def where(message: str) -> str:
    """The message after the file name.

    Cross-reference errors are raised by a model validator, whose pydantic location is the top
    level; the loader then prefixes "(top level): " although the message names the real path
    itself. That prefix is dropped here so the assertions hold with or without it.
    """
    assert message.startswith(f"{SOURCE}: "), message
    return message.removeprefix(f"{SOURCE}: ").removeprefix("(top level): ")


def index_of(items: list[Data], field: str, value: str) -> int:
    return next(i for i, item in enumerate(items) if item[field] == value)


def test_the_unchanged_dump_loads() -> None:
    campaign = parse_campaign(dump(skills()), SOURCE)
    assert campaign.id == "jl-skills-2022"


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _delete(path: tuple[Any, ...]) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return change


def _duplicate(section: str, index: int) -> Callable[[Data], None]:
    def change(data: Data) -> None:
        data[section].append(copy.deepcopy(data[section][index]))

    return change


def _ask_derived_age(data: Data) -> None:
    data["facts"].append(
        {"key": "birth_date", "type": "date", "label": "出生日期", "question": "您的出生日期是？"}
    )
    data["facts"].append(
        {
            "key": "age",
            "type": "int",
            "label": "年龄",
            "derived": {"kind": "age_at_as_of", "sources": ["birth_date"]},
        }
    )
    data["categories"][0]["questions"].append("age")


# (test id, change to the skills campaign, the message after the file name)
CASES: list[tuple[str, Callable[[Data], None], str]] = [
    # --- a rule, condition or question naming an unknown fact or category ---
    (
        "rule names an unknown fact",
        _set(("rules", 3, "require"), {"fact": "nope", "eq": False}),
        "rules[3] (not_retired).require: unknown fact 'nope'",
    ),
    (
        "rule condition names an unknown fact",
        _set(("rules", 3, "when"), {"fact": "nope", "eq": False}),
        "rules[3] (not_retired).when: unknown fact 'nope'",
    ),
    (
        "nested condition names an unknown fact",
        _set(
            ("rules", 7, "require"),
            {
                "any": [
                    {"fact": "years_in_occupation", "ge": 8},
                    {"not": {"fact": "nope", "eq": 1}},
                ]
            },
        ),
        "rules[7] (grand_years_in_occupation).require: unknown fact 'nope'",
    ),
    (
        "relevance names an unknown fact",
        _set(("facts", 8, "relevant"), {"fact": "nope", "eq": True}),
        "facts[8].relevant: unknown fact 'nope'",
    ),
    (
        "category asks an unknown fact",
        _set(("categories", 1, "questions", 2), "nope"),
        "categories[1].questions: unknown fact 'nope'",
    ),
    (
        "derivation names an unknown fact",
        _set(("facts", 9, "derived"), {"kind": "age_at_as_of", "sources": ["nope"]}),
        "facts[9].derived.sources: unknown fact 'nope'",
    ),
    (
        "rule names an unknown category",
        _set(("rules", 0, "categories"), ["skills_grand_award", "nope"]),
        "rules[0] (works_in_jilin): unknown category 'nope'",
    ),
    # --- constants a fact cannot have ---
    (
        "enum comparison with an unknown choice",
        _set(("rules", 8, "require"), {"fact": "skill_level", "ge": "master"}),
        "rules[8] (grand_skill_level).require: 'master' is not a choice of fact 'skill_level'",
    ),
    (
        "enum membership with an unknown choice",
        _set(("facts", 8, "relevant"), {"fact": "skill_level", "in": ["junior", "expert"]}),
        "facts[8].relevant: 'expert' is not a choice of fact 'skill_level'",
    ),
    (
        "bool comparison with a string",
        _set(("rules", 7, "require", "any", 1, "eq"), "yes"),
        "rules[7] (grand_years_in_occupation).require: "
        "fact 'achv_competition_bronze_plus' is bool, compared with 'yes'",
    ),
    # --- missing required fields ---
    ("missing top-level field", _delete(("as_of",)), "as_of: Field required"),
    ("missing rule clause", _delete(("rules", 0, "clause")), "rules[0].clause: Field required"),
    (
        "missing choice label",
        _delete(("facts", 7, "choices", 0, "label")),
        "facts[7].choices[0].label: Field required",
    ),
    (
        "missing fact of a comparison",
        _delete(("rules", 7, "require", "any", 1, "fact")),
        "rules[7].require.any[1].fact: Field required",
    ),
    (
        "fact without a question",
        _delete(("facts", 0, "question")),
        "facts[0]: a fact that is not derived needs a question",
    ),
    (
        "enum fact without choices",
        _delete(("facts", 7, "choices")),
        "facts[7]: an enum fact needs choices",
    ),
    # --- wrong types and values ---
    (
        "places is not a number",
        _set(("categories", 0, "places"), "ten"),
        "categories[0].places: Input should be a valid integer, "
        "unable to parse string as an integer",
    ),
    (
        "unknown fact type",
        _set(("facts", 0, "type"), "boolean"),
        "facts[0].type: Input should be 'bool', 'int', 'date', 'enum', 'text' or 'id_number'",
    ),
    (
        "unknown severity",
        _set(("rules", 8, "severity"), "medium"),
        "rules[8].severity: Input should be 'hard' or 'soft'",
    ),
    (
        "categories of a rule is not a list",
        _set(("rules", 0, "categories"), "skills_grand_award"),
        "rules[0].categories: Input should be a valid list",
    ),
    (
        "impossible notice date",
        _set(("notice", "date"), "2022-13-40"),
        "notice.date: Input should be a valid date or datetime, "
        "month value is outside expected range of 1-12",
    ),
    (
        "choices on a bool fact",
        _set(("facts", 0, "choices"), [{"value": "y", "label": "是"}]),
        "facts[0]: choices are only for enum facts, not bool",
    ),
    (
        "comparison with two operators",
        _set(("rules", 7, "require", "any", 1, "ne"), False),
        "rules[7].require.any[1]: a comparison needs exactly one operator of "
        "eq, ne, lt, le, gt, ge, in",
    ),
    (
        "unknown key deep in a condition",
        _set(
            ("facts", 8, "relevant"),
            {"all": [{"not": {"fact": "skill_level", "eq": "none", "x": 1}}]},
        ),
        "facts[8].relevant.all[0].not.x: Extra inputs are not permitted",
    ),
    (
        "empty any",
        _set(("rules", 7, "require", "any"), []),
        "rules[7].require.any: List should have at least 1 item after validation, not 0",
    ),
    (
        "fact key with capitals",
        _set(("facts", 0, "key"), "WorksInJilin"),
        "facts[0].key: String should match pattern '^[a-z][a-z0-9_]*$'",
    ),
    (
        "window ends before it starts",
        _set(("windows", 0, "end"), "2022-11-01"),
        "windows[0]: window submission ends (2022-11-01) before it starts (2022-11-03)",
    ),
    # --- duplicates and derived facts ---
    ("duplicate fact key", _duplicate("facts", 0), "facts: 'works_in_jilin' appears twice"),
    ("duplicate rule id", _duplicate("rules", 2), "rules: 'not_unit_head' appears twice"),
    (
        "duplicate category id",
        _duplicate("categories", 1),
        "categories: 'technical_expert' appears twice",
    ),
    (
        "category asks a derived fact",
        _ask_derived_age,
        "categories[0].questions: 'age' is derived and cannot be asked",
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_loader_error(change: Callable[[Data], None], expected: str) -> None:
    data = skills()
    change(data)
    assert where(error_of(dump(data))) == expected


def test_the_indices_above_are_the_skills_campaign() -> None:
    """The cases use positions in the skills YAML; this keeps them honest if the file changes."""
    data = skills()
    assert [data["rules"][i]["id"] for i in (0, 2, 3, 7, 8)] == [
        "works_in_jilin",
        "not_unit_head",
        "not_retired",
        "grand_years_in_occupation",
        "grand_skill_level",
    ]
    assert [data["facts"][i]["key"] for i in (0, 7, 8, 9)] == [
        "works_in_jilin",
        "skill_level",
        "rural_or_new_occupation_title",
        "years_in_occupation",
    ]
    assert index_of(data["categories"], "id", "technical_expert") == 1


def test_invalid_yaml_names_the_line() -> None:
    lines = dump(skills()).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("id: "))
    lines[at] = "id: jl-skills-2022: oops"
    message = error_of("\n".join(lines) + "\n")
    # libyaml says "… in this context", the pure-Python parser "… here": either is fine.
    assert message.startswith(
        f"{SOURCE}: line {at + 1} invalid YAML: mapping values are not allowed"
    )


def test_unclosed_bracket_is_invalid_yaml() -> None:
    message = error_of("id: x\ntitle: [第八届\n")
    assert message.startswith(f"{SOURCE}: line ")
    assert " invalid YAML: " in message
    assert "expected ',' or ']'" in message


def test_top_level_must_be_a_mapping() -> None:
    assert error_of("- id: x\n") == f"{SOURCE}: a campaign file must be a mapping at the top level"


def test_int_comparison_with_a_string_is_a_load_error() -> None:
    data = skills()
    data["rules"][7]["require"]["any"][0]["ge"] = "eight"
    assert "rules[7] (grand_years_in_occupation).require" in error_of(dump(data))


def test_category_choices_must_be_choices_of_an_enum_question() -> None:
    data = skills()
    data["categories"][0]["choices"] = {"skill_level": ["senior", "wizard"]}
    assert error_of(dump(data)) == (
        f"{SOURCE}: categories[0].choices.skill_level: 'wizard' is not a choice of fact"
        " 'skill_level'"
    )
    data["categories"][0]["choices"] = {"works_in_jilin": ["true"]}
    assert error_of(dump(data)) == (
        f"{SOURCE}: categories[0].choices.works_in_jilin: 'works_in_jilin' is not an enum fact"
    )
