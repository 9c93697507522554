"""Tool history and pictures in usage: ``messages.tool_steps`` keeps a reply's tool loop (each
step's text, calls and capped results, replayed in later prompts of the thread), and
``usage.images`` counts the pictures tools had made, on a row per image model.

Both are plain ``ADD COLUMN`` on every backend (nullable, or with a server default), so existing
rows need no rewrite and SQLite needs no batch rebuild.

Revision ID: 0003
Revises: 0002
Create Date: 2026-06-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("tool_steps", sa.JSON(), nullable=True))
    op.add_column("usage", sa.Column("images", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    # Pictures rows carry no tokens and are no replies: without the column they would count as
    # replies of the image model.
    op.execute("DELETE FROM usage WHERE images > 0")
    op.drop_column("usage", "images")
    op.drop_column("messages", "tool_steps")
