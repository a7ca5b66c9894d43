#!/usr/bin/env python3
"""Checks the Prometheus and Grafana files of deploy/.

    python3 deploy/prometheus/check.py [--metrics FILE]

Runs promtool on prometheus.yml, alerts.yml and alerts_test.yml, checks that the Grafana dashboards are what
deploy/grafana/generate.py writes, and that every metric the alerts and dashboards read is one a node
serves: one of KNOWN_METRICS below, or, with --metrics FILE, one of the names in FILE (a node's /metrics
exposition, e.g. `curl -s http://127.0.0.1:8080/metrics > metrics.txt`). A counter with labels appears in
the exposition only once it has counted something, and the mesh and limit store metrics only on nodes
configured with them, so take FILE from a node that has served traffic in a mesh.

Prints one `ok` line per check that passes and a `file: message` line per problem; exits 1 if there is any.
Works from any directory. Python 3 standard library only; promtool comes with Debian's `prometheus` package.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = Path("deploy/prometheus")
GRAFANA_DIR = Path("deploy/grafana")
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
GENERATOR = GRAFANA_DIR / "generate.py"
RUNBOOK = Path("deploy/README.md")
RUNBOOK_URL = "https://github.com/isobar-mesh/isobar/blob/main/deploy/README.md#"

# The metrics a node serves on GET /metrics, with their types. Histograms are named by their base name;
# their _bucket, _sum and _count series are accepted. This is the one list of known names.
KNOWN_METRICS = {
    "isobar_requests_total": "counter",
    "isobar_time_to_first_token_seconds": "histogram",
    "isobar_request_duration_seconds": "histogram",
    "isobar_gateway_overhead_seconds": "histogram",
    "isobar_tokens_total": "counter",
    "isobar_upstream_failures_total": "counter",
    "isobar_stream_errors_total": "counter",
    "isobar_in_flight_requests": "gauge",
    "isobar_open_requests": "gauge",
    "isobar_endpoint_breaker": "gauge",
    "isobar_endpoint_stale": "gauge",
    "isobar_endpoint_expected_ttft_seconds": "gauge",
    "isobar_endpoint_rate_tokens_per_second": "gauge",
    "isobar_endpoint_ledger": "gauge",
    "isobar_backend_scraped": "gauge",
    "isobar_scrapes_total": "counter",
    "isobar_backend_scrape_age_seconds": "gauge",
    "isobar_picks_total": "counter",
    "isobar_retries_total": "counter",
    "isobar_fallbacks_total": "counter",
    "isobar_catch_all_total": "counter",
    "isobar_forwarded_requests_total": "counter",
    "isobar_region_usable_backends": "gauge",
    "isobar_mesh_members": "gauge",
    "isobar_gossip_packets_total": "counter",
    "isobar_gossip_packets_dropped_total": "counter",
    "isobar_gossip_events_total": "counter",
    "isobar_gossip_health_multiplier": "gauge",
    "isobar_key_requests_total": "counter",
    "isobar_key_tokens_total": "counter",
    "isobar_key_spend_usd_total": "counter",
    "isobar_budget_spent_ratio": "gauge",
    "isobar_limit_refusals_total": "counter",
    "isobar_limit_store_up": "gauge",
    "isobar_limit_store_outages_total": "counter",
    "isobar_limit_local_decisions_total": "counter",
    "isobar_limit_leased_decisions_total": "counter",
    "isobar_response_cache_total": "counter",
}

# Series Prometheus itself writes for every target; allowed whatever --metrics says.
PROMETHEUS_SERIES = {"up"}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Words of PromQL that look like metric names: operators, modifiers, aggregations, number literals.
PROMQL_WORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "atan2", "inf", "nan",
}  # fmt: skip


class Report:
    """Collects the outcome of each check: `ok` lines as they pass, `file: message` lines for problems."""

    def __init__(self):
        self.failed = False

    def ok(self, what):
        print(f"ok {what}", flush=True)

    def problem(self, path, message):
        self.failed = True
        print(f"{path}: {message}", file=sys.stderr, flush=True)


def run(command):
    """Runs `command` in the repository root; returns (exit status, stdout and stderr together)."""
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    return process.returncode, (process.stdout + process.stderr).strip()


def indented(output):
    """A tool's output under a problem line: indented, blank lines left out."""
    return "\n".join("    " + line.rstrip() for line in output.splitlines() if line.strip())


