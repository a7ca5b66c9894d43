#!/usr/bin/env python3
"""Writes the Grafana dashboards of an Isobar mesh, so that they never drift apart.

    python3 deploy/grafana/generate.py          writes the dashboards next to this script
    python3 deploy/grafana/generate.py --check  exits 1 if a checked-in dashboard differs from what it would write

isobar-mesh.json shows the whole mesh, broken down by region. isobar-region-REGION.json shows the same panels
for the nodes of one region (every series filtered to region="REGION"), then per-node and per-backend detail.
The `region` and `node` labels are the target labels the scrape jobs of deploy/prometheus/prometheus.yml attach.
Every panel reads the data source chosen in the dashboard's `datasource` variable.

Standard library only; the output depends on nothing but this file.
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The regions of the deploy examples (deploy/compose.yaml, deploy/kubernetes): one dashboard each.
REGIONS = ("eu-west", "us-east", "ap-south")

# The scrape jobs of deploy/prometheus/prometheus.yml, for `up`.
ISOBAR_JOBS = 'job=~"isobar|isobar-kubernetes"'
RATE_WINDOW = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# The p99 TTFT SLO is a recording rule of deploy/prometheus/alerts.yml; the TTFT panels draw it as a line.
SLO_SERIES = "isobar:ttft_p99_slo_seconds"
# The 5xx ratio above which IsobarHighErrorRatio fires (deploy/prometheus/alerts.yml), drawn as a line.
ERROR_RATIO_ALERT = 0.05

BREAKER_STATES = [
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green", "index": 0},
            "1": {"text": "half-open", "color": "yellow", "index": 1},
            "2": {"text": "open", "color": "red", "index": 2},
        },
    }
]
UP_STATES = [
    {
        "type": "value",
        "options": {
            "0": {"text": "down", "color": "red", "index": 0},
            "1": {"text": "up", "color": "green", "index": 1},
        },
    }
]


# MARK: - Queries


def eq(label, value):
    return f'{label}="{value}"'


def matches(label, pattern):
    return f'{label}=~"{pattern}"'


def aggregate(op, by, expr):
    """`op by (by) (expr)`, or `op(expr)` when `by` is empty."""
    return f"{op} by ({by}) ({expr})" if by else f"{op}({expr})"


def share(part, whole):
    """`part / whole`, 0 rather than no data while `part` has no series yet (a counter appears at its first
    increment)."""
    return f"({part} or {whole} * 0) / {whole}"


class Scope:
    """Builds the selectors of one dashboard: every series, or those of one region's nodes."""

    def __init__(self, region=None):
        self.region = region

    def sel(self, metric, *matchers):
        """`metric{matchers}`, with the region's matcher added when the scope is one region."""
        labels = list(matchers)
        if self.region is not None:
            labels.append(eq("region", self.region))
        return f"{metric}{{{','.join(labels)}}}" if labels else metric

    def rate(self, metric, *matchers):
        return f"rate({self.sel(metric, *matchers)}[{RATE_WINDOW}])"

    def up(self):
        """`up` of the Isobar scrape jobs."""
        return self.sel("up", ISOBAR_JOBS)

    def ratio_5xx(self, by):
        """The share of requests answered with a 5xx status, by `by`."""
        failed = aggregate("sum", by, self.rate("isobar_requests_total", matches("status", "5..")))
        return share(failed, aggregate("sum", by, self.rate("isobar_requests_total")))

    def quantile(self, q, histogram, by):
        """The q-quantile of `histogram` (its base name), by `by`."""
        group = f"{by}, le" if by else "le"
        return f"histogram_quantile({q}, sum by ({group}) ({self.rate(histogram + '_bucket')}))"


def target(expr, legend, instant=False):
    return {"expr": expr, "legendFormat": legend, "instant": instant}


def grouped(op, by, expr, legend):
    """A query of `op by (by) (expr)`."""
    return target(aggregate(op, by, expr), legend)


