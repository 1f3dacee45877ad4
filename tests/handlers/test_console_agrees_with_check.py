"""The console conversation and `awardbot check` give the same verdict on the same facts.

Every case of the rule table that a person could answer in chat (all relevant questions
answered; no id_number, which chat does not ask) is played as a whole console conversation with
--show-keys: each question is answered from the case's facts by its key, choices by the number of
the option carrying the fact's value, an early stop is passed with "continue", and the summary is
confirmed. The verdict printed must equal the verdict `check` prints for the same facts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from support.console_harness import ConsoleHarness
from support.keys import TEST_SEALER
from support.rule_cases import CASES, Case, campaigns, stored_answers

from bot.cli import main
from conversations.campaign import Campaign
from conversations.eligibility import effective_facts, is_relevant
from storage.store import Store


def answerable(case: Case) -> bool:
    """Whether chat can reproduce the case: every question it would ask has an answer."""
    campaign = campaigns()[case.campaign]
    if "id_number" in case.answers:
        return False
    answers = stored_answers(campaign, case.answers)
    facts = effective_facts(campaign, case.category, answers)
    offered = campaign.category(case.category).choices
    if any(answers.get(key) not in values for key, values in offered.items()):
        return False  # e.g. a person type chat does not offer in this category
    return all(
        key in answers
        for key in campaign.category(case.category).questions
        if is_relevant(campaign, campaign.fact(key), facts)
    )


PLAYABLE = [c for c in CASES if answerable(c)]


def typed(campaign: Campaign, key: str, value: Any, console: ConsoleHarness) -> str:
    """What a person types for `value`: the option number for choices, the text otherwise."""
    options = console.options()
    if options:
        wanted = {True: "true", False: "false"}.get(value, value)
        return next(number for number, v in options if v == wanted)
    return str(value)


def play(console: ConsoleHarness, case: Case) -> Iterator[str]:
    campaign = campaigns()[case.campaign]
    answers = stored_answers(campaign, case.answers)
    console.open()
    console.send(case.campaign)
    console.send(case.category)
    for _ in range(200):
        asking = console.asking()
        if asking == "consent":  # before the sensitive questions
            console.send("同意")
        elif asking == "next":  # early stop on a hard failure: go on answering
            console.send(dict((v, n) for n, v in console.options())["continue"])
        elif asking == "summary":
            console.send("1")
            break
        elif asking in answers:
            console.send(typed(campaign, asking, answers[asking], console))
        else:
            raise AssertionError(f"console asks {asking!r}, not in the case:\n{console.last}")
    yield console.verdict() or "(no verdict)"


def check_verdict(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    campaign = campaigns()[case.campaign]
    path = tmp_path / "answers.json"
    answers: Mapping[str, Any] = stored_answers(campaign, case.answers)
    path.write_text(json.dumps(dict(answers), ensure_ascii=False), encoding="utf-8")
    code = main(
        ["check", "--campaign", case.campaign, "--category", case.category, "--answers", str(path)]
    )
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return str(json.loads(out)["verdict"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    db = tmp_path_factory.mktemp("agree") / "agree.db"
    s = Store(f"sqlite:///{db}", sealer=TEST_SEALER)
    yield s
    s.close()


def test_most_cases_are_playable() -> None:
    # Guard against the filter silently dropping the table: most cases must be played.
    assert len(PLAYABLE) >= 150


@pytest.mark.parametrize("case", PLAYABLE, ids=[c.id for c in PLAYABLE])
def test_console_verdict_equals_check_verdict(
    case: Case, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    console = ConsoleHarness(store, user=case.id)
    [console_verdict] = list(play(console, case))
    assert console_verdict == check_verdict(case, tmp_path, capsys)
    assert console_verdict == case.verdict
