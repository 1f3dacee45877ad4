"""Invitation codes and role bindings: units, invites, `bind`, who a chat identity is.

An admin issues an invitation code on the command line; a person sends it to the bot on their
channel, and `bind` makes that chat identity a unit clerk or an official of one region (DESIGN §1).

Every function works on a `Connection` inside the caller's transaction (`store.transaction()`,
or `tx.connection` of a conversation step) and commits nothing itself. The tables are in
`storage.tables`.

Invitation codes are 8 characters from an alphabet without look-alikes (no 0 O 1 I L), shown as
`ABCD-EFGH` and accepted in any case, with or without the dash or spaces. Only a slow hash of
them (scrypt) is stored, with the first 4 characters as a hint for `list` and `revoke`: the
code is shown once, when it is issued.

A refused bind raises `BindError` with a typed `reason` and no text: the core words it for the
user (`conversations.texts`, `bind_<reason>`). `InviteError` is for the admin (one line, Chinese
first, on the command line).
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from conversations.identity import Actor, Level, Role
from conversations.validators import ValidationError, parse_uscc
from storage.regions import Region
from storage.store import Store
from storage.tables import invites, memberships, require_aware, units, users


class UnitType(StrEnum):
    """The `unit_type` of the employment campaign's collectives (DESIGN §2.1)."""

    GOVERNMENT_AGENCY = "government_agency"  # 机关
    PUBLIC_INSTITUTION = "public_institution"  # 事业单位
    SOCIAL_ORGANIZATION = "social_organization"  # 社会组织
    ENTERPRISE = "enterprise"  # 企业


# --- invitation codes ------------------------------------------------------------------------

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0 O 1 I L: nothing to misread
CODE_LENGTH = 8
HINT_LENGTH = 4
_CODE_SEPARATORS = frozenset("-_‐‑‒–—―−")  # NFKC has already folded the full-width ones


def new_code() -> str:
    """A fresh random code (normalised, without the dash), from `secrets`."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _compact(text: str, *, drop: str = "") -> str:
    value = unicodedata.normalize("NFKC", text).upper()
    return "".join(c for c in value if not c.isspace() and c not in _CODE_SEPARATORS | set(drop))


def normalize_code(text: str) -> str | None:
    """The code as stored and hashed (`ABCDEFGH`), or None if `text` cannot be a code."""
    value = _compact(text)
    if len(value) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in value):
        return None
    return value


def format_code(code: str) -> str:
    """`ABCD-EFGH`: how a code is shown."""
    return f"{code[:HINT_LENGTH]}-{code[HINT_LENGTH:]}"


def format_hint(hint: str) -> str:
    """`ABCD-****`: how a stored hint is shown."""
    return f"{hint}-{'*' * (CODE_LENGTH - HINT_LENGTH)}"


# scrypt, not a fast hash: the hint `list` shows leaves 31^4 (~920,000) candidates for a code,
# which a plain SHA-256 would let anyone holding the database try in a second. At these costs
# each try takes tens of milliseconds and 16 MiB, so a single code costs hours of CPU, while a
# bind costs one hash. (A hash keyed with AWARDBOT_SECRET_KEY would be stronger still; the codes
# also expire in days and bind once.)
_SCRYPT_SALT = b"awardbot-invite-code-v1"


def code_hash(code: str) -> str:
    """A slow hash (scrypt, hex) of a normalised code: all the database keeps of it."""
    digest = hashlib.scrypt(code.encode("ascii"), salt=_SCRYPT_SALT, n=2**14, r=8, p=1, dklen=32)
    return digest.hex()


# --- results and errors ----------------------------------------------------------------------


class InviteError(ValueError):
    """An admin request this module refuses (bad unit, level, code); one line."""


class BindRefusal(StrEnum):
    INVALID = "invalid"  # unknown, mistyped or malformed: one answer for all three
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"


class BindError(Exception):
    """Why a code did not bind: only its typed `reason`, which the core words for the user."""

    def __init__(self, reason: BindRefusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


class InviteStatus(StrEnum):
    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


class InviteBinding(StrEnum):
    """What became of the binding a used invite made."""

    CURRENT = "current"  # the user is bound by it now
    REPLACED = "replaced"  # a later code of the same user replaced it
    REMOVED = "removed"  # an admin removed it (`awardbot member remove`)


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """A unit named on a clerk invite: got or created by its unified social credit code."""

    name: str
    uscc: str
    unit_type: UnitType | None = None


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite: `code` (`ABCD-EFGH`) is shown to the admin now and never again."""

    code: str
    hint: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """An invite as `list_invites` sees it (no code: only its hint)."""

    id: int
    hint: str
    role: Role
    region_code: str
    level: Level | None
    unit_id: int | None
    unit_name: str | None
    unit_uscc: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_user_id: int | None
    revoked_at: datetime | None
    status: InviteStatus
    # Who used it (`list_invites` only): their chat identity, and whether the binding it made
    # is still theirs.
    used_by_channel: str | None = None
    used_by_external_id: str | None = None
    binding: InviteBinding | None = None


