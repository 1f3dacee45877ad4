"""What the documents are made from, read from one snapshot, and the jobs that make them.

A `/documents` step only records a job (`request`, by the writer, in the step's transaction):
rendering a region's set takes seconds and must not hold the conversation's lock. A worker
(`bot.exports`) claims the job (`claim`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
workers never take the same one), reads everything in ONE read transaction (`snapshot`:
REPEATABLE READ on PostgreSQL, a deferred transaction on SQLite, whose WAL keeps the first
read's view until it ends), and streams the nominations in ranking order `BATCH` at a time
(`entries`), so a province-wide summary of thousands of rows reads in constant memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from conversations.campaign import Campaign, Catalog
from conversations.documents import (
    Audience,
    DocKind,
    Entry,
    FileLine,
    entry_of,
    in_documents,
)
from conversations.identity import Actor, Level, Role
from conversations.policy import nomination_form
from storage import nominations as noms
from storage import quotas as stored_quotas
from storage.crypto import Sealer
from storage.rankings import scope_of
from storage.reads import campaign_facts
from storage.regions import Regions
from storage.store import Store
from storage.tables import (
    attachments,
    document_jobs,
    nominations,
    rankings,
    units,
    users,
)

BATCH = 200  # nominations decrypted and turned into entries at a time
MAX_ATTEMPTS = 3  # a job that failed this often is failed for good (the user is told)
RETRY_AFTER = dt.timedelta(seconds=30)  # a failed job waits this long before its next try


class JobStatus:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    user_id: int
    channel: str
    recipient_id: str
    campaign: str
    kinds: tuple[str, ...]
    attempts: int


# ----- jobs ---------------------------------------------------------------------------------


def request(
    conn: Connection, *, user_id: int, campaign: str, kinds: Sequence[str], now: dt.datetime
) -> int | None:
    """Record a request for documents `kinds` of `campaign`, to be sent to the user's chat.

    The same request still waiting (a double tap, an impatient repeat) is not queued twice:
    None. Returns the job's id."""
    joined = ",".join(kinds)
    waiting = conn.execute(
        sa.select(document_jobs.c.id).where(
            document_jobs.c.user_id == user_id,
            document_jobs.c.campaign == campaign,
            document_jobs.c.kinds == joined,
            document_jobs.c.status.in_([JobStatus.PENDING, JobStatus.RUNNING]),
        )
    ).first()
    if waiting is not None:
        return None
    user = conn.execute(
        sa.select(users.c.channel, users.c.external_id).where(users.c.id == user_id)
    ).one()
    return int(
        conn.execute(
            document_jobs.insert()
            .values(
                user_id=user_id,
                channel=user.channel,
                recipient_id=user.external_id,
                campaign=campaign,
                kinds=joined,
                status=JobStatus.PENDING,
                attempts=0,
                created_at=now,
            )
            .returning(document_jobs.c.id)
        ).scalar_one()
    )


