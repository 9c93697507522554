"""Several instances on one database: a heartbeat per process, the turns' queue, shared budgets.

- ``instances``: one row per ``parley run`` process, its ``seen_at`` moved every few seconds.
- ``turns``: on PostgreSQL, each admitted turn from its claim until a minute after it ended —
  the conversation's queue (oldest first, one ``running``), what is needed to rebuild it
  elsewhere, and the counts the admission limits read.
- ``budget_slots`` and, on PostgreSQL, the function ``parley_take_budget``: the platforms' rate
  budgets counted for every instance at once (``bot/store/budgets.py``). One call per post or
  edit, so the check and the booking are one statement under a lock per budget key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-06-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(length=255)

# Reserve a slot on every key of one action, or on none of them. Keys are locked in one order
# (no deadlock between two actions sharing keys); slots past their end are dropped first. The
# answer lists, per key, when each slot still counting ends (seconds from now; one still
# unanswered is taken to end a window from now), this owner's own unanswered ones left out: the
# caller counts those itself.
TAKE_BUDGET = """
CREATE FUNCTION parley_take_budget(
    p_grant bigint, p_owner text, p_keys text[], p_limits int[], p_spans float8[], p_hold float8
) RETURNS TABLE (granted boolean, key text, ends float8[])
LANGUAGE plpgsql AS $$
DECLARE
    now_ float8 := extract(epoch FROM clock_timestamp());
    k text;
    used int;
    ok boolean := true;
BEGIN
    FOR k IN SELECT DISTINCT u FROM unnest(p_keys) AS u ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('parley-budget:' || k, 0));
    END LOOP;
    DELETE FROM budget_slots AS b WHERE b.key = ANY (p_keys) AND b.ends_at <= now_;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        SELECT count(*) INTO used FROM budget_slots AS b WHERE b.key = p_keys[i];
        IF used >= p_limits[i] THEN
            ok := false;
        END IF;
    END LOOP;
    IF ok THEN
        INSERT INTO budget_slots (key, grant_id, owner, span, ends_at, held)
        SELECT u.k, p_grant, p_owner, u.s, now_ + u.s + p_hold, true
        FROM unnest(p_keys, p_spans) AS u (k, s);
    END IF;
    RETURN QUERY
    SELECT ok, u.k, ARRAY(
        SELECT CASE WHEN b.held THEN b.span ELSE b.ends_at - now_ END AS ends_in
        FROM budget_slots AS b
        WHERE b.key = u.k AND NOT (b.held AND b.owner = p_owner)
        ORDER BY ends_in
    )
    FROM unnest(p_keys) AS u (k);
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("process", Name, nullable=False),
        sa.Column("name", Name, nullable=True),
        sa.Column("host", Name, nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("platforms", Name, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("process", name=op.f("pk_instances")),
    )
    op.create_index(op.f("ix_instances_seen_at"), "instances", ["seen_at"])
    op.create_table(
        "turns",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("event_id", Name, nullable=False),
        sa.Column("conversation", sa.Text(), nullable=False),
        sa.Column("workspace", Name, nullable=False),
        sa.Column("channel", Name, nullable=False),
        sa.Column("author", Name, nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("owner", Name, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin", sa.JSON(), nullable=True),
        sa.Column("revived", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "event_id", name=op.f("pk_turns")),
    )
    op.create_index(op.f("ix_turns_conversation_state"), "turns", ["conversation", "state"])
    op.create_index(op.f("ix_turns_owner"), "turns", ["owner"])
    op.create_index(op.f("ix_turns_author"), "turns", ["author"])
    op.create_index(op.f("ix_turns_state_queued_at"), "turns", ["state", "queued_at"])
    op.create_table(
        "budget_slots",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", Name, nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", Name, nullable=False),
        sa.Column("span", sa.Float(), nullable=False),
        sa.Column("ends_at", sa.Float(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_slots")),
    )
    op.create_index(op.f("ix_budget_slots_key_ends_at"), "budget_slots", ["key", "ends_at"])
    op.create_index(op.f("ix_budget_slots_grant_id"), "budget_slots", ["grant_id"])
    op.create_index(op.f("ix_budget_slots_owner"), "budget_slots", ["owner"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(TAKE_BUDGET)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS parley_take_budget(bigint, text, text[], int[], float8[], float8)"
        )
    op.drop_index(op.f("ix_budget_slots_owner"), table_name="budget_slots")
    op.drop_index(op.f("ix_budget_slots_grant_id"), table_name="budget_slots")
    op.drop_index(op.f("ix_budget_slots_key_ends_at"), table_name="budget_slots")
    op.drop_table("budget_slots")
    op.drop_index(op.f("ix_turns_state_queued_at"), table_name="turns")
    op.drop_index(op.f("ix_turns_author"), table_name="turns")
    op.drop_index(op.f("ix_turns_owner"), table_name="turns")
    op.drop_index(op.f("ix_turns_conversation_state"), table_name="turns")
    op.drop_table("turns")
    op.drop_index(op.f("ix_instances_seen_at"), table_name="instances")
    op.drop_table("instances")
