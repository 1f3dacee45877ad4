"""The schema is declared once (storage.tables), and storage keeps no user-facing text.

DESIGN §5: storage persists and raises typed refusals; the core words them for the user
(conversations.texts). Operator-facing errors (regions file, keys, admin commands) are not
covered here: they are one line for whoever runs the bot.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

import storage
from conversations.keys import ConversationKey
from storage import nominations as noms
from storage import tables
from storage.invites import BindError, BindRefusal
from storage.store import Store

NOW = datetime(2022, 10, 20, 1, 30, tzinfo=UTC)
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _import_every_storage_module() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(storage.__path__, "storage.")]
    for name in names:
        importlib.import_module(name)
    return names


def test_every_table_is_declared_in_storage_tables() -> None:
    assert "storage.tables" in _import_every_storage_module()
    declared = {t.name for t in vars(tables).values() if isinstance(t, sa.Table)}
    assert declared == set(SQLModel.metadata.tables)


def test_tables_are_plain_sa_tables_not_orm_classes() -> None:
    _import_every_storage_module()
    orm_classes = {
        f"{cls.__module__}.{cls.__name__}"
        for cls in SQLModel.__subclasses__()
        if cls.__module__.startswith("storage.")
    }
    assert orm_classes == set()


@pytest.mark.parametrize("reason", list(BindRefusal))
def test_a_refused_bind_carries_its_reason_and_no_text(reason: BindRefusal) -> None:
    refusal = BindError(reason)
    assert refusal.reason is reason
    assert str(refusal) == reason.value


def test_a_stale_move_raises_a_typed_conflict_without_user_text(store: Store) -> None:
    with store.conversation(ConversationKey("console", "clerk")) as tx:
        clerk = tx.user_id
    with store.transaction() as conn:
        unit_id = conn.execute(
            sa.insert(tables.units)
            .values(name="单位", uscc="91220104MA14ABCD3K", region_code="220104", created_at=NOW)
            .returning(tables.units.c.id)
        ).scalar_one()
        record = noms.create_draft(
            conn, store.sealer, campaign="jl-skills-2022", category="technical_expert",
            kind="individual", unit_id=unit_id, region="220104", created_by=clerk,
            payload={"facts": {}, "fields": {}}, now=NOW, initial_status="draft",
        )  # fmt: skip

    with pytest.raises(noms.NominationConflict) as caught, store.transaction() as conn:
        noms.move(
            conn, store.sealer, nomination_id=record.id, expected_status="county_review",
            to_status="city_review", user_id=clerk, role="official", action="approve",
            reason=None, now=NOW,
        )  # fmt: skip

    conflict = caught.value
    assert (conflict.nomination_id, conflict.expected_status) == (record.id, "county_review")
    assert CJK.search(str(conflict)) is None
