"""SQLModel tables and the conversation store: SQLite by default, PostgreSQL to scale out."""

from storage.crypto import Sealer, SealError
from storage.store import ConversationTx, Store, StoredSelfCheck, StoreError

__all__ = ["ConversationTx", "SealError", "Sealer", "Store", "StoreError", "StoredSelfCheck"]