# MARK: - promtool


def without_kubernetes_discovery(text):
    """The configuration with each `kubernetes_sd_configs:` block replaced by an empty `static_configs`, for
    a promtool built without Kubernetes discovery (Debian's)."""
    out = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        match = re.match(r"^(\s*)kubernetes_sd_configs:\s*$", line)
        if not match:
            out.append(line)
            index += 1
            continue
        indent = len(match.group(1))
        out.append(" " * indent + "static_configs: []")
        index += 1
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            index += 1
    return "\n".join(out) + "\n"


def check_config(report, promtool):
    status, output = run([promtool, "check", "config", str(CONFIG)])
    if status == 0:
        report.ok(f"promtool check config {CONFIG}")
        return
    if "field kubernetes_sd_configs not found" not in output:
        report.problem(CONFIG, f"promtool check config failed:\n{indented(output)}")
        return
    # This promtool cannot read Kubernetes discovery; check everything else.
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / CONFIG.name
        copy.write_text(without_kubernetes_discovery((ROOT / CONFIG).read_text()))
        shutil.copy(ROOT / ALERTS, Path(scratch) / ALERTS.name)
        status, output = run([promtool, "check", "config", str(copy)])
    if status != 0:
        report.problem(CONFIG, f"promtool check config failed:\n{indented(output)}")
        return
    report.ok(
        f"promtool check config {CONFIG} (this promtool is built without Kubernetes discovery: "
        "the kubernetes_sd_configs blocks were left out, their relabel_configs checked)"
    )


def check_with_promtool(report, promtool, verb, path):
    """`promtool VERB rules PATH` (verb: check or test)."""
    status, output = run([promtool, verb, "rules", str(path)])
    if status == 0:
        report.ok(f"promtool {verb} rules {path}")
    else:
        report.problem(path, f"promtool {verb} rules failed:\n{indented(output)}")


# MARK: - Reading the rules


def rule_blocks(text):
    """(kind, name, lines) for each rule of a rules file: kind is `alert` or `record`."""
    blocks = []
    for line in text.splitlines():
        match = re.match(r"^\s*- (alert|record):\s*(\S+)\s*$", line)
        if match:
            blocks.append((match.group(1), match.group(2), []))
        elif blocks:
            if re.match(r"^\s*- name:", line):
                blocks.append(("group", "", []))
            else:
                blocks[-1][2].append(line)
    return [block for block in blocks if block[0] != "group"]


def field(lines, key):
    """The value of `key:` in a rule's lines: an inline scalar (quotes removed) or a block scalar (| or >),
    whose lines are joined with newlines. None when absent."""
    for index, line in enumerate(lines):
        match = re.match(rf"^(\s*){re.escape(key)}:\s*(.*?)\s*$", line)
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2)
        if value and value[0] in "|>":
            body = []
            for following in lines[index + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following.strip())
            return "\n".join(body).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return value
    return None


def rule_expressions(report):
    """(where, expression) of every rule, and of every `query "..."` in the alerts' annotations; and the
    names of the recording rules."""
    text = (ROOT / ALERTS).read_text()
    expressions = []
    records = set()
    for kind, name, lines in rule_blocks(text):
        expr = field(lines, "expr")
        if not expr:
            report.problem(ALERTS, f"{kind} {name}: no expr this script can read (use expr: | or an inline one)")
            continue
        expressions.append((f"{ALERTS}: {kind} {name}", expr))
        if kind == "record":
            records.add(name)
        for query in re.findall(r'query\s+"((?:[^"\\]|\\.)*)"', "\n".join(lines)):
            expressions.append((f"{ALERTS}: {kind} {name} (annotation query)", query.replace('\\"', '"')))
    return expressions, records


