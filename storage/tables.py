"""SQLModel tables: users, their conversation sessions, self-check results, the schema version.

The same definitions serve SQLite and PostgreSQL. Two column types keep both databases alike:
`UTCDateTime` stores naive UTC (`TIMESTAMP WITHOUT TIME ZONE` / SQLite text) and hands back aware
UTC datetimes. What users told the bot (session state, results) is JSON sealed by
`storage.crypto.Sealer`, kept as TEXT: the store seals on write and opens on read.
These classes describe the *current* schema; `storage.migrations` builds it step by step.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def dumps_json(value: Any) -> str:
    """Compact JSON text, Chinese as is; NaN/Infinity are refused (not JSON)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC; a naive datetime is refused, not guessed."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timezone-aware datetime required, got naive {value.isoformat()}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """One user on one channel (`ConversationKey`): `external_id` is the channel's user id."""

    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_users_channel_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    external_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConversationSession(SQLModel, table=True):
    """The engine's state for one user; `version` goes up by one on every save."""

    __tablename__ = "conversation_sessions"

    user_id: int = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    state: str = Field(sa_type=sa.Text)  # sealed JSON
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SelfCheckResult(SQLModel, table=True):
    """One completed eligibility self-check: the verdict and what it was based on."""

    __tablename__ = "selfcheck_results"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    campaign: str
    category: str
    verdict: str
    result: str = Field(sa_type=sa.Text)  # sealed JSON
    completed_at: datetime = Field(sa_type=UTCDateTime)


class SchemaVersion(SQLModel, table=True):
    """A single row (id 1): the number of the last migration step applied."""

    __tablename__ = "schema_version"
    __table_args__ = (sa.CheckConstraint("id = 1", name="ck_schema_version_single_row"),)

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int


class StoreMeta(SQLModel, table=True):
    """Named values about the store itself (the sealed key sentinel, `storage.store`)."""

    __tablename__ = "store_meta"

    name: str = Field(primary_key=True)
    value: str = Field(sa_type=sa.Text)


# The same tables for SQLAlchemy Core statements (the store does not need an ORM session).
users = SQLModel.metadata.tables[User.__tablename__]
conversation_sessions = SQLModel.metadata.tables[ConversationSession.__tablename__]
selfcheck_results = SQLModel.metadata.tables[SelfCheckResult.__tablename__]
schema_version = SQLModel.metadata.tables[SchemaVersion.__tablename__]
store_meta = SQLModel.metadata.tables[StoreMeta.__tablename__]
