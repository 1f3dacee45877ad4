"""The campaign YAML declares what the code relies on (issue: statuses the YAML seemed to own
were hard-coded, so a copy renaming `withdrawn` to `cancelled` loaded cleanly and its cancelled
nominations kept counting against duplicates, quotas and the 20 % cap).

Declared: what each status still counts toward (`lifecycle.statuses[].counts`), which form field
identifies a nominee and which names one (`identifies`, `names`), which nominees the share cap
covers (`cross_rules.cap`). Here: a declaration naming something that does not exist is a load
error naming the file, the YAML path and the key; and no module outside the campaigns names a
status, fact or field key of a shipped campaign.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conversations.campaign import CampaignError
from conversations.crossrules import limits_for
from conversations.forms import form_for
from conversations.loader import parse_campaign
from conversations.policy import nominee_key, nominee_label

ROOT = Path(__file__).resolve().parents[2]
EMPLOYMENT = ROOT / "campaigns" / "jl-employment-2022.yaml"
SKILLS = ROOT / "campaigns" / "jl-skills-2022.yaml"
SOURCE = "campaigns/copy.yaml"
Data = dict[str, Any]


def _data(path: Path = EMPLOYMENT) -> Data:
    data: Data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _status(data: Data, key: str) -> Data:
    return next(s for s in data["lifecycle"]["statuses"] if s["key"] == key)


def _field(data: Data, form: int, key: str) -> Data:
    return next(f for f in data["forms"][form]["fields"] if f["key"] == key)


def _error(data: Data) -> str:
    with pytest.raises(CampaignError) as info:
        parse_campaign(yaml.safe_dump(data, allow_unicode=True), SOURCE)
    return str(info.value)


def test_the_shipped_declarations_are_read() -> None:
    campaign = parse_campaign(EMPLOYMENT.read_text(encoding="utf-8"), str(EMPLOYMENT))
    limits = limits_for(campaign)
    assert limits.not_nominee == {"withdrawn", "rejected", "revoked"}
    assert limits.not_places == {"withdrawn", "rejected", "revoked", "draft"}
    assert (limits.cap_share, limits.cap_label) == (0.2, "县处级干部")
    person = form_for(campaign, "employment_individual")
    unit = form_for(campaign, "employment_collective")
    fields = {"name": "张小三", "id_number": "220104198005060028"}
    assert (nominee_label(person, fields), nominee_key(person, fields)) == (
        "张*三",
        "220104198005060028",
    )
    fields = {"unit_name": "示例有限公司", "uscc": "91220104MA14ABCD3K"}
    assert (nominee_label(unit, fields), nominee_key(unit, fields)) == (
        "示例有限公司",
        "91220104MA14ABCD3K",
    )
    assert nominee_label(None, fields) == "（未填姓名）"  # its campaign file is gone


def test_renaming_withdrawn_keeps_what_it_counts_toward() -> None:
    """The issue's copy: `withdrawn` renamed `cancelled` counts toward nothing, as declared."""
    data = _data()
    _status(data, "withdrawn")["key"] = "cancelled"
    for t in data["lifecycle"]["transitions"]:
        t["to"] = "cancelled" if t["to"] == "withdrawn" else t["to"]
    campaign = parse_campaign(yaml.safe_dump(data, allow_unicode=True), SOURCE)
    assert "cancelled" in limits_for(campaign).not_nominee
    assert "cancelled" in limits_for(campaign).not_places


LOAD_ERRORS: list[tuple[str, Callable[[Data], None], str]] = [
    (
        "a final status that does not say what it counts",
        lambda d: _status(d, "withdrawn").pop("counts"),
        "lifecycle.statuses[13]: a final status must declare what it still counts toward",
    ),
    (
        "a place without a nominee",
        lambda d: _status(d, "draft").update(counts=["places"]),
        "lifecycle.statuses[0]: counts: a nomination that uses a place also holds its nominee",
    ),
    (
        "an unknown count",
        lambda d: _status(d, "draft").update(counts=["quota"]),
        "lifecycle.statuses[0].counts[0]: Input should be 'nominee' or 'places'",
    ),
    (
        "a cap on an unknown fact",
        lambda d: d["cross_rules"]["cap"].update(fact="rank"),
        "cross_rules.cap.fact: unknown fact 'rank'",
    ),
    (
        "a cap on a value the fact does not take",
        lambda d: d["cross_rules"]["cap"].update(value="county"),
        "cross_rules.cap.value: 'county' is not a choice of 'admin_rank'",
    ),
    (
        "a cap on a fact that is no enum",
        lambda d: d["cross_rules"]["cap"].update(fact="years_in_role_consecutive"),
        "cross_rules.cap.fact: 'years_in_role_consecutive' is int, not an enum",
    ),
    (
        "a clause for a rule that does not exist",
        lambda d: d["cross_rules"]["clauses"].update(county_division_cap="四、（四）"),
        "cross_rules.clauses.county_division_cap: no such rule",
    ),
    (
        "a form that identifies no nominee",
        lambda d: _field(d, 0, "id_number").pop("identifies"),
        "forms[0] (employment_nominee).fields: exactly one field has `identifies: true`"
        " (the rules across nominations tell nominees apart by it), not none",
    ),
    (
        "a form with two names",
        lambda d: _field(d, 1, "contact_person").update(names=True),
        "forms[1] (employment_unit).fields: exactly one field has `names: true`"
        " (lists show the nominee by it), not unit_name, contact_person",
    ),
    (
        "a name that is not text",
        lambda d: (
            _field(d, 0, "name").pop("names"),
            _field(d, 0, "political_status").update(names=True),
        ),
        "forms[0] (employment_nominee).fields[5] (political_status).names: a enum field cannot",
    ),
    (
        "an identity asked of some nominees only",
        lambda d: _field(d, 1, "uscc").update(required=False),
        "forms[1] (employment_unit).fields[1] (uscc).identifies: the field must be asked of every",
    ),
    (
        "an identity of the wrong type",
        lambda d: (
            _field(d, 0, "id_number").pop("identifies"),
            _field(d, 0, "mobile").update(identifies=True),
        ),
        "forms[0] (employment_nominee).fields[15] (mobile).identifies: a mobile field cannot",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in LOAD_ERRORS], ids=[c[0] for c in LOAD_ERRORS]
)
def test_a_wrong_declaration_is_a_load_error(
    change: Callable[[Data], None], expected: str
) -> None:
    data = _data()
    change(data)
    message = _error(data)
    assert message.startswith(f"{SOURCE}: "), message
    assert message.removeprefix(f"{SOURCE}: ").startswith(expected), message