def check_alert_conventions(report):
    """Every alert has a severity, a summary, a description, the runbook URL of its name, and a test in
    alerts_test.yml where it fires."""
    alerts = [(name, lines) for kind, name, lines in rule_blocks((ROOT / ALERTS).read_text()) if kind == "alert"]
    tests = (ROOT / ALERT_TESTS).read_text()
    problems = 0
    for name, lines in alerts:
        for key in ("severity", "summary", "description"):
            if not field(lines, key):
                report.problem(ALERTS, f"alert {name}: no {key}")
                problems += 1
        severity = field(lines, "severity")
        if severity and severity not in ("critical", "warning", "info"):
            report.problem(ALERTS, f"alert {name}: severity {severity} is not critical, warning or info")
            problems += 1
        expected = RUNBOOK_URL + name.lower()
        if field(lines, "runbook_url") != expected:
            report.problem(ALERTS, f"alert {name}: runbook_url should be {expected}")
            problems += 1
        firing = re.search(
            rf"alertname:\s*{re.escape(name)}\s*\n\s*exp_alerts:\s*\n\s*- exp_labels:", tests
        )
        if not firing:
            report.problem(ALERT_TESTS, f"alert {name}: no test case where it fires")
            problems += 1
    if not problems:
        report.ok(f"alert conventions ({len(alerts)} alerts: severity, summary, description, runbook_url, a test)")
    return [name for name, _ in alerts]


def check_runbook(report, alert_names):
    """When deploy/README.md exists, each alert's runbook anchor must be one of its headings."""
    path = ROOT / RUNBOOK
    if not path.exists():
        print(f"skip runbook anchors: {RUNBOOK} does not exist yet", flush=True)
        return
    anchors = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^#+\s+(.*?)\s*$", line)
        if match:
            title = re.sub(r"[^\w\- ]", "", match.group(1).lower())
            anchors.add(title.replace(" ", "-"))
    missing = [name for name in alert_names if name.lower() not in anchors]
    for name in missing:
        report.problem(RUNBOOK, f"no heading for alert {name} (anchor #{name.lower()})")
    if not missing:
        report.ok(f"runbook anchors ({len(alert_names)} alerts have a heading in {RUNBOOK})")


# MARK: - Dashboards


def check_generated(report):
    status, output = run([sys.executable, str(GENERATOR), "--check"])
    if status == 0:
        report.ok(f"{GENERATOR} --check")
    else:
        report.problem(GENERATOR, f"the dashboards are not what it writes:\n{indented(output)}")


def dashboard_expressions(report):
    """(where, expression) of every query of every dashboard, after checking each dashboard's structure:
    the `datasource` variable, unique panel ids and titles, every query on ${datasource}."""
    expressions = []
    paths = sorted((ROOT / GRAFANA_DIR).glob("isobar-*.json"))
    if not paths:
        report.problem(GRAFANA_DIR, "no dashboards (isobar-*.json)")
    problems = 0
    for path in paths:
        where = path.relative_to(ROOT)
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            report.problem(where, f"not JSON: {error}")
            problems += 1
            continue
        variables = board.get("templating", {}).get("list", [])
        if not any(v.get("name") == "datasource" and v.get("type") == "datasource" and v.get("query") == "prometheus"
                   for v in variables):  # fmt: skip
            report.problem(where, "no `datasource` variable of type datasource, query prometheus")
            problems += 1
        panels = board.get("panels", [])
        for key in ("id", "title"):
            values = [panel.get(key) for panel in panels]
            for value in sorted({str(v) for v in values if values.count(v) > 1}):
                report.problem(where, f"panel {key} {value} is not unique")
                problems += 1
            if None in values or "" in values:
                report.problem(where, f"a panel has no {key}")
                problems += 1
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("uid") != "${datasource}":
                    query = f"panel {panel.get('title')}: query {target.get('refId')}"
                    report.problem(where, f"{query} does not read the ${{datasource}} variable")
                    problems += 1
                expressions.append((f"{where}: panel {panel.get('title')}", target.get("expr", "")))
    if paths and not problems:
        report.ok(f"dashboard structure ({len(paths)} dashboards: datasource variable, unique panel ids and titles)")
    return expressions


