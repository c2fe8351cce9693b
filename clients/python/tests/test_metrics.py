"""`/metrics` of the real binary, read by the reference parsers of the Python prometheus_client
(pinned in scripts/requirements-test.txt): the Prometheus text format by default, OpenMetrics
when asked for, each parsed strictly, with the same metric families and types."""

from __future__ import annotations

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from akidb_client import Client

# What Prometheus 2.x/3.x sends.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def _families(parse, text):
    return {f.name: f for f in parse(text)}


def test_metrics_parse_in_both_formats(server, name):
    with Client(server.url) as db:
        db.create_collection(name, dimension=2, metric="l2")
        db.upsert(name, ids=["a"], vectors=[[1.0, 2.0]])
        db.search(name, [1.0, 2.0], k=1)
    httpx.get(f"{server.url}/api/v1/collections/nope-{name}")  # a 404: an error by code

    plain = httpx.get(f"{server.url}/metrics")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    prom = _families(parse_prometheus, plain.text)

    om = httpx.get(f"{server.url}/metrics", headers={"accept": PROMETHEUS_ACCEPT})
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.endswith("# EOF\n")
    open_metrics = _families(parse_openmetrics, om.text)

    # The same families in both, with the same types (the Prometheus text format has no info
    # type: an info metric is a gauge named with _info there).
    def base(n):
        for suffix in ("_total", "_info"):
            if n.endswith(suffix):
                return n[: -len(suffix)]
        return n

    assert {base(n) for n in prom} == set(open_metrics)
    for n, f in prom.items():
        om_type = open_metrics[base(n)].type
        assert f.type == ("gauge" if om_type == "info" else om_type), (n, f.type, om_type)
    types = {n: f.type for n, f in open_metrics.items()}
    for n, t in {
        "akidb_http_requests": "counter",
        "akidb_http_request_duration_seconds": "histogram",
        "akidb_http_errors": "counter",
        "akidb_http_requests_in_flight": "gauge",
        "akidb_uploads": "counter",
        "akidb_wal_live_bytes": "gauge",
        "akidb_wal_budget_bytes": "gauge",
        "akidb_object_store_requests": "counter",
        "akidb_tier_collections": "gauge",
        "akidb_build": "info",
        "process_cpu_seconds": "counter",
        "process_resident_memory_bytes": "gauge",
    }.items():
        assert types.get(n) == t, (n, types.get(n))

    def samples(fams, fam, **labels):
        return [s for s in fams[fam].samples if all(s.labels.get(k) == v for k, v in labels.items())]

    # Values agree with what was done: the search was counted, the 404 by its code.
    searched = samples(open_metrics, "akidb_http_requests", route="/api/v1/collections/{name}/search", status="200")
    assert searched and searched[0].value >= 1
    not_found = samples(open_metrics, "akidb_http_errors", code="collection_not_found")
    assert not_found and not_found[0].value >= 1
    assert samples(open_metrics, "process_resident_memory_bytes")[0].value > 1_000_000
    assert samples(open_metrics, "akidb_build")[0].labels["version"]
    assert samples(prom, "akidb_wal_budget_bytes")[0].value > 0
