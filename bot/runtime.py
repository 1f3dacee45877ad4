"""The runtime shell: lock the conversation, load, step the engine, save, in one transaction."""

from __future__ import annotations

from conversations.engine import Engine, Inbound, Reply, Step
from conversations.keys import ConversationKey
from storage.store import ConversationTx, Store


class Runtime:
    """Runs the pure engine against the store; channels call `open` and `handle`."""

    def __init__(self, engine: Engine, store: Store) -> None:
        self.engine = engine
        self.store = store

    def open(self, key: ConversationKey) -> list[Reply]:
        """A user arrives (or comes back): greet them or re-ask their pending question."""
        with self.store.conversation(key) as tx:
            step = self.engine.start(tx.state)
            self._apply(tx, step)
        return step.replies

    def handle(self, key: ConversationKey, text: str) -> list[Reply]:
        """One inbound message; the new state and its results are committed before replying."""
        with self.store.conversation(key) as tx:
            step = self.engine.resume(tx.state, Inbound(text))
            self._apply(tx, step)
        return step.replies

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
