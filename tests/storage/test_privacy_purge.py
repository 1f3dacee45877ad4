"""The retention purge (issue 11) on SQLite and PostgreSQL: once a campaign's last stage is
AWARDBOT_RETENTION_DAYS behind, its drafts that never left the unit (and their files), the
self-check answers, the conversations still holding them, the reminder settings and tracking
subscriptions go; submitted nominations and the audit trail stay. A dry run deletes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, catalog
from support.review_rig import clerk, place

from conversations.keys import Channel, ConversationKey
from storage import nominations as noms
from storage import privacy, tables
from storage.files import FileStore
from storage.store import Store

SKILLS = catalog().get("jl-skills-2022")
DUE = dt.date(2023, 5, 3)  # 2022-11-04, the submission window's last day, + 180 days
AFTER = dt.datetime(2023, 6, 1, 2, 0, tzinfo=dt.UTC)


class World:
    """A clerk's nominations in every state that matters, two applicants' data."""

    def __init__(self, store: Store, files: FileStore) -> None:
        self.clerk = clerk(store)
        self.draft = place(store, status="draft")
        self.withdrawn = place(store, status="withdrawn")  # from the unit, never submitted
        self.submitted = place(store, status="county_review")
        self.returned = place(store, status="returned")  # went out once, came back
        with store.transaction() as conn:
            noms.audit(
                conn, store.sealer, user_id=None, role="clerk", action="submit", allowed=True,
                nomination_id=self.returned, from_status="opinions", to_status="county_review",
                now=FIXED_NOW,
            )  # fmt: skip
            self.file = files.put(b"%PDF-1.7 a draft's scan\n%%EOF")
            noms.add_attachment(
                conn, store.sealer, nomination_id=self.draft, material_key="id_card",
                file_ref=self.file, media_type="pdf", size=30, filename="身份证.pdf",
                now=FIXED_NOW,
            )  # fmt: skip
        self.employment = place(store, campaign="jl-employment-2022",
                                category="employment_individual", status="draft")  # fmt: skip
        # An applicant who follows the submitted nomination, asked for the window reminders
        # and is in the middle of a self-check of the skills campaign.
        self.applicant = ConsoleHarness(store, user="applicant")
        self.applicant.open()
        self.applicant.send(f"/track {code_of(store, self.submitted)}")  # + window reminders
        self.applicant.send("jl-skills-2022")
        # Another, half-way through the employment campaign's self-check: not this campaign's.
        other = ConsoleHarness(store, user="other")
        other.open()
        other.send("jl-employment-2022")
        for user, campaign in (("applicant", "jl-skills-2022"), ("other", "jl-employment-2022")):
            with store.conversation(ConversationKey(Channel.CONSOLE.value, user)) as tx:
                tx.add_result(campaign=campaign, category="c", verdict="eligible",
                              result={"answers": {}}, completed_at=FIXED_NOW)  # fmt: skip


def code_of(store: Store, nomination: int) -> str:
    with store.reading() as conn:
        record = noms.get(conn, store.sealer, nomination)
    assert record is not None
    return record.tracking_code


def ids(store: Store) -> set[int]:
    with store.reading() as conn:
        return set(conn.execute(sa.select(tables.nominations.c.id)).scalars())


def skills_reminders(store: Store) -> int:
    with store.reading() as conn:
        count: int = conn.execute(
            sa.select(sa.func.count())
            .select_from(tables.reminders)
            .where(tables.reminders.c.campaign == "jl-skills-2022")
        ).scalar_one()
    return count


def rows(store: Store, table: sa.Table) -> int:
    with store.reading() as conn:
        count: int = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return count


def test_a_dry_run_counts_what_the_purge_deletes_and_deletes_nothing(
    store: Store, tmp_path: Path
) -> None:
    files = FileStore(tmp_path / "files", store.sealer)
    world = World(store, files)
    before = {t.name: rows(store, t) for t in tables.metadata.sorted_tables}
    assert skills_reminders(store) > 0  # the clerk's and the applicant's, of 2022-11

    dry = privacy.purge(store, SKILLS, days=180, now=AFTER, today=AFTER.date(), dry_run=True,
                        files=files)  # fmt: skip
    assert {t.name: rows(store, t) for t in tables.metadata.sorted_tables} == before
    assert files.exists(world.file)
    assert not dry.deleted
    assert (dry.last_stage, dry.due) == (dt.date(2022, 11, 4), DUE)

    real = privacy.purge(store, SKILLS, days=180, now=AFTER, today=AFTER.date(), files=files)
    assert real.deleted
    assert real.counts == dry.counts
    assert dict(real.counts.items()) == {
        "drafts": 2,  # the draft and the one withdrawn before it ever left
        "attachments": 1 + 2 * len(SKILLS.forms[0].materials),  # place() attaches them all
        "selfchecks": 1,
        "sessions": 1,  # the applicant's self-check of this campaign
        "reminder_settings": 1,
        "subscriptions": 1,
        "reminders": before["reminders"] - rows(store, tables.reminders),
    }
    assert skills_reminders(store) == 0

    # Submitted nominations stay (the returned one went out once); the other campaign's too.
    assert ids(store) == {world.submitted, world.returned, world.employment}
    assert not files.exists(world.file)
    with store.reading() as conn:
        left = conn.execute(sa.select(tables.selfcheck_results.c.campaign)).scalars().all()
        sessions = conn.execute(sa.select(tables.conversation_sessions.c.user_id)).all()
    assert left == ["jl-employment-2022"]
    assert len(sessions) == before["conversation_sessions"] - 1
    assert rows(store, tables.subscriptions) == 0
    assert rows(store, tables.reminder_prefs) == 0


def test_the_audit_trail_is_kept_and_records_the_purge(store: Store, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files", store.sealer)
    world = World(store, files)
    with store.reading() as conn:
        before = [(a.id, a.action) for a in noms.audit_trail(conn, store.sealer)]
    assert before
    privacy.purge(store, SKILLS, days=180, now=AFTER, today=AFTER.date(), files=files)
    with store.reading() as conn:
        after = noms.audit_trail(conn, store.sealer)
    assert [(a.id, a.action) for a in after][: len(before)] == before
    [purge] = after[len(before) :]
    assert (purge.action, purge.role, purge.detail and purge.detail["drafts"]) == (
        "privacy_purge", "system", 2,
    )  # fmt: skip
    # The draft's own audit rows are among those kept, though the draft is gone.
    assert world.draft not in ids(store)


def test_nothing_is_deleted_before_the_retention_has_run_out(store: Store, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files", store.sealer)
    world = World(store, files)
    day_before = dt.datetime.combine(DUE - dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    early = privacy.purge(store, SKILLS, days=180, now=day_before, today=day_before.date())
    assert not early.deleted
    assert early.counts.drafts == 2  # what will go on the due day
    assert world.draft in ids(store)
    on_the_day = dt.datetime.combine(DUE, dt.time(12), tzinfo=dt.UTC)
    assert privacy.purge(store, SKILLS, days=180, now=on_the_day, today=DUE).deleted
    assert world.draft not in ids(store)


def test_the_daily_round_purges_only_the_campaigns_that_are_due(
    store: Store, tmp_path: Path
) -> None:
    files = FileStore(tmp_path / "files", store.sealer)
    world = World(store, files)
    # 2023-06-01: skills (last stage 2022-11-04) is due; employment (as_of 2022-12-01) is not
    # with a year's retention... and neither is skills.
    reports = privacy.purge_due(store, catalog(), days=365, now=AFTER, today=AFTER.date())
    assert [r.deleted for r in reports] == [False, False]
    reports = privacy.purge_due(store, catalog(), days=200, now=AFTER, today=AFTER.date())
    assert {r.campaign: r.deleted for r in reports} == {
        "jl-skills-2022": True,
        "jl-employment-2022": False,  # 2022-12-01 + 200 days = 2023-06-19
    }
    assert world.employment in ids(store)
    assert world.draft not in ids(store)
