// The monitoring kit against the real things: r1serve on loopback serving a
// few requests, a real Prometheus (Debian's) started with the shipped scrape
// config and alert rules (only the target and intervals changed), then every
// Grafana dashboard expression and every alert rule evaluated through
// Prometheus's HTTP API: each must run without error, the core series must
// be there, and every metric name the dashboard uses must be one r1serve
// exports (GPU gauges excepted on a CPU server).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const BIN = process.env.R1SERVE_BINARY;
const SRC = process.env.R1SERVE_SOURCE_DIR;
const work = mkdtempSync(path.join(tmpdir(), "r1serve-prom-"));
const procs = [];

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, fn, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

let r1, prom;
before(async () => {
  const model = path.join(work, "tiny");
  const made = spawnSync(BIN, ["make-test-model", "--arch", "qwen2", "--size", "tiny", "--dtype",
    "bf16", "--seed", "5", "--out", model], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  const server = spawn(BIN, ["serve", "--model", model, "--port", "0", "--served-model-name", "tiny",
    "--threads", "2", "--kv-cache-bytes", "100000000", "--response-cache", "memory"],
  { stdio: ["ignore", "ignore", "pipe"] });
  procs.push(server);
  let log = "";
  const port = await new Promise((resolve, reject) => {
    server.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on("exit", (c) => reject(new Error(`r1serve exited ${c}: ${log}`)));
  });
  r1 = `http://127.0.0.1:${port}`;
  await waitFor("r1serve ready", async () => (await fetch(`${r1}/ready`)).status === 200);
  // Traffic, so histograms, counters and per-principal series exist.
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${r1}/v1/chat/completions`, { method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "hi" }],
        max_tokens: 4, temperature: 0 }) });
    assert.equal(r.status, 200);
  }

  // The shipped config with the target and intervals adapted to a test.
  const shipped = readFileSync(path.join(SRC, "deploy/prometheus/prometheus.yml"), "utf8");
  assert.match(shipped, /targets: \["r1serve:8000"\]/);
  const config = shipped
    .replace('targets: ["r1serve:8000"]', `targets: ["127.0.0.1:${port}"]`)
    .replaceAll("15s", "1s")
    .replace("- rules.yml", `- ${path.join(SRC, "deploy/prometheus/rules.yml")}`);
  writeFileSync(path.join(work, "prometheus.yml"), config);
  const promPort = await freePort();
  const p = spawn("prometheus", [`--config.file=${path.join(work, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(work, "tsdb")}`, `--web.listen-address=127.0.0.1:${promPort}`],
  { stdio: "ignore" });
  procs.push(p);
  prom = `http://127.0.0.1:${promPort}`;
  await waitFor("prometheus ready", async () => (await fetch(`${prom}/-/ready`)).status === 200);
  await waitFor("a scrape of r1serve with traffic", async () => {
    const v = await query('sum(r1serve_requests_total{route="/v1/chat/completions"})');
    return v.data.result.length > 0 && Number(v.data.result[0].value[1]) >= 3;
  });
  // Two scrapes at least, so rate() has points to work with.
  await sleep(2500);
});

after(async () => {
  for (const p of procs) p.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

async function query(expr) {
  const r = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return r.json();
}

function dashboardExprs() {
  const dash = JSON.parse(readFileSync(path.join(SRC, "deploy/grafana/dashboards/r1serve.json"), "utf8"));
  const out = [];
  for (const panel of dash.panels) {
    for (const t of panel.targets) out.push({ panel: panel.title, expr: t.expr });
  }
  return out;
}

// Grafana's variables as a dashboard viewer with "All" selected sees them.
const expand = (expr) => expr.replaceAll("$__rate_interval", "1m").replaceAll("$model", ".*");

test("every dashboard expression runs in Prometheus", async () => {
  const exprs = dashboardExprs();
  assert.ok(exprs.length >= 20);
  for (const { panel, expr } of exprs) {
    const r = await query(expand(expr));
    assert.equal(r.status, "success", `${panel}: ${expr}: ${r.error}`);
  }
});

test("the core series are scraped, and the dashboard uses only metrics r1serve exports", async () => {
  for (const series of ["r1serve_requests_total", "r1serve_generation_tokens_total",
    "r1serve_prompt_tokens_total", "r1serve_time_to_first_token_seconds_bucket",
    "r1serve_time_per_output_token_seconds_bucket", "r1serve_e2e_request_latency_seconds_bucket",
    "r1serve_num_requests_waiting", "r1serve_num_requests_running", "r1serve_kv_cache_usage_ratio",
    "r1serve_ready", "r1serve_principal_tokens_total", "r1serve_response_cache_misses_total",
    "r1serve_batch_size_bucket", 'up{job="r1serve"}']) {
    const r = await query(series);
    assert.equal(r.status, "success");
    assert.ok(r.data.result.length > 0, `${series} is not in Prometheus`);
  }
  const exported = await (await fetch(`${r1}/metrics`)).text();
  // Families whose series appear on first use (GPU gauges, refusals by
  // route) may be absent from a quiet CPU server: those must at least be
  // declared by r1serve's metrics registry.
  const declared = readFileSync(path.join(SRC, "src/obs/metrics.cpp"), "utf8");
  for (const { panel, expr } of dashboardExprs()) {
    for (const name of expr.match(/r1serve_[a-z0-9_]+/g) ?? []) {
      if (new RegExp(`^${name}(\\{| )`, "m").test(exported)) continue;
      const family = name.replace(/^r1serve_/, "").replace(/_(bucket|sum|count)$/, "");
      assert.ok(declared.includes(`"${family}"`), `${panel}: ${name} is not an r1serve metric`);
    }
  }
  // A panel with data: generated tokens per second is positive after traffic.
  const rate = await query(expand(dashboardExprs()[0].expr).replace("1m", "5m"));
  assert.ok(rate.data.result.length > 0);
});

test("every alert rule loads and evaluates without error", async () => {
  const shipped = readFileSync(path.join(SRC, "deploy/prometheus/rules.yml"), "utf8");
  const names = [...shipped.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  assert.ok(names.length >= 8);
  const rules = await waitFor("every rule evaluated", async () => {
    const r = await (await fetch(`${prom}/api/v1/rules`)).json();
    const all = r.data.groups.flatMap((g) => g.rules);
    return all.length === names.length && all.every((x) => x.lastEvaluation &&
      !x.lastEvaluation.startsWith("0001")) ? all : null;
  }, 30);
  for (const rule of rules) {
    assert.equal(rule.health, "ok", `${rule.name}: ${rule.lastError}`);
    const r = await query(rule.query);
    assert.equal(r.status, "success", `${rule.name}: ${r.error}`);
  }
  assert.deepEqual(rules.map((r) => r.name).sort(), [...names].sort());
  // Nothing is wrong with this replica: only GPU and error alerts could
  // have no data; none fires.
  const firing = rules.filter((r) => r.state === "firing").map((r) => r.name);
  assert.deepEqual(firing, []);
  const ready = await query('r1serve_ready');
  assert.equal(ready.data.result[0].value[1], "1");
});
