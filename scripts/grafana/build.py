"""`python -m scripts.grafana.build [--check]`: writes grafana/dashboards/*.json from code.

`--check` writes nothing and exits 1 when a committed file differs from what the code builds
(tests/unit/test_grafana_files.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from scripts.grafana import fleet, futures, options
from scripts.grafana.model import Json

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
BUILDERS: dict[str, Callable[[], Json]] = {
    "fleet-health.json": fleet.build,
    "options.json": options.build,
    "perpetuals-futures.json": futures.build,
}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, sort_keys=False) + "\n"


def rendered() -> dict[str, str]:
    return {name: render(build()) for name, build in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.grafana.build", description=__doc__)
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    args = p.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = DASHBOARD_DIR / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}: run python -m scripts.grafana.build")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
