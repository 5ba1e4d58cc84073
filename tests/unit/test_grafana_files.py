"""The committed Grafana files are what the code builds and are valid for the pinned Grafana:
schema version, unique panel ids, the provisioned datasource uid everywhere, the provisioning
file formats (datasources, dashboard provider, alert rules: Grafana's file provisioning docs,
apiVersion 1) and the paths the compose file mounts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from scripts.grafana.build import BUILDERS, DASHBOARD_DIR, rendered
from scripts.grafana.model import DATASOURCE, DATASOURCE_UID, SCHEMA_VERSION

GRAFANA = DASHBOARD_DIR.parent
PROVISIONING = GRAFANA / "provisioning"


def boards() -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8")) for name in BUILDERS
    }


def datasource_refs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            else:
                yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


def test_committed_dashboards_are_what_the_code_builds() -> None:
    files = sorted(p.name for p in DASHBOARD_DIR.glob("*.json"))
    assert files == sorted(BUILDERS)
    for name, text in rendered().items():
        assert (DASHBOARD_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is out of date: run python -m scripts.grafana.build"
        )


def test_dashboards_have_the_schema_version_unique_ids_and_the_provisioned_datasource() -> None:
    uids = set()
    for name, board in boards().items():
        assert board["schemaVersion"] == SCHEMA_VERSION, name
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
        refs = list(datasource_refs(board))
        assert refs and all(ref == DATASOURCE for ref in refs), name
        for p in board["panels"]:
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["rawSql"].strip() and t["rawQuery"] is True
                assert t["format"] in ("table", "time_series")
            pos = p["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
            if "repeat" in p:
                names = {v["name"] for v in board["templating"]["list"] if v["multi"]}
                assert p["repeat"] in names
        for var in board["templating"]["list"]:
            assert var["type"] == "query" and var["query"].strip()


def test_datasource_provisioning() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "chaintape.yml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == DATASOURCE["type"]
    assert ds["url"] == "${GRAFANA_DB_HOST}" and ds["user"] == "${GRAFANA_DB_USER}"
    assert ds["jsonData"]["database"] == "${GRAFANA_DB_NAME}"
    assert ds["secureJsonData"] == {"password": "${GRAFANA_DB_PASSWORD}"}
    assert ds["jsonData"]["timescaledb"] is True
    assert ds["jsonData"]["sslmode"] == "disable"
    assert ds["jsonData"]["postgresVersion"] == 1500


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "chaintape.yml").read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_alert_rules_file_format() -> None:
    docs = [yaml.safe_load(p.read_text()) for p in (PROVISIONING / "alerting").glob("*.yml")]
    (doc,) = docs
    assert doc["apiVersion"] == 1
    titles = set()
    for group in doc["groups"]:
        assert group["orgId"] == 1 and group["folder"] and group["name"]
        assert group["interval"].endswith("m")
        for rule in group["rules"]:
            titles.add(rule["title"])
            assert rule["uid"].startswith("chaintape-") and len(rule["uid"]) <= 40
            assert rule["noDataState"] in ("OK", "NoData", "Alerting", "KeepLast")
            assert rule["execErrState"] in ("OK", "Error", "Alerting", "KeepLast")
            refs = {d["refId"]: d for d in rule["data"]}
            assert rule["condition"] in refs
            for ref, query in refs.items():
                assert query["model"]["refId"] == ref
                assert set(query["relativeTimeRange"]) == {"from", "to"}
                if query["datasourceUid"] == "__expr__":
                    assert query["model"]["expression"] in refs
                    assert query["model"]["type"] in ("threshold", "reduce", "math")
                else:
                    assert query["datasourceUid"] == DATASOURCE_UID
                    assert query["model"]["rawSql"].strip()
    assert titles == {
        "Stale data",
        "Collector unhealthy",
        "Open gaps",
        "Backup failed or too old",
        "Restore test failed or too old",
    }
    example = yaml.safe_load((PROVISIONING / "alerting" / "contact-point.yml.example").read_text())
    assert example["contactPoints"][0]["receivers"][0]["type"] == "email"


def test_compose_contract_paths() -> None:
    # The grafana service mounts these folders (./grafana/provisioning and ./grafana/dashboards).
    assert Path(PROVISIONING / "datasources").is_dir()
    assert Path(PROVISIONING / "dashboards").is_dir()
    assert Path(PROVISIONING / "alerting").is_dir()
