# Spot-safe serving, end to end with real processes: two r1serve replicas
# and a redis-server (or a shared directory) on this machine. A generation
# interrupted on replica A (SIGTERM, SIGKILL, a cloud's spot notice from a
# fake metadata endpoint, a client that leaves) is resumed on replica B; the
# joined output must be the uninterrupted run's, token for token, with the
# same reasoning/content split, and usage counted once across the ledgers.
#
# Environment (set by ctest): R1SERVE_BINARY, R1SERVE_SOURCE_DIR, whose
# tools/python/r1serve_harness.py this imports (this checkout's when it is
# unset).
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import (HTTP_SECONDS, Redis, Server, fetch, make_test_model,  # noqa: E402
                             poll, post, serve_args)

BIN = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")
MAX_TOKENS = 400  # about 1.5 s of the tiny model on two cores: time to interrupt it


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="r1serve-resume-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def model(work):
    out = os.path.join(work, "tiny")
    made = make_test_model(BIN, out)
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def redis(work):
    r = Redis(work)
    yield r
    r.stop()


def start(model, store, extra=()):
    return Server.start(BIN, serve_args(model, ["--checkpoint-store", store, *extra]))


def chat(**kw):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a long story"}],
            "max_tokens": MAX_TOKENS, "stream": True, "logprobs": True,
            "stream_options": {"include_usage": True}}
    body.update(kw)
    return body


class Stream:
    """A streamed chat completion read event by event: (id, data) pairs,
    data a parsed JSON object or "[DONE]"."""

    def __init__(self, base, body, headers=None):
        host, port = base.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_SECONDS)
        self.conn.request("POST", "/v1/chat/completions", json.dumps(body),
                          {"Content-Type": "application/json", **(headers or {})})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def events(self):
        event_id, data = None, None
        while True:
            try:
                line = self.resp.readline()
            except (http.client.IncompleteRead, ConnectionError, OSError):
                return  # the replica died mid-stream
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data is not None:
                yield event_id, (data if data == "[DONE]" else json.loads(data))
                event_id, data = None, None

    def close(self):
        self.conn.close()


class Collected:
    """What a client has of a chat stream once it has read some events."""

    def __init__(self):
        self.reasoning, self.content, self.tokens = "", "", []
        self.finish, self.usage, self.error, self.last_id, self.done = None, None, None, None, False
        self.roles = 0

    def add(self, event_id, data):
        if event_id is not None:
            self.last_id = event_id
        if data == "[DONE]":
            self.done = True
            return
        if "error" in data:
            self.error = data["error"]
            return
        if data.get("usage"):
            self.usage = data["usage"]
        for c in data.get("choices", []):
            d = c["delta"]
            self.roles += "role" in d
            self.reasoning += d.get("reasoning_content") or ""
            self.content += d.get("content") or ""
            for t in (c.get("logprobs") or {}).get("content") or []:
                self.tokens.append(bytes(t["bytes"]))
            if c.get("finish_reason"):
                self.finish = c["finish_reason"]


def read_all(stream, into=None, until=None):
    """Reads `stream` into `into` (a new Collected by default); calls
    until(collected) after each event and stops reading when it returns True."""
    got = into or Collected()
    for event_id, data in stream.events():
        got.add(event_id, data)
        if until is not None and until(got):
            break
    return got


def uninterrupted(server, body, headers=None):
    s = Stream(server.base, body, {**(headers or {}), "X-Request-Id": "base-" + os.urandom(4).hex()})
    got = read_all(s)
    s.close()
    assert got.done and got.error is None, got.error
    return got


def sigterm_after(server, n_tokens):
    """A read_all() `until` that sends `server` SIGTERM once the client has
    `n_tokens` tokens, and reads on."""
    sent = []

    def until(got):
        if len(got.tokens) >= n_tokens and not sent:
            sent.append(server.proc.send_signal(signal.SIGTERM))
        return False
    return until


def assert_joined(first, rest, whole):
    assert rest.error is None, rest.error
    assert rest.done
    assert rest.roles == 0  # the resumed stream does not start a new message
    assert first.reasoning + rest.reasoning == whole.reasoning
    assert first.content + rest.content == whole.content
    assert first.tokens + rest.tokens == whole.tokens
    assert rest.finish == whole.finish
    assert rest.usage == whole.usage


