"""The history store: conversations, messages, replies, files, processed events and usage."""

from bot.store.db import StoreError, downgrade, downgrade_async, upgrade, upgrade_async
from bot.store.repo import (
    AttachmentRecord,
    ConversationRow,
    ModelTotals,
    Store,
    StoredAttachment,
    StoredBlob,
    StoredMessage,
    StreamingReply,
    Totals,
)

__all__ = [
    "AttachmentRecord",
    "ConversationRow",
    "ModelTotals",
    "Store",
    "StoreError",
    "StoredAttachment",
    "StoredBlob",
    "StoredMessage",
    "StreamingReply",
    "Totals",
    "downgrade",
    "downgrade_async",
    "upgrade",
    "upgrade_async",
]
