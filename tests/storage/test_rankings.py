"""The writer keeps a /rank order (issue 12): a clerk ranks their unit's nominations, an office
those of its region; an id of another unit, another region or another campaign is refused and
the earlier order stays."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support.review_rig import clerk, official, place, write

from conversations.effects import Effect, SetRanking
from conversations.identity import Level
from conversations.reads import Refusal, RefusalKind
from storage.rankings import ranking
from storage.store import Store
from storage.tables import rankings

SKILLS = "jl-skills-2022"


def apply(store: Store, user: str, effect: Effect, files: Path) -> None:
    write(store, user, [effect], files)


def order(store: Store, scope: str) -> list[int]:
    with store.reading() as conn:
        positions = ranking(conn, campaign=SKILLS, scope=scope)
    return sorted(positions, key=positions.__getitem__)


def test_a_clerk_ranks_their_units_nominations_and_a_new_order_replaces_the_old(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    a, b, c = (place(store, fields={"name": n}) for n in ("张小三", "李小四", "王小五"))
    apply(store, "clerk", SetRanking(SKILLS, (c, a, b)), tmp_path)
    scope = next(s for s in _scopes(store))
    assert scope.startswith("unit:")
    assert order(store, scope) == [c, a, b]
    apply(store, "clerk", SetRanking(SKILLS, (b, c)), tmp_path)
    assert order(store, scope) == [b, c]


def test_an_office_ranks_what_lies_in_its_region(store: Store, tmp_path: Path) -> None:
    clerk(store)
    official(store, "city", "220100", Level.CITY)
    a, b = place(store), place(store)
    apply(store, "city", SetRanking(SKILLS, (b, a)), tmp_path)
    assert order(store, "region:220100:city") == [b, a]


@pytest.mark.parametrize("who", ["other", "baicheng", "applicant"])
def test_ranking_a_nomination_outside_ones_scope_is_refused_and_nothing_changes(
    store: Store, tmp_path: Path, who: str
) -> None:
    clerk(store)
    clerk(store, "other", "220581")
    official(store, "baicheng", "220800", Level.CITY)
    a, b = place(store), place(store)
    apply(store, "clerk", SetRanking(SKILLS, (a, b)), tmp_path)
    with pytest.raises(Refusal) as info:
        apply(store, who, SetRanking(SKILLS, (b, a)), tmp_path)
    assert info.value.kind is RefusalKind.NOT_YOURS
    (scope,) = _scopes(store)
    assert order(store, scope) == [a, b]


def test_a_nomination_ranked_twice_is_refused(store: Store, tmp_path: Path) -> None:
    clerk(store)
    a, b = place(store), place(store)
    with pytest.raises(Refusal) as info:
        apply(store, "clerk", SetRanking(SKILLS, (a, b, a)), tmp_path)
    assert info.value.kind is RefusalKind.NOT_ALLOWED
    assert _scopes(store) == []


def test_a_nomination_of_another_campaign_is_refused(store: Store, tmp_path: Path) -> None:
    clerk(store)
    a = place(store)
    with pytest.raises(Refusal):
        apply(store, "clerk", SetRanking("jl-employment-2022", (a,)), tmp_path)


def _scopes(store: Store) -> list[str]:
    with store.reading() as conn:
        return list(conn.execute(sa.select(rankings.c.scope).distinct()).scalars())