# --- no key of a shipped campaign in the code -------------------------------------------------

PACKAGES = ("conversations", "storage", "notifications", "bot")
# Literals that equal a campaign key by coincidence, per file, and why they are not that key.
ALLOWED: dict[tuple[str, str], str] = {
    # type names and derivation kinds of the campaign schema: the vocabulary a YAML uses for
    # `type:` and `derived.kind:`, which a field's key may repeat
    ("conversations/facts.py", "id_number"): "FactType.ID_NUMBER",
    ("conversations/forms.py", "id_number"): "FieldType.ID_NUMBER",
    ("conversations/forms.py", "mobile"): "FieldType.MOBILE",
    ("conversations/forms.py", "uscc"): "FieldType.USCC",
    ("conversations/forms.py", "birth_month"): "FieldDerivation kind",
    ("conversations/forms.py", "gender"): "FieldDerivation kind",
    # the unit registry (invitations bind clerks to units): its own columns, not a form's fields
    ("storage/tables.py", "name"): "units.name, store_meta.name, platform_tokens.name",
    ("storage/tables.py", "uscc"): "units.uscc",
    ("storage/tables.py", "unit_type"): "units.unit_type",
    ("storage/migrations.py", "name"): "the same columns, as first created",
    ("storage/migrations.py", "uscc"): "units.uscc, as first created",
    ("storage/migrations.py", "unit_type"): "units.unit_type, as first created",
    ("storage/invites.py", "uscc"): "units.uscc",
    ("storage/invites.py", "unit_name"): "a column label of the invitations' join with units",
    ("storage/invites.py", "revoked"): "an invitation's status, not a nomination's",
    ("storage/reads.py", "revoked"): "an invitation's state (InviteView.state)",
    ("storage/store.py", "name"): "store_meta.name",
    ("storage/channels.py", "name"): "platform_tokens.name",
    ("storage/regions.py", "name"): "a key of regions.yaml",
    # the nomination payload's own structure: the departments whose opinion is recorded
    ("storage/reads.py", "opinions"): "payload['opinions']",
    ("storage/writer.py", "opinions"): "payload['opinions']",
    ("storage/exports.py", "opinions"): "payload['opinions'] (the departments recorded)",
    # the official documents (issue 12): a document's name and a ranking's column
    ("conversations/documents.py", "opinions"): "DocKind.OPINIONS, the 征求意见表 (a document)",
    ("storage/tables.py", "position"): "rankings.position",
    ("storage/migrations.py", "position"): "rankings.position, as first created",
    ("storage/rankings.py", "position"): "rankings.position",
}


def _shipped_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for path in (EMPLOYMENT, SKILLS):
        data = _data(path)
        for s in data["lifecycle"]["statuses"]:
            keys[s["key"]] = "status"
        for f in data["facts"]:
            keys.setdefault(f["key"], "fact")
        for form in data["forms"]:
            for f in form["fields"]:
                keys.setdefault(f["key"], "field")
    return keys


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_status_fact_or_field_key_of_a_campaign_is_in_the_code() -> None:
    keys = _shipped_keys()
    assert {"withdrawn", "draft", "id_number", "uscc", "unit_name", "admin_rank"} <= set(keys)
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            for line, value in _literals(path):
                if value in keys and (where, value) not in ALLOWED:
                    found.append(f"{where}:{line}: {keys[value]} key {value!r}")
    assert found == []


def test_every_allowance_is_still_needed() -> None:
    keys = _shipped_keys()
    used = {
        (path.relative_to(ROOT).as_posix(), value)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for _, value in _literals(path)
        if value in keys
    }
    assert set(ALLOWED) - used == set()
