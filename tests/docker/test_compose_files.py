"""The compose and stack files, read the way Compose reads them: `docker compose config`
accepts them, so does the Compose Specification's JSON schema (the one the installed Compose
binary validates with), and the deployment's invariants hold (health checks, limits, grace
periods, restart policies, no published database port, anchors, pinned images, the Grafana
contract, the Swarm rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.docker.engine import COMPOSE_FILE, REPO_ROOT, STACK_FILE, docker, require_compose

SMALL_FILE = REPO_ROOT / "docker-compose.small.yml"
DB_PORT_FILE = REPO_ROOT / "docker-compose.db-port.yml"
COLLECTORS = ("ws-collector-eth", "ws-collector-btc", "rest-collector", "funding-collector")
LONG_RUNNING = (*COLLECTORS, "timescaledb", "grafana", "backup")
PASSWORDS = {
    "POSTGRES_PASSWORD": "db-secret-1",
    "GRAFANA_ADMIN_PASSWORD": "admin-secret-2",
    "GRAFANA_DB_PASSWORD": "reader-secret-3",
}
NAS_BUDGET_MB = 2816  # what the compose file promises a 4 GB NAS (2.75 GB)
SMALL_BUDGET_MB = 1100
DRAIN_DEADLINE_S = 20.0  # DRAIN_DEADLINE_S's default (scripts/config.py)
DIGEST = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


def compose_config(files: list[Path], env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    require_compose()
    env_file = tmp_path / "config.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    args = ["compose", "--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(f)]
    out = docker(*args, "config", "--format", "json", timeout=120).stdout
    return dict(json.loads(out))


def compose_schema() -> dict[str, Any]:
    """The Compose Specification schema embedded in the installed Compose binary (compose-go's
    compose_spec.json, exactly what `docker compose` validates with)."""
    require_compose()
    path = docker("info", "--format", "{{json .ClientInfo.Plugins}}", check=False).stdout
    plugins = json.loads(path) if path.strip().startswith("[") else []
    binaries = [p["Path"] for p in plugins if p.get("Name") == "compose"]
    assert binaries, f"no compose plugin in {plugins}"
    data = Path(binaries[0]).read_bytes()
    at = data.find(b'"$id": "compose_spec.json"')
    assert at > 0, "compose_spec.json is not embedded in the compose binary"
    start = data.rfind(b"{", 0, at)
    schema, _ = json.JSONDecoder().raw_decode(
        data[start : start + 500_000].decode("utf-8", "replace")
    )
    return dict(schema)


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validates with the draft the schema names (draft 7; its `$schema` spells the URL in a
    form jsonschema does not look up by itself)."""
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator(schema).validate(instance)


def mb(value: Any) -> float:
    return int(value) / (1 << 20)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return compose_schema()


@pytest.fixture
def main(tmp_path: Path) -> dict[str, Any]:
    return compose_config([COMPOSE_FILE], PASSWORDS, tmp_path)


@pytest.mark.parametrize(
    "path", [COMPOSE_FILE, SMALL_FILE, DB_PORT_FILE, STACK_FILE], ids=lambda p: p.name
)
def test_the_compose_specification_schema_accepts_the_file(
    path: Path, schema: dict[str, Any]
) -> None:
    assert schema.get("title") == "Compose Specification"
    bogus = {"services": {"x": {"image": "a", "restart_policy": "always", "mem_limit": []}}}
    assert not jsonschema.Draft7Validator(schema).is_valid(bogus)  # the check can fail
    validate(yaml.safe_load(path.read_text()), schema)


def test_docker_compose_config_accepts_each_combination(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    for files in ([COMPOSE_FILE], [COMPOSE_FILE, SMALL_FILE], [COMPOSE_FILE, DB_PORT_FILE]):
        resolved = compose_config(files, {**PASSWORDS, "POSTGRES_PUBLISH_PORT": "15432"}, tmp_path)
        validate(resolved, schema)
    stack = compose_config([STACK_FILE], {"DATABASE_URL": "postgresql://u@db/x"}, tmp_path)
    validate(stack, schema)


@pytest.mark.parametrize("missing", sorted(PASSWORDS))
def test_the_stack_refuses_to_start_without_each_password(missing: str, tmp_path: Path) -> None:
    require_compose()
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in PASSWORDS.items() if k != missing))
    proc = docker(
        "compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", check=False
    )
    assert proc.returncode != 0
    assert f"required variable {missing} is missing a value: set {missing} in .env" in proc.stderr


def test_services_are_healthchecked_limited_and_restarted(main: dict[str, Any]) -> None:
    services = main["services"]
    assert set(services) == {*LONG_RUNNING, "migrate"}
    for name in LONG_RUNNING:
        s = services[name]
        assert s["restart"] == "unless-stopped", name
        assert s["healthcheck"].get("test") and not s["healthcheck"].get("disable"), name
        assert s["logging"] == {
            "driver": "json-file",
            "options": {"max-size": "10m", "max-file": "5"},
        }, name
        assert "cpus" not in s and "cpu_count" not in s and "deploy" not in s, name
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["python", "-m", "scripts.migrate"]
    budget = sum(mb(services[n]["mem_limit"]) for n in LONG_RUNNING)
    assert budget <= NAS_BUDGET_MB, f"{budget} MB"
    assert "= 2752 MB" in COMPOSE_FILE.read_text() and budget == 2752
    assert f"limits add up to {budget:.0f} MB" in (REPO_ROOT / "DEPLOYMENT_GUIDE.md").read_text()


