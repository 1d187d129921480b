// r1serve's guardrails end to end, on the real binary: JWTs signed by
// Node's own crypto (RS256, ES256, HS256) and every way one must be refused;
// a gateway's forwarded principal; the response cache in a real
// redis-server (survives an r1serve restart, degrades when Redis dies);
// usage metering persisted across a restart and read through /admin/usage;
// the operator's drain and resume; tokens charged while they are generated;
// prompts in the audit trail only when asked.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, createHmac, generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";

const BIN = process.env.R1SERVE_BINARY;
const work = mkdtempSync(path.join(tmpdir(), "r1serve-guard-"));
const modelDir = path.join(work, "tiny");
const sha = (k) => createHash("sha256").update(k).digest("hex");
const NOW = () => Math.floor(Date.now() / 1000);

async function startServer(extra = []) {
  const proc = spawn(BIN, ["serve", "--model", modelDir, "--port", "0", "--served-model-name",
    "tiny", "--threads", "2", "--kv-cache-bytes", "200000000", ...extra],
  { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on("data", (d) => {
      stderr += d.toString();
      const m = stderr.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    const r = await fetch(`${base}/health`).catch(() => null);
    if (r && r.status === 200) {
      const ready = await fetch(`${base}/ready`).catch(() => null);
      if (ready && ready.status === 200) break;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  const exited = new Promise((resolve) => proc.on("exit", (code) => resolve(code)));
  const stop = async (signal = "SIGKILL") => { proc.kill(signal); await exited; };
  return { proc, base, stop, stderr: () => stderr };
}

async function metric(base, name, headers = {}) {
  const text = await (await fetch(`${base}/metrics`, { headers })).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + "{") || line.startsWith(name + " ")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

const chatBody = (content, extra = {}) => ({ model: "tiny",
  messages: [{ role: "user", content }], max_tokens: 6, temperature: 0, ...extra });

function post(base, route, body, headers = {}) {
  return fetch(`${base}${route}`, { method: "POST",
    headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
}

const b64 = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");

// A compact JWS, signed here with Node's crypto (independent of r1serve).
function jwt(alg, claims, key, header = {}) {
  const input = `${b64({ alg, typ: "JWT", ...header })}.${b64(claims)}`;
  let sig = Buffer.alloc(0);
  if (alg === "HS256") sig = createHmac("sha256", key).update(input).digest();
  if (alg === "RS256") sig = sign("sha256", Buffer.from(input), key);
  if (alg === "ES256") sig = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

before(() => {
  const made = spawnSync(BIN, ["make-test-model", "--arch", "qwen2", "--size", "tiny", "--dtype",
    "bf16", "--seed", "5", "--out", modelDir], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
});
after(() => rmSync(work, { recursive: true, force: true }));

test("RS256 JWTs: accepted, and alg none, alg confusion, expiry, nbf, iss, aud, signature and role refused", async () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pubPem = publicKey.export({ type: "spki", format: "pem" });
  const keyFile = path.join(work, "rsa.pem");
  writeFileSync(keyFile, pubPem);
  const s = await startServer(["--jwt-algorithm", "RS256", "--jwt-key", keyFile,
    "--jwt-issuer", "https://idp.test", "--jwt-audience", "r1serve", "--jwt-leeway", "5",
    "--access-log", path.join(work, "jwt-access.jsonl")]);
  const good = { sub: "carol", iss: "https://idp.test", aud: "r1serve", exp: NOW() + 300,
    roles: ["developer"] };
  const bearer = (t) => ({ Authorization: `Bearer ${t}` });
  const tokens = [];
  try {
    const ok = jwt("RS256", good, privateKey);
    tokens.push(ok);
    const client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: ok, maxRetries: 0 });
    const r = await client.chat.completions.create(chatBody("hi", { max_tokens: 2 }));
    assert.equal(r.usage.completion_tokens, 2);

    const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const refused = {
      "alg none": `${b64({ alg: "none", typ: "JWT" })}.${b64(good)}.`,
      "alg confusion (HS256 keyed with the RSA public key)": jwt("HS256", good, pubPem),
      "expired": jwt("RS256", { ...good, exp: NOW() - 60 }, privateKey),
      "not yet valid": jwt("RS256", { ...good, nbf: NOW() + 120 }, privateKey),
      "wrong audience": jwt("RS256", { ...good, aud: "someone-else" }, privateKey),
      "wrong issuer": jwt("RS256", { ...good, iss: "https://evil.test" }, privateKey),
      "signed by another key": jwt("RS256", good, stranger),
      "payload swapped under a valid signature":
        `${ok.split(".")[0]}.${b64({ ...good, sub: "admin" })}.${ok.split(".")[2]}`,
    };
    for (const [why, t] of Object.entries(refused)) {
      tokens.push(t);
      const res = await post(s.base, "/v1/chat/completions", chatBody("x"), bearer(t));
      assert.equal(res.status, 401, why);
      assert.match(res.headers.get("www-authenticate"), /^Bearer realm="r1serve", error="invalid_token"/, why);
      const body = await res.json();
      assert.equal(body.error.type, "authentication_error", why);
    }
    // A valid token without the role the route needs.
    const auditorOnly = jwt("RS256", { ...good, roles: ["auditor"] }, privateKey);
    tokens.push(auditorOnly);
    const forbidden = await post(s.base, "/v1/chat/completions", chatBody("x"), bearer(auditorOnly));
    assert.equal(forbidden.status, 403);
    assert.equal((await forbidden.json()).error.code, "insufficient_role");
    const usage = await fetch(`${s.base}/admin/usage`, { headers: bearer(auditorOnly) });
    assert.equal(usage.status, 200);
    const rows = (await usage.json()).data;
    assert.deepEqual(rows.map((x) => [x.principal, x.requests, x.completion_tokens]), [["carol", 1, 2]]);
  } finally {
    await s.stop("SIGTERM");
  }
  const logs = s.stderr() + readFileSync(path.join(work, "jwt-access.jsonl"), "utf8");
  assert.match(logs, /"principal":"carol"/);
  for (const t of tokens) assert.ok(!logs.includes(t.split(".")[2] || t), "a token appears in the logs");
});

test("ES256 and HS256 JWTs signed by another implementation verify; a token's alg never switches", async () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecFile = path.join(work, "ec.pem");
  writeFileSync(ecFile, ec.publicKey.export({ type: "spki", format: "pem" }));
  const claims = { sub: "dave", exp: NOW() + 300, scope: "developer" };
  let s = await startServer(["--jwt-algorithm", "ES256", "--jwt-key", ecFile,
    "--jwt-roles-claim", "scope"]);
  try {
    const res = await post(s.base, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 1 },
      { Authorization: `Bearer ${jwt("ES256", claims, ec.privateKey)}` });
    assert.equal(res.status, 200, await res.text());
    const hs = await post(s.base, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 1 },
      { Authorization: `Bearer ${jwt("HS256", claims, "whatever-secret-it-may-be-32-bytes")}` });
    assert.equal(hs.status, 401);
  } finally {
    await s.stop();
  }
  const secret = "an-hs256-shared-secret-with-32+-bytes";
  const secretFile = path.join(work, "hs.secret");
  writeFileSync(secretFile, secret + "\n");
  s = await startServer(["--jwt-algorithm", "HS256", "--jwt-key", secretFile,
    "--jwt-roles-claim", "scope"]);
  try {
    const ok = await post(s.base, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 1 },
      { Authorization: `Bearer ${jwt("HS256", claims, secret)}` });
    assert.equal(ok.status, 200);
    const wrong = await post(s.base, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 1 },
      { Authorization: `Bearer ${jwt("HS256", claims, secret + "x")}` });
    assert.equal(wrong.status, 401);
  } finally {
    await s.stop();
  }
});

test("a gateway's forwarded principal is trusted from the configured proxies only", async () => {
  const access = path.join(work, "fwd-access.jsonl");
  let s = await startServer(["--trusted-principal-header", "X-Consumer-Username",
    "--trusted-roles-header", "X-Consumer-Roles", "--trusted-proxies", "127.0.0.1/32",
    "--access-log", access]);
  try {
    const ok = await post(s.base, "/v1/chat/completions", chatBody("hi", { max_tokens: 1 }),
      { "X-Consumer-Username": "team-blue", "X-Consumer-Roles": "developer" });
    assert.equal(ok.status, 200);
    const noRole = await post(s.base, "/v1/chat/completions", chatBody("hi"),
      { "X-Consumer-Username": "team-blue", "X-Consumer-Roles": "auditor" });
    assert.equal(noRole.status, 403);
    assert.equal((await post(s.base, "/v1/chat/completions", chatBody("hi"))).status, 401);
  } finally {
    await s.stop("SIGTERM");
  }
  assert.match(readFileSync(access, "utf8"), /"principal":"team-blue"/);
  // The same header from a peer outside --trusted-proxies is ignored.
  s = await startServer(["--trusted-principal-header", "X-Consumer-Username",
    "--trusted-proxies", "10.0.0.0/8"]);
  try {
    const res = await post(s.base, "/v1/chat/completions", chatBody("hi"),
      { "X-Consumer-Username": "team-blue" });
    assert.equal(res.status, 401);
  } finally {
    await s.stop();
  }
});

// A redis-server on a unix socket in `dir`; resolves once it answers PING.
async function startRedis(dir) {
  const sock = path.join(dir, "redis.sock");
  const proc = spawn("redis-server", ["--port", "0", "--unixsocket", sock, "--dir", dir,
    "--save", "", "--appendonly", "no", "--logfile", path.join(dir, "redis.log")],
  { stdio: "ignore" });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  for (let i = 0; i < 400; i++) {
    const ping = spawnSync("redis-cli", ["-s", sock, "PING"], { encoding: "utf8" });
    if (ping.stdout.trim() === "PONG") break;
    await new Promise((res) => setTimeout(res, 25));
  }
  return { sock, stop: async () => { proc.kill("SIGKILL"); await exited; } };
}

test("response cache in Redis: hits, opt-out, counted as usage, survives a restart, degrades when Redis dies", async () => {
  const redis = await startRedis(work);
  const keys = path.join(work, "cache-keys.yaml");
  writeFileSync(keys, "keys:\n" +
    `  - id: dev\n    sha256: ${sha("sk-cache-dev")}\n    roles: [developer]\n` +
    `  - id: ops\n    sha256: ${sha("sk-cache-ops")}\n    roles: [operator]\n`);
  const usageFile = path.join(work, "usage.jsonl");
  const access = path.join(work, "cache-access.jsonl");
  const args = ["--api-keys", keys, "--response-cache", "redis",
    "--response-cache-redis", `unix:${redis.sock}`, "--usage-file", usageFile,
    "--access-log", access];
  const dev = { Authorization: "Bearer sk-cache-dev" };
  const ops = { Authorization: "Bearer sk-cache-ops" };
  const request = chatBody("What is two plus two?", { max_tokens: 8 });
  let s = await startServer(args);
  let first;
  try {
    const miss = await post(s.base, "/v1/chat/completions", request, dev);
    assert.equal(miss.status, 200);
    assert.equal(miss.headers.get("x-r1serve-cache"), "miss");
    first = await miss.json();
    // Same request, keys in another order: a hit with the same answer and a new id.
    const reordered = { temperature: 0, max_tokens: 8, messages: request.messages, model: "tiny" };
    const hit = await post(s.base, "/v1/chat/completions", reordered, dev);
    assert.equal(hit.headers.get("x-r1serve-cache"), "hit");
    const again = await hit.json();
    assert.deepEqual(again.choices, first.choices);
    assert.deepEqual(again.usage, first.usage);
    assert.notEqual(again.id, first.id);
    // Opting out, sampling without a seed, and streams are not served from the cache.
    const bypass = await post(s.base, "/v1/chat/completions", request, { ...dev, "Cache-Control": "no-store" });
    assert.equal(bypass.headers.get("x-r1serve-cache"), "bypass");
    const sampled = await post(s.base, "/v1/chat/completions", { ...request, temperature: 0.8 }, dev);
    assert.equal(sampled.headers.get("x-r1serve-cache"), null);
    assert.equal(await metric(s.base, "r1serve_response_cache_hits_total"), 1);
    assert.equal(await metric(s.base, "r1serve_response_cache_misses_total"), 1);
  } finally {
    await s.stop("SIGTERM");
  }
  // A restarted replica answers from Redis; usage from before the restart is kept.
  s = await startServer(args);
  try {
    const hit = await post(s.base, "/v1/chat/completions", request, dev);
    assert.equal(hit.headers.get("x-r1serve-cache"), "hit");
    assert.deepEqual((await hit.json()).choices, first.choices);
    const usage = await (await fetch(`${s.base}/admin/usage?principal=dev`, { headers: ops })).json();
    assert.equal(usage.data.length, 1);
    const u = usage.data[0];
    assert.equal(u.model, "tiny");
    assert.equal(u.requests, 5);
    assert.equal(u.cache_hits, 2);
    // Every request has the same prompt; the sampled one may stop early.
    assert.equal(u.prompt_tokens, 5 * first.usage.prompt_tokens);
    assert.ok(u.completion_tokens > 4 * first.usage.completion_tokens &&
      u.completion_tokens <= 5 * first.usage.completion_tokens, `${u.completion_tokens}`);
    assert.equal((await fetch(`${s.base}/admin/usage`, { headers: dev })).status, 403);

    // Redis dies: answers keep coming, uncached, and the failure is counted and logged.
    await redis.stop();
    const down = await post(s.base, "/v1/chat/completions", request, dev);
    assert.equal(down.status, 200);
    assert.equal(down.headers.get("x-r1serve-cache"), "miss");
    assert.deepEqual((await down.json()).choices, first.choices);
    assert.ok(await metric(s.base, "r1serve_response_cache_errors_total") >= 1);
    assert.match(s.stderr(), /Redis at unix:.* unavailable/);
  } finally {
    await s.stop("SIGTERM");
  }
  const lines = readFileSync(access, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.cache), ["miss", "hit", "bypass", null, "hit", "miss"]);
});

