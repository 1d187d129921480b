# r1serve's guardrails end to end, on the real binary: JWTs signed by the
# openssl command-line tool and Python's hmac (RS256, ES256, HS256) and every
# way one must be refused; a gateway's forwarded principal; the response
# cache in a real redis-server (survives an r1serve restart, degrades when
# Redis dies); usage metering persisted across a restart and read through
# /admin/usage; the operator's drain and resume; tokens charged while they
# are generated; prompts in the audit trail only when asked.
#
# Environment (set by ctest): R1SERVE_BINARY, R1SERVE_SOURCE_DIR, whose
# tools/python/r1serve_harness.py this imports (this checkout's when it is
# unset).
import base64
import hashlib
import hmac
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import openai
import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import Redis, Server, fetch, poll, post, serve_args  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "")

# Deadlines, in seconds. A poll that reaches one fails with what the process
# said on stderr.
kStartSeconds = 60
kStopSeconds = 30


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def now():
    return int(time.time())


def metric(base, name, headers=None):
    """The sum of every sample of `name` (a family, or one labelled series)."""
    total = 0.0
    for line in fetch(f"{base}/metrics", headers=headers).text().split("\n"):
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.split(" ")[-1])
    return total


def chat_body(content, **extra):
    return {"model": "tiny", "messages": [{"role": "user", "content": content}],
            "max_tokens": 6, "temperature": 0, **extra}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def start(model_dir):
    """start(extra_args) -> a ready Server; every server is killed at teardown."""
    started = []

    def make(extra=()):
        s = Server.start(BIN, serve_args(model_dir, list(extra)), seconds=kStartSeconds)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


# --- JWTs, signed here independently of r1serve ----------------------------


def b64(x):
    raw = x if isinstance(x, bytes) else (
        x.encode() if isinstance(x, str) else json.dumps(x, separators=(",", ":")).encode())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def rsa_key(path):
    """A fresh 2048-bit RSA private key at `path`; returns the public key's SPKI PEM."""
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    return openssl("pkey", "-in", path, "-pubout").decode()


def ec_key(path):
    """A fresh P-256 private key at `path`; returns the public key's SPKI PEM."""
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    return openssl("pkey", "-in", path, "-pubout").decode()


