"""Schema migrations: ordered, numbered steps applied when the store starts, under a lock.

Why this and not Alembic:
- Nothing for users to run. The bot is installed and started; `Store(url)` brings the schema up
  to date on the way in. There is no `alembic upgrade head` to forget, no `alembic.ini`, no
  script directory to ship, and no autogenerate step whose output someone must review.
- One code path for SQLite and PostgreSQL. A step is a Python function over a SQLAlchemy
  `Connection`, run by the same code on both databases (the default SQLite file and the shared
  PostgreSQL server of a scaled-out deployment).
- Safe with many workers starting at once. All of it — read `schema_version`, apply the steps
  above it, write the new number — is ONE transaction holding a lock: `pg_advisory_xact_lock`
  with a fixed key on PostgreSQL (DDL is transactional there), `BEGIN IMMEDIATE` on SQLite (the
  caller's transaction, which takes the database's write lock; DDL is transactional in SQLite
  too). A second process waits, then finds nothing left to do; a crash mid-way leaves nothing
  half-applied.
- The schema is small. If it grows a need for branching histories or offline SQL scripts,
  Alembic can adopt this schema then (`alembic stamp`).

Rules for steps: never edit a released step; append a new one with the next number. Step 1
defines its tables here, frozen, rather than from `storage.tables` (which is the *current*
schema): a fresh database replays every step, so step 1 must keep building the version-1 schema
after the models move on. A contract test checks the migrated schema against the models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.tables import schema_version

# Key of the PostgreSQL advisory lock that serializes migrations (database-wide; any other
# advisory lock of this project must use a different key). "awbmigr1" as a big-endian int64.
MIGRATION_LOCK_KEY = int.from_bytes(b"awbmigr1", "big", signed=True)


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer version of the bot than this one."""


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    description: str
    apply: Callable[[Connection], None]


def _step_1(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "users",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("external_id", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.UniqueConstraint("channel", "external_id", name="uq_users_channel_external_id"),
    )
    sa.Table(
        "conversation_sessions",
        md,
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
    )
    sa.Table(
        "selfcheck_results",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("campaign", sa.String, nullable=False),
        sa.Column("category", sa.String, nullable=False),
        sa.Column("verdict", sa.String, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=False), nullable=False),
    )
    md.create_all(conn, checkfirst=False)


def _step_2(conn: Connection) -> None:
    # The notification outbox (storage/outbox.py). Frozen here like step 1.
    md = sa.MetaData()
    sa.Table(
        "outbox",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String, nullable=False),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("recipient_id", sa.String, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("claimed_by", sa.String, nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=False), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=False), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'delivered', 'failed')", name="ck_outbox_status"
        ),
        sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )
    md.create_all(conn, checkfirst=False)