test("operator drain and resume; auditor reads the audit trail with prompts only when asked", async () => {
  const keys = path.join(work, "admin-keys.yaml");
  writeFileSync(keys, "keys:\n" +
    `  - id: dev\n    sha256: ${sha("sk-a-dev")}\n    roles: [developer]\n` +
    `  - id: ops\n    sha256: ${sha("sk-a-ops")}\n    roles: [operator]\n` +
    `  - id: aud\n    sha256: ${sha("sk-a-aud")}\n    roles: [auditor]\n`);
  const audit = path.join(work, "admin-audit.jsonl");
  const s = await startServer(["--api-keys", keys, "--audit-log", audit, "--audit-prompts"]);
  const as = (k) => ({ Authorization: `Bearer ${k}` });
  try {
    assert.equal((await post(s.base, "/admin/drain", {}, as("sk-a-dev"))).status, 403);
    const drained = await post(s.base, "/admin/drain", {}, as("sk-a-ops"));
    assert.equal(drained.status, 200);
    assert.equal((await fetch(`${s.base}/ready`)).status, 503);
    assert.equal((await fetch(`${s.base}/startup`)).status, 200, "a drained pod is still started");
    assert.equal(await metric(s.base, "r1serve_ready"), 0);
    assert.equal((await post(s.base, "/v1/chat/completions", chatBody("x"), as("sk-a-dev"))).status, 503);
    const model = await (await fetch(`${s.base}/admin/model`, { headers: as("sk-a-ops") })).json();
    assert.equal(model.name, "tiny");
    assert.equal(model.draining, true);
    assert.equal((await post(s.base, "/admin/resume", {}, as("sk-a-ops"))).status, 200);
    assert.equal((await fetch(`${s.base}/ready`)).status, 200);
    assert.equal(await metric(s.base, "r1serve_ready"), 1);
    const ok = await post(s.base, "/v1/chat/completions", chatBody("the secret plan"), as("sk-a-dev"));
    assert.equal(ok.status, 200);
    const answer = await ok.json();
    assert.equal(await metric(s.base, 'r1serve_principal_requests_total{cache="miss",model="tiny",principal="dev"}'), 1);
    assert.equal(await metric(s.base, 'r1serve_principal_tokens_total{model="tiny",principal="dev",type="completion"}'),
      answer.usage.completion_tokens);
    assert.equal((await fetch(`${s.base}/admin/audit`, { headers: as("sk-a-ops") })).status, 403);
    const trail = await (await fetch(`${s.base}/admin/audit?limit=2`, { headers: as("sk-a-aud") })).json();
    assert.equal(trail.data.length, 2);
    const call = trail.data.find((r) => r.route === "/v1/chat/completions" && r.status === 200);
    assert.ok(call, JSON.stringify(trail.data));
    assert.match(call.prompt, /the secret plan/);
    assert.equal(call.principal, "dev");
    assert.equal(call.source, "api_key");
  } finally {
    await s.stop("SIGTERM");
  }
  const verify = spawnSync(BIN, ["audit-verify", audit], { encoding: "utf8" });
  assert.equal(verify.status, 0, verify.stderr);
});

