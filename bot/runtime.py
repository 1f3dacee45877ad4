"""The runtime shell: lock the conversation, load, step the core, save, in one transaction."""

from __future__ import annotations

import logging
import traceback

from conversations.assistant import Assistant
from conversations.engine import Inbound, Reply, Step
from conversations.filing import Upload
from conversations.keys import ConversationKey
from conversations.texts import render
from storage.channels import first_delivery
from storage.files import FileStore
from storage.identity import Regions
from storage.ports import StorePorts, WorkdayEnd
from storage.store import ConversationTx, Store

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
        """A user arrives (or comes back): greet them or re-ask their pending question."""
        with self.store.conversation(key) as tx:
            step = self.assistant.start(tx.state, self._ports(tx))
            self._apply(tx, step)
        return step.replies

    def handle(self, key: ConversationKey, text: str, upload: Upload | None = None) -> list[Reply]:
        """One inbound message; the new state and everything it wrote commit before replying.

        A failure rolls the step back (the conversation stays as it was before this message)
        and is answered politely; the log gets where it failed, never what the user typed.
        """
        replies = self.handle_once(key, None, text, upload)
        assert replies is not None  # only a delivery id can make a step a duplicate
        return replies

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: Upload | None = None,
    ) -> list[Reply] | None:
        """`handle`, once per platform delivery: None if `delivery_id` was already taken.

        The delivery is recorded in the step's own transaction, under the conversation's
        lock: a retry that arrives while the first is still running waits, then finds it
        recorded; a step that fails records nothing, so the platform's retry runs it again.
        """
        try:
            with self.store.conversation(key) as tx:
                if delivery_id is not None and not first_delivery(
                    tx.connection, key.channel, delivery_id, now=self.assistant.engine.clock()
                ):
                    return None
                step = self.assistant.resume(tx.state, Inbound(text), self._ports(tx), upload)
                self._apply(tx, step)
        except Exception as exc:  # noqa: BLE001 - the user gets an answer whatever broke
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "step failed for %s: %s at %s:%s",
                key.channel,
                type(exc).__name__,
                frame.filename,
                frame.lineno,
            )
            return [Reply(render("step_failed"))]
        return step.replies

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
