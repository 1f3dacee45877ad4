"""SQLModel tables and the conversation store: SQLite by default, PostgreSQL to scale out."""

from storage.crypto import Sealer, SealError
from storage.store import ConversationTx, SelfCheckResult, Store, StoreError

__all__ = ["ConversationTx", "SealError", "Sealer", "SelfCheckResult", "Store", "StoreError"]
