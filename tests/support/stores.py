"""Store fixtures over both backends: a SQLite file, and a PostgreSQL schema of its own per test.

Registered for every test package by tests/conftest.py (`store_url`, `store`, `postgres_url`);
build one by hand with `store_url_for(backend, tmp_path)`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage.store import Store
from support.keys import TEST_SEALER

BACKENDS = ["sqlite", "postgres"]
POSTGRES_ENV = "AWARDBOT_TEST_POSTGRES_URL"
POSTGRES_SKIP = f"{POSTGRES_ENV} not set: PostgreSQL store tests need a server (CI sets it)"


@contextmanager
def store_url_for(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a new SQLite file, or a new PostgreSQL schema dropped after.

    The PostgreSQL schema is selected through `options=-csearch_path=<schema>` in the URL, which
    psycopg passes to the server, so every connection of the store's pool lands in it.
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(POSTGRES_SKIP)
    url = make_url(base)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # as Store does
    schema = f"t_{uuid.uuid4().hex}"
    admin = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        in_schema = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield in_schema.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """For the PostgreSQL-only tests."""
    with store_url_for("postgres", tmp_path) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url, sealer=TEST_SEALER)
    try:
        yield s
    finally:
        s.close()
