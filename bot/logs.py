"""Logging to stderr, plain or JSON, with every configured secret masked wherever it appears."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.settings import Settings

_SECRET_FIELDS = (
    "apicore_api_key",
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "discord_bot_token",
)


MASK = "***"


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` in it replaced by ``***`` — the one rule for logs,
    error text and tool output. Give the longest first, so that a secret containing another is
    masked whole."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def secrets_of(settings: Settings) -> list[str]:
    values = []
    for name in _SECRET_FIELDS:
        secret = getattr(settings, name)
        if secret is not None and secret.get_secret_value():
            values.append(secret.get_secret_value())
    values.extend(_mcp_secrets(settings))
    return values


def _mcp_secrets(settings: Settings) -> list[str]:
    """The credentials in [mcp.NAME] tables (env and header values, URL passwords and queries)."""
    return [secret for options in settings.parley_mcp.values() for secret in options.secrets()]


class RedactSecrets(logging.Filter):
    """Masks secrets in the final message, so even a library's debug line cannot leak one."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Very short values would mask ordinary words; real tokens are long.
        self._secrets = sorted((s for s in secrets if len(s) >= 6), key=len, reverse=True)

    def redact(self, text: str) -> str:
        return mask(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = self.redact(record.getMessage())
            if record.exc_info:
                message += "\n" + self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = message, None
            for name, value in extra_fields(record).items():
                if isinstance(value, str):
                    setattr(record, name, self.redact(value))
        return True


# What every LogRecord has; anything else on a record came from ``extra={...}``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in extra_fields(record).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: Settings, *, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    if settings.parley_log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or settings.parley_log_level)
    # Libraries chatter at INFO (every HTTP request); keep them to warnings unless debugging.
    if (level or settings.parley_log_level) != "DEBUG":
        for name in ("httpx", "httpcore", "discord", "slack_bolt", "slack_sdk", "aiohttp.access", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
