"""Shared test options: golden-file updating, and PostgreSQL tests that may not skip in CI."""

from __future__ import annotations

import os

import pytest

# Store fixtures over SQLite and PostgreSQL, for every test package.
from support.stores import postgres_url, store, store_url  # noqa: F401


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.txt from the current behaviour instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With AWARDBOT_REQUIRE_POSTGRES=1 (set by .ci/run) a skipped PostgreSQL test fails."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("AWARDBOT_REQUIRE_POSTGRES") == "1":
        reason = str(report.longrepr)
        if "AWARDBOT_TEST_POSTGRES_URL" in reason or "PostgreSQL" in reason:
            report.outcome = "failed"
            report.longrepr = f"PostgreSQL test skipped in CI (must run): {reason}"