def claim(store: Store, worker: str, *, now: dt.datetime, lease: dt.timedelta) -> Job | None:
    """The oldest job waiting (or whose worker's lease ran out), now this worker's; None."""
    due = sa.or_(
        sa.and_(  # waiting; a retried one after its pause (RETRY_AFTER)
            document_jobs.c.status == JobStatus.PENDING,
            sa.or_(document_jobs.c.claimed_until.is_(None), document_jobs.c.claimed_until < now),
        ),
        sa.and_(document_jobs.c.status == JobStatus.RUNNING, document_jobs.c.claimed_until < now),
    )
    with store.reading() as conn:  # every worker asks every few seconds: no write lock for none
        if conn.execute(sa.select(document_jobs.c.id).where(due).limit(1)).first() is None:
            return None
    with store.transaction() as conn:
        query = sa.select(document_jobs).where(due).order_by(document_jobs.c.id).limit(1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        if row["attempts"] >= MAX_ATTEMPTS:  # its last worker died while running it
            conn.execute(
                document_jobs.update()
                .where(document_jobs.c.id == row["id"])
                .values(status=JobStatus.FAILED, finished_at=now, error="worker lost")
            )
            return None
        conn.execute(
            document_jobs.update()
            .where(document_jobs.c.id == row["id"])
            .values(
                status=JobStatus.RUNNING,
                claimed_by=worker,
                claimed_until=now + lease,
                attempts=row["attempts"] + 1,
            )
        )
    return Job(
        id=row["id"],
        user_id=row["user_id"],
        channel=row["channel"],
        recipient_id=row["recipient_id"],
        campaign=row["campaign"],
        kinds=tuple(k for k in row["kinds"].split(",") if k),
        attempts=row["attempts"] + 1,
    )


def finish(conn: Connection, job: Job, worker: str, *, now: dt.datetime) -> bool:
    """Mark the job done, if this worker still holds it (False: another took it over)."""
    result = conn.execute(
        document_jobs.update()
        .where(
            document_jobs.c.id == job.id,
            document_jobs.c.claimed_by == worker,
            document_jobs.c.status == JobStatus.RUNNING,
        )
        .values(status=JobStatus.DONE, finished_at=now, error=None)
    )
    return result.rowcount == 1


def failed(conn: Connection, job: Job, worker: str, *, error: str, now: dt.datetime) -> bool:
    """Give the job back for another try, or fail it for good after MAX_ATTEMPTS; True when
    it is failed for good (the user is then told)."""
    final = job.attempts >= MAX_ATTEMPTS
    conn.execute(
        document_jobs.update()
        .where(document_jobs.c.id == job.id, document_jobs.c.claimed_by == worker)
        .values(
            status=JobStatus.FAILED if final else JobStatus.PENDING,
            error=error[:500],
            claimed_by=None,
            claimed_until=None if final else now + RETRY_AFTER,  # not again at once
            finished_at=now if final else None,
        )
    )
    return final


def job_status(store: Store, job_id: int) -> tuple[str, int, str | None]:
    """(status, attempts, error) of a job, for tests and `awardbot` diagnostics."""
    with store.reading() as conn:
        row = conn.execute(
            sa.select(
                document_jobs.c.status, document_jobs.c.attempts, document_jobs.c.error
            ).where(document_jobs.c.id == job_id)
        ).one()
    return row.status, row.attempts, row.error


# ----- the scope of a set -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportScope:
    """Whose nominations a set covers: one unit's, or every unit's of a region."""

    campaign: str
    name: str  # the unit's registered name, or the region's full name
    ranking: str  # the rankings scope (storage.rankings.scope_of)
    audience: Audience
    unit_id: int | None = None
    regions: frozenset[str] = frozenset()  # the region codes a region scope covers
    region: str | None = None  # the region's own code (for quotas)


def unit_scope(
    conn: Connection, campaign: str, unit_id: int, *, audience: Audience = Audience.UNIT
) -> ExportScope:
    row = conn.execute(sa.select(units.c.name).where(units.c.id == unit_id)).first()
    if row is None:
        raise LookupError(f"没有编号为 {unit_id} 的单位 (no unit {unit_id})")
    return ExportScope(campaign, str(row.name), f"unit:{unit_id}", audience, unit_id=unit_id)


def region_scope(
    regions: Regions, campaign: str, code: str, *, audience: Audience | None = None
) -> ExportScope:
    region = regions.get(code)  # RegionError (one line) when unknown
    level = region.review_level
    audience = audience or {
        Level.PROVINCE: Audience.PROVINCE,
        Level.CITY: Audience.CITY,
    }.get(level, Audience.COUNTY)
    ranking = scope_of(Actor(role=Role.OFFICIAL, region=code, level=level))
    assert ranking is not None
    covered = frozenset(r.code for r in regions if regions.contains(code, r.code))
    return ExportScope(campaign, region.full_name, ranking, audience, regions=covered, region=code)


def with_audience(scope: ExportScope, audience: Audience) -> ExportScope:
    """The same scope for another audience (`awardbot export --for`): another masking."""
    return ExportScope(
        scope.campaign, scope.name, scope.ranking, audience, scope.unit_id, scope.regions,
        scope.region,
    )  # fmt: skip


def scope_for(conn: Connection, regions: Regions, campaign: str, actor: Actor) -> ExportScope:
    """The scope of `actor`'s documents: a clerk's unit, an official's region at their level."""
    if actor.role is Role.CLERK and actor.unit_id is not None:
        return unit_scope(conn, campaign, actor.unit_id)
    if actor.role is Role.OFFICIAL and actor.region:
        scope = region_scope(regions, campaign, actor.region)
        ranking = scope_of(actor)
        return scope if ranking is None else _replace_ranking(scope, ranking)
    raise PermissionError("只有单位经办人和人社部门工作人员可以生成文件")


def _replace_ranking(scope: ExportScope, ranking: str) -> ExportScope:
    return ExportScope(
        scope.campaign, scope.name, ranking, scope.audience, scope.unit_id, scope.regions,
        scope.region,
    )  # fmt: skip


# ----- the snapshot -------------------------------------------------------------------------


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """One read transaction that every query of a set reads: rows a step commits meanwhile
    are not half in it."""
    with store.reading() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn


def _statuses(campaign: Campaign) -> list[str]:
    lifecycle = campaign.lifecycle
    if lifecycle is None:
        return []
    return [s.key for s in lifecycle.statuses if in_documents(campaign, s.key)]


def _where(
    campaign: Campaign, scope: ExportScope, kind: str | None
) -> list[sa.ColumnElement[bool]]:
    clauses = [
        nominations.c.campaign == campaign.id,
        nominations.c.status.in_(_statuses(campaign)),
    ]
    if scope.unit_id is not None:
        clauses.append(nominations.c.unit_id == scope.unit_id)
    else:
        clauses.append(nominations.c.region_code.in_(sorted(scope.regions)))
    if kind is not None:
        clauses.append(nominations.c.kind == kind)
    return clauses


def ordered(
    conn: Connection, campaign: Campaign, scope: ExportScope, *, kind: str | None = None
) -> list[tuple[int, int | None]]:
    """(nomination id, ranking position) of the scope's nominations in ranking order: the
    ranked first by position, then the rest oldest first."""
    joined = nominations.outerjoin(
        rankings,
        sa.and_(
            rankings.c.nomination_id == nominations.c.id,
            rankings.c.campaign == nominations.c.campaign,
            rankings.c.scope == scope.ranking,
        ),
    )
    rows = conn.execute(
        sa.select(nominations.c.id, rankings.c.position)
        .select_from(joined)
        .where(*_where(campaign, scope, kind))
        .order_by(rankings.c.position.is_(None), rankings.c.position, nominations.c.id)
    ).all()
    return [(int(r.id), None if r.position is None else int(r.position)) for r in rows]


def kinds_in(conn: Connection, campaign: Campaign, scope: ExportScope) -> list[str]:
    """The nomination kinds (individual, collective) the scope has, in that order."""
    found = set(
        conn.execute(
            sa.select(nominations.c.kind).distinct().where(*_where(campaign, scope, None))
        ).scalars()
    )
    return [k for k in ("individual", "collective") if k in found]


def entries(
    conn: Connection,
    sealer: Sealer,
    catalog: Catalog,
    regions: Regions,
    scope: ExportScope,
    doc: DocKind,
    *,
    kind: str | None = None,
    order: Sequence[tuple[int, int | None]] | None = None,
    batch: int = BATCH,
) -> Iterator[Entry]:
    """The scope's nominations as document `doc` shows them to the scope's audience, in
    ranking order, `batch` rows decrypted at a time. `kind`: individual | collective only."""
    campaign = catalog.get(scope.campaign)
    order = ordered(conn, campaign, scope, kind=kind) if order is None else order
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        ids = [i for i, _ in chunk]
        rows = {
            r.id: r
            for r in conn.execute(
                sa.select(nominations, units.c.name.label("filed_by_unit"))
                .join(units, units.c.id == nominations.c.unit_id)
                .where(nominations.c.id.in_(ids))
            )
        }
        files: dict[int, list[tuple[str, FileLine]]] = {}
        for a in conn.execute(
            sa.select(
                attachments.c.id, attachments.c.nomination_id, attachments.c.material_key,
                attachments.c.media_type, attachments.c.filename,
            )
            .where(attachments.c.nomination_id.in_(ids))
            .order_by(attachments.c.id)
        ):  # fmt: skip
            files.setdefault(a.nomination_id, []).append(
                (a.material_key, FileLine(a.id, sealer.open(a.filename), a.media_type))
            )
        for nomination_id, position in chunk:
            row = rows.get(nomination_id)
            if row is None:  # pragma: no cover - the snapshot holds it
                continue
            record = noms.record_of(row, sealer)
            form = nomination_form(catalog, record.campaign, record.category)
            if form is None:
                continue  # a category the campaign no longer has: nothing to print it with
            publicity = (
                (record.publicity_started_on, record.publicity_ends_on)
                if record.publicity_started_on and record.publicity_ends_on
                else None
            )
            yield entry_of(
                campaign, form, id=record.id, code=record.tracking_code,
                category=record.category, status=record.status, unit=row.filed_by_unit,
                region=regions.full_name(record.region), region_code=record.region,
                fields=record.payload.get("fields", {}),
                attachments=files.get(record.id, []),
                opinions_recorded=record.payload.get("opinions", []),
                publicity=publicity, rank=position, audience=scope.audience, doc=doc,
            )  # fmt: skip


def region_quotas(
    conn: Connection, regions: Regions, campaign: Campaign, region: str
) -> dict[str, list[tuple[str, int]]]:
    """category → (region code, places) of the quotas set for `region` and the regions in it."""
    found: dict[str, list[tuple[str, int]]] = {}
    for q in stored_quotas.quotas(conn, campaign.id):
        if q.region_code in regions and regions.contains(region, q.region_code):
            found.setdefault(q.category, []).append((q.region_code, q.places))
    return found


__all__ = [
    "BATCH",
    "MAX_ATTEMPTS",
    "RETRY_AFTER",
    "ExportScope",
    "Job",
    "JobStatus",
    "campaign_facts",
    "claim",
    "entries",
    "failed",
    "finish",
    "job_status",
    "kinds_in",
    "ordered",
    "region_quotas",
    "region_scope",
    "request",
    "scope_for",
    "snapshot",
    "unit_scope",
    "with_audience",
]
