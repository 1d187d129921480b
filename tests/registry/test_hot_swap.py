"""Hot swap, canary, rollback and SIGHUP, end to end, through the official
OpenAI client.

Two versions of one model differ in their weights (seeds 5 and 7), so
greedy answers tell them apart. 32 streams run while an operator activates
version 2: none fails or is cut short, each stream's text is exactly the
answer of the version that began it (the X-R1serve-Model-Version header
says which), new streams go to version 2, and version 1 is unloaded, its
memory given back, once its last stream ends.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import Server, fetch  # noqa: E402

from openai import OpenAI  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")
PROMPT = [{"role": "user", "content": "Tell me about the sea."}]
N_TOKENS = 48


def make_model(out, seed):
    res = subprocess.run([BIN, "make-test-model", "--arch", "qwen2", "--size", "tiny", "--dtype",
                          "bf16", "--seed", str(seed), "--out", out],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def repo():
    d = tempfile.mkdtemp(prefix="r1serve-hot-swap-")
    make_model(os.path.join(d, "v1"), 5)
    make_model(os.path.join(d, "v2"), 7)
    write_registry(d, production=1)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_registry(d, production):
    with open(os.path.join(d, "registry.yaml"), "w") as f:
        f.write(f"models:\n  swap:\n    versions: {{1: v1, 2: v2}}\n"
                f"    aliases: {{production: {production}}}\n")


def start(repo, extra=()):
    return Server.start(BIN, ["--model-repo", repo, "--port", "0", "--threads", "2",
                              "--kv-cache-bytes", "100000000", "--max-seqs", "80", *extra])


def admin(s, path, body=None):
    res = fetch(s.base + path, method="POST" if body is not None else "GET",
                body=json.dumps(body).encode() if body is not None else None,
                headers={"Content-Type": "application/json"}, timeout=300)
    return res.status, res.json()


def mapped_files(pid):
    """The files the process maps (its loaded versions' weights among them)."""
    with open(f"/proc/{pid}/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


def stream_once(client, model="swap", user=None, started=None):
    """One greedy stream: (version id from the header, text, finish reason)."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=PROMPT, max_tokens=N_TOKENS, temperature=0, stream=True,
        **({"user": user} if user else {}))
    version = raw.headers.get("x-r1serve-model-version")
    text, finish = [], None
    for i, chunk in enumerate(raw.parse()):
        if i == 0 and started is not None:
            started.release()
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text.append((getattr(delta, "reasoning_content", None) or "") + (delta.content or ""))
        finish = chunk.choices[0].finish_reason or finish
    return version, "".join(text), finish


def whole_once(client, model):
    out = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=N_TOKENS,
                                         temperature=0)
    m = out.choices[0].message
    return (getattr(m, "reasoning_content", None) or "") + (m.content or "")


def test_32_streams_survive_a_swap_and_the_old_version_is_unloaded(repo):
    with start(repo) as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0, timeout=300)
        version, text, _ = stream_once(client)
        assert version == "swap@1"
        want = {"swap@1": text}
        v1_weights = os.path.realpath(os.path.join(repo, "v1", "model.safetensors"))
        v2_weights = os.path.realpath(os.path.join(repo, "v2", "model.safetensors"))
        assert v1_weights in mapped_files(s.proc.pid)

        results, errors = [], []
        started = threading.Semaphore(0)

        def worker():
            try:
                results.append(stream_once(client, started=started))
            except Exception as e:  # noqa: BLE001 - every failure is counted
                errors.append(repr(e))

        first = [threading.Thread(target=worker) for _ in range(32)]
        for t in first:
            t.start()
        for _ in first:  # every stream has its first chunk: all began on version 1
            assert started.acquire(timeout=300), errors
        status, state = admin(s, "/admin/models/swap/activate", {"version": 2})
        assert status == 200, state
        assert state["active"] == "2" and state["previous"] == "1"
        # Both versions' weights are mapped while version 1 finishes.
        both = mapped_files(s.proc.pid)
        assert v1_weights in both and v2_weights in both
        later = [threading.Thread(target=worker) for _ in range(8)]
        for t in later:
            t.start()
        for t in first + later:
            t.join(timeout=600)
        assert not errors, errors
        assert len(results) == 40

        version, text, _ = stream_once(client)
        assert version == "swap@2"
        want["swap@2"] = text
        assert want["swap@1"] != want["swap@2"], "the two versions must answer differently"
        versions = [v for v, _, _ in results]
        assert versions.count("swap@1") == 32 and versions.count("swap@2") == 8, versions
        for version, text, finish in results:
            assert finish == "length", (version, finish)  # none cut short
            assert text == want[version], (version, text, want[version])

        # Version 1 went when its last stream ended: only 2 is loaded, the
        # log says so, and its weights are no longer mapped (its memory is
        # returned: the mapping, and the KV cache freed with its engine).
        s.wait_stderr(r"unloaded swap@1", 60)
        status, models = admin(s, "/admin/models")
        (m,) = models["data"]
        assert [v["version"] for v in m["loaded"]] == ["2"]
        after = mapped_files(s.proc.pid)
        assert v1_weights not in after and v2_weights in after
        ids = {c.id for c in client.models.list().data}
        assert ids == {"swap", "swap@2"}
        metrics = fetch(s.base + "/metrics").text()
        assert 'r1serve_model_version_info{model="swap",role="active",version="2"} 1' in metrics
        assert 'version="1"' not in metrics.split("r1serve_model_version_info", 1)[1].split("#")[0]


def test_canary_is_sticky_per_user_and_rollback_returns(repo):
    with start(repo) as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0, timeout=300)
        status, state = admin(s, "/admin/models/swap/activate", {"version": 2, "percent": 50})
        assert status == 200 and state["active"] == "1" and state["canary"] == "2", state
        seen = {}
        for i in range(24):
            user = f"user-{i % 6}"
            raw = client.chat.completions.with_raw_response.create(
                model="swap", messages=PROMPT, max_tokens=2, temperature=0, user=user)
            seen.setdefault(user, set()).add(raw.headers["x-r1serve-model-version"])
        assert all(len(v) == 1 for v in seen.values()), seen  # sticky
        assert {next(iter(v)) for v in seen.values()} <= {"swap@1", "swap@2"}
        # Both versions are addressable while both are loaded.
        assert whole_once(client, "swap@2") != whole_once(client, "swap@1")
        status, state = admin(s, "/admin/models/swap/activate", {"version": 2})
        assert state["active"] == "2" and state["canary"] is None
        status, state = admin(s, "/admin/models/swap/rollback", {})
        assert status == 200 and state["active"] == "1" and state["previous"] == "2", state
        # A version the registry does not hold: 404, nothing changes.
        status, err = admin(s, "/admin/models/swap/activate", {"version": 9})
        assert status == 404 and "no version 9" in err["error"]["message"]
        status, err = admin(s, "/admin/models/other/activate", {"version": 1})
        assert status == 404
        status, state = admin(s, "/admin/models")
        assert state["data"][0]["active"] == "1"


def test_a_version_failing_verification_is_refused_and_the_old_one_keeps_serving(repo, tmp_path):
    d = tmp_path / "reg"
    shutil.copytree(repo, d)
    assert subprocess.run([BIN, "manifest", str(d / "v2")], capture_output=True).returncode == 0
    with open(d / "v2" / "model.safetensors", "r+b") as f:
        f.seek(1 << 20)
        f.write(b"\xff\xfe")
    with start(str(d)) as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0, timeout=300)
        status, err = admin(s, "/admin/models/swap/activate", {"version": 2})
        assert status == 409, err
        assert "model.safetensors" in err["error"]["message"]
        assert "SHA-256 mismatch" in err["error"]["message"]
        raw = client.chat.completions.with_raw_response.create(
            model="swap", messages=PROMPT, max_tokens=2, temperature=0)
        assert raw.headers["x-r1serve-model-version"] == "swap@1"


def test_sighup_follows_the_production_alias(repo, tmp_path):
    d = tmp_path / "reg"
    shutil.copytree(repo, d)
    with start(str(d)) as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0, timeout=300)
        write_registry(str(d), production=2)
        s.proc.send_signal(signal.SIGHUP)
        s.wait_stderr(r"swap: version 2 now takes 100% of new requests", 120)
        raw = client.chat.completions.with_raw_response.create(
            model="swap", messages=PROMPT, max_tokens=2, temperature=0)
        assert raw.headers["x-r1serve-model-version"] == "swap@2"
        # A broken registry file leaves everything as it was.
        with open(d / "registry.yaml", "w") as f:
            f.write("models: [")
        s.proc.send_signal(signal.SIGHUP)
        s.wait_stderr(r"keeping the previous registry", 60)
        assert fetch(s.base + "/ready").status == 200


def test_per_key_model_allow_lists(repo, tmp_path):
    import hashlib
    keys = tmp_path / "keys.yaml"
    sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
    reg = tmp_path / "reg"
    shutil.copytree(repo, reg)
    with open(reg / "registry.yaml", "a") as f:
        f.write("  other:\n    versions: {1: v2}\n")
    keys.write_text(
        "keys:\n"
        f"  - {{id: alice, sha256: {sha('sk-alice')}, roles: [developer], models: [swap]}}\n"
        f"  - {{id: bob, sha256: {sha('sk-bob')}, roles: [developer]}}\n")
    with start(str(reg), ["--api-keys", str(keys)]) as s:
        alice = OpenAI(base_url=s.base + "/v1", api_key="sk-alice", max_retries=0, timeout=300)
        bob = OpenAI(base_url=s.base + "/v1", api_key="sk-bob", max_retries=0, timeout=300)
        assert {m.id for m in alice.models.list().data} == {"swap", "swap@1", "swap@production"}
        assert {m.id for m in bob.models.list().data} >= {"swap", "other"}
        whole_once(alice, "swap")
        whole_once(bob, "other")
        with pytest.raises(Exception) as e:
            whole_once(alice, "other")
        assert "404" in str(e.value) or "does not exist" in str(e.value)
