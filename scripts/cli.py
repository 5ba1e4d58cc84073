"""What every entry point shares: an argparse parser whose `--help` says what the command does
and lists the environment variables it reads with their defaults (taken from `scripts.config`,
never copied), and the start-up log line saying which `.env` file was read.

Unknown arguments exit 2 (argparse's usage error), like every configuration error.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable

from scripts.config import PROJECT_ROOT, Settings, env_defaults, loaded_env_file
from scripts.logs import setup_logging

log = logging.getLogger("scripts.config")

# Settings groups, by environment variable name; the defaults come from config.env_defaults().
WRITER_ENV = (
    "FLUSH_INTERVAL_MS",
    "FLUSH_MAX_ROWS",
    "WRITER_MAX_BUFFERED_ROWS",
    "DRAIN_DEADLINE_S",
    "SPOOL_DIR",
    "SPOOL_MAX_BYTES",
)
SERVICE_ENV = ("LOG_LEVEL", "COLLECTOR_NAME", "STATUS_LOG_INTERVAL_S", "SIM_CLOCK")
REST_ENV = ("DERIBIT_REST_URL", "REST_REQUESTS_PER_S", "REST_BURST")


def env_help(names: Iterable[str], *, need_currency: str = "one") -> str:
    """The `--help` epilog: one line per variable, `NAME  (default: ...)`."""
    defaults = env_defaults(need_currency)
    names = list(names)
    unknown = [n for n in names if n not in defaults]
    if unknown:  # a programming error: every listed name must be one config.py reads
        raise KeyError(f"not settings read by scripts.config: {', '.join(unknown)}")
    if not names:
        return "environment variables: none"
    width = max(len(n) for n in names)
    lines = [f"  {n.ljust(width)}  (default: {defaults[n]})" for n in names]
    return (
        "environment variables (also read from .env in the current directory, else in "
        f"{PROJECT_ROOT}; the real environment wins):\n" + "\n".join(lines)
    )


def command_parser(
    prog: str, doc: str | None, env_names: Iterable[str], *, need_currency: str = "one"
) -> argparse.ArgumentParser:
    """A parser for `python -m <prog>`: the module docstring as description, the environment
    variables it reads as epilog."""
    return argparse.ArgumentParser(
        prog=f"python -m {prog}",
        description=(doc or "").strip(),
        epilog=env_help(env_names, need_currency=need_currency),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def setup_command_logging(settings: Settings) -> None:
    """`setup_logging`, then one line saying where the settings came from."""
    setup_logging(settings.log_level, settings.secrets)
    found = loaded_env_file()
    if found is not None:
        log.info("settings: environment, then %s", found)
    else:
        log.info(
            "settings: environment only (no .env in the current directory or %s)", PROJECT_ROOT
        )
