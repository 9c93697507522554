"""Alembic migrations for the history store; ``bot.store.db`` finds them via ``__file__``."""