# MARK: - Panels


def timeseries(title, description, targets, unit="short", width=8, maximum=None, threshold=None, dashed=()):
    """A time series panel. `threshold` draws a red line at that value; series named in `dashed` are drawn
    as dashed red lines (an SLO)."""
    steps = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    defaults = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if threshold is not None else "off"},
        },
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if maximum is not None:
        defaults["max"] = maximum
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            ],
        }
        for name in dashed
    ]
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "width": width,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
    }


def state_timeline(title, description, targets, mappings, width=12):
    """A state timeline: one lane per series, coloured by the value mappings."""
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "width": width,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "thresholds"},
                "mappings": mappings,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "text", "value": None}],
                },
                "custom": {"fillOpacity": 80, "lineWidth": 0},
            },
            "overrides": [],
        },
        "options": {
            "mergeValues": True,
            "showValue": "never",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        "targets": targets,
    }


def stat(title, description, expr, unit="short", steps=None, decimals=None, colour=True):
    """A single number; with `colour`, its background is coloured by `steps` ((value, colour) pairs above the
    green base)."""
    defaults = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}]
            + [{"color": colour, "value": value} for value, colour in steps or ()],
        },
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "width": 4,
        "height": 4,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background" if colour else "none",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
        "targets": [target(expr, "")],
    }


def bar_gauge(title, description, targets, width=12):
    """Horizontal bars of the latest value of each series, as a fraction of 1."""
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "width": width,
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "min": 0,
                "max": 1,
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "orange", "value": 0.9},
                        {"color": "red", "value": 1},
                    ],
                },
            },
            "overrides": [],
        },
        "options": {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
        },
        "targets": targets,
    }


# MARK: - Sections


def overview(s):
    return (
        "Overview",
        [
            stat(
                "Nodes up",
                "Nodes Prometheus scraped successfully at the last scrape.",
                f"sum({s.up()})",
                colour=False,
            ),
            stat(
                "Requests per second",
                "Requests answered by the nodes, every status.",
                f'sum({s.rate("isobar_requests_total")})',
                unit="reqps",
                colour=False,
            ),
            stat(
                "5xx ratio",
                "Share of the requests answered with a 5xx status. IsobarHighErrorRatio fires over 5% per region.",
                s.ratio_5xx(""),
                unit="percentunit",
                steps=[(0.01, "orange"), (ERROR_RATIO_ALERT, "red")],
                decimals=2,
            ),
            stat(
                "TTFT p99",
                "99th percentile of the time to first token, every model.",
                s.quantile(0.99, "isobar_time_to_first_token_seconds", ""),
                unit="s",
                colour=False,
            ),
            stat(
                "Backends open somewhere",
                "Backends whose breaker is open (or that are paused) on at least one node.",
                f'count(max by (backend) ({s.sel("isobar_endpoint_breaker")}) == 2) or vector(0)',
                steps=[(1, "red")],
            ),
            stat(
                "Nodes without limit store",
                "Nodes that cannot reach the shared Redis limit store and count limits on their own.",
                f'count({s.sel("isobar_limit_store_up")} == 0) or vector(0)',
                steps=[(1, "red")],
            ),
        ],
    )


