"""Alembic migrations for the history store; ``bot.store.db`` finds them via ``__file__``."""

# The newest revision. Kept here so that a process whose database is already at head can tell
# without importing Alembic (about 10 MB of resident memory); a test keeps it equal to the
# head of versions/. Bump it with every new migration.
HEAD = "0005"