def der_ecdsa_to_p1363(der, size=32):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, as JWS wants."""

    def read(buf, i, tag):
        assert buf[i] == tag, der.hex()
        n = buf[i + 1]
        i += 2
        if n & 0x80:
            width = n & 0x7F
            n = int.from_bytes(buf[i:i + width], "big")
            i += width
        return buf[i:i + n], i + n

    seq, _ = read(der, 0, 0x30)
    r, i = read(seq, 0, 0x02)
    s, _ = read(seq, i, 0x02)
    return b"".join(int.from_bytes(v, "big").to_bytes(size, "big") for v in (r, s))


def jwt(alg, claims, key, **header):
    """A compact JWS. HS256: `key` is the secret (str); RS256 / ES256: a PEM private key path."""
    signing_input = f"{b64({'alg': alg, 'typ': 'JWT', **header})}.{b64(claims)}"
    sig = b""
    if alg == "HS256":
        sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    elif alg == "RS256":
        sig = openssl("dgst", "-sha256", "-sign", key, data=signing_input.encode())
    elif alg == "ES256":
        sig = der_ecdsa_to_p1363(
            openssl("dgst", "-sha256", "-sign", key, data=signing_input.encode()))
    return f"{signing_input}.{b64(sig)}"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def read(path):
    with open(path) as f:
        return f.read()


# --- Tests ------------------------------------------------------------------


def test_rs256_jwts_accepted_and_every_bad_token_refused(work, start):
    """RS256 JWTs: accepted, and alg none, alg confusion, expiry, nbf, iss, aud,
    signature and role refused; no token reaches the logs."""
    private_key = os.path.join(work, "rsa-private.pem")
    pub_pem = rsa_key(private_key)
    key_file = write(os.path.join(work, "rsa.pem"), pub_pem)
    access = os.path.join(work, "jwt-access.jsonl")
    s = start(["--jwt-algorithm", "RS256", "--jwt-key", key_file,
               "--jwt-issuer", "https://idp.test", "--jwt-audience", "r1serve",
               "--jwt-leeway", "5", "--access-log", access])
    good = {"sub": "carol", "iss": "https://idp.test", "aud": "r1serve", "exp": now() + 300,
            "roles": ["developer"]}
    tokens = []
    try:
        ok = jwt("RS256", good, private_key)
        tokens.append(ok)
        client = openai.OpenAI(base_url=f"{s.base}/v1", api_key=ok, max_retries=0)
        r = client.chat.completions.create(**chat_body("hi", max_tokens=2))
        assert r.usage.completion_tokens == 2

        stranger = os.path.join(work, "rsa-stranger.pem")
        rsa_key(stranger)
        head, _, signature = ok.split(".")
        refused = {
            "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(good)}.",
            "alg confusion (HS256 keyed with the RSA public key)": jwt("HS256", good, pub_pem),
            "expired": jwt("RS256", {**good, "exp": now() - 60}, private_key),
            "not yet valid": jwt("RS256", {**good, "nbf": now() + 120}, private_key),
            "wrong audience": jwt("RS256", {**good, "aud": "someone-else"}, private_key),
            "wrong issuer": jwt("RS256", {**good, "iss": "https://evil.test"}, private_key),
            "signed by another key": jwt("RS256", good, stranger),
            "payload swapped under a valid signature":
                f"{head}.{b64({**good, 'sub': 'admin'})}.{signature}",
        }
        for why, t in refused.items():
            tokens.append(t)
            res = post(s.base, "/v1/chat/completions", chat_body("x"), bearer(t))
            assert res.status == 401, why
            assert re.match(r'^Bearer realm="r1serve", error="invalid_token"',
                            res.headers.get("www-authenticate") or ""), why
            assert res.json()["error"]["type"] == "authentication_error", why

        # A valid token without the role the route needs.
        auditor_only = jwt("RS256", {**good, "roles": ["auditor"]}, private_key)
        tokens.append(auditor_only)
        forbidden = post(s.base, "/v1/chat/completions", chat_body("x"), bearer(auditor_only))
        assert forbidden.status == 403
        assert forbidden.json()["error"]["code"] == "insufficient_role"
        usage = fetch(f"{s.base}/admin/usage", headers=bearer(auditor_only))
        assert usage.status == 200
        rows = usage.json()["data"]
        assert [[x["principal"], x["requests"], x["completion_tokens"]] for x in rows] == \
            [["carol", 1, 2]]
    finally:
        s.stop(signal.SIGTERM)
    logs = s.stderr() + read(access)
    assert '"principal":"carol"' in logs
    for t in tokens:
        assert (t.split(".")[2] or t) not in logs, "a token appears in the logs"


def test_es256_and_hs256_jwts_verify_and_alg_never_switches(work, start):
    """ES256 and HS256 JWTs signed by another implementation verify; a token's
    alg never switches."""
    ec_private = os.path.join(work, "ec-private.pem")
    ec_file = write(os.path.join(work, "ec.pem"), ec_key(ec_private))
    claims = {"sub": "dave", "exp": now() + 300, "scope": "developer"}
    completion = {"model": "tiny", "prompt": "a", "max_tokens": 1}
    s = start(["--jwt-algorithm", "ES256", "--jwt-key", ec_file, "--jwt-roles-claim", "scope"])
    try:
        res = post(s.base, "/v1/completions", completion,
                   bearer(jwt("ES256", claims, ec_private)))
        assert res.status == 200, res.text()
        hs = post(s.base, "/v1/completions", completion,
                  bearer(jwt("HS256", claims, "whatever-secret-it-may-be-32-bytes")))
        assert hs.status == 401
    finally:
        s.stop()
    secret = "an-hs256-shared-secret-with-32+-bytes"
    secret_file = write(os.path.join(work, "hs.secret"), secret + "\n")
    s = start(["--jwt-algorithm", "HS256", "--jwt-key", secret_file,
               "--jwt-roles-claim", "scope"])
    try:
        ok = post(s.base, "/v1/completions", completion, bearer(jwt("HS256", claims, secret)))
        assert ok.status == 200
        wrong = post(s.base, "/v1/completions", completion,
                     bearer(jwt("HS256", claims, secret + "x")))
        assert wrong.status == 401
    finally:
        s.stop()


def test_forwarded_principal_trusted_from_configured_proxies_only(work, start):
    """A gateway's forwarded principal is trusted from the configured proxies only."""
    access = os.path.join(work, "fwd-access.jsonl")
    s = start(["--trusted-principal-header", "X-Consumer-Username",
               "--trusted-roles-header", "X-Consumer-Roles", "--trusted-proxies", "127.0.0.1/32",
               "--access-log", access])
    try:
        ok = post(s.base, "/v1/chat/completions", chat_body("hi", max_tokens=1),
                  {"X-Consumer-Username": "team-blue", "X-Consumer-Roles": "developer"})
        assert ok.status == 200
        no_role = post(s.base, "/v1/chat/completions", chat_body("hi"),
                       {"X-Consumer-Username": "team-blue", "X-Consumer-Roles": "auditor"})
        assert no_role.status == 403
        assert post(s.base, "/v1/chat/completions", chat_body("hi")).status == 401
    finally:
        s.stop(signal.SIGTERM)
    assert '"principal":"team-blue"' in read(access)
    # The same header from a peer outside --trusted-proxies is ignored.
    s = start(["--trusted-principal-header", "X-Consumer-Username",
               "--trusted-proxies", "10.0.0.0/8"])
    try:
        res = post(s.base, "/v1/chat/completions", chat_body("hi"),
                   {"X-Consumer-Username": "team-blue"})
        assert res.status == 401
    finally:
        s.stop()