def traffic(s):
    return (
        "Traffic",
        [
            timeseries(
                "Requests per second by region",
                "Requests answered by the nodes of each region, every status.",
                [target(f'sum by (region) ({s.rate("isobar_requests_total")})', "{{region}}")],
                unit="reqps",
            ),
            timeseries(
                "5xx ratio by region",
                "Share of each region's requests answered with a 5xx status; the red line is the threshold of "
                "IsobarHighErrorRatio.",
                [target(s.ratio_5xx("region"), "{{region}}")],
                unit="percentunit",
                threshold=ERROR_RATIO_ALERT,
            ),
            timeseries(
                "Tokens per second by region and kind",
                "Prompt and completion tokens accounted by the nodes of each region.",
                [target(f'sum by (region, kind) ({s.rate("isobar_tokens_total")})', "{{region}} {{kind}}")],
            ),
            timeseries(
                "Cross-region share by region",
                "Share of each region's requests that its nodes forwarded to a node of another region (for "
                "backends only that region reaches).",
                [
                    target(
                        share(
                            f'sum by (region) ({s.rate("isobar_forwarded_requests_total", eq("direction", "out"))})',
                            f'sum by (region) ({s.rate("isobar_requests_total")})',
                        ),
                        "{{region}}",
                    )
                ],
                unit="percentunit",
            ),
            timeseries(
                "Open requests by region",
                "Client requests whose response has not ended: in flight, waiting for a retry, or held.",
                [target(f'sum by (region) ({s.sel("isobar_open_requests")})', "{{region}}")],
            ),
            timeseries(
                "Gateway overhead p99 by region",
                "99th percentile of the time a request spends in the gateway itself, upstream time and retry "
                "backoff excluded.",
                [target(s.quantile(0.99, "isobar_gateway_overhead_seconds", "region"), "{{region}}")],
                unit="s",
            ),
        ],
    )


def time_to_first_token(s):
    return (
        "Time to first token",
        [
            timeseries(
                "TTFT p50 by region",
                "Median time from a request's arrival to its first content token, by the region of the node.",
                [target(s.quantile(0.5, "isobar_time_to_first_token_seconds", "region"), "{{region}}")],
                unit="s",
                width=12,
            ),
            timeseries(
                "TTFT p99 by region",
                "99th percentile of the time to first token, by the region of the node. The dashed line is the "
                "SLO (recording rule isobar:ttft_p99_slo_seconds of deploy/prometheus/alerts.yml).",
                [
                    target(s.quantile(0.99, "isobar_time_to_first_token_seconds", "region"), "{{region}}"),
                    target(SLO_SERIES, "SLO"),
                ],
                unit="s",
                width=12,
                dashed=("SLO",),
            ),
            timeseries(
                "TTFT p99 by region and model",
                "99th percentile of the time to first token per model: what IsobarTTFTp99OverSLO compares "
                "with the SLO.",
                [
                    target(
                        s.quantile(0.99, "isobar_time_to_first_token_seconds", "region, model"),
                        "{{region}} {{model}}",
                    ),
                    target(SLO_SERIES, "SLO"),
                ],
                unit="s",
                width=12,
                dashed=("SLO",),
            ),
            timeseries(
                "Request duration p99 by region",
                "99th percentile of the end-to-end request duration as the client sees it.",
                [target(s.quantile(0.99, "isobar_request_duration_seconds", "region"), "{{region}}")],
                unit="s",
                width=12,
            ),
        ],
    )


def failover(s):
    return (
        "Failover",
        [
            timeseries(
                "Fallbacks per second by reason",
                "Attempts moved to another backend (another deployment of the model or a fallback model's), by "
                "the failure that moved them.",
                [target(f'sum by (region, reason) ({s.rate("isobar_fallbacks_total")})', "{{region}} {{reason}}")],
            ),
            timeseries(
                "Catch-all answers per second",
                "Requests no backend could serve, by the catch-all's answer: busy (503), static, cache.",
                [target(f'sum by (region, answer) ({s.rate("isobar_catch_all_total")})', "{{region}} {{answer}}")],
            ),
            timeseries(
                "Retries per second by reason",
                "Attempts sent again to the same backend after a backoff, by the failure before.",
                [target(f'sum by (region, reason) ({s.rate("isobar_retries_total")})', "{{region}} {{reason}}")],
            ),
        ],
    )