def _step_3(conn: Connection) -> None:
    # Roles and identity (storage/invites.py, storage/quotas.py): units, invitation codes,
    # role bindings, and regional quotas. Frozen here like step 1.
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True))  # for the foreign keys
    sa.Table(
        "units",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("uscc", sa.String, nullable=False),
        sa.Column("unit_type", sa.String, nullable=True),
        sa.Column("region_code", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.UniqueConstraint("uscc", name="uq_units_uscc"),
    )
    sa.Table(
        "invites",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code_hash", sa.String, nullable=False),
        sa.Column("code_hint", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("region_code", sa.String, nullable=False),
        sa.Column("level", sa.String, nullable=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column(
            "used_by_user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("replaced_invite_id", sa.Integer, sa.ForeignKey("invites.id"), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=False), nullable=True),
        sa.UniqueConstraint("code_hash", name="uq_invites_code_hash"),
    )
    sa.Table(
        "memberships",
        md,
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("region_code", sa.String, nullable=False),
        sa.Column("level", sa.String, nullable=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=True),
        sa.Column("bound_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("invite_id", sa.Integer, sa.ForeignKey("invites.id"), nullable=False),
    )
    sa.Table(
        "quotas",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign", sa.String, nullable=False),
        sa.Column("category", sa.String, nullable=False),
        sa.Column("region_code", sa.String, nullable=False),
        sa.Column("places", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.UniqueConstraint(
            "campaign", "category", "region_code", name="uq_quotas_campaign_category_region"
        ),
        sa.CheckConstraint("places >= 0", name="ck_quotas_places_not_negative"),
    )
    for name in ("units", "invites", "memberships", "quotas"):
        md.tables[name].create(conn, checkfirst=False)


def _step_4(conn: Connection) -> None:
    # Nominations (storage/nominations.py): the nomination with its sealed payload, attachments,
    # tracking subscriptions and the audit trail. Frozen here like step 1.
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True))  # for the foreign keys
    sa.Table("units", md, sa.Column("id", sa.Integer, primary_key=True))
    ts = sa.DateTime(timezone=False)
    sa.Table(
        "nominations",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign", sa.String, nullable=False),
        sa.Column("category", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False, index=True),
        sa.Column("region_code", sa.String, nullable=False, index=True),
        sa.Column("status", sa.String, nullable=False, index=True),
        sa.Column("tracking_code", sa.String, nullable=False, unique=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("county_division", sa.Boolean, nullable=False),
        sa.Column("publicity_started_on", sa.Date, nullable=True),
        sa.Column("publicity_ends_on", sa.Date, nullable=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("status_changed_at", ts, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    sa.Table(
        "attachments",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "nomination_id",
            sa.Integer,
            sa.ForeignKey("nominations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("material_key", sa.String, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.UniqueConstraint("nomination_id", "material_key", "sha256", name="uq_attachment"),
    )
    sa.Table(
        "subscriptions",
        md,
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column(
            "nomination_id",
            sa.Integer,
            sa.ForeignKey("nominations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", ts, nullable=False),
    )
    sa.Table(
        "audit_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", ts, nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("nomination_id", sa.Integer, nullable=True, index=True),
        sa.Column("from_status", sa.String, nullable=True),
        sa.Column("to_status", sa.String, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    for name in ("nominations", "attachments", "subscriptions", "audit_log"):
        md.tables[name].create(conn, checkfirst=False)


def _step_5(conn: Connection) -> None:
    # Chat channels (storage/channels.py): delivery dedupe, shared access tokens, WeChat
    # customer-service windows. Frozen here like step 1.
    md = sa.MetaData()
    ts = sa.DateTime(timezone=False)
    sa.Table(
        "inbound_deliveries",
        md,
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("delivery_id", sa.String, primary_key=True),
        sa.Column("received_at", ts, nullable=False, index=True),
    )
    sa.Table(
        "platform_tokens",
        md,
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("token", sa.Text, nullable=True),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("updated_at", ts, nullable=False),
    )
    sa.Table(
        "reply_windows",
        md,
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("opened_at", ts, nullable=False),
        sa.Column("closes_at", ts, nullable=False),
        sa.Column("quota", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
    )
    sa.Table(
        "send_keys",
        md,
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("recipient_id", sa.String, primary_key=True),
    )
    sa.Table(
        "send_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("recipient_id", sa.String, nullable=False),
        sa.Column("sent_at", ts, nullable=False),
        sa.Index("ix_send_log_recipient", "channel", "recipient_id", "sent_at"),
    )
    md.create_all(conn, checkfirst=False)


def _step_6(conn: Connection) -> None:
    # Edges that hold (issue 8):
    # - outbox.started_at: a claimed row is marked just before ITS send, so after a crash only
    #   rows whose send began are of unknown outcome; the rest go back to pending;
    # - inbound_deliveries.answer: the sealed replies a delivery got, for a platform's retry
    #   whose answer was lost (WeChat, WeCom);
    # - push_nonces: signed-push nonces seen within the timestamp window (replays refused);
    # - store_meta: a sealed sentinel that tells a wrong AWARDBOT_SECRET_KEY at start;
    # - attachments.sha256 -> file_ref: files are named by a keyed hash, not their SHA-256.
    ts = sa.DateTime(timezone=False)
    md = sa.MetaData()
    sa.Table(
        "push_nonces",
        md,
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("nonce", sa.String, primary_key=True),
        sa.Column("signature", sa.String, nullable=False),
        sa.Column("seen_at", ts, nullable=False, index=True),
    )
    sa.Table(
        "store_meta",
        md,
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    md.create_all(conn, checkfirst=False)
    conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN started_at TIMESTAMP"))
    # A row `sending` while the upgrade runs may have gone out: it stays uncertain.
    conn.execute(sa.text("UPDATE outbox SET started_at = claimed_until WHERE status = 'sending'"))
    conn.execute(sa.text("ALTER TABLE inbound_deliveries ADD COLUMN answer TEXT"))
    conn.execute(sa.text("ALTER TABLE attachments RENAME COLUMN sha256 TO file_ref"))


def _step_7(conn: Connection) -> None:
    # Review you can trust (issue 9):
    # - conversation_sessions.last_sequence: the platform order of the last update applied;
    # - outbox.kind: a step's replies are stored with the step ('reply') and delivered like
    #   notifications ('notice'), so a crash after the commit delays a reply, never loses it.
    conn.execute(sa.text("ALTER TABLE conversation_sessions ADD COLUMN last_sequence BIGINT"))
    conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN kind VARCHAR NOT NULL DEFAULT 'notice'"))


def _step_8(conn: Connection) -> None:
    # Reminders (issue 10): the planned reminders, what users asked for, windows admins moved.
    ts = sa.DateTime(timezone=False)
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "reminders",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("campaign", sa.String, nullable=False),
        sa.Column("topic", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("nomination_id", sa.Integer, nullable=True),
        sa.Column("due_at", ts, nullable=False),
        sa.Column("deadline_at", ts, nullable=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("settled_at", ts, nullable=True),
        sa.UniqueConstraint("key", name="uq_reminders_key"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'skipped')", name="ck_reminders_status"),
        sa.Index("ix_reminders_status_due_at", "status", "due_at"),
        sa.Index("ix_reminders_user", "user_id", "campaign"),
        sa.Index("ix_reminders_nomination", "campaign", "nomination_id"),
    )
    sa.Table(
        "reminder_prefs",
        md,
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("campaign", sa.String, primary_key=True),
        sa.Column("kind", sa.String, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    sa.Table(
        "campaign_windows",
        md,
        sa.Column("campaign", sa.String, primary_key=True),
        sa.Column("window_key", sa.String, primary_key=True),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("end", sa.Date, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    md.create_all(conn, checkfirst=False, tables=[t for n, t in md.tables.items() if n != "users"])


def _step_9(conn: Connection) -> None:
    # Personal data (issue 11): the nominee's own consent to the processing of their personal
    # information (PIPL), given in chat with the tracking code. One row while it holds; a
    # revocation deletes it (the audit trail keeps both). Frozen here like step 1.
    ts = sa.DateTime(timezone=False)
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("nominations", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "nominee_consents",
        md,
        sa.Column(
            "nomination_id",
            sa.Integer,
            sa.ForeignKey("nominations.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("given_at", ts, nullable=False),
    )
    md.tables["nominee_consents"].create(conn, checkfirst=False)


def _step_10(conn: Connection) -> None:
    # Official documents (issue 12): the ranking a clerk or an office sets with /rank, the
    # /documents jobs, and the files they produced. Frozen here like step 1.
    ts = sa.DateTime(timezone=False)
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("nominations", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "rankings",
        md,
        sa.Column("campaign", sa.String, primary_key=True),
        sa.Column("scope", sa.String, primary_key=True),
        sa.Column(
            "nomination_id",
            sa.Integer,
            sa.ForeignKey("nominations.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("set_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("set_at", ts, nullable=False),
    )
    sa.Table(
        "document_jobs",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("recipient_id", sa.String, nullable=False),
        sa.Column("campaign", sa.String, nullable=False),
        sa.Column("kinds", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("claimed_by", sa.String, nullable=True),
        sa.Column("claimed_until", ts, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("finished_at", ts, nullable=True),
    )
    sa.Table(
        "generated_files",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "job_id", sa.Integer, sa.ForeignKey("document_jobs.id"), nullable=True, index=True
        ),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("doc_kind", sa.String, nullable=False),
        sa.Column("audience", sa.String, nullable=False),
        sa.Column("file_ref", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    md.create_all(
        conn,
        checkfirst=False,
        tables=[t for n, t in md.tables.items() if n not in ("users", "nominations")],
    )


STEPS: tuple[Step, ...] = (
    Step(1, "users, conversation_sessions, selfcheck_results", _step_1),
    Step(2, "outbox", _step_2),
    Step(3, "units, invites, memberships, quotas", _step_3),
    Step(4, "nominations, attachments, subscriptions, audit_log", _step_4),
    Step(5, "inbound_deliveries, platform_tokens, reply_windows, send_keys, send_log", _step_5),
    Step(6, "outbox.started_at, deliveries' answers, push_nonces, store_meta, file_ref", _step_6),
    Step(7, "conversation_sessions.last_sequence, outbox.kind", _step_7),
    Step(8, "reminders, reminder_prefs, campaign_windows", _step_8),
    Step(9, "nominee_consents", _step_9),
    Step(10, "rankings, document_jobs, generated_files", _step_10),
)
LATEST = STEPS[-1].number


def migrate(conn: Connection) -> int:
    """Bring the schema up to `LATEST`; returns the version the database is at afterwards.

    The caller runs this inside a transaction and commits it. On SQLite that transaction must have
    begun with `BEGIN IMMEDIATE` (the store's write engine does so); on PostgreSQL this takes the
    advisory lock itself, which the commit releases.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    # schema_version itself is the one table created outside the steps: it is how we know
    # which steps ran. It never changes shape.
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(schema_version.c.version)).scalar_one_or_none() or 0
    if current > LATEST:
        raise SchemaTooNewError(
            f"数据库结构版本 {current} 比本程序支持的 {LATEST} 新，请升级程序"
            f" (database schema version {current} is newer than this program's {LATEST})"
        )
    pending = [step for step in STEPS if step.number > current]
    for step in pending:
        step.apply(conn)
    if pending and current == 0:
        conn.execute(sa.insert(schema_version).values(id=1, version=LATEST))
    elif pending:
        conn.execute(sa.update(schema_version).values(version=LATEST))
    return LATEST