@pytest.fixture
def redis(work):
    r = Redis(work)
    yield r
    if r.proc.poll() is None:
        r.stop()


def test_response_cache_in_redis(work, start, redis):
    """Response cache in Redis: hits, opt-out, counted as usage, survives a
    restart, degrades when Redis dies."""
    keys = write(os.path.join(work, "cache-keys.yaml"),
                 "keys:\n"
                 f"  - id: dev\n    sha256: {sha('sk-cache-dev')}\n    roles: [developer]\n"
                 f"  - id: ops\n    sha256: {sha('sk-cache-ops')}\n    roles: [operator]\n")
    usage_file = os.path.join(work, "usage.jsonl")
    access = os.path.join(work, "cache-access.jsonl")
    args = ["--api-keys", keys, "--response-cache", "redis",
            "--response-cache-redis", f"unix:{redis.sock}", "--usage-file", usage_file,
            "--access-log", access]
    dev = bearer("sk-cache-dev")
    ops = bearer("sk-cache-ops")
    request = chat_body("What is two plus two?", max_tokens=8)
    s = start(args)
    try:
        miss = post(s.base, "/v1/chat/completions", request, dev)
        assert miss.status == 200
        assert miss.headers.get("x-r1serve-cache") == "miss"
        first = miss.json()
        # Same request, keys in another order: a hit with the same answer and a new id.
        reordered = {"temperature": 0, "max_tokens": 8, "messages": request["messages"],
                     "model": "tiny"}
        hit = post(s.base, "/v1/chat/completions", reordered, dev)
        assert hit.headers.get("x-r1serve-cache") == "hit"
        again = hit.json()
        assert again["choices"] == first["choices"]
        assert again["usage"] == first["usage"]
        assert again["id"] != first["id"]
        # Opting out, sampling without a seed, and streams are not served from the cache.
        bypass = post(s.base, "/v1/chat/completions", request, {**dev, "Cache-Control": "no-store"})
        assert bypass.headers.get("x-r1serve-cache") == "bypass"
        sampled = post(s.base, "/v1/chat/completions", {**request, "temperature": 0.8}, dev)
        assert sampled.headers.get("x-r1serve-cache") is None
        assert metric(s.base, "r1serve_response_cache_hits_total") == 1
        assert metric(s.base, "r1serve_response_cache_misses_total") == 1
    finally:
        s.stop(signal.SIGTERM)
    # A restarted replica answers from Redis; usage from before the restart is kept.
    s = start(args)
    try:
        hit = post(s.base, "/v1/chat/completions", request, dev)
        assert hit.headers.get("x-r1serve-cache") == "hit"
        assert hit.json()["choices"] == first["choices"]
        usage = fetch(f"{s.base}/admin/usage?principal=dev", headers=ops).json()
        assert len(usage["data"]) == 1
        u = usage["data"][0]
        assert u["model"] == "tiny"
        # Metered per loaded version: the one that answered.
        assert u["version"] == hit.headers["X-R1serve-Model-Version"].split("@", 1)[1]
        assert u["requests"] == 5
        assert u["cache_hits"] == 2
        # Every request has the same prompt; the sampled one may stop early.
        assert u["prompt_tokens"] == 5 * first["usage"]["prompt_tokens"]
        assert 4 * first["usage"]["completion_tokens"] < u["completion_tokens"] \
            <= 5 * first["usage"]["completion_tokens"], u["completion_tokens"]
        assert fetch(f"{s.base}/admin/usage", headers=dev).status == 403

        # Redis dies: answers keep coming, uncached, and the failure is counted and logged.
        redis.stop()
        down = post(s.base, "/v1/chat/completions", request, dev)
        assert down.status == 200
        assert down.headers.get("x-r1serve-cache") == "miss"
        assert down.json()["choices"] == first["choices"]
        assert metric(s.base, "r1serve_response_cache_errors_total") >= 1
        s.wait_stderr(r"Redis at unix:.* unavailable")
    finally:
        s.stop(signal.SIGTERM)
    lines = [json.loads(line) for line in read(access).strip().split("\n")]
    assert [line.get("cache", "(absent)") for line in lines] == \
        ["miss", "hit", "bypass", None, "hit", "miss"]