def backends(s):
    return (
        "Backends",
        [
            state_timeline(
                "Breaker state by backend (worst node)",
                "The circuit breaker of each backend on the node where it is worst: closed, half-open (one "
                "probe admitted), open or paused by retry-after.",
                [target(f'max by (backend) ({s.sel("isobar_endpoint_breaker")})', "{{backend}}")],
                BREAKER_STATES,
            ),
            timeseries(
                "Usable backends per backend region",
                "Backends of each region a node would route to now (breaker not open, not paused), on the node "
                "that sees the most and on the node that sees the fewest. IsobarRegionWithoutHealthyBackends "
                "fires when the most is 0.",
                [
                    grouped("max", "backend_region", s.sel("isobar_region_usable_backends"), "{{backend_region}} most"),
                    grouped(
                        "min", "backend_region", s.sel("isobar_region_usable_backends"), "{{backend_region}} fewest"
                    ),
                ],
                width=12,
            ),
            timeseries(
                "KV-cache usage per engine",
                "KV-cache usage each self-hosted engine reported at its last scrape (the highest any node read).",
                [
                    grouped("max", "backend", s.sel("isobar_backend_scraped", eq("metric", "kv_usage")), "{{backend}}")
                ],
                unit="percentunit",
                maximum=1,
                width=12,
            ),
            timeseries(
                "Waiting requests per engine",
                "Requests queued in each self-hosted engine at its last scrape (the highest any node read).",
                [
                    grouped("max", "backend", s.sel("isobar_backend_scraped", eq("metric", "waiting")), "{{backend}}")
                ],
                width=12,
            ),
        ],
    )


def mesh(s):
    return (
        "Mesh",
        [
            timeseries(
                "Nodes up by region",
                "Nodes Prometheus scraped successfully, by region.",
                [target(f"sum by (region) ({s.up()})", "{{region}}")],
            ),
            timeseries(
                "Mesh members by status, per node",
                "Members of the mesh as each node sees them (itself included): alive, suspect, dead, left. "
                "Every node should count the same members alive.",
                [target(f'sum by (node, status) ({s.sel("isobar_mesh_members")})', "{{node}} {{status}}")],
            ),
            timeseries(
                "Gossip packets dropped per second by reason",
                "Gossip packets dropped: malformed, oversized, unauthenticated (wrong gossip key), replayed.",
                [
                    grouped(
                        "sum",
                        "region, reason",
                        s.rate("isobar_gossip_packets_dropped_total"),
                        "{{region}} {{reason}}",
                    )
                ],
            ),
            timeseries(
                "Gossip failure-detection events per second",
                "Suspicions raised, deaths declared and refutations of a node's own suspicion.",
                [target(f'sum by (region, event) ({s.rate("isobar_gossip_events_total")})', "{{region}} {{event}}")],
                width=12,
            ),
            timeseries(
                "Lifeguard health multiplier by node",
                "1 when a node is healthy, up to 8 when the node itself is slow to answer probes.",
                [target(f'max by (node) ({s.sel("isobar_gossip_health_multiplier")})', "{{node}}")],
                width=12,
            ),
        ],
    )