def check_dashboard_syntax(report, promtool, expressions):
    """Parses every dashboard query with promtool, as recording rules of a scratch rules file."""
    lines = ["groups:", "  - name: dashboards", "    rules:"]
    for index, (_, expr) in enumerate(expressions):
        promql = expr.replace("$__rate_interval", "5m")
        lines += [f"      - record: dashboard:query_{index}", f"        expr: {json.dumps(promql)}"]
    with tempfile.TemporaryDirectory() as scratch:
        rules = Path(scratch) / "dashboard-queries.yml"
        rules.write_text("\n".join(lines) + "\n")
        status, output = run([promtool, "check", "rules", str(rules)])
    if status == 0:
        report.ok(f"dashboard queries parse ({len(expressions)} queries, promtool check rules)")
        return
    for match in re.finditer(r"dashboard:query_(\d+)", output):
        where, expr = expressions[int(match.group(1))]
        report.problem(where.split(": ")[0], f"{where.split(': ', 1)[1]}: query does not parse: {expr}")
    report.problem(GRAFANA_DIR, f"promtool check rules on the dashboard queries failed:\n{indented(output)}")


# MARK: - Metric names


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)", text):
        name = match.group(1)
        if name.lower() in PROMQL_WORDS or re.match(r"\s*\(", text[match.end() :]):
            continue
        names.add(name)
    return names


def exposition_names(path):
    """The metric names of a Prometheus text exposition: every sample's name, and for each histogram or
    summary its base name."""
    names = set()
    for line in path.read_text().splitlines():
        type_line = re.match(r"^#\s*TYPE\s+(\S+)\s+(\S+)", line)
        if type_line:
            names.add(type_line.group(1))
        elif line.strip() and not line.startswith("#"):
            names.add(re.match(r"^([^\s{]+)", line).group(1))
    return names


def is_allowed(name, allowed, histograms):
    if name in allowed:
        return True
    return any(name.endswith(suffix) and name[: -len(suffix)] in histograms for suffix in HISTOGRAM_SUFFIXES)


def check_metric_names(report, expressions, records, metrics_file):
    if metrics_file:
        served = exposition_names(metrics_file)
        histograms = served
        source = f"the names in {metrics_file}"
    else:
        served = set(KNOWN_METRICS)
        histograms = {name for name, kind in KNOWN_METRICS.items() if kind == "histogram"}
        source = "KNOWN_METRICS of check.py"
    allowed = served | PROMETHEUS_SERIES | records
    unknown = {}  # (file, name) -> the rules or panels that read it
    for where, expr in expressions:
        path, context = where.split(": ", 1)
        for name in sorted(metric_names(expr)):
            if not is_allowed(name, allowed, histograms):
                readers = unknown.setdefault((path, name), [])
                if context not in readers:
                    readers.append(context)
    for (path, name), readers in sorted(unknown.items()):
        report.problem(path, f"metric {name} is not one a node serves ({source}); read by {'; '.join(readers)}")
    if not unknown:
        report.ok(f"metric names ({len(expressions)} expressions in the alerts and dashboards, against {source})")


# MARK: -


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--metrics",
        type=Path,
        metavar="FILE",
        help="a node's /metrics exposition; its names become the allowed metric names",
    )
    args = parser.parse_args()
    metrics_file = args.metrics.resolve() if args.metrics else None
    if metrics_file and not metrics_file.is_file():
        print(f"{args.metrics}: no such file", file=sys.stderr)
        return 2

    report = Report()
    promtool = shutil.which("promtool")
    if promtool:
        check_config(report, promtool)
        check_with_promtool(report, promtool, "check", ALERTS)
        check_with_promtool(report, promtool, "test", ALERT_TESTS)
    else:
        for path in (CONFIG, ALERTS, ALERT_TESTS):
            report.problem(path, "promtool not found; install Debian's prometheus package (apt-get install prometheus)")

    rules, records = rule_expressions(report)
    alert_names = check_alert_conventions(report)
    check_runbook(report, alert_names)

    check_generated(report)
    queries = dashboard_expressions(report)
    if promtool and queries:
        check_dashboard_syntax(report, promtool, queries)

    check_metric_names(report, rules + queries, records, metrics_file)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
