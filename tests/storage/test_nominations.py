"""Nominations, attachments, subscriptions and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from conversations.keys import ConversationKey
from storage import nominations as noms
from storage import tables
from storage.files import FileStore, upgrade_file_names
from storage.store import Store

NOW = datetime(2022, 10, 20, 1, 30, tzinfo=UTC)
PAYLOAD = {
    "facts": {"works_in_jilin": True, "has_disciplinary_sanction": False},
    "fields": {"name": "张三", "id_number": "220104199001010024", "mobile": "13912345678"},
}


@pytest.fixture(autouse=True)
def units(store: Store) -> None:
    """The units the drafts below belong to (nominations.unit_id refers to units.id)."""
    from conversations.validators import uscc_check_char

    with store.transaction() as conn:
        for unit_id in (1, 2, 7, 8):
            body = f"9122010{unit_id}MA00000{unit_id}X"[:17]
            conn.execute(
                sa.insert(tables.units).values(
                    id=unit_id,
                    name=f"测试单位{unit_id}",
                    uscc=body + uscc_check_char(body),
                    unit_type="enterprise",
                    region_code="220104",
                    created_at=NOW,
                )
            )


def user(store: Store, name: str) -> int:
    with store.conversation(ConversationKey("console", name)) as tx:
        return tx.user_id


def draft(store: Store, clerk: int, **overrides: object) -> noms.NominationRecord:
    values: dict[str, object] = {
        "campaign": "jl-skills-2022",
        "category": "technical_expert",
        "kind": "individual",
        "unit_id": 1,
        "region": "220104",
        "created_by": clerk,
        "payload": PAYLOAD,
        "now": NOW,
        "initial_status": "draft",
    }
    values.update(overrides)
    with store.transaction() as conn:
        return noms.create_draft(conn, store.sealer, **values)  # type: ignore[arg-type]


def test_draft_round_trips_with_a_tracking_code(store: Store) -> None:
    record = draft(store, user(store, "clerk"))
    assert record.status == "draft"
    assert len(record.tracking_code) == noms.TRACKING_LENGTH
    assert set(record.tracking_code) <= set(noms.TRACKING_ALPHABET)
    with store.reading() as conn:
        again = noms.by_tracking_code(conn, store.sealer, record.tracking_code.lower())
    assert again == record
    assert again.payload == PAYLOAD


def test_personal_data_is_sealed_at_rest(store: Store) -> None:
    draft(store, user(store, "clerk"))
    with store.reading() as conn:
        raw = " ".join(str(v) for row in conn.execute(sa.select(noms.nominations)) for v in row)
    for clear in ("张三", "220104199001010024", "13912345678", "has_disciplinary_sanction"):
        assert clear not in raw


def test_move_checks_the_expected_status_and_audits(store: Store) -> None:
    clerk = user(store, "clerk")
    record = draft(store, clerk)
    with store.transaction() as conn:
        noms.move(
            conn,
            store.sealer,
            nomination_id=record.id,
            expected_status="draft",
            to_status="unit_publicity",
            user_id=clerk,
            role="clerk",
            action="start_publicity",
            reason=None,
            now=NOW,
            publicity=(date(2022, 9, 29), date(2022, 10, 10)),
        )
    with store.reading() as conn:
        moved = noms.get(conn, store.sealer, record.id)
        [entry] = noms.audit_trail(conn, store.sealer, nomination_id=record.id)
    assert moved is not None
    assert (moved.status, moved.publicity_ends_on) == ("unit_publicity", date(2022, 10, 10))
    assert (entry.user_id, entry.from_status, entry.to_status, entry.allowed) == (
        clerk,
        "draft",
        "unit_publicity",
        True,
    )
    with pytest.raises(noms.NominationConflict), store.transaction() as conn:
        noms.move(
            conn,
            store.sealer,
            nomination_id=record.id,
            expected_status="draft",  # stale: it is in unit_publicity now
            to_status="withdrawn",
            user_id=clerk,
            role="clerk",
            action="withdraw",
            reason=None,
            now=NOW,
        )


def test_two_officials_moving_at_once_move_it_once(store: Store) -> None:
    clerk, a, b = user(store, "clerk"), user(store, "a"), user(store, "b")
    record = draft(store, clerk, initial_status="county_review")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def act(official: int, to: str) -> None:
        barrier.wait()
        try:
            with store.transaction() as conn:
                noms.move(
                    conn,
                    store.sealer,
                    nomination_id=record.id,
                    expected_status="county_review",
                    to_status=to,
                    user_id=official,
                    role="official",
                    action=to,
                    reason="理由" if to == "returned" else None,
                    now=NOW,
                )
            outcomes.append(to)
        except noms.NominationConflict:
            outcomes.append("conflict")

    threads = [
        threading.Thread(target=act, args=(a, "city_review")),
        threading.Thread(target=act, args=(b, "returned")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("conflict") == 1
    with store.reading() as conn:
        trail = noms.audit_trail(conn, store.sealer, nomination_id=record.id)
        final = noms.get(conn, store.sealer, record.id)
    assert len(trail) == 1
    assert final is not None
    assert final.status == trail[0].to_status


def test_a_move_and_its_audit_roll_back_together(store: Store) -> None:
    clerk = user(store, "clerk")
    record = draft(store, clerk)

    def move_then_fail() -> None:
        with store.transaction() as conn:
            noms.move(
                conn,
                store.sealer,
                nomination_id=record.id,
                expected_status="draft",
                to_status="withdrawn",
                user_id=clerk,
                role="clerk",
                action="withdraw",
                reason=None,
                now=NOW,
            )
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        move_then_fail()
    with store.reading() as conn:
        assert noms.get(conn, store.sealer, record.id).status == "draft"  # type: ignore[union-attr]
        assert noms.audit_trail(conn, store.sealer) == []


def test_refused_attempts_and_reads_are_audited_with_sealed_detail(store: Store) -> None:
    official = user(store, "official")
    with store.transaction() as conn:
        noms.audit(
            conn,
            store.sealer,
            user_id=official,
            role="official",
            action="approve",
            allowed=False,
            nomination_id=42,
            detail={"why": "不在您的辖区内"},
            now=NOW,
        )
    with store.reading() as conn:
        [entry] = noms.audit_trail(conn, store.sealer)
        raw = conn.execute(sa.select(noms.audit_log.c.detail)).scalar_one()
    assert (entry.allowed, entry.detail) == (False, {"why": "不在您的辖区内"})
    assert "辖区" not in raw


def test_queues_filter_by_status_and_region(store: Store) -> None:
    clerk = user(store, "clerk")
    here = draft(store, clerk, initial_status="county_review", region="220104")
    draft(store, clerk, initial_status="county_review", region="220202")
    draft(store, clerk, initial_status="draft", region="220105")
    with store.reading() as conn:
        city = noms.in_statuses(conn, store.sealer, ["county_review"], region_prefix="2201")
        province = noms.in_statuses(conn, store.sealer, ["county_review"], region_prefix="22")
    assert [n.id for n in city] == [here.id]
    assert len(province) == 2


def test_units_see_their_own_nominations(store: Store) -> None:
    clerk = user(store, "clerk")
    mine = draft(store, clerk, unit_id=7)
    draft(store, clerk, unit_id=8)
    with store.reading() as conn:
        assert [n.id for n in noms.for_unit(conn, store.sealer, 7)] == [mine.id]


def test_attachments_are_listed_once_with_their_names(store: Store) -> None:
    record = draft(store, user(store, "clerk"))
    for _ in range(2):
        with store.transaction() as conn:
            noms.add_attachment(
                conn,
                store.sealer,
                nomination_id=record.id,
                material_key="id_card_copy",
                file_ref="a" * 64,
                media_type="pdf",
                size=1234,
                filename="张三身份证.pdf",
                now=NOW,
            )
    with store.reading() as conn:
        [att] = noms.attachments_of(conn, store.sealer, record.id)
        raw = conn.execute(sa.select(noms.attachments.c.filename)).scalar_one()
    assert (att.material_key, att.filename, att.size) == ("id_card_copy", "张三身份证.pdf", 1234)
    assert "张三" not in raw


def test_files_named_by_their_plain_sha256_are_renamed_once(store: Store, tmp_path: Path) -> None:
    # Issue 8: a database from before keyed names refers to files by their SHA-256.
    content = b"%PDF-1.7 scan of an ID card"
    legacy = hashlib.sha256(content).hexdigest()
    root = tmp_path / "attachments"
    old_path = root / legacy[:2] / legacy[2:4] / legacy
    old_path.parent.mkdir(parents=True)
    old_path.write_bytes(store.sealer.seal_bytes(content))
    record = draft(store, user(store, "clerk"))
    with store.transaction() as conn:
        noms.add_attachment(
            conn,
            store.sealer,
            nomination_id=record.id,
            material_key="id_card_copy",
            file_ref=legacy,
            media_type="pdf",
            size=len(content),
            filename="scan.pdf",
            now=NOW,
        )
    files = FileStore(root, store.sealer)
    assert upgrade_file_names(store, files) == 1
    with store.reading() as conn:
        [att] = noms.attachments_of(conn, store.sealer, record.id)
    assert att.file_ref != legacy
    assert files.get(att.file_ref) == content
    assert not old_path.exists()
    assert {p.name for p in root.rglob("*") if p.is_file()} == {att.file_ref}
    assert upgrade_file_names(store, files) == 0  # done once per database


def test_subscriptions_are_unique_per_user(store: Store) -> None:
    record = draft(store, user(store, "clerk"))
    fan = user(store, "applicant")
    for _ in range(2):
        with store.transaction() as conn:
            noms.subscribe(conn, user_id=fan, nomination_id=record.id, now=NOW)
    with store.reading() as conn:
        assert noms.subscribers(conn, record.id) == [fan]
