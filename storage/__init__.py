"""SQLModel tables and the conversation store: SQLite by default, PostgreSQL to scale out."""

from storage.store import ConversationTx, Store, StoreError
from storage.tables import SelfCheckResult

__all__ = ["ConversationTx", "SelfCheckResult", "Store", "StoreError"]
