"""A fixed encryption key for tests (never used outside them)."""

from __future__ import annotations

import base64

from storage.crypto import Sealer

TEST_KEY = base64.urlsafe_b64encode(b"awardbot-tests-fixed-key-32bytes").decode("ascii")
TEST_SEALER = Sealer([TEST_KEY])
