"""Typed values out of an environment mapping, every problem collected (for `config`).

`config.load_settings` hands the environment in; nothing here looks at `os.environ`. Secrets may
come from a file instead (Docker secrets): NAME_FILE=/run/secrets/<name>.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts.currencies import KNOWN_CURRENCIES, CurrencySpec, currency_spec

PLACEHOLDER_PASSWORDS = frozenset({"", "changeme", "change-me", "password", "postgres", "admin"})
SECRET_FILE_VARIABLES = ("DATABASE_URL", "DATABASE_PASSWORD", "GRAFANA_DB_PASSWORD")
MIN_GRAFANA_PASSWORD_LENGTH = 12
# Compression runs after 2 days and the hourly trade bars refresh the last 3 days.
MIN_RETENTION_DAYS = 7

T = TypeVar("T")


class EnvReader:
    """Reads typed values from an environment mapping, collecting every problem."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if name in SECRET_FILE_VARIABLES:
            value = self._from_file(name, value)
        return None if value is None or value.strip() == "" else value.strip()

    def _from_file(self, name: str, value: str | None) -> str | None:
        """NAME_FILE's content (Docker secrets) when NAME itself is not set."""
        path = (self.env.get(f"{name}_FILE") or "").strip()
        if not path:
            return value
        if value is not None and value.strip():
            self.problems.append(f"{name} and {name}_FILE are both set: keep one")
            return value
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            self.problems.append(f"{name}_FILE={path!r} cannot be read: {exc.strerror}")
            return None

    def parse(self, name: str, default: T, convert: Callable[[str], T], rule: str) -> T:
        text = self.raw(name)
        if text is None:
            return default
        try:
            return convert(text)
        except (ValueError, KeyError) as exc:
            detail = str(exc.args[0]) if isinstance(exc, KeyError) else rule
            self.problems.append(f"{name}={text!r}: {detail}")
            return default

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        def convert(text: str) -> float:
            value = float(text)
            if not value >= minimum or value != value or value in (float("inf"),):
                raise ValueError
            return value

        return self.parse(name, default, convert, f"must be a number >= {minimum:g}")

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        def convert(text: str) -> int:
            value = int(text)
            if value < minimum:
                raise ValueError
            return value

        return self.parse(name, default, convert, f"must be a whole number >= {minimum}")

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        def convert(text: str) -> str:
            if not re.match(rf"^({'|'.join(schemes)})://[^/\s]+", text):
                raise ValueError
            return text.rstrip("/")

        return self.parse(
            name, default, convert, f"must be a URL starting with {'/'.join(schemes)}://"
        )


def database_url(reader: EnvReader, required: bool) -> tuple[str, list[str]]:
    text = reader.raw("DATABASE_URL")
    if text is None:
        if required:
            reader.problems.append(
                "DATABASE_URL is not set: e.g. postgresql://chaintape:<password>@timescaledb:5432/chaintape"
            )
        return "", []
    try:
        parts = conninfo_to_dict(text)
    except Exception as exc:  # psycopg raises ProgrammingError with libpq's reason
        masked = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", text)
        reader.problems.append(f"DATABASE_URL={masked!r} is malformed: {str(exc).strip()}")
        return "", []
    is_url = "://" in text
    if is_url and not re.match(r"^postgres(ql)?://", text):
        reader.problems.append("DATABASE_URL must start with postgresql:// (or postgres://)")
    port = str(parts.get("port") or "")
    if port and not all(p.isdigit() and 0 < int(p) < 65536 for p in port.split(",")):
        reader.problems.append(f"DATABASE_URL: port {port!r} must be a number from 1 to 65535")
    password = parts.get("password")
    separate = reader.raw("DATABASE_PASSWORD")
    if separate is not None:
        if password:
            reader.problems.append(
                "DATABASE_URL has a password and DATABASE_PASSWORD is set: keep one"
            )
        text, password = with_password(text, separate, is_url), separate
    return text, [str(password)] if password else []


def with_password(text: str, password: str, is_url: bool) -> str:
    """DATABASE_URL with DATABASE_PASSWORD put in (URL-encoded in a URL)."""
    if not is_url:
        return make_conninfo(text, password=password)
    scheme, rest = text.split("://", 1)
    user_host, sep, tail = rest.partition("/")
    user, at, host = user_host.rpartition("@")
    if not at:
        user, host = "", user_host
    auth = f"{user}:{quote(password, safe='')}@"
    return f"{scheme}://{auth}{host}{sep}{tail}"


def currencies(reader: EnvReader, need: str) -> tuple[CurrencySpec, ...]:
    raw = reader.raw("CURRENCIES") if need == "many" else None
    source = "CURRENCIES"
    if raw is None:
        raw = reader.raw("CURRENCY")
        source = "CURRENCY"
    if raw is None and need == "many":
        raw, source = "BTC,ETH", "CURRENCIES"
    if raw is None:
        if need == "one":
            known = ", ".join(KNOWN_CURRENCIES)
            reader.problems.append(f"CURRENCY is not set: one of {known}")
        return ()
    specs: list[CurrencySpec] = []
    names = [c for c in raw.split(",") if c.strip()]
    if source == "CURRENCY" and len(names) > 1:
        # A per-currency collector would record only the first: refuse rather than guess.
        reader.problems.append(
            f"CURRENCY={raw!r} names {len(names)} currencies: it takes one currency; "
            "list several in CURRENCIES (collect_realtime, migrate) or run one collector each"
        )
        return ()
    for code in names:
        try:
            spec = currency_spec(code)
        except KeyError as exc:
            reader.problems.append(f"{source}: {exc.args[0]}")
            continue
        if spec not in specs:
            specs.append(spec)
    if not specs and not any("unknown currency" in p for p in reader.problems):
        reader.problems.append(f"{source}={raw!r} names no currency")
    return tuple(specs)


def retention_days(reader: EnvReader) -> int:
    def convert(text: str) -> int:
        value = int(text)
        if value < 0 or 0 < value < MIN_RETENTION_DAYS:
            raise ValueError
        return value

    rule = (
        f"use 0 (keep everything) or at least {MIN_RETENTION_DAYS} days (chunks are compressed "
        "after 2 days and the hourly trade bars refresh the last 3 days)"
    )
    return reader.parse("RETENTION_DAYS", 0, convert, rule)


def check_grafana_password(reader: EnvReader, password: str) -> None:
    """The read-only role's password: no placeholder, long enough (the value is never echoed)."""
    advice = "e.g. from `openssl rand -base64 18`"
    if password.strip().lower() in PLACEHOLDER_PASSWORDS:
        reader.problems.append(
            "GRAFANA_DB_PASSWORD is a placeholder (e.g. 'changeme'): set a real password of at "
            f"least {MIN_GRAFANA_PASSWORD_LENGTH} characters, {advice}"
        )
    elif len(password) < MIN_GRAFANA_PASSWORD_LENGTH:
        reader.problems.append(
            f"GRAFANA_DB_PASSWORD is {len(password)} characters long: use at least "
            f"{MIN_GRAFANA_PASSWORD_LENGTH}, {advice}"
        )


def one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError
    return value


def identifier(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ValueError
    return value


def cron(value: str) -> str:
    from croniter import croniter

    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError
    return value


def sim_clock(value: str) -> str:
    wall, sim, speed = (float(p) for p in value.split(":"))
    if speed <= 0 or wall <= 0 or sim <= 0:
        raise ValueError
    return value
