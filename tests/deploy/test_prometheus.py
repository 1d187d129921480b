# The monitoring kit against the real things: r1serve on loopback serving a
# few requests, a real Prometheus (Debian's) started with the shipped scrape
# config and alert rules (only the target and intervals changed), then every
# Grafana dashboard expression and every alert rule evaluated through
# Prometheus's HTTP API: each must run without error, the core series must
# be there, and every metric name the dashboard uses must be one r1serve
# exports (GPU gauges excepted on a CPU server).
#
# Environment (set by ctest): R1SERVE_BINARY, R1SERVE_SOURCE_DIR, whose
# tools/python/r1serve_harness.py this imports (this checkout's when it is
# unset).
import functools
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.parse

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
import r1serve_harness  # noqa: E402
from r1serve_harness import Process, Server, make_test_model, poll, serve_args  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "")
SRC = os.environ.get("R1SERVE_SOURCE_DIR", "")

# Deadlines, in seconds. A poll that reaches one fails with what the
# processes said on stderr.
kStartSeconds = 60
kHttpSeconds = 60

fetch = functools.partial(r1serve_harness.fetch, timeout=kHttpSeconds)
post = functools.partial(r1serve_harness.post, timeout=kHttpSeconds)


class Stack:
    """r1serve and the Prometheus that scrapes it."""

    def __init__(self):
        self.procs = []
        self.r1 = ""
        self.prom = ""

    def alive(self):
        return all(p.alive() for p in self.procs)

    def log(self):
        return "\n".join(p.log(tail=8000) for p in self.procs)

    def wait_for(self, what, ready, seconds=kStartSeconds):
        """Calls ready() until it returns a true value and returns that value;
        fails at the deadline, or as soon as a process of the stack exits. An
        answer not yet of the shape looked for counts as not yet."""
        return poll(what, ready, seconds, self.alive, self.log,
                    ignore=(OSError, http.client.HTTPException, ValueError, LookupError,
                            TypeError))

    def query(self, expr):
        q = urllib.parse.urlencode({"query": expr})
        return fetch(f"{self.prom}/api/v1/query?{q}").json()


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def stack():
    assert BIN, "R1SERVE_BINARY is not set"
    assert SRC, "R1SERVE_SOURCE_DIR is not set"
    work = tempfile.mkdtemp(prefix="r1serve-prom-")
    st = Stack()
    try:
        model = os.path.join(work, "tiny")
        made = make_test_model(BIN, model)
        assert made.returncode == 0, made.stderr
        server = Server(BIN, serve_args(model, ["--kv-cache-bytes", "100000000",
                                                "--response-cache", "memory"]))
        st.procs.append(server)
        server.wait_ready(kStartSeconds)
        port = server.port
        st.r1 = server.base
        # Traffic, so histograms, counters and per-principal series exist.
        for _ in range(3):
            r = post(st.r1, "/v1/chat/completions",
                     {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 4, "temperature": 0})
            assert r.status == 200, r.text()

        # The shipped config with the target and intervals adapted to a test.
        shipped = read(os.path.join(SRC, "deploy/prometheus/prometheus.yml"))
        assert re.search(r'targets: \["r1serve:8000"\]', shipped)
        config = (shipped
                  .replace('targets: ["r1serve:8000"]', f'targets: ["127.0.0.1:{port}"]', 1)
                  .replace("15s", "1s")
                  .replace("- rules.yml",
                           f"- {os.path.join(SRC, 'deploy/prometheus/rules.yml')}", 1))
        config_file = os.path.join(work, "prometheus.yml")
        with open(config_file, "w") as f:
            f.write(config)
        # Port 0: Prometheus logs the address it got.
        prom = Process("prometheus", ["prometheus", f"--config.file={config_file}",
                                      f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
                                      "--web.listen-address=127.0.0.1:0"])
        st.procs.append(prom)
        prom_port = st.wait_for(
            "prometheus to log its address",
            lambda: re.search(r'msg="Listening on" address=127\.0\.0\.1:(\d+)', prom.stderr()))
        st.prom = f"http://127.0.0.1:{prom_port.group(1)}"
        st.wait_for("prometheus ready", lambda: fetch(f"{st.prom}/-/ready").status == 200)

        def scraped_traffic():
            v = st.query('sum(r1serve_requests_total{route="/v1/chat/completions"})')
            return len(v["data"]["result"]) > 0 and float(v["data"]["result"][0]["value"][1]) >= 3

        st.wait_for("a scrape of r1serve with traffic", scraped_traffic)
        # Two scrapes at least, so rate() has points to work with.
        st.wait_for("two scrapes of r1serve",
                    lambda: st.query('count_over_time(up{job="r1serve"}[1m]) >= 2')
                    ["data"]["result"])
        yield st
    finally:
        for p in reversed(st.procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


def dashboard_exprs():
    dash = json.loads(read(os.path.join(SRC, "deploy/grafana/dashboards/r1serve.json")))
    return [(panel["title"], t["expr"]) for panel in dash["panels"] for t in panel["targets"]]


def expand(expr):
    """Grafana's variables as a dashboard viewer with "All" selected sees them."""
    return expr.replace("$__rate_interval", "1m").replace("$model", ".*")


def test_every_dashboard_expression_runs_in_prometheus(stack):
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for panel, expr in exprs:
        r = stack.query(expand(expr))
        assert r["status"] == "success", f"{panel}: {expr}: {r.get('error')}"


def test_core_series_scraped_and_dashboard_uses_only_r1serve_metrics(stack):
    for series in ["r1serve_requests_total", "r1serve_generation_tokens_total",
                   "r1serve_prompt_tokens_total", "r1serve_time_to_first_token_seconds_bucket",
                   "r1serve_time_per_output_token_seconds_bucket",
                   "r1serve_e2e_request_latency_seconds_bucket", "r1serve_num_requests_waiting",
                   "r1serve_num_requests_running", "r1serve_kv_cache_usage_ratio",
                   "r1serve_ready", "r1serve_principal_tokens_total",
                   "r1serve_response_cache_misses_total", "r1serve_batch_size_bucket",
                   'up{job="r1serve"}']:
        r = stack.query(series)
        assert r["status"] == "success", f"{series}: {r.get('error')}"
        assert len(r["data"]["result"]) > 0, f"{series} is not in Prometheus"
    exported = fetch(f"{stack.r1}/metrics").text()
    # Families whose series appear on first use (GPU gauges, refusals by
    # route) may be absent from a quiet CPU server: those must at least be
    # declared by r1serve's metrics registry.
    declared = read(os.path.join(SRC, "src/obs/metrics.cpp"))
    for panel, expr in dashboard_exprs():
        for name in re.findall(r"r1serve_[a-z0-9_]+", expr):
            if re.search(rf"^{re.escape(name)}(\{{| )", exported, re.M):
                continue
            family = re.sub(r"_(bucket|sum|count)$", "", re.sub(r"^r1serve_", "", name))
            assert f'"{family}"' in declared, f"{panel}: {name} is not an r1serve metric"
    # A panel with data: generated tokens per second is positive after traffic.
    rate = stack.query(expand(dashboard_exprs()[0][1]).replace("1m", "5m", 1))
    assert len(rate["data"]["result"]) > 0


def test_every_alert_rule_loads_and_evaluates_without_error(stack):
    shipped = read(os.path.join(SRC, "deploy/prometheus/rules.yml"))
    names = re.findall(r"- alert: (\w+)", shipped)
    assert len(names) >= 8

    def every_rule_evaluated():
        groups = fetch(f"{stack.prom}/api/v1/rules").json()["data"]["groups"]
        rules = [rule for g in groups for rule in g["rules"]]
        evaluated = all(x.get("lastEvaluation") and not x["lastEvaluation"].startswith("0001")
                        for x in rules)
        return rules if len(rules) == len(names) and evaluated else None

    rules = stack.wait_for("every rule evaluated", every_rule_evaluated, 30)
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        r = stack.query(rule["query"])
        assert r["status"] == "success", f"{rule['name']}: {r.get('error')}"
    assert sorted(r["name"] for r in rules) == sorted(names)
    # Nothing is wrong with this replica: only GPU and error alerts could
    # have no data; none fires.
    firing = [r["name"] for r in rules if r["state"] == "firing"]
    assert firing == []
    ready = stack.query("r1serve_ready")
    assert ready["data"]["result"][0]["value"][1] == "1"
