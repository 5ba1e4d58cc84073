"""DEPLOYMENT_GUIDE.md's fenced code blocks, for the tests that run what it tells users to do."""

from __future__ import annotations

import re

from tests.docker.engine import REPO_ROOT

GUIDE = REPO_ROOT / "DEPLOYMENT_GUIDE.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def guide_blocks(language: str | None = None) -> list[str]:
    """Every fenced block of the guide (of one language when given), in order."""
    return [body for lang, body in FENCE.findall(GUIDE.read_text()) if language in (None, lang)]


def guide_block(service: str) -> str:
    """The guide's YAML block that defines `service` (a compose service to paste in)."""
    found = [b for b in guide_blocks("yaml") if re.search(rf"^  {re.escape(service)}:$", b, re.M)]
    assert len(found) == 1, f"DEPLOYMENT_GUIDE.md has {len(found)} yaml blocks for {service}"
    return found[0]


def guide_commands() -> list[str]:
    """Every command line of the guide's `bash` blocks (comments and blank lines dropped,
    continuation lines joined)."""
    out: list[str] = []
    for block in guide_blocks("bash"):
        pending = ""
        for line in block.splitlines():
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            out.append((pending + stripped).strip())
            pending = ""
    return out


COMPOSE_PREFIX = "docker compose -f docker-compose-comprehensive.yml"


def guide_compose_commands(section: str) -> list[str]:
    """The guide's `docker compose -f docker-compose-comprehensive.yml ...` commands of one
    part ("## Part 4" ...), in order."""
    text = GUIDE.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + 1)
    part = text[start : end if end > 0 else None]
    out = []
    for lang, body in FENCE.findall(part):
        if lang == "bash":
            out += [c for c in body.splitlines() if c.startswith(COMPOSE_PREFIX)]
    return out


def as_test_command(command: str, project_args: list[str]) -> str:
    """A guide command with the test's project, env file and override in place of the plain
    `docker compose -f docker-compose-comprehensive.yml`."""
    import shlex

    assert command.startswith(COMPOSE_PREFIX), command
    return "docker compose " + shlex.join(project_args) + command[len(COMPOSE_PREFIX) :]
