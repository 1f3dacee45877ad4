"""The runtime shell: lock the conversation, load, step the core, apply its effects, save — in
one transaction.

The core (conversations.assistant) reads through `StoreReads` and returns effects; the one
writer (storage.writer) applies them on the same transaction, re-checking each against the rows
as they are now. When it refuses one, everything the step's effects wrote is rolled back (a
savepoint) and the core answers the refusal (`Assistant.refused`), whose own effects — the audit
row of the refusal — are applied instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable

from conversations.assistant import Assistant
from conversations.effects import Effect
from conversations.engine import Inbound, Reply, Step
from conversations.filing import Upload
from conversations.keys import ConversationKey
from conversations.reads import Context, Refusal
from conversations.texts import render
from handlers.base import (
    Repeat,
    Unavailable,
    dump_replies,
    load_replies,
    reply_key,
    reply_part,
)
from storage import nominations as noms
from storage import outbox
from storage.channels import delivery_answer, first_delivery, keep_delivery_answer
from storage.files import FileStore
from storage.planning import Planning
from storage.reads import StoreReads, WorkdayEnd
from storage.regions import Regions
from storage.store import ConversationTx, Store, StoreUnavailable
from storage.writer import Writer

EffectsSeen = Callable[[list[Effect]], None]
# Stored replies wait this long for their channel (which takes them right after the commit)
# before the dispatcher delivers them itself: after a crash, a reply comes this much later.
REPLY_GRACE = dt.timedelta(seconds=5)

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
        new_code: Callable[[], str] | None = None,
        planning: Planning | None = None,
    ) -> None:
        self.assistant = assistant
        self.planning = planning  # re-plans reminders with the step (None: a rig plans none)
        self.store = store
        self.regions = regions
        self.files = files
        self.workday_end = workday_end
        self.new_code = new_code or (lambda: noms.new_tracking_code())
        self.effects_seen: EffectsSeen | None = None  # the golden transcripts record them

    def open(self, key: ConversationKey) -> list[Reply]:
        """A user arrives (or comes back): greet them or re-ask their pending question.

        Raises Unavailable when the store cannot be reached (the caller answers 503)."""
        try:
            with self.store.conversation(key) as tx:
                step = self._run(tx, lambda reads, ctx: self.assistant.start(tx.state, reads, ctx))
        except StoreUnavailable as exc:
            raise Unavailable(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - answered, as a step is (never a 500)
            _log_failure("open", key, exc)
            return [Reply(render("step_failed"))]
        return step.replies

    def handle(
        self,
        key: ConversationKey,
        text: str,
        upload: Upload | None = None,
        *,
        answers: str | None = None,
    ) -> list[Reply]:
        """One inbound message; the new state and everything it wrote commit before replying.

        A failure rolls the step back (the conversation stays as it was before this message)
        and is answered politely; the log gets where it failed, never what the user typed.
        The store being unreachable is answered too: nothing was recorded, send it again.
        """
        try:
            replies = self.handle_once(key, None, text, upload, answers=answers)
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
        answers: str | None = None,
        sequence: int | None = None,
        store_replies: bool = False,
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
                if sequence is not None and (tx.last_sequence or -1) > sequence:
                    # An older update arriving after a newer one was applied (Telegram opens up
                    # to 40 webhook connections): not applied over it, and the user is told.
                    log.info("update %s of %s arrived after a later one", sequence, key.channel)
                    # A press of a button is judged by the question it names: an older one
                    # was for an earlier question, and is refused quietly, like a double tap.
                    told = [] if answers is not None else [Reply(render("out_of_order"))]
                    if store_replies and delivery_id is not None:
                        self._store_replies(tx, key, delivery_id, told)
                    return told
                inbound = Inbound(text, answers)
                step = self._run(
                    tx,
                    lambda reads, ctx: self.assistant.resume(
                        tx.state, inbound, reads, ctx, upload
                    ),
                    sequence=sequence,
                )
                if store_replies and delivery_id is not None:
                    self._store_replies(tx, key, delivery_id, step.replies)
                if keep_answer and delivery_id is not None:
                    sealed = self.store.sealer.seal(dump_replies(step.replies))
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
        return Repeat(tuple(load_replies(self.store.sealer.open(sealed))))

    def _store_replies(
        self, tx: ConversationTx, key: ConversationKey, delivery_id: str, replies: list[Reply]
    ) -> None:
        """The replies, with the step, one outbox row each: the channel takes each just before
        sending it; what it never takes (the process died after the commit), the dispatcher
        delivers once due, in order."""
        if not replies:
            return
        outbox.enqueue(
            tx.connection,
            self.store.sealer,
            [
                outbox.OutboxMessage(
                    idempotency_key=reply_key(key.channel, reply_part(delivery_id, index)),
                    channel=key.channel,
                    recipient_id=key.user_id,
                    text=dump_replies([reply]),
                    kind="reply",
                    delay=REPLY_GRACE,
                )
                for index, reply in enumerate(replies)
            ],
            now=self.assistant.engine.clock(),
        )

    def _run(
        self,
        tx: ConversationTx,
        core: Callable[[StoreReads, Context], Step],
        *,
        sequence: int | None = None,
    ) -> Step:
        """Step the core on the transaction, apply its effects (or its answer to a refusal),
        save the state."""
        now = self.assistant.engine.clock()
        ctx = Context(now=now, new_code=self.new_code)
        step = core(self._reads(tx, now), ctx)
        try:
            if step.effects:  # most steps have none: no savepoint, no writer
                with tx.connection.begin_nested():
                    self._writer(tx, now).apply(step.effects)
        except Refusal as refusal:
            log.info("step for %s refused by the writer: %s", tx.user_id, refusal.kind.value)
            step = self.assistant.refused(tx.state, refusal, self._reads(tx, now), ctx)
            self._writer(tx, now).apply(step.effects)
        if self.effects_seen is not None:
            self.effects_seen(step.effects)
        tx.save(step.state, sequence=sequence)
        return step

    def _reads(self, tx: ConversationTx, now: dt.datetime) -> StoreReads:
        return StoreReads(
            tx, self.store.sealer, self.regions, catalog=self.assistant.catalog,
            now=now, workday_end=self.workday_end,
        )  # fmt: skip

    def _writer(self, tx: ConversationTx, now: dt.datetime) -> Writer:
        return Writer(
            tx,
            self.store.sealer,
            self._reads(tx, now),
            self.assistant.catalog,
            files=self.files,
            now=now,
            planning=self.planning,
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
