"""The observability stack's files agree with each other: collector pipelines name defined
components, ports match the compose file, Prometheus and the README; Grafana's data source
uids are the dashboard's. (CI has no Docker: docker-compose.yml itself is validated against
the Compose specification's JSON schema by .ci/run, and the PromQL by test_prometheus.py.)"""

from __future__ import annotations

import json
import os
import re

import yaml
from conftest import ROOT



def load(*parts):
    with open(os.path.join(ROOT, *parts)) as fh:
        return yaml.safe_load(fh)


COLLECTOR = load("collector-config", "otelcol.yaml")
COMPOSE = load("docker-compose.yml")
PROMETHEUS = load("collector-config", "prometheus.yml")
DASHBOARD = json.load(open(os.path.join(ROOT, "collector-config", "grafana", "dashboards", "ai-generated-code.json")))
DATASOURCES = load("collector-config", "grafana", "provisioning", "datasources", "datasources.yml")
README = open(os.path.join(ROOT, "docs", "stack.md")).read()  # the stack page of the docs


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/")[0])


def published(service: str) -> set:
    return {int(str(p).split(":")[-1].split("/")[0]) for p in COMPOSE["services"][service].get("ports", [])}


def test_every_pipeline_names_defined_components_and_every_component_is_used():
    service = COLLECTOR["service"]
    used = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipeline in service["pipelines"].items():
        for kind in used:
            for component in pipeline.get(kind, []):
                assert component in COLLECTOR[kind], f"pipeline {name} names undefined {kind[:-1]} {component}"
                used[kind].add(component)
        assert pipeline["processors"][0] == "memory_limiter", "memory_limiter must come first"
    for kind, names in used.items():
        assert set(COLLECTOR[kind]) == names, f"defined but unused {kind}: {set(COLLECTOR[kind]) - names}"
    assert set(service["extensions"]) == set(COLLECTOR["extensions"])


def test_collector_ports_agree_with_compose_prometheus_and_readme():
    otlp = COLLECTOR["receivers"]["otlp"]["protocols"]
    grpc, http = port_of(otlp["grpc"]["endpoint"]), port_of(otlp["http"]["endpoint"])
    assert (grpc, http) == (4317, 4318)
    assert {grpc, http} <= published("otel-collector")
    # Jaeger: the exporter's host is the compose service, on Jaeger's OTLP gRPC port
    jaeger = COLLECTOR["exporters"]["otlp/jaeger"]["endpoint"]
    assert jaeger.split(":")[0] in COMPOSE["services"] and port_of(jaeger) == 4317
    assert COMPOSE["services"]["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    # Prometheus scrapes the collector's exporter where it listens
    exporter_port = port_of(COLLECTOR["exporters"]["prometheus"]["endpoint"])
    targets = [t for job in PROMETHEUS["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert f"otel-collector:{exporter_port}" in targets
    # the README tells which ports to open
    for service, port in (("otel-collector", 4317), ("otel-collector", 4318), ("jaeger", 16686),
                          ("prometheus", 9090), ("grafana", 3000)):
        assert port in published(service), (service, port)
        assert re.search(rf"\b{port}\b", README), f"README does not mention port {port}"


def test_compose_mounts_the_files_of_this_repository():
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert os.path.exists(os.path.join(ROOT, source)), source
    assert os.path.exists(os.path.join(ROOT, COMPOSE["services"]["example-app"]["build"]["dockerfile"]))
    assert PROMETHEUS["rule_files"] == ["alert-rules.yml"]


def test_dashboard_refers_to_provisioned_data_sources():
    uids = {d["uid"]: d["type"] for d in DATASOURCES["datasources"]}
    assert uids == {"prometheus": "prometheus", "jaeger": "jaeger"}
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert uids[panel["datasource"]["uid"]] == panel["datasource"]["type"]
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