def keys_and_limits(s):
    return (
        "Keys and limits",
        [
            state_timeline(
                "Limit store up by node",
                "Whether each node's shared Redis limit store answers; while it does not, the node counts the "
                "keys' limits alone, with its share of each limit. Nodes without redis: do not export it.",
                [target(f'max by (node) ({s.sel("isobar_limit_store_up")})', "{{node}}")],
                UP_STATES,
            ),
            bar_gauge(
                "Budget spent ratio",
                "Fraction of the current budget period's US dollars each key or team has spent (the highest "
                "any node reports). Over 90% IsobarBudgetNearlySpent fires; at 100% requests are refused.",
                [
                    target(
                        f'sort_desc(max by (kind, name) ({s.sel("isobar_budget_spent_ratio")}))',
                        "{{kind}} {{name}}",
                        instant=True,
                    )
                ],
            ),
            timeseries(
                "Limit refusals per second by limit",
                "Requests refused because a key or team was over a limit: requests, tokens, concurrent, budget.",
                [target(f'sum by (limit) ({s.rate("isobar_limit_refusals_total")})', "{{limit}}")],
            ),
            timeseries(
                "Spend by team (USD per hour)",
                "US dollars spent by the virtual keys of each team at each deployment's price, as an hourly "
                "rate. Keys without a team are shown with an empty team.",
                [target(f'sum by (team) ({s.rate("isobar_key_spend_usd_total")}) * 3600', "{{team}}")],
                unit="currencyUSD",
            ),
            timeseries(
                "Requests decided without the limit store",
                "Keyed requests decided while the shared limit store did not answer, by the on_failure setting "
                "(local: counted on the node, closed: refused).",
                [
                    grouped(
                        "sum",
                        "region, on_failure",
                        s.rate("isobar_limit_local_decisions_total"),
                        "{{region}} {{on_failure}}",
                    )
                ],
            ),
            timeseries(
                "Response cache hit ratio by model",
                "Share of the cacheable requests of each model answered from the response cache.",
                [
                    target(
                        share(
                            f'sum by (model) ({s.rate("isobar_response_cache_total", eq("result", "hit"))})',
                            f'sum by (model) ({s.rate("isobar_response_cache_total")})',
                        ),
                        "{{model}}",
                    )
                ],
                unit="percentunit",
                maximum=1,
            ),
        ],
    )


def per_node(s):
    return (
        "Per node",
        [
            timeseries(
                "Requests per second by node",
                "Requests answered by each node, every status.",
                [target(f'sum by (node) ({s.rate("isobar_requests_total")})', "{{node}}")],
                unit="reqps",
            ),
            timeseries(
                "5xx ratio by node",
                "Share of each node's requests answered with a 5xx status.",
                [target(s.ratio_5xx("node"), "{{node}}")],
                unit="percentunit",
                threshold=ERROR_RATIO_ALERT,
            ),
            timeseries(
                "TTFT p99 by node",
                "99th percentile of the time to first token of the requests each node answered.",
                [
                    target(s.quantile(0.99, "isobar_time_to_first_token_seconds", "node"), "{{node}}"),
                    target(SLO_SERIES, "SLO"),
                ],
                unit="s",
                dashed=("SLO",),
            ),
            timeseries(
                "Open requests by node",
                "Client requests each node has not finished answering.",
                [target(f'sum by (node) ({s.sel("isobar_open_requests")})', "{{node}}")],
            ),
            timeseries(
                "Gateway overhead p99 by node",
                "99th percentile of the time a request spends in each node, upstream time excluded.",
                [target(s.quantile(0.99, "isobar_gateway_overhead_seconds", "node"), "{{node}}")],
                unit="s",
            ),
            timeseries(
                "Forwarded requests per second by node",
                "Requests each node forwarded to (out) or received from (in) a node of another region; "
                "exported_node is the peer.",
                [
                    target(
                        f'sum by (node, direction, exported_node) ({s.rate("isobar_forwarded_requests_total")})',
                        "{{node}} {{direction}} {{exported_node}}",
                    )
                ],
                unit="reqps",
            ),
        ],
    )


