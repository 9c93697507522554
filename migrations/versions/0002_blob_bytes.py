"""Move file bytes from ``blobs.data`` to their own table, ``blob_bytes``.

On SQLite a blob is written as ``zeroblob(n)`` and then filled in place (``blobopen``), which
costs no copy of the file only if the blob is the last column of its row; a row of its own also
lets ``blobs`` (size, extracted text, age) be updated without rewriting the file.

Revision ID: 0002
Revises: 0001
Create Date: 2026-06-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blob_bytes",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["blobs.sha256"],
            name=op.f("fk_blob_bytes_sha256_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob_bytes")),
    )
    op.execute("INSERT INTO blob_bytes (sha256, data) SELECT sha256, data FROM blobs")
    # A plain ALTER also on SQLite (3.35+): batch mode would rebuild blobs by dropping it, and
    # with foreign keys on that drop cascades to the blob_bytes rows just copied.
    op.drop_column("blobs", "data")


def downgrade() -> None:
    op.add_column("blobs", sa.Column("data", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE blobs SET data = "
        "(SELECT blob_bytes.data FROM blob_bytes WHERE blob_bytes.sha256 = blobs.sha256)"
    )
    op.drop_table("blob_bytes")
    # 0001 has no row without bytes; none should exist, but NOT NULL below would fail on one.
    op.execute("DELETE FROM blobs WHERE data IS NULL")
    # SQLite cannot add NOT NULL to a column in place; batch mode rebuilds the table (nothing
    # references blobs any more), with the columns back in 0001's order.
    with op.batch_alter_table(
        "blobs", partial_reordering=[("sha256", "data", "size", "extracted_text", "created_at")]
    ) as batch:
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
