"""Who runs the reminder ticker (storage.leader): one leader per database schema."""

from __future__ import annotations

from pathlib import Path

from support.keys import TEST_SEALER
from support.stores import store_url_for

from storage.leader import Leadership
from storage.store import Store


def test_one_leader_per_schema_and_the_next_takes_over_when_it_goes(tmp_path: Path) -> None:
    with store_url_for("postgres", tmp_path) as url, Store(url, sealer=TEST_SEALER) as store:
        first, second = Leadership(store), Leadership(store)
        try:
            assert first.held()
            assert not second.held()
            assert first.held()  # still, on the next tick
            first.release()  # (kill -9 ends the session: the same for PostgreSQL)
            assert second.held()
            assert not first.held()
        finally:
            first.release()
            second.release()


def test_two_schemas_of_one_database_each_have_their_own_leader(tmp_path: Path) -> None:
    with (
        store_url_for("postgres", tmp_path / "a") as url_a,
        store_url_for("postgres", tmp_path / "b") as url_b,
        Store(url_a, sealer=TEST_SEALER) as a,
        Store(url_b, sealer=TEST_SEALER) as b,
    ):
        one, other = Leadership(a), Leadership(b)
        try:
            assert one.held()
            assert other.held()  # another deployment (or test run) beside it is not blocked
        finally:
            one.release()
            other.release()


def test_sqlite_is_one_process_which_always_leads(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'l.db'}", sealer=TEST_SEALER) as store:
        assert Leadership(store).held()
        assert Leadership(store).held()