def per_backend(s):
    def scraped(metric):
        return s.sel("isobar_backend_scraped", eq("metric", metric))

    return (
        "Per backend",
        [
            timeseries(
                "Requests per second by backend and status",
                "Requests answered, by the backend that served them and the status the client saw.",
                [target(f'sum by (backend, status) ({s.rate("isobar_requests_total")})', "{{backend}} {{status}}")],
                unit="reqps",
            ),
            timeseries(
                "5xx ratio by backend",
                "Share of the requests each backend served that ended with a 5xx status.",
                [target(s.ratio_5xx("backend"), "{{backend}}")],
                unit="percentunit",
            ),
            timeseries(
                "TTFT p99 by backend",
                "99th percentile of the time to first token of the requests each backend served.",
                [
                    target(s.quantile(0.99, "isobar_time_to_first_token_seconds", "backend"), "{{backend}}"),
                    target(SLO_SERIES, "SLO"),
                ],
                unit="s",
                dashed=("SLO",),
            ),
            timeseries(
                "Request duration p99 by backend",
                "99th percentile of the end-to-end duration of the requests each backend served.",
                [target(s.quantile(0.99, "isobar_request_duration_seconds", "backend"), "{{backend}}")],
                unit="s",
            ),
            timeseries(
                "Tokens per second by backend and kind",
                "Prompt and completion tokens accounted per backend.",
                [target(f'sum by (backend, kind) ({s.rate("isobar_tokens_total")})', "{{backend}} {{kind}}")],
            ),
            timeseries(
                "Upstream failures per second by backend",
                "Failed upstream attempts per backend and reason.",
                [
                    grouped(
                        "sum",
                        "backend, reason",
                        s.rate("isobar_upstream_failures_total"),
                        "{{backend}} {{reason}}",
                    )
                ],
            ),
            timeseries(
                "Stream errors per second by backend",
                "Streams ended with an in-band error after their first token, per backend and reason.",
                [
                    grouped("sum", "backend, reason", s.rate("isobar_stream_errors_total"), "{{backend}} {{reason}}")
                ],
            ),
            timeseries(
                "Picks per second by backend and reason",
                "Attempts sent to each backend, by why it was picked: best, affinity, only, retry.",
                [target(f'sum by (backend, reason) ({s.rate("isobar_picks_total")})', "{{backend}} {{reason}}")],
            ),
            timeseries(
                "In-flight requests by backend",
                "Requests the region's nodes have in flight on each backend.",
                [target(f'sum by (backend) ({s.sel("isobar_in_flight_requests")})', "{{backend}}")],
            ),
            state_timeline(
                "Breaker state by backend and node",
                "The circuit breaker of each backend on each node of the region.",
                [target(f'max by (backend, node) ({s.sel("isobar_endpoint_breaker")})', "{{backend}} on {{node}}")],
                BREAKER_STATES,
                width=24,
            ),
            timeseries(
                "Expected TTFT by backend and node",
                "The time to first token each node expected from each backend when a request last considered "
                "it (isobar, least-tokens and peak-ewma policies).",
                [
                    grouped(
                        "max",
                        "backend, node",
                        s.sel("isobar_endpoint_expected_ttft_seconds"),
                        "{{backend}} on {{node}}",
                    )
                ],
                unit="s",
            ),
            timeseries(
                "Ledger by backend and kind",
                "What the region's nodes have in flight on each backend: requests awaiting their first token, "
                "prompt tokens not yet prefilled, decode streams.",
                [target(f'sum by (backend, kind) ({s.sel("isobar_endpoint_ledger")})', "{{backend}} {{kind}}")],
            ),
            timeseries(
                "Assumed token rates by backend",
                "Prefill and decode rates the router assumes per backend (the highest any node assumes).",
                [
                    grouped(
                        "max",
                        "backend, kind",
                        s.sel("isobar_endpoint_rate_tokens_per_second"),
                        "{{backend}} {{kind}}",
                    )
                ],
            ),
            timeseries(
                "Running requests per engine",
                "Requests each self-hosted engine was running at its last scrape.",
                [target(f'max by (backend) ({scraped("running")})', "{{backend}}")],
            ),
            timeseries(
                "Engine throughput by backend",
                "Prompt and generation tokens per second each self-hosted engine reported.",
                [
                    target(
                        aggregate(
                            "max",
                            "backend, metric",
                            s.sel("isobar_backend_scraped", matches("metric", "prompt_tps|generation_tps")),
                        ),
                        "{{backend}} {{metric}}",
                    )
                ],
            ),
            timeseries(
                "Scrape age by engine",
                "Age of each engine's last successful scrape (the oldest on any node of the region).",
                [target(f'max by (backend) ({s.sel("isobar_backend_scrape_age_seconds")})', "{{backend}}")],
                unit="s",
            ),
            timeseries(
                "Stale engines",
                "1 while a node has no fresh sample of an engine; its load is then penalised, not read as idle.",
                [target(f'max by (backend, node) ({s.sel("isobar_endpoint_stale")})', "{{backend}} on {{node}}")],
                maximum=1,
            ),
            timeseries(
                "Scrapes per second by engine and outcome",
                "Metric scrapes of each engine by outcome: ok, error, timeout, malformed.",
                [target(f'sum by (backend, outcome) ({s.rate("isobar_scrapes_total")})', "{{backend}} {{outcome}}")],
            ),
        ],
    )


