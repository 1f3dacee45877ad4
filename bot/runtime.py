"""The runtime shell: lock the conversation, load, step the core, save, in one transaction."""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from typing import Any

from conversations.assistant import Assistant
from conversations.engine import Inbound, Option, Reply, Step
from conversations.filing import Upload
from conversations.keys import ConversationKey
from conversations.texts import render
from handlers.base import Repeat, Unavailable
from storage.channels import delivery_answer, first_delivery, keep_delivery_answer
from storage.files import FileStore
from storage.identity import Regions
from storage.ports import StorePorts, WorkdayEnd
from storage.store import ConversationTx, Store, StoreUnavailable

log = logging.getLogger(__name__)


class Runtime:
    """Runs the pure core against the store; channels call `open` and `handle`."""

    def __init__(
        self,
        assistant: Assistant,
        store: Store,
        regions: Regions,
        *,
        files: FileStore,
        workday_end: WorkdayEnd,
    ) -> None:
        self.assistant = assistant
        self.store = store
        self.regions = regions
        self.files = files
        self.workday_end = workday_end

    def open(self, key: ConversationKey) -> list[Reply]:
        """A user arrives (or comes back): greet them or re-ask their pending question.

        Raises Unavailable when the store cannot be reached (the caller answers 503)."""
        try:
            with self.store.conversation(key) as tx:
                step = self.assistant.start(tx.state, self._ports(tx))
                self._apply(tx, step)
        except StoreUnavailable as exc:
            raise Unavailable(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - answered, as a step is (never a 500)
            _log_failure("open", key, exc)
            return [Reply(render("step_failed"))]
        return step.replies

    def handle(self, key: ConversationKey, text: str, upload: Upload | None = None) -> list[Reply]:
        """One inbound message; the new state and everything it wrote commit before replying.

        A failure rolls the step back (the conversation stays as it was before this message)
        and is answered politely; the log gets where it failed, never what the user typed.
        The store being unreachable is answered too: nothing was recorded, send it again.
        """
        try:
            replies = self.handle_once(key, None, text, upload)
        except Unavailable:
            # No platform retries for this caller (the console): say so; the user sends again.
            return [Reply(render("store_unavailable"))]
        assert isinstance(replies, list)  # only a delivery id can make a step a repeat
        return replies

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: Upload | None = None,
        *,
        keep_answer: bool = False,
    ) -> list[Reply] | Repeat:
        """`handle`, once per platform delivery: a `Repeat` if `delivery_id` was taken before.

        The delivery is recorded in the step's own transaction, under the conversation's
        lock: a retry that arrives while the first is still running waits, then finds it
        recorded; a step that fails records nothing, so the platform's retry runs it again.
        With `keep_answer` the replies are kept (sealed) with the delivery, and a repeat gets
        them back: a channel whose answer is the HTTP response (WeChat, WeCom) can answer a
        retry whose first answer the platform never received.

        The store being unreachable raises Unavailable (nothing recorded: the platform's
        retry, after the webhook's 503, runs the step again); any other failure is answered
        with an apology, since a retry would fail the same way.
        """
        try:
            with self.store.conversation(key) as tx:
                if delivery_id is not None and not first_delivery(
                    tx.connection, key.channel, delivery_id, now=self.assistant.engine.clock()
                ):
                    return self._repeat(tx, key.channel, delivery_id)
                step = self.assistant.resume(tx.state, Inbound(text), self._ports(tx), upload)
                self._apply(tx, step)
                if keep_answer and delivery_id is not None:
                    sealed = self.store.sealer.seal(_dump_replies(step.replies))
                    keep_delivery_answer(tx.connection, key.channel, delivery_id, sealed)
        except StoreUnavailable as exc:
            log.warning("step for %s not run: the store is unavailable", key.channel)
            raise Unavailable(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the user gets an answer whatever broke
            _log_failure("step", key, exc)
            return [Reply(render("step_failed"))]
        return step.replies

    def _repeat(self, tx: ConversationTx, channel: str, delivery_id: str) -> Repeat:
        sealed = delivery_answer(tx.connection, channel, delivery_id)
        if sealed is None:
            return Repeat()
        return Repeat(tuple(_load_replies(self.store.sealer.open(sealed))))

    def _ports(self, tx: ConversationTx) -> StorePorts:
        now = self.assistant.engine.clock()
        return StorePorts(
            tx,
            self.store.sealer,
            self.regions,
            now=now,
            files=self.files,
            workday_end=self.workday_end,
        )

    @staticmethod
    def _apply(tx: ConversationTx, step: Step) -> None:
        tx.save(step.state)
        for event in step.events:
            tx.add_result(
                campaign=event.campaign,
                category=event.category,
                verdict=event.verdict,
                result=event.result,
                completed_at=event.completed_at,
            )


def _log_failure(what: str, key: ConversationKey, exc: Exception) -> None:
    """Where it failed, never what the user typed."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    log.error(
        "%s failed for %s: %s at %s:%s",
        what,
        key.channel,
        type(exc).__name__,
        frame.filename,
        frame.lineno,
    )


def _dump_replies(replies: list[Reply]) -> str:
    return json.dumps([dataclasses.asdict(reply) for reply in replies], ensure_ascii=False)


def _load_replies(text: str) -> list[Reply]:
    def reply(data: dict[str, Any]) -> Reply:
        options = tuple(Option(**option) for option in data.pop("options", ()))
        return Reply(**data, options=options)

    return [reply(item) for item in json.loads(text)]
