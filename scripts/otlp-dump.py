#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver for looking at AkiDB's traces without a collector.

Listens on 127.0.0.1:PORT, accepts `POST /v1/traces` (protobuf, as `akidb serve
--otlp-endpoint http://127.0.0.1:PORT` sends), and appends one JSON line per span to OUT:
trace and span ids, parent, name, start and duration in ms, attributes. Stops on SIGTERM/SIGINT.
`--summary OUT` instead prints, per span name, the count and duration percentiles, and the
slowest requests with the spans under them.

    pip install opentelemetry-proto     # the protocol's own message types
    scripts/otlp-dump.py --port 4318 --out spans.jsonl &
    scripts/otlp-dump.py --summary spans.jsonl

Not a collector: no batching, no retries, no other signals. Use an OpenTelemetry Collector,
Jaeger or Tempo for anything real.
"""

import argparse
import collections
import http.server
import json
import signal
import sys


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def serve(port, out):
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    sink = open(out, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        sink.write(
                            json.dumps(
                                {
                                    "trace": s.trace_id.hex(),
                                    "span": s.span_id.hex(),
                                    "parent": s.parent_span_id.hex(),
                                    "name": s.name,
                                    "start_ms": s.start_time_unix_nano / 1e6,
                                    "ms": (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6,
                                    "attributes": {a.key: value(a.value) for a in s.attributes},
                                }
                            )
                            + "\n"
                        )
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summary(path, slowest):
    spans = [json.loads(line) for line in open(path)]
    by_name = collections.defaultdict(list)
    for s in spans:
        by_name[s["name"]].append(s["ms"])
    print("| span | count | p50 ms | p95 ms | p99 ms | max ms | total s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ms in sorted(by_name.items(), key=lambda kv: -sum(kv[1])):
        ms.sort()
        print(
            f"| {name} | {len(ms)} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.95):.2f} | "
            f"{percentile(ms, 0.99):.2f} | {ms[-1]:.2f} | {sum(ms) / 1000:.1f} |"
        )
    children = collections.defaultdict(list)
    for s in spans:
        children[s["parent"]].append(s)
    roots = [s for s in spans if "http.route" in s["attributes"]]
    roots.sort(key=lambda s: -s["ms"])

    def show(s, depth):
        attrs = {k: v for k, v in s["attributes"].items() if k in ("collection", "tier", "to", "on", "bytes", "retries", "hits")}
        print(f"{'  ' * depth}{s['name']} {s['ms']:.1f} ms {attrs if attrs else ''}")
        for c in sorted(children[s["span"]], key=lambda c: c["start_ms"]):
            show(c, depth + 1)

    for s in roots[:slowest]:
        print()
        show(s, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--out", default="spans.jsonl")
    parser.add_argument("--summary", metavar="JSONL")
    parser.add_argument("--slowest", type=int, default=5)
    args = parser.parse_args()
    if args.summary:
        summary(args.summary, args.slowest)
    else:
        serve(args.port, args.out)


if __name__ == "__main__":
    main()