def test_operator_drain_resume_and_audit_trail_with_prompts(work, start):
    """Operator drain and resume; auditor reads the audit trail with prompts
    only when asked; the trail verifies."""
    keys = write(os.path.join(work, "admin-keys.yaml"),
                 "keys:\n"
                 f"  - id: dev\n    sha256: {sha('sk-a-dev')}\n    roles: [developer]\n"
                 f"  - id: ops\n    sha256: {sha('sk-a-ops')}\n    roles: [operator]\n"
                 f"  - id: aud\n    sha256: {sha('sk-a-aud')}\n    roles: [auditor]\n")
    audit = os.path.join(work, "admin-audit.jsonl")
    s = start(["--api-keys", keys, "--audit-log", audit, "--audit-prompts"])
    dev, ops, aud = bearer("sk-a-dev"), bearer("sk-a-ops"), bearer("sk-a-aud")
    try:
        assert post(s.base, "/admin/drain", {}, dev).status == 403
        drained = post(s.base, "/admin/drain", {}, ops)
        assert drained.status == 200
        assert fetch(f"{s.base}/ready").status == 503
        assert fetch(f"{s.base}/startup").status == 200, "a drained pod is still started"
        assert metric(s.base, "r1serve_ready") == 0
        assert post(s.base, "/v1/chat/completions", chat_body("x"), dev).status == 503
        model = fetch(f"{s.base}/admin/model", headers=ops).json()
        assert model["name"] == "tiny"
        assert model["draining"] is True
        assert post(s.base, "/admin/resume", {}, ops).status == 200
        assert fetch(f"{s.base}/ready").status == 200
        assert metric(s.base, "r1serve_ready") == 1
        ok = post(s.base, "/v1/chat/completions", chat_body("the secret plan"), dev)
        assert ok.status == 200
        answer = ok.json()
        assert metric(s.base, 'r1serve_principal_requests_total'
                      '{cache="miss",model="tiny",principal="dev"}') == 1
        assert metric(s.base, 'r1serve_principal_tokens_total'
                      '{model="tiny",principal="dev",type="completion"}') == \
            answer["usage"]["completion_tokens"]
        assert fetch(f"{s.base}/admin/audit", headers=ops).status == 403
        trail = fetch(f"{s.base}/admin/audit?limit=2", headers=aud).json()
        assert len(trail["data"]) == 2
        call = next((r for r in trail["data"]
                     if r.get("route") == "/v1/chat/completions" and r.get("status") == 200), None)
        assert call, json.dumps(trail["data"])
        assert re.search(r"the secret plan", call["prompt"])
        assert call["principal"] == "dev"
        assert call["source"] == "api_key"
    finally:
        s.stop(signal.SIGTERM)
    verify = subprocess.run([BIN, "audit-verify", audit], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_tokens_per_minute_charged_while_a_stream_generates(work, start):
    """Tokens per minute are charged while a stream generates, not only when it ends."""
    keys = write(os.path.join(work, "tpm-keys.yaml"),
                 "keys:\n"
                 f"  - id: dev\n    sha256: {sha('sk-tpm')}\n    roles: [developer]\n"
                 "    tokens_per_minute: 600\n")
    s = start(["--api-keys", keys])
    try:
        client = openai.OpenAI(base_url=f"{s.base}/v1", api_key="sk-tpm", max_retries=0)
        started = time.monotonic()
        stream = client.completions.create(
            model="tiny", prompt="count", max_tokens=200, temperature=0, stream=True,
            stream_options={"include_usage": True})
        chunks, remaining, prompt, elapsed = 0, None, None, 0.0
        for c in stream:
            if c.choices and c.choices[0].text is not None:
                chunks += 1
            if chunks == 20 and remaining is None:
                probe = post(s.base, "/v1/completions",
                             {"model": "tiny", "prompt": "x", "max_tokens": 1, "temperature": 0},
                             bearer("sk-tpm"))
                assert probe.status == 200
                remaining = int(probe.headers.get("x-ratelimit-remaining-tokens"))
                elapsed = time.monotonic() - started
            if c.usage:
                prompt = c.usage.prompt_tokens
        assert remaining is not None, "the stream ended before 20 chunks"
        assert prompt is not None, "no usage chunk despite stream_options.include_usage"
        # At least the prompt and the 20 tokens already streamed were charged
        # when the probe was admitted; the bucket refills 600 / 60 = 10 tokens/s.
        refilled = math.ceil(10 * elapsed) + 1
        assert remaining <= 600 - prompt - 20 + refilled, \
            f"remaining {remaining}, elapsed {elapsed}"
    finally:
        s.stop()


def test_a_stream_is_in_the_usage_ledger_before_its_end(work, start):
    """A streamed call's usage is on disk before the client reads the end of
    the stream: a client (or a billing job) that has the whole answer finds it
    counted, on this replica and after a crash."""
    keys = write(os.path.join(work, "settle-keys.yaml"),
                 "keys:\n"
                 f"  - id: dev\n    sha256: {sha('sk-settle-dev')}\n    roles: [developer]\n"
                 f"  - id: ops\n    sha256: {sha('sk-settle-ops')}\n    roles: [operator]\n")
    usage_file = os.path.join(work, "settle-usage.jsonl")
    s = start(["--api-keys", keys, "--usage-file", usage_file])
    try:
        client = openai.OpenAI(base_url=f"{s.base}/v1", api_key="sk-settle-dev", max_retries=0)
        stream = client.chat.completions.create(
            **chat_body("count to ten", max_tokens=24), stream=True,
            stream_options={"include_usage": True})
        seen = None
        for c in stream:
            if c.usage:
                # The last event before [DONE]: the ledger has the call already.
                usage = fetch(f"{s.base}/admin/usage?principal=dev",
                              headers=bearer("sk-settle-ops")).json()["data"]
                lines = [json.loads(x) for x in open(usage_file) if x.strip()]
                seen = (c.usage, usage, lines)
        assert seen, "no usage chunk despite stream_options.include_usage"
        u, usage, lines = seen
        assert [[x["requests"], x["prompt_tokens"], x["completion_tokens"]] for x in usage] == \
            [[1, u.prompt_tokens, u.completion_tokens]]
        assert [[x["principal"], x["completion_tokens"]] for x in lines] == \
            [["dev", u.completion_tokens]]
    finally:
        s.stop(signal.SIGTERM)
