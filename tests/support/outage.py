"""A database that blinks: PostgreSQL behind a TCP proxy on 127.0.0.1 that a test can cut.

    with own_database() as url:               # a database of this test's own, dropped after
        with BlinkingProxy(url) as proxy:
            store = Store(proxy.url, sealer=...)
            proxy.cut()                        # every connection dropped, new ones refused
            proxy.restore()

The shared server and its `test` database are never touched: the proxy only cuts the
connections that go through it, and `own_database` creates and drops a database of its own
(services.md: never stop the server or cut the shared database's connections).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from conversations.engine import Reply
from conversations.filing import Upload
from conversations.keys import ConversationKey
from handlers.base import Repeat, Steps, Unavailable
from storage.store import Store
from support.keys import TEST_SEALER

POSTGRES_URL_VAR = "AWARDBOT_TEST_POSTGRES_URL"


@contextmanager
def own_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (skipped without the server's URL)."""
    base = os.environ.get(POSTGRES_URL_VAR)
    if not base:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set: no PostgreSQL server for this test")
    name = f"awardbot_outage_{secrets.token_hex(4)}"
    admin = sa.create_engine(make_url(base), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class BlinkingProxy:
    """Forwards 127.0.0.1:<port> to the database's host and port until `cut()`."""

    def __init__(self, url: str) -> None:
        target = make_url(url)
        self._target = (target.host or "127.0.0.1", target.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        port = self._listener.getsockname()[1]
        self.url = target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        self._up = threading.Event()
        self._up.set()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="blinking-proxy", daemon=True)

    def __enter__(self) -> BlinkingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._drop_all()
        self._thread.join(5)
        self._listener.close()

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def cut(self) -> None:
        """The database "goes away": open connections reset, new ones refused at once."""
        self._up.clear()
        self._drop_all()

    def restore(self) -> None:
        self._up.set()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up.is_set():
                # Refused: a reset, the way a stopped server's closed port answers.
                with suppress(OSError):
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class blinking_store:  # noqa: N801 - used like a function: `with blinking_store() as (s, p)`
    """A store on a database of this test's own, behind a proxy the test can cut; a context
    manager for `with` and `async with` alike."""

    def __enter__(self) -> tuple[Store, BlinkingProxy]:
        self._database = own_database()
        url = self._database.__enter__()
        self._proxy = BlinkingProxy(url).__enter__()
        self._store = Store(self._proxy.url, sealer=TEST_SEALER)
        return self._store, self._proxy

    def __exit__(self, *exc: object) -> None:
        self._proxy.restore()
        self._store.close()
        self._proxy.__exit__(*exc)
        self._database.__exit__(None, None, None)

    async def __aenter__(self) -> tuple[Store, BlinkingProxy]:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


class FailingSteps:
    """The runtime with its store unreachable for the first `failures` steps (None: all of
    them): each raises Unavailable as the runtime does, having recorded nothing. For tests of
    what an edge does then; `tests/reliability/test_outage_steps.py` cuts a real database."""

    def __init__(self, inner: Steps | None = None, failures: int | None = None) -> None:
        self.inner = inner
        self.failures = failures
        self.tries: list[str] = []  # texts of every step attempted, failed or not
        self.ran: list[str] = []  # texts of the steps that ran
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.tries)

    def _fail(self, text: str) -> bool:
        with self._lock:
            self.tries.append(text)
            if self.inner is None or self.failures is None:
                return True
            if self.failures > 0:
                self.failures -= 1
                return True
            return False

    def open(self, key: ConversationKey) -> list[Reply]:
        if self._fail("(open)"):
            raise Unavailable("the store is unreachable (test)")
        assert self.inner is not None
        return self.inner.open(key)

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: Upload | None = None,
        *,
        keep_answer: bool = False,
        **options: Any,  # answers, sequence, store_replies: as the runtime takes them
    ) -> list[Reply] | Repeat:
        if self._fail(text):
            raise Unavailable("the store is unreachable (test)")
        assert self.inner is not None
        replies = self.inner.handle_once(
            key, delivery_id, text, upload, keep_answer=keep_answer, **options
        )
        if not isinstance(replies, Repeat):
            self.ran.append(text)
        return replies