# MARK: - Dashboards


def layout(sections):
    """Numbers the panels and places them: each section is a row; its panels fill 24 columns, left to right."""
    panels = []
    y = 0
    for row_title, section in sections:
        panels.append({"type": "row", "title": row_title, "collapsed": False, "panels": [], "height": 1, "width": 24})
        panels.extend(section)
    placed = []
    x = 0
    line_height = 0
    for number, panel in enumerate(panels, start=1):
        width = panel.pop("width", 8)
        height = panel.pop("height", 8)
        if x + width > 24 or panel["type"] == "row":
            y += line_height
            x = 0
            line_height = 0
        out = {"id": number, "type": panel.pop("type"), "title": panel.pop("title")}
        out["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
        if out["type"] != "row":
            out["datasource"] = DATASOURCE
            targets = panel.pop("targets")
            panel["targets"] = [
                {
                    "datasource": DATASOURCE,
                    "editorMode": "code",
                    "expr": t["expr"],
                    "legendFormat": t["legendFormat"],
                    "instant": t["instant"],
                    "range": not t["instant"],
                    "refId": chr(ord("A") + index),
                }
                for index, t in enumerate(targets)
            ]
        out.update(panel)
        placed.append(out)
        x += width
        line_height = max(line_height, height)
        if out["type"] == "row":
            y += height
            x = 0
            line_height = 0
    titles = [p["title"] for p in placed]
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    if duplicates:
        raise SystemExit(f"generate.py: duplicate panel titles: {', '.join(duplicates)}")
    return placed


def dashboard(uid, title, description, tags, sections):
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "title": "Isobar dashboards",
                "type": "dashboards",
                "tags": ["isobar"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "panels": layout(sections),
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": tags,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                }
            ]
        },
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def common_sections(s):
    return [overview(s), traffic(s), time_to_first_token(s), failover(s), backends(s), mesh(s), keys_and_limits(s)]


def dashboards():
    """File name -> dashboard, for every dashboard this script writes."""
    boards = {
        "isobar-mesh.json": dashboard(
            "isobar-mesh",
            "Isobar mesh",
            "Every node of the Isobar mesh, broken down by region.",
            ["isobar"],
            common_sections(Scope()),
        )
    }
    for region in REGIONS:
        scope = Scope(region)
        boards[f"isobar-region-{region}.json"] = dashboard(
            f"isobar-region-{region}",
            f"Isobar region {region}",
            f"The nodes of region {region}: the mesh dashboard's panels for this region, then each node and "
            "each backend as these nodes see it.",
            ["isobar", "isobar-region"],
            common_sections(scope) + [per_node(scope), per_backend(scope)],
        )
    return boards


def render(board):
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a dashboard file differs from what this script would write",
    )
    args = parser.parse_args()
    rendered = {name: render(board) for name, board in dashboards().items()}
    if not args.check:
        for name, text in rendered.items():
            (HERE / name).write_text(text, encoding="utf-8")
            print(f"wrote {HERE / name}")
        return 0
    problems = []
    for name, text in rendered.items():
        path = HERE / name
        if not path.exists():
            problems.append(f"{path}: missing; run python3 {Path(__file__).resolve()}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what generate.py writes; run python3 {Path(__file__).resolve()}")
    for path in sorted(HERE.glob("isobar-*.json")):
        if path.name not in rendered:
            problems.append(f"{path}: not written by generate.py (a region no longer in REGIONS?); remove it")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