# --- invites ---------------------------------------------------------------------------------

MAX_CODE_ATTEMPTS = 20


def create_invite(
    conn: Connection,
    *,
    role: Role,
    region: Region,
    level: Level | None = None,
    unit: UnitSpec | None = None,
    now: datetime,
    ttl: timedelta,
) -> IssuedInvite:
    """Issue an invitation code for a clerk (of `unit`) or an official (at `level`).

    A clerk invite needs a unit, got or created by USCC (a known USCC under another name or
    region is refused, naming both). An official invite needs the level the region reviews at
    (`region.review_level`), stated by the caller as a check. The hint is unique among the
    invites still open, so `revoke_invite` by hint is never ambiguous for them.
    """
    require_aware(now)
    if ttl <= timedelta(0):
        raise InviteError(f"有效期须大于 0 (validity must be positive, got {ttl})")
    role = Role(role)
    level = None if level is None else Level(level)
    unit_id: int | None = None
    if role is Role.CLERK:
        if unit is None:
            raise InviteError("经办人邀请码须指定单位 (a clerk invite needs a unit)")
        if level is not None:
            raise InviteError("经办人邀请码不设层级 (a level is for official invites only)")
        unit_id = _get_or_create_unit(conn, unit, region, now)
    elif role is Role.OFFICIAL:
        if unit is not None:
            raise InviteError("审核人员邀请码不设单位 (a unit is for clerk invites only)")
        if level is None:
            raise InviteError(
                f"审核人员邀请码须指定层级：{region.full_name} 为 {region.review_level} "
                f"(an official invite needs a level: {region.review_level} "
                f"for {region.code})"
            )
        if level is not region.review_level:
            raise InviteError(
                f"层级不符：{region.full_name} 的审核层级是 {region.review_level}，不是 {level} "
                f"(level mismatch: {region.code} reviews at {region.review_level}, not {level})"
            )
    else:
        raise InviteError(
            f"邀请码只用于经办人或审核人员 (invites are for clerk or official, not {role})"
        )
    code, hint = _free_code(conn)
    expires_at = now + ttl
    conn.execute(
        sa.insert(invites).values(
            code_hash=code_hash(code),
            code_hint=hint,
            role=role.value,
            region_code=region.code,
            level=None if level is None else level.value,
            unit_id=unit_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return IssuedInvite(code=format_code(code), hint=hint, expires_at=expires_at)


def list_invites(conn: Connection, *, now: datetime) -> list[InviteRecord]:
    """Every invite, oldest first, with its status at `now`; a used one with who used it and
    what became of the binding it made."""
    require_aware(now)
    later = invites.alias("later")
    replaced = sa.exists().where(later.c.replaced_invite_id == invites.c.id)
    query = (
        sa.select(
            invites,
            units.c.name.label("unit_name"),
            units.c.uscc.label("unit_uscc"),
            users.c.channel.label("used_by_channel"),
            users.c.external_id.label("used_by_external_id"),
            memberships.c.invite_id.label("current_invite_id"),
            replaced.label("replaced"),
        )
        .join_from(invites, units, invites.c.unit_id == units.c.id, isouter=True)
        .join(users, users.c.id == invites.c.used_by_user_id, isouter=True)
        .join(memberships, memberships.c.user_id == invites.c.used_by_user_id, isouter=True)
        .order_by(invites.c.created_at, invites.c.id)
    )
    out = []
    for row in conn.execute(query).mappings():
        record = _invite_record(row, now)
        if record.used_at is not None:
            if row["current_invite_id"] == record.id:
                binding = InviteBinding.CURRENT
            elif row["replaced"]:
                binding = InviteBinding.REPLACED
            else:
                binding = InviteBinding.REMOVED
            record = replace(
                record,
                used_by_channel=row["used_by_channel"],
                used_by_external_id=row["used_by_external_id"],
                binding=binding,
            )
        out.append(record)
    return out


def revoke_invite(conn: Connection, code_or_hint: str, *, now: datetime) -> InviteRecord:
    """Revoke an unused invite, by its whole code or its hint (first 4 characters).

    A used invite cannot be revoked (its binding stays; a new bind replaces it), nor a revoked
    one again; InviteError says which. Returns the invite as it is now.
    """
    require_aware(now)
    value = _compact(code_or_hint, drop="*")
    base = sa.select(invites, units.c.name.label("unit_name"), units.c.uscc.label("unit_uscc"))
    base = base.join_from(invites, units, invites.c.unit_id == units.c.id, isouter=True)
    if normalize_code(value) is not None:
        rows = list(conn.execute(base.where(invites.c.code_hash == code_hash(value))).mappings())
    elif len(value) == HINT_LENGTH and all(c in CODE_ALPHABET for c in value):
        rows = list(conn.execute(base.where(invites.c.code_hint == value)).mappings())
    else:
        raise InviteError(
            f"'{code_or_hint}' 不是邀请码或其前 4 位 "
            "(give the whole code ABCD-EFGH or its first 4 characters)"
        )
    shown = format_hint(value[:HINT_LENGTH])
    if not rows:
        raise InviteError(f"没有这个邀请码 {shown} (no such invite)")
    open_rows = [r for r in rows if r["used_at"] is None and r["revoked_at"] is None]
    if len(open_rows) > 1:
        raise InviteError(
            f"有 {len(open_rows)} 个邀请码以 {value} 开头，请给出完整邀请码 "
            "(ambiguous hint: give the whole code)"
        )
    if not open_rows:
        last = _invite_record(rows[-1], now)
        if last.status is InviteStatus.REVOKED:
            raise InviteError(f"邀请码 {shown} 已作废 (invite already revoked)")
        raise InviteError(
            f"邀请码 {shown} 已被使用，不能作废 (invite already used by user "
            f"{last.used_by_user_id}; a used invite cannot be revoked)"
        )
    row = open_rows[0]
    done = conn.execute(
        sa.update(invites)
        .where(
            invites.c.id == row["id"],
            invites.c.used_at.is_(None),
            invites.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if done.rowcount != 1:  # used meanwhile, by a bind that committed first
        raise InviteError(f"邀请码 {shown} 已被使用，不能作废 (invite already used)")
    return _invite_record({**row, "revoked_at": now}, now)


def bind(conn: Connection, user_id: int, code: str, *, now: datetime) -> Actor:
    """Bind the user (users.id) to what the code grants; returns their new Actor.

    Raises BindError for a code that is unknown or mistyped (one reason for both: nothing says
    whether a code exists), expired, used or revoked. Binding replaces the user's earlier
    membership; the invite records which one it replaced. Sending the code that made the
    current binding again (a retried message) returns that binding unchanged.

    Two binds of one code never both succeed: the invite row is locked (PostgreSQL) or the
    transaction holds the write lock (SQLite), and the update is conditional as well.
    """
    require_aware(now)
    # Lock the user first (PostgreSQL; SQLite's transaction already holds the write lock):
    # binds of one user queue, like their conversation steps.
    locked = conn.execute(
        sa.select(users.c.id).where(users.c.id == user_id).with_for_update()
    ).scalar_one_or_none()
    if locked is None:
        raise LookupError(f"no user with id {user_id}")
    normal = normalize_code(code)
    if normal is None:
        raise BindError(BindRefusal.INVALID)
    invite = conn.execute(
        sa.select(invites).where(invites.c.code_hash == code_hash(normal)).with_for_update()
    ).one_or_none()
    if invite is None:
        raise BindError(BindRefusal.INVALID)
    current = conn.execute(
        sa.select(memberships).where(memberships.c.user_id == user_id)
    ).one_or_none()
    if invite.used_at is not None:
        if current is not None and current.invite_id == invite.id:
            return _actor(current)  # this user's own code, sent again: already bound
        raise BindError(BindRefusal.USED)
    if invite.revoked_at is not None:
        raise BindError(BindRefusal.REVOKED)
    if invite.expires_at <= now:
        raise BindError(BindRefusal.EXPIRED)
    claimed = conn.execute(
        sa.update(invites)
        .where(
            invites.c.id == invite.id,
            invites.c.used_at.is_(None),
            invites.c.revoked_at.is_(None),
        )
        .values(
            used_at=now,
            used_by_user_id=user_id,
            replaced_invite_id=None if current is None else current.invite_id,
        )
    )
    if claimed.rowcount != 1:
        raise BindError(BindRefusal.USED)
    values: dict[str, Any] = {
        "role": invite.role,
        "region_code": invite.region_code,
        "level": invite.level,
        "unit_id": invite.unit_id,
        "bound_at": now,
        "invite_id": invite.id,
    }
    if current is None:
        conn.execute(sa.insert(memberships).values(user_id=user_id, **values))
    else:
        conn.execute(
            sa.update(memberships).where(memberships.c.user_id == user_id).values(**values)
        )
    return Actor(
        role=Role(invite.role),
        region=invite.region_code,
        level=None if invite.level is None else Level(invite.level),
        unit_id=invite.unit_id,
    )


def actor_of(conn: Connection, user_id: int) -> Actor | None:
    """The user's binding as an Actor; None when they have none (treat them as an applicant)."""
    row = conn.execute(
        sa.select(memberships).where(memberships.c.user_id == user_id)
    ).one_or_none()
    return None if row is None else _actor(row)


# --- helpers ---------------------------------------------------------------------------------


def _free_code(conn: Connection) -> tuple[str, str]:
    """A code no invite has, whose hint no open (unused, unrevoked) invite has."""
    for _ in range(MAX_CODE_ATTEMPTS):
        code = new_code()
        hint = code[:HINT_LENGTH]
        clash = conn.execute(
            sa.select(invites.c.id)
            .where(
                sa.or_(
                    invites.c.code_hash == code_hash(code),
                    sa.and_(
                        invites.c.code_hint == hint,
                        invites.c.used_at.is_(None),
                        invites.c.revoked_at.is_(None),
                    ),
                )
            )
            .limit(1)
        ).first()
        if clash is None:
            return code, hint
    raise InviteError("无法生成新的邀请码 (could not find a free invitation code; try again)")


def _get_or_create_unit(conn: Connection, spec: UnitSpec, region: Region, now: datetime) -> int:
    try:
        uscc = parse_uscc(spec.uscc)
    except ValidationError as exc:
        raise InviteError(
            f"{exc}（{spec.uscc.strip()}） (bad unified social credit code)"
        ) from None
    name = " ".join(spec.name.split())
    if not name:
        raise InviteError("单位名称不能为空 (the unit needs a name)")
    unit_type = None if spec.unit_type is None else UnitType(spec.unit_type).value
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(units)
        .values(name=name, uscc=uscc, unit_type=unit_type, region_code=region.code, created_at=now)
        .on_conflict_do_nothing(index_elements=["uscc"])
    )
    row = conn.execute(sa.select(units).where(units.c.uscc == uscc)).one()
    if row.name != name:
        raise InviteError(
            f"统一社会信用代码 {uscc} 已登记为「{row.name}」，不是「{name}」"
            f" (USCC {uscc} is registered to {row.name}, not {name})"
        )
    if row.region_code != region.code:
        raise InviteError(
            f"单位「{name}」已登记在地区 {row.region_code}，不是 {region.code}"
            f" (unit {uscc} is registered in region {row.region_code}, not {region.code})"
        )
    if unit_type is not None and row.unit_type not in (None, unit_type):
        raise InviteError(
            f"单位「{name}」已登记为 {row.unit_type}，不是 {unit_type}"
            f" (unit {uscc} is registered as {row.unit_type}, not {unit_type})"
        )
    if unit_type is not None and row.unit_type is None:
        conn.execute(sa.update(units).where(units.c.id == row.id).values(unit_type=unit_type))
    unit_id: int = row.id
    return unit_id


def _actor(row: Any) -> Actor:
    return Actor(
        role=Role(row.role),
        region=row.region_code,
        level=None if row.level is None else Level(row.level),
        unit_id=row.unit_id,
    )


def _invite_record(row: Mapping[Any, Any], now: datetime) -> InviteRecord:
    if row["revoked_at"] is not None:
        status = InviteStatus.REVOKED
    elif row["used_at"] is not None:
        status = InviteStatus.USED
    elif row["expires_at"] <= now:
        status = InviteStatus.EXPIRED
    else:
        status = InviteStatus.ACTIVE
    return InviteRecord(
        id=row["id"],
        hint=row["code_hint"],
        role=Role(row["role"]),
        region_code=row["region_code"],
        level=None if row["level"] is None else Level(row["level"]),
        unit_id=row["unit_id"],
        unit_name=row["unit_name"],
        unit_uscc=row["unit_uscc"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        used_by_user_id=row["used_by_user_id"],
        revoked_at=row["revoked_at"],
        status=status,
    )


def bound_count(store: Store, channel: str, role: str) -> int:
    """How many chat identities of `channel` are bound with `role` (start-up checks)."""
    with store.reading() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
                .where(users.c.channel == channel, memberships.c.role == role)
            ).scalar_one()
        )
