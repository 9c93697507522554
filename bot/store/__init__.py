"""The history store: conversations, messages, replies, files, processed events and usage.

``Store`` holds the engine and one repository per job (see ``bot/store/store.py``).
"""

from bot.store.db import StoreError, downgrade, downgrade_async, upgrade, upgrade_async
from bot.store.rows import (
    AttachmentRecord,
    ConversationRow,
    FeedbackTotals,
    KnownMessage,
    ModelTotals,
    Overrides,
    StoredAttachment,
    StoredBlob,
    StoredCall,
    StoredMessage,
    StoredStep,
    StreamingReply,
    Totals,
    Voted,
)
from bot.store.store import Store

__all__ = [
    "AttachmentRecord",
    "ConversationRow",
    "FeedbackTotals",
    "KnownMessage",
    "ModelTotals",
    "Overrides",
    "Store",
    "StoreError",
    "StoredAttachment",
    "StoredBlob",
    "StoredCall",
    "StoredMessage",
    "StoredStep",
    "StreamingReply",
    "Totals",
    "Voted",
    "downgrade",
    "downgrade_async",
    "upgrade",
    "upgrade_async",
]
