"""Checks read from files and the Docker socket: collector status files, containers, disks."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from scripts.backups.disk import MB, days_left
from scripts.backups.files import write_atomic
from scripts.checks import Findings
from scripts.config import Settings
from scripts.healthcheck import verdict
from scripts.storage.status import STATUS_FILE_SUFFIX, read_status_file

log = logging.getLogger(__name__)

SAMPLES_FILE = ".chaintape-disk-samples.json"
KEEP_SAMPLES_S = 30 * 86400.0


def collector_files(settings: Settings, now: float) -> Findings:
    """Every collector status file under SPOOL_DIR, judged as the health check does."""
    spool = Path(settings.spool_dir)
    files = sorted(spool.glob(f"*{STATUS_FILE_SUFFIX}")) if spool.is_dir() else []
    if not files:
        return Findings(notes=[f"no collector status files in {spool}: collectors not checked"])
    found = Findings()
    for path in files:
        name = path.name[: -len(STATUS_FILE_SUFFIX)]
        try:
            reason = verdict(
                read_status_file(path),
                max_flush_age_s=settings.health_max_flush_age_s,
                max_disconnected_s=settings.health_max_disconnected_s,
                now=now,
            )
        except (OSError, ValueError) as exc:
            reason = f"status file unreadable: {exc}"
        if reason is not None:
            found.problems.append(f"collector {name} unhealthy: {reason}")
    return found


def containers(settings: Settings) -> Findings:
    """Containers of the compose project that are restarting or unhealthy (Docker SDK)."""
    host = settings.check_docker_host
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return Findings(notes=[f"Docker socket {host} not mounted: container restarts not checked"])
    try:
        import docker
    except ImportError:
        return Findings(
            [
                f"cannot read containers through {host}: the Docker SDK is not installed "
                "(pip install 'chaintape[fleet]')"
            ]
        )
    try:
        client = docker.DockerClient(base_url=host, timeout=10)
        listed = client.containers.list(
            all=True,
            filters={"label": f"com.docker.compose.project={settings.check_compose_project}"},
        )
    except Exception as exc:  # the SDK raises many kinds; any means "cannot tell"
        return Findings([f"cannot read containers through {host}: {str(exc).splitlines()[0]}"])
    found = Findings()
    for c in listed:
        state = c.attrs.get("State", {})
        service = c.labels.get("com.docker.compose.service", c.name)
        restarts = c.attrs.get("RestartCount", 0)
        if state.get("Restarting") or c.status == "restarting":
            found.problems.append(
                f"container {c.name} ({service}) is restarting (restarted {restarts} times, "
                f"last exit code {state.get('ExitCode')})"
            )
        elif (state.get("Health") or {}).get("Status") == "unhealthy":
            found.problems.append(f"container {c.name} ({service}) is unhealthy")
    if not listed:
        found.notes.append(f"no containers of compose project {settings.check_compose_project!r}")
    return found


def disks(settings: Settings, now: float | None = None) -> Findings:
    """Free space of BACKUP_DIR and the database volume: below the minimum, or running out
    within CHECK_DISK_DAYS at the growth measured between checks (kept in a samples file)."""
    now = time.time() if now is None else now
    found = Findings()
    backup_dir = Path(settings.backup_dir)
    paths = {"BACKUP_DIR": backup_dir}
    if settings.check_db_volume_path:
        paths["database volume"] = Path(settings.check_db_volume_path)
    else:
        found.notes.append("CHECK_DB_VOLUME_PATH not set: the database volume's space not checked")
    samples = _load_samples(backup_dir)
    for label, path in paths.items():
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            found.problems.append(f"{label} {path}: cannot read free space: {exc}")
            continue
        key = str(path)
        series = [s for s in samples.get(key, []) if now - s[0] <= KEEP_SAMPLES_S]
        series.append((now, int(usage.used)))
        samples[key] = series
        free_mb = usage.free / MB
        if free_mb < settings.check_min_free_mb:
            found.problems.append(
                f"{label} {path}: {free_mb:.0f} MB free, below CHECK_MIN_FREE_MB="
                f"{settings.check_min_free_mb:g}"
            )
            continue
        left = days_left(series, int(usage.free))
        if left is not None and left < settings.check_disk_days:
            found.problems.append(
                f"{label} {path}: {free_mb:.0f} MB free runs out in {left:.1f} days at the "
                f"measured growth (CHECK_DISK_DAYS={settings.check_disk_days:g})"
            )
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(backup_dir / SAMPLES_FILE, json.dumps(samples))
    except OSError as exc:
        found.notes.append(f"could not store disk samples in {backup_dir}: {exc}")
    return found


def _load_samples(backup_dir: Path) -> dict[str, list[tuple[float, int]]]:
    try:
        data = json.loads((backup_dir / SAMPLES_FILE).read_text(encoding="utf-8"))
        return {str(k): [(float(t), int(u)) for t, u in v] for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
