"""Logging set-up: one line per record, secrets masked in every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@\s]*)@", re.I
)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Replaces known secrets and any password in a URL or `password=` pair with ***."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}***", text)


class SecretMaskingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record), self.secrets)


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Root logger to stderr at `level`, every line passed through mask_secrets."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        SecretMaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("websockets", "aiohttp.access", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class OncePerKey:
    """Logs a message the first time a key is seen, then only counts (bad input floods)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.counts: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if n == 1:
            self.logger.warning(msg + " (further ones counted, not logged)", *args)
