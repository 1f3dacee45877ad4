"""Every table of the store, in one place and one style: `sa.Table` on `SQLModel.metadata`.

The same definitions serve SQLite and PostgreSQL. Two column types keep both databases alike:
`UTCDateTime` stores naive UTC (`TIMESTAMP WITHOUT TIME ZONE` / SQLite text) and hands back aware
UTC datetimes. What users told the bot (session state, results, nominations, message texts,
tokens) is sealed by `storage.crypto.Sealer` and kept as TEXT: the store seals on write and
opens on read. These tables are the *current* schema; `storage.migrations` builds it step by
step, and the contract tests compare the two. The repositories (`storage.store`,
`storage.invites`, `storage.quotas`, `storage.nominations`, `storage.outbox`,
`storage.channels`) use them through SQLAlchemy Core: the store needs no ORM session.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

metadata = SQLModel.metadata


def dumps_json(value: Any) -> str:
    """Compact JSON text, Chinese as is; NaN/Infinity are refused (not JSON)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def require_aware(value: datetime) -> None:
    """Refuse a naive datetime (ValueError): the store never guesses a time zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timezone-aware datetime required, got naive {value.isoformat()}")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC; a naive datetime is refused, not guessed."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        require_aware(value)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- users and their conversations (storage.store) -----------------------------------------------

# One user on one channel (`ConversationKey`): `external_id` is the channel's user id.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("channel", "external_id", name="uq_users_channel_external_id"),
)

# The engine's state for one user; `version` goes up by one on every save.
conversation_sessions = sa.Table(
    "conversation_sessions",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("state", sa.Text, nullable=False),  # sealed JSON
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    # The platform's order of the last update applied (Telegram update_id): older ones that
    # arrive later (parallel webhook connections) are not applied over newer ones.
    sa.Column("last_sequence", sa.BigInteger, nullable=True),
)

# One completed eligibility self-check: the verdict and what it was based on.
selfcheck_results = sa.Table(
    "selfcheck_results",
    metadata,
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
    sa.Column("result", sa.Text, nullable=False),  # sealed JSON
    sa.Column("completed_at", UTCDateTime, nullable=False),
)

# A single row (id 1): the number of the last migration step applied.
schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False, default=1),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_schema_version_single_row"),
)

# Named values about the store itself (the sealed key sentinel, `storage.store`).
store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# --- roles and identity (storage.invites, storage.quotas) ----------------------------------------

# A unit (单位) whose clerk files nominations, known by its unified social credit code.
units = sa.Table(
    "units",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("uscc", sa.String, nullable=False),
    sa.Column("unit_type", sa.String, nullable=True),  # a storage.invites.UnitType value
    sa.Column("region_code", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("uscc", name="uq_units_uscc"),
)

# An invitation code: who it makes of the person who binds it. The code is not stored.
invites = sa.Table(
    "invites",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code_hash", sa.String, nullable=False),  # scrypt hex of the normalised code
    sa.Column("code_hint", sa.String, nullable=False),  # its first 4 characters
    sa.Column("role", sa.String, nullable=False),  # a Role value
    sa.Column("region_code", sa.String, nullable=False),
    sa.Column("level", sa.String, nullable=True),  # a Level value, for officials
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=True),  # for clerks
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Column(
        "used_by_user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
    ),
    # The invite whose binding this one's use replaced: a user's bindings, in order.
    sa.Column("replaced_invite_id", sa.Integer, sa.ForeignKey("invites.id"), nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("code_hash", name="uq_invites_code_hash"),
)

# A chat identity's current role binding: one per user, replaced by a later bind.
memberships = sa.Table(
    "memberships",
    metadata,
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
    sa.Column("bound_at", UTCDateTime, nullable=False),
    sa.Column("invite_id", sa.Integer, sa.ForeignKey("invites.id"), nullable=False),
)

# Nominations one region may send in one category of one campaign (附件3).
quotas = sa.Table(
    "quotas",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign", sa.String, nullable=False),
    sa.Column("category", sa.String, nullable=False),
    sa.Column("region_code", sa.String, nullable=False),
    sa.Column("places", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint(
        "campaign", "category", "region_code", name="uq_quotas_campaign_category_region"
    ),
    sa.CheckConstraint("places >= 0", name="ck_quotas_places_not_negative"),
)

# --- nominations (storage.nominations) -----------------------------------------------------------

# Personal data (answers, form values) is one sealed payload; what queues and rules need in
# clear is kept beside it, never a name, ID number or phone.
nominations = sa.Table(
    "nominations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign", sa.String, nullable=False),
    sa.Column("category", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),  # individual | collective
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False, index=True),
    sa.Column("region_code", sa.String, nullable=False, index=True),
    sa.Column("status", sa.String, nullable=False, index=True),
    sa.Column("tracking_code", sa.String, nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False),  # sealed JSON: facts and form values
    sa.Column("county_division", sa.Boolean, nullable=False, default=False),
    sa.Column("publicity_started_on", sa.Date, nullable=True),
    sa.Column("publicity_ends_on", sa.Date, nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("status_changed_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "nomination_id",
        sa.Integer,
        sa.ForeignKey("nominations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("material_key", sa.String, nullable=False),
    sa.Column("file_ref", sa.String(64), nullable=False),  # FileStore name (keyed hash)
    sa.Column("media_type", sa.String, nullable=False),  # jpg | png | pdf | docx
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),  # sealed: names can hold personal data
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("nomination_id", "material_key", "file_ref", name="uq_attachment"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column(
        "nomination_id",
        sa.Integer,
        sa.ForeignKey("nominations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("nomination_id", sa.Integer, nullable=True, index=True),
    sa.Column("from_status", sa.String, nullable=True),
    sa.Column("to_status", sa.String, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),  # sealed JSON: reason, what was read, ...
)

# The nominee's own consent to the processing of their personal information (PIPL; issue 11),
# given in chat with the tracking code (storage.privacy). One row while it holds: a revocation
# deletes it; the audit trail keeps when each was given and revoked, and by whom.
nominee_consents = sa.Table(
    "nominee_consents",
    metadata,
    sa.Column(
        "nomination_id",
        sa.Integer,
        sa.ForeignKey("nominations.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("given_at", UTCDateTime, nullable=False),
)

# --- official documents (issue 12): rankings, document jobs, generated files ---------------------

# The order a clerk (scope "unit:<id>") or an office (scope "region:<code>:<level>") sets with
# /rank: position 1 is the best. One row per nomination ranked in that scope.
rankings = sa.Table(
    "rankings",
    metadata,
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
    sa.Column("set_at", UTCDateTime, nullable=False),
)

# One /documents request: who asked (their binding is read when the job runs), where to send the
# files, which documents. pending -> running (claimed, with a lease) -> done | failed (error kept).
document_jobs = sa.Table(
    "document_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("recipient_id", sa.String, nullable=False),
    sa.Column("campaign", sa.String, nullable=False),
    sa.Column("kinds", sa.String, nullable=False),  # comma-separated DocKind values
    sa.Column("status", sa.String, nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String, nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
)

# A file the bot generated (a document of a job, a chart): sealed name, content in the FileStore.
# bot.exports writes it; replies name one as FileOut(-id) (bot.edges.StoreAttachments).
generated_files = sa.Table(
    "generated_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("document_jobs.id"), nullable=True, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("doc_kind", sa.String, nullable=False),
    sa.Column("audience", sa.String, nullable=False),
    sa.Column("file_ref", sa.String(64), nullable=False),
    sa.Column("media_type", sa.String, nullable=False),  # docx | xlsx | pdf | png
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),  # sealed
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# --- the notification outbox (storage.outbox) ----------------------------------------------------

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("recipient_id", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # sealed
    sa.Column("status", sa.String, nullable=False),  # a storage.outbox.OutboxStatus value
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String, nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),  # its send began (outcome uncertain)
    # notice: a notification (text); reply: a step's replies (sealed JSON), stored with the step
    sa.Column("kind", sa.String, nullable=False, server_default="notice"),
    sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    sa.CheckConstraint(
        "status IN ('pending', 'sending', 'delivered', 'failed')", name="ck_outbox_status"
    ),
    sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

# --- reminders (storage.reminders; DESIGN §4) ----------------------------------------------------

# One row per planned reminder and recipient. `key` is the plan's stable key (what, for whom,
# which day, which version of the plan); the ticker hands a due row to the outbox under the same
# key and marks it sent in one transaction, so it goes out once. A re-plan supersedes pending
# rows it no longer yields (skipped, with the reason); nothing stale is sent.
reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String, nullable=False),
    sa.Column("campaign", sa.String, nullable=False),
    sa.Column("topic", sa.String, nullable=False),  # a conversations.reminder_spec.Topic value
    sa.Column("kind", sa.String, nullable=False),  # window | deadline | digest (the outbox kind)
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("nomination_id", sa.Integer, nullable=True),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("deadline_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String, nullable=False),  # pending | sent | skipped
    sa.Column("reason", sa.Text, nullable=True),  # why skipped (or unplanned)
    sa.Column("text", sa.Text, nullable=False),  # sealed JSON: title, body, when
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("settled_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("key", name="uq_reminders_key"),
    sa.CheckConstraint("status IN ('pending', 'sent', 'skipped')", name="ck_reminders_status"),
    sa.Index("ix_reminders_status_due_at", "status", "due_at"),
    sa.Index("ix_reminders_user", "user_id", "campaign"),
    sa.Index("ix_reminders_nomination", "campaign", "nomination_id"),
)

# What a user asked for: kind (window | deadline | digest | all) of a campaign ('*' for every
# campaign) on or off. Without a row: clerks get window and deadline reminders, officials
# deadline alerts and the digest, applicants nothing until they ask (the verdict offers it).
reminder_prefs = sa.Table(
    "reminder_prefs",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("campaign", sa.String, primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A window an admin moved (`awardbot campaign window set`): it replaces the YAML's dates;
# `version` counts the moves and is part of every key planned from the window.
campaign_windows = sa.Table(
    "campaign_windows",
    metadata,
    sa.Column("campaign", sa.String, primary_key=True),
    sa.Column("window_key", sa.String, primary_key=True),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("end", sa.Date, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# --- chat channels (storage.channels) ------------------------------------------------------------

inbound_deliveries = sa.Table(
    "inbound_deliveries",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("delivery_id", sa.String, primary_key=True),
    sa.Column("received_at", UTCDateTime, nullable=False, index=True),
    sa.Column("answer", sa.Text, nullable=True),  # sealed replies, for passive-reply channels
)

push_nonces = sa.Table(
    "push_nonces",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("nonce", sa.String, primary_key=True),
    sa.Column("signature", sa.String, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False, index=True),
)

platform_tokens = sa.Table(
    "platform_tokens",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("token", sa.Text, nullable=True),  # sealed; NULL until first fetched
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

reply_windows = sa.Table(
    "reply_windows",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("user_id", sa.String, primary_key=True),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("closes_at", UTCDateTime, nullable=False),
    sa.Column("quota", sa.Integer, nullable=False),
    sa.Column("used", sa.Integer, nullable=False),
)

send_keys = sa.Table(
    "send_keys",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("recipient_id", sa.String, primary_key=True),
)

send_log = sa.Table(
    "send_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("recipient_id", sa.String, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Index("ix_send_log_recipient", "channel", "recipient_id", "sent_at"),
)