def usage_rows(path):
    """principal -> [prompt, completion, reasoning] summed over a ledger file."""
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            t = out.setdefault(r["principal"], [0, 0, 0])
            t[0] += r["prompt_tokens"]
            t[1] += r["completion_tokens"]
            t[2] += r["reasoning_tokens"]
    return out


def metric(base, name):
    text = fetch(base + "/metrics").text()
    m = re.search(r"^" + re.escape(name) + r"(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def tokens_so_far(event_id):
    return int(event_id.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def replica_b(model, redis, work):
    b = start(model, redis.url, ["--checkpoint-every", "4",
                                 "--usage-file", os.path.join(work, "usage-b.jsonl")])
    yield b
    b.stop(signal.SIGTERM)


SAMPLINGS = {
    "greedy": {"temperature": 0},
    "seeded": {"temperature": 0.9, "top_p": 0.95, "seed": 11},
    "seeded-with-budget": {"temperature": 0.9, "seed": 12, "max_reasoning_tokens": 60},
}


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_sigterm_mid_stream_resumes_on_another_replica(model, redis, replica_b, work, sampling):
    body = chat(**SAMPLINGS[sampling])
    whole = uninterrupted(replica_b, body)
    usage_a = os.path.join(work, f"usage-a-{sampling}.jsonl")
    a = start(model, redis.url, ["--checkpoint-every", "4", "--usage-file", usage_a])
    rid = "sigterm-" + sampling
    s = Stream(a.base, body, {"X-Request-Id": rid})
    first = read_all(s, until=sigterm_after(a, 40))
    s.close()
    a.wait_exit()
    # The stream ends with how to resume; /ready would answer 503 meanwhile.
    assert first.error and first.error["code"] == "replica_interrupted", first.error
    assert not first.done
    assert first.last_id.startswith(rid + ":")
    assert "Last-Event-ID: " + first.last_id in first.error["message"]
    assert tokens_so_far(first.last_id) < MAX_TOKENS
    b_before = usage_rows(os.path.join(work, "usage-b.jsonl")).get("anonymous", [0, 0, 0])
    resumes = metric(replica_b.base, 'r1serve_resumes_total{result="resumed"}')
    s = Stream(replica_b.base, body, {"Last-Event-ID": first.last_id})
    assert s.status == 200
    rest = read_all(s)
    s.close()
    assert_joined(first, rest, whole)
    assert metric(replica_b.base, 'r1serve_resumes_total{result="resumed"}') == resumes + 1
    # Usage counted once: what A's ledger counted plus what B's added is one run.
    a_used = usage_rows(usage_a)["anonymous"]
    b_after = usage_rows(os.path.join(work, "usage-b.jsonl"))["anonymous"]
    b_used = [x - y for x, y in zip(b_after, b_before)]
    u = whole.usage
    assert [p + q for p, q in zip(a_used, b_used)] == [
        u["prompt_tokens"], u["completion_tokens"],
        u["completion_tokens_details"]["reasoning_tokens"]], (a_used, b_used, u)
    # The finished generation's checkpoint is gone.
    again = fetch(replica_b.base + "/v1/chat/completions", "POST", json.dumps(body),
                  {"Last-Event-ID": first.last_id})
    assert again.status == 404 and again.json()["error"]["code"] == "resume_not_found"


def test_sigkill_loses_at_most_checkpoint_every_tokens(model, redis, replica_b):
    every = 8
    body = chat(temperature=0.8, seed=21)
    whole = uninterrupted(replica_b, body)
    a = start(model, redis.url, ["--checkpoint-every", str(every)])
    rid = "sigkill-1"
    s = Stream(a.base, body, {"X-Request-Id": rid})
    killed = []

    def kill_after_some(got):
        if len(got.tokens) >= 50 and not killed:
            killed.append(a.proc.kill())
            return True
        return False

    first = read_all(s, until=kill_after_some)
    read_all(s, into=first)  # whatever was on the wire before the process died
    s.close()
    a.wait_exit()
    assert first.error is None and not first.done
    have = tokens_so_far(first.last_id)
    recomputed = metric(replica_b.base, "r1serve_resume_recomputed_tokens_total")
    s = Stream(replica_b.base, body, {"Last-Event-ID": first.last_id})
    rest = read_all(s)
    s.close()
    assert_joined(first, rest, whole)
    # B went on from A's last checkpoint: at most `every` tokens behind what
    # the client had, and those were regenerated (not sent again).
    m = re.search(re.escape(rid) + r" after (\d+) output tokens", replica_b.stderr())
    assert m, replica_b.stderr()
    checkpointed = int(m.group(1))
    assert 0 < checkpointed and have - checkpointed <= every, (have, checkpointed)
    assert metric(replica_b.base, "r1serve_resume_recomputed_tokens_total") - recomputed == \
        max(have, checkpointed)


class FakeMetadata:
    """A cloud's instance metadata on loopback: AWS IMDSv2 (token, then the
    spot instance-action, 404 until noticed) or GCP (instance/preempted)."""

    def __init__(self, cloud):
        self.cloud, self.noticed, self.token_puts, self.refused = cloud, False, 0, 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                if self.path == "/latest/api/token" and \
                        self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    fake.token_puts += 1
                    return self.answer(200, b"tok-123")
                self.answer(400)

            def do_GET(self):
                if fake.cloud == "aws" and self.path == "/latest/meta-data/spot/instance-action":
                    if self.headers.get("X-aws-ec2-metadata-token") != "tok-123":
                        fake.refused += 1
                        return self.answer(401)
                    if not fake.noticed:
                        return self.answer(404)
                    return self.answer(200, json.dumps(
                        {"action": "terminate", "time": "2026-12-07T08:22:00Z"}).encode())
                if fake.cloud == "gcp" and self.path == "/computeMetadata/v1/instance/preempted":
                    if self.headers.get("Metadata-Flavor") != "Google":
                        return self.answer(403)
                    return self.answer(200, b"TRUE" if fake.noticed else b"FALSE")
                self.answer(404)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_a_spot_notice_checkpoints_and_leaves_rotation(model, redis, replica_b, cloud):
    fake = FakeMetadata(cloud)
    body = chat(temperature=0.7, seed=31)
    whole = uninterrupted(replica_b, body)
    a = start(model, redis.url, ["--spot-notice", cloud, "--spot-metadata-url", fake.url,
                                 "--spot-poll-interval", "0.1"])
    try:
        s = Stream(a.base, body, {"X-Request-Id": "notice-" + cloud})

        def notice_after_some(got):
            if len(got.tokens) >= 30:
                fake.noticed = True
            return False

        first = read_all(s, until=notice_after_some)
        s.close()
        assert first.error and first.error["code"] == "replica_interrupted", first.error
        # Out of rotation, still running; new work goes elsewhere.
        assert fetch(a.base + "/ready").status == 503
        assert post(a.base, "/v1/chat/completions", chat(stream=False)).status == 503
        assert metric(a.base, "r1serve_interruption_notice") == 1
        assert a.alive()
        if cloud == "aws":
            assert fake.token_puts >= 1 and fake.refused == 0
        s = Stream(replica_b.base, body, {"Last-Event-ID": first.last_id})
        rest = read_all(s)
        s.close()
        assert_joined(first, rest, whole)
    finally:
        a.stop(signal.SIGTERM)
        fake.stop()


def test_a_whole_answer_resumes_by_request_id(model, redis, replica_b, work):
    body = chat(temperature=0.6, seed=41, stream=False, logprobs=False)
    del body["stream_options"]
    whole = post(replica_b.base, "/v1/chat/completions", body).json()
    a = start(model, redis.url, ["--checkpoint-every", "4"])
    answer = {}

    def ask():
        answer["res"] = post(a.base, "/v1/chat/completions", body,
                             {"X-Request-Id": "whole-1"})

    t = threading.Thread(target=ask)
    t.start()
    poll("A to checkpoint the whole answer", lambda: metric(
        a.base, "r1serve_checkpoints_written_total") >= 5, 60)
    a.proc.send_signal(signal.SIGTERM)
    t.join(HTTP_SECONDS)
    a.wait_exit()
    res = answer["res"]
    assert res.status == 503, res.text()
    assert res.json()["error"]["code"] == "replica_interrupted"
    assert res.headers["X-R1serve-Resume"] == "whole-1"
    resumed = post(replica_b.base, "/v1/chat/completions", body,
                   {"X-R1serve-Resume": "whole-1"})
    assert resumed.status == 200, resumed.text()
    r = resumed.json()
    for k in ("content", "reasoning_content"):
        assert r["choices"][0]["message"].get(k) == whole["choices"][0]["message"].get(k), k
    assert r["usage"] == whole["usage"]
    assert r["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]


def test_a_shared_directory_is_a_checkpoint_store_too(model, work):
    store = os.path.join(work, "checkpoints")
    b = start(model, store, ["--checkpoint-every", "4"])
    a = start(model, store, ["--checkpoint-every", "4"])
    try:
        body = chat(temperature=0.9, seed=51)
        whole = uninterrupted(b, body)
        s = Stream(a.base, body, {"X-Request-Id": "dir-1"})
        first = read_all(s, until=sigterm_after(a, 40))
        s.close()
        assert first.error and first.error["code"] == "replica_interrupted", first.error
        s = Stream(b.base, body, {"Last-Event-ID": first.last_id})
        rest = read_all(s)
        s.close()
        assert_joined(first, rest, whole)
        assert [f for f in os.listdir(store) if f.endswith(".entry")] == []
    finally:
        a.stop(signal.SIGTERM)
        b.stop(signal.SIGTERM)


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def test_only_the_caller_who_began_it_resumes_a_stream_its_client_left(model, redis, work):
    keys = os.path.join(work, "resume-keys.yaml")
    with open(keys, "w") as f:
        f.write("keys:\n"
                f"  - id: alice\n    sha256: {sha('sk-alice')}\n    roles: [developer]\n"
                f"  - id: bob\n    sha256: {sha('sk-bob')}\n    roles: [developer]\n")
    audit = os.path.join(work, "resume-audit.jsonl")
    s1 = start(model, redis.url, ["--api-keys", keys, "--audit-log", audit])
    try:
        body = chat(temperature=0.5, seed=61)
        alice = {"Authorization": "Bearer sk-alice"}
        bob = {"Authorization": "Bearer sk-bob"}
        st = Stream(s1.base, body, {**alice, "X-Request-Id": "left-1"})
        first = read_all(st, until=lambda got: len(got.tokens) >= 30)
        st.close()  # the client vanishes mid-stream
        poll("the left stream's checkpoint", lambda: metric(
            s1.base, "r1serve_checkpoints_written_total") >= 1 and fetch(
            s1.base + "/v1/chat/completions", "POST", json.dumps(body),
            {**bob, "Last-Event-ID": first.last_id}).status == 404, 30)
        s = Stream(s1.base, body, {**alice, "Last-Event-ID": first.last_id})
        assert s.status == 200
        rest = read_all(s)
        s.close()
        whole = uninterrupted(s1, body, alice)
        assert_joined(first, rest, whole)
        records = [json.loads(line) for line in open(audit) if line.strip()]
        resumed = [r for r in records if r["event"] == "resume"]
        assert len(resumed) == 1 and resumed[0]["resumes"] == "left-1" \
            and resumed[0]["principal"] == "alice", resumed
    finally:
        s1.stop(signal.SIGTERM)


@pytest.mark.parametrize("headers, status, code", [
    ({"Last-Event-ID": "no-colon"}, 400, None),
    ({"Last-Event-ID": "never-began:12"}, 404, "resume_not_found"),
    ({"X-R1serve-Resume": "never-began"}, 404, "resume_not_found"),
])
def test_bad_resumptions_get_clear_errors(replica_b, headers, status, code):
    res = fetch(replica_b.base + "/v1/chat/completions", "POST", json.dumps(chat()), headers)
    assert res.status == status, res.text()
    err = res.json()["error"]
    assert err["message"]
    if code:
        assert err["code"] == code


def test_a_different_body_cannot_resume_a_generation(model, redis, replica_b):
    body = chat(temperature=0.5, seed=71)
    st = Stream(replica_b.base, body, {"X-Request-Id": "mismatch-1"})
    first = read_all(st, until=lambda got: len(got.tokens) >= 20)
    st.close()
    other = dict(body, messages=[{"role": "user", "content": "Something else"}])
    poll("the left stream's checkpoint", lambda: fetch(
        replica_b.base + "/v1/chat/completions", "POST", json.dumps(other),
        {"Last-Event-ID": first.last_id}).status == 409, 30)