def test_collectors_wait_for_the_database_and_migration_and_outlast_the_drain(
    main: dict[str, Any],
) -> None:
    for name in COLLECTORS:
        s = main["services"][name]
        assert s["depends_on"]["timescaledb"]["condition"] == "service_healthy"
        assert s["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        grace = float(s["stop_grace_period"].rstrip("s").replace("1m0", "60"))
        assert grace > float(s["environment"]["DRAIN_DEADLINE_S"] or DRAIN_DEADLINE_S)
        assert s["healthcheck"]["test"] == ["CMD", "python", "-m", "scripts.healthcheck"]
        assert s["healthcheck"]["start_period"]
        assert s["environment"]["COLLECTOR_NAME"]
        assert s["volumes"][0]["target"] == "/var/lib/chaintape/spool"
    assert main["services"]["ws-collector-eth"]["environment"]["CURRENCY"] == "ETH"


def test_the_database_is_pinned_tuned_and_not_published_by_default(main: dict[str, Any]) -> None:
    db = main["services"]["timescaledb"]
    assert DIGEST.match(db["image"]) and ":2." in db["image"] and "-pg17@" in db["image"]
    assert "ports" not in db
    assert {"TS_TUNE_MEMORY", "TS_TUNE_NUM_CPUS"} <= set(db["environment"])
    assert db["healthcheck"]["test"][1].startswith("pg_isready -h 127.0.0.1")
    assert db["volumes"][0]["type"] == "volume"  # a named volume, not a bind mount


def test_the_database_port_when_published_is_bound_to_loopback(tmp_path: Path) -> None:
    env = {**PASSWORDS, "POSTGRES_PUBLISH_PORT": "15432"}
    cfg = compose_config([COMPOSE_FILE, DB_PORT_FILE], env, tmp_path)
    (port,) = cfg["services"]["timescaledb"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "15432", 5432)


def test_grafana_contract(main: dict[str, Any], tmp_path: Path) -> None:
    g = main["services"]["grafana"]
    assert DIGEST.match(g["image"]) and re.match(r"grafana/grafana:1[12]\.", g["image"])
    env = g["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORDS["GRAFANA_ADMIN_PASSWORD"]
    assert (env["GF_AUTH_ANONYMOUS_ENABLED"], env["GF_USERS_ALLOW_SIGN_UP"]) == ("false", "false")
    assert env["GRAFANA_DB_HOST"] == "timescaledb:5432"
    assert env["GRAFANA_DB_PASSWORD"] == PASSWORDS["GRAFANA_DB_PASSWORD"]
    assert {"GRAFANA_DB_NAME", "GRAFANA_DB_USER"} <= set(env)
    mounts = {(v["target"], v.get("read_only", False)) for v in g["volumes"] if v["type"] == "bind"}
    assert mounts == {("/etc/grafana/provisioning", True), ("/var/lib/grafana/dashboards", True)}
    for sub in ("provisioning/datasources", "provisioning/dashboards", "provisioning/alerting"):
        assert (REPO_ROOT / "grafana" / sub).is_dir()
    cfg = compose_config([COMPOSE_FILE], {**PASSWORDS, "GRAFANA_PORT": "3999"}, tmp_path)
    assert cfg["services"]["grafana"]["ports"][0]["published"] == "3999"


def test_a_collector_is_a_few_lines_thanks_to_anchors() -> None:
    text = COMPOSE_FILE.read_text()
    for anchor in ("&logging", "&chaintape-env", "&chaintape", "&collector"):
        assert anchor in text
    block = re.search(r"^  ws-collector-eth:\n((?:    .*\n)+)", text, re.M)
    assert block and block.group(1).count("\n") <= 8
    assert "<<: *collector" in block.group(1)


def test_the_reduced_profile_is_smaller_and_grafana_optional(tmp_path: Path) -> None:
    cfg = compose_config([COMPOSE_FILE, SMALL_FILE], PASSWORDS, tmp_path)
    services = cfg["services"]
    assert "grafana" not in services  # behind a profile
    assert services["ws-collector-eth"]["environment"]["TOP_N_INSTRUMENTS"] == "100"
    budget = sum(mb(services[n]["mem_limit"]) for n in (*COLLECTORS, "timescaledb"))
    assert budget <= SMALL_BUDGET_MB, f"{budget} MB"


def test_the_swarm_stack_spreads_one_replica_per_currency_with_secrets(tmp_path: Path) -> None:
    raw = yaml.safe_load(STACK_FILE.read_text())
    cfg = compose_config([STACK_FILE], {"DATABASE_URL": "postgresql://u@db/x"}, tmp_path)
    assert "timescaledb" not in cfg["services"]  # an external database
    assert cfg["secrets"]["chaintape_db_password"]["external"] is True
    for name, s in raw["services"].items():
        assert not {"build", "container_name", "restart", "depends_on"} & set(s), name
        deploy = s["deploy"]
        assert deploy["replicas"] == 1 and deploy["update_config"]["order"] == "stop-first"
        assert deploy["placement"]["constraints"] and deploy["resources"]["limits"]["memory"]
        assert s["stop_grace_period"] == "60s"
        assert s["environment"]["DATABASE_PASSWORD_FILE"] == "/run/secrets/chaintape_db_password"
        if name.startswith("ws-collector-"):
            assert deploy["placement"]["max_replicas_per_node"] == 1
    text = STACK_FILE.read_text()
    assert "multi-node is discontinued" in text