test("tokens per minute are charged while a stream generates, not only when it ends", async () => {
  const keys = path.join(work, "tpm-keys.yaml");
  writeFileSync(keys, "keys:\n" +
    `  - id: dev\n    sha256: ${sha("sk-tpm")}\n    roles: [developer]\n    tokens_per_minute: 600\n`);
  const s = await startServer(["--api-keys", keys]);
  try {
    const client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: "sk-tpm", maxRetries: 0 });
    const started = Date.now();
    const stream = await client.completions.create({ model: "tiny", prompt: "count", max_tokens: 200,
      temperature: 0, stream: true, stream_options: { include_usage: true } });
    let chunks = 0, remaining = null, prompt = null, elapsed = 0;
    for await (const c of stream) {
      if (c.choices?.[0]?.text !== undefined) chunks += 1;
      if (chunks === 20 && remaining === null) {
        const probe = await post(s.base, "/v1/completions",
          { model: "tiny", prompt: "x", max_tokens: 1, temperature: 0 }, { Authorization: "Bearer sk-tpm" });
        assert.equal(probe.status, 200);
        remaining = Number(probe.headers.get("x-ratelimit-remaining-tokens"));
        elapsed = (Date.now() - started) / 1000;
      }
      if (c.usage) prompt = c.usage.prompt_tokens;
    }
    assert.ok(remaining !== null, "the stream ended before 20 chunks");
    // At least the prompt and the 20 tokens already streamed were charged
    // when the probe was admitted; the bucket refills 600 / 60 = 10 tokens/s.
    const refilled = Math.ceil(10 * elapsed) + 1;
    assert.ok(remaining <= 600 - prompt - 20 + refilled, `remaining ${remaining}, elapsed ${elapsed}`);
  } finally {
    await s.stop();
  }
});
