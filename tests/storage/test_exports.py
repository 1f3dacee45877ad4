"""What the documents are read from (issue 12, storage.exports): the scope's filed nominations
in the /rank order, masked for the scope's audience, from one snapshot; and the jobs a
`/documents` step leaves for the worker, claimed once, retried, deduplicated."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import catalog, regions
from support.review_rig import clerk, official, place, write

from conversations.documents import Audience, DocKind
from conversations.effects import RequestDocuments, SetRanking
from conversations.identity import Level
from conversations.idnumber import check_digit
from conversations.reads import Refusal, RefusalKind
from storage import exports
from storage.store import Store
from storage.tables import document_jobs, units

SKILLS = "jl-skills-2022"
NOW = dt.datetime(2022, 11, 3, 1, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
ID = "22010419900315002" + check_digit("22010419900315002")


def unit_of(store: Store, region: str) -> int:
    with store.reading() as conn:
        return int(
            conn.execute(sa.select(units.c.id).where(units.c.region_code == region)).scalar_one()
        )


def names(store: Store, scope: exports.ExportScope, doc: DocKind = DocKind.SUMMARY) -> list[str]:
    with exports.snapshot(store) as conn:
        return [
            e.name for e in exports.entries(conn, store.sealer, catalog(), regions(), scope, doc)
        ]


def test_a_units_set_is_its_filed_nominations_in_the_clerks_order(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    clerk(store, "meihekou", "220581")
    a = place(store, fields={"name": "张小三"})
    b = place(store, fields={"name": "李小四"}, status="city_review")
    c = place(store, fields={"name": "王小五"}, status="unit_publicity")
    place(store, fields={"name": "草稿人"}, status="draft")  # not filed: never in a document
    place(store, fields={"name": "撤回人"}, status="withdrawn")  # gone
    place(store, fields={"name": "梅河口人"}, region="220581")  # another unit
    with store.reading() as conn:
        scope = exports.unit_scope(conn, SKILLS, unit_of(store, "220104"))
    assert names(store, scope) == ["张小三", "李小四", "王小五"]  # unranked: oldest first
    write(store, "clerk", [SetRanking(SKILLS, (c, a, b))], tmp_path)
    assert names(store, scope) == ["王小五", "张小三", "李小四"]
    with exports.snapshot(store) as conn:
        ranks = [
            e.rank
            for e in exports.entries(conn, store.sealer, catalog(), regions(), scope, DocKind.FORM)
        ]
    assert ranks == [1, 2, 3]


def test_a_region_set_covers_the_units_whose_nominations_reach_it_in_the_offices_order(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    clerk(store, "meihekou", "220581")  # 梅河口市 reports to the province, not to 通化市
    official(store, "city", "220100", Level.CITY)
    a = place(store, fields={"name": "张小三"})
    b = place(store, fields={"name": "李小四"})
    place(store, fields={"name": "梅河口人"}, region="220581")
    scope = exports.region_scope(regions(), SKILLS, "220100")
    assert scope.audience is Audience.CITY
    assert names(store, scope) == ["张小三", "李小四"]
    write(store, "city", [SetRanking(SKILLS, (b, a))], tmp_path)
    assert names(store, scope) == ["李小四", "张小三"]
    # The province's set has all three; the clerk's order of their unit is not the office's.
    province = exports.region_scope(regions(), SKILLS, "220000")
    assert province.audience is Audience.PROVINCE
    assert sorted(names(store, province)) == ["张小三", "李小四", "梅河口人"]


@pytest.mark.parametrize(
    ("audience", "full"),
    [(Audience.UNIT, False), (Audience.CITY, False), (Audience.PROVINCE, True)],
)
def test_the_summary_shows_full_numbers_to_the_province_only(
    store: Store, audience: Audience, full: bool
) -> None:
    clerk(store)
    place(store, fields={"name": "张小三", "id_number": ID, "mobile": "13912345678"})
    scope = exports.with_audience(exports.region_scope(regions(), SKILLS, "220000"), audience)
    with exports.snapshot(store) as conn:
        (entry,) = exports.entries(
            conn, store.sealer, catalog(), regions(), scope, DocKind.SUMMARY
        )
    assert (entry.value("id_number") == ID) is full
    assert (entry.value("mobile") == "13912345678") is full
    if not full:
        assert entry.value("id_number").startswith("220104")
        assert "*" in entry.value("id_number")


def test_a_set_reads_one_snapshot_a_nomination_filed_meanwhile_is_not_half_in_it(
    store: Store,
) -> None:
    clerk(store)
    place(store, fields={"name": "张小三"})
    scope = exports.region_scope(regions(), SKILLS, "220000")
    campaign = catalog().get(SKILLS)
    with exports.snapshot(store) as conn:
        before = exports.ordered(conn, campaign, scope)
        place(store, fields={"name": "李小四"})  # committed by another connection
        assert exports.ordered(conn, campaign, scope) == before
    assert len(names(store, scope)) == 2  # the next set sees it


def test_entries_stream_in_batches_in_ranking_order(store: Store, tmp_path: Path) -> None:
    clerk(store)
    ids = [place(store, fields={"name": f"人{i}"}) for i in range(7)]
    write(store, "clerk", [SetRanking(SKILLS, tuple(reversed(ids)))], tmp_path)
    with store.reading() as conn:
        scope = exports.unit_scope(conn, SKILLS, unit_of(store, "220104"))
    with exports.snapshot(store) as conn:
        got = [
            e.id
            for e in exports.entries(
                conn, store.sealer, catalog(), regions(), scope, DocKind.SUMMARY, batch=3
            )
        ]
    assert got == list(reversed(ids))


# ----- jobs --------------------------------------------------------------------------------


def jobs(store: Store) -> list[dict[str, object]]:
    with store.reading() as conn:
        return [dict(r) for r in conn.execute(sa.select(document_jobs)).mappings()]


def test_a_documents_step_leaves_one_job_for_the_chat_it_came_from(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    write(store, "clerk", [RequestDocuments(SKILLS, ("summary", "forms"))], tmp_path)
    write(store, "clerk", [RequestDocuments(SKILLS, ("summary", "forms"))], tmp_path)  # again
    (job,) = jobs(store)
    assert (job["channel"], job["recipient_id"], job["kinds"], job["status"]) == (
        "console", "clerk", "summary,forms", exports.JobStatus.PENDING,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("who", "kinds"),
    [("applicant", ("summary",)), ("clerk", ("quota",)), ("clerk", ("publicity",)), ("clerk", ())],
)
def test_documents_not_of_the_callers_role_are_refused_and_nothing_is_queued(
    store: Store, tmp_path: Path, who: str, kinds: tuple[str, ...]
) -> None:
    clerk(store)
    if who == "applicant":
        from support.console_harness import ConsoleHarness

        ConsoleHarness(store, user="applicant").open()
    with pytest.raises(Refusal) as refused:
        write(store, who, [RequestDocuments(SKILLS, kinds)], tmp_path)
    assert refused.value.kind is RefusalKind.NOT_YOURS
    assert jobs(store) == []


def test_an_official_may_ask_for_the_quota_chart(store: Store, tmp_path: Path) -> None:
    official(store, "city", "220100", Level.CITY)
    write(store, "city", [RequestDocuments(SKILLS, ("quota",))], tmp_path)
    assert [j["kinds"] for j in jobs(store)] == ["quota"]


def test_a_job_is_claimed_by_one_worker_and_taken_over_when_its_lease_ends(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    write(store, "clerk", [RequestDocuments(SKILLS, ("summary",))], tmp_path)
    first = exports.claim(store, "a", now=NOW, lease=LEASE)
    assert first is not None
    assert first.kinds == ("summary",)
    assert first.attempts == 1
    assert exports.claim(store, "b", now=NOW + dt.timedelta(minutes=1), lease=LEASE) is None
    # a dies; when its lease ends, b takes the job over and a's late finish is refused.
    second = exports.claim(store, "b", now=NOW + dt.timedelta(minutes=6), lease=LEASE)
    assert second is not None
    assert second.id == first.id
    assert second.attempts == 2
    with store.transaction() as conn:
        assert not exports.finish(conn, first, "a", now=NOW)
        assert exports.finish(conn, second, "b", now=NOW)
    assert exports.job_status(store, first.id)[0] == exports.JobStatus.DONE
    assert exports.claim(store, "c", now=NOW + dt.timedelta(hours=1), lease=LEASE) is None


def test_a_failing_job_is_retried_then_failed_for_good(store: Store, tmp_path: Path) -> None:
    clerk(store)
    write(store, "clerk", [RequestDocuments(SKILLS, ("summary",))], tmp_path)
    finals = []
    for attempt in range(exports.MAX_ATTEMPTS):
        at = NOW + attempt * (exports.RETRY_AFTER + dt.timedelta(seconds=1))
        job = exports.claim(store, "w", now=at, lease=LEASE)
        assert job is not None
        assert job.attempts == attempt + 1
        with store.transaction() as conn:
            finals.append(exports.failed(conn, job, "w", error="字体缺失", now=at))
        assert exports.claim(store, "w", now=at, lease=LEASE) is None  # it pauses first
    assert finals == [False] * (exports.MAX_ATTEMPTS - 1) + [True]
    assert exports.job_status(store, job.id) == (
        exports.JobStatus.FAILED, exports.MAX_ATTEMPTS, "字体缺失",
    )  # fmt: skip
    assert exports.claim(store, "w", now=NOW, lease=LEASE) is None
