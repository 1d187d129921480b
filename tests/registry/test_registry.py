"""Model registries and integrity manifests, end to end.

MLflow's own client (mlflow-skinny, PyPI) registers generated model folders
in each of MLflow's local stores, the file store (mlruns/) and the SQLite
database (MLflow 3's default); r1serve resolves models:/ URIs and aliases
through them and serves the version they name (checked through the official OpenAI
client). `r1serve manifest` is checked against Python's hashlib, and serve
refuses a version whose files no longer match it, naming the file.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import Server, make_test_model  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")
# MLflow 3 keeps its file store in maintenance mode and asks for this to
# use it; the layout on disk is the one earlier MLflow versions wrote.
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from openai import OpenAI  # noqa: E402


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="r1serve-registry-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def versions(work):
    """Two model folders: the tiny model (seed 5) and a copy with a
    different generation default, so the two versions are told apart by
    their files."""
    v1 = os.path.join(work, "tiny-v1")
    made = make_test_model(BIN, v1)
    assert made.returncode == 0, made.stderr
    v2 = os.path.join(work, "tiny-v2")
    shutil.copytree(v1, v2)
    with open(os.path.join(v2, "generation_config.json")) as f:
        gen = json.load(f)
    gen["temperature"] = 0.25
    with open(os.path.join(v2, "generation_config.json"), "w") as f:
        json.dump(gen, f)
    return v1, v2


@pytest.fixture(scope="module", params=["file", "sqlite"])
def store(request, work, versions):
    """An MLflow registry with model "tiny-r1": version 1 -> v1 (alias
    production), 2 -> v2 (alias staging, stage Staging), 3 deleted. Kept
    in the file store (mlruns/) or in SQLite (mlflow.db). Returns
    (what --model-repo takes, MLflow's URI for it)."""
    if request.param == "file":
        path = os.path.join(work, "mlruns")
        uri = "file://" + path
        repo = path
    else:
        path = os.path.join(work, "mlflow.db")
        uri = "sqlite:///" + path
        repo = uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("tiny-r1")
    v1, v2 = versions
    a = client.create_model_version("tiny-r1", source=v1)
    b = client.create_model_version("tiny-r1", source="file://" + v2)
    c = client.create_model_version("tiny-r1", source=v1)
    client.set_registered_model_alias("tiny-r1", "production", a.version)
    client.set_registered_model_alias("tiny-r1", "staging", b.version)
    client.transition_model_version_stage("tiny-r1", b.version, "Staging")
    client.delete_model_version("tiny-r1", c.version)
    assert (a.version, b.version) == ("1", "2") or (a.version, b.version) == (1, 2)
    return repo, uri


def run(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300, env=env)


def serve(args, env=None):
    return Server.start(BIN, ["--port", "0", "--threads", "2", "--kv-cache-bytes", "200000000",
                              *args], env)


def sha256_of(path, start=0, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        left = os.path.getsize(path) - start if length is None else length
        while left > 0:
            block = f.read(min(left, 1 << 20))
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def test_manifest_agrees_with_hashlib(work, versions):
    v1, _ = versions
    folder = os.path.join(work, "manifested")
    shutil.copytree(v1, folder)
    res = run("manifest", folder, "--chunk-mib", "1")
    assert res.returncode == 0, res.stderr
    with open(os.path.join(folder, "r1serve-manifest.json")) as f:
        doc = json.load(f)
    assert doc["algorithm"] == "sha256" and doc["chunk_bytes"] == 1 << 20
    names = sorted(e["path"] for e in doc["files"])
    assert names == sorted(n for n in os.listdir(folder) if n != "r1serve-manifest.json")
    for e in doc["files"]:
        path = os.path.join(folder, e["path"])
        assert e["bytes"] == os.path.getsize(path)
        assert e["sha256"] == sha256_of(path), e["path"]
        if e["bytes"] > 1 << 20:
            want = [sha256_of(path, i, min(1 << 20, e["bytes"] - i))
                    for i in range(0, e["bytes"], 1 << 20)]
            assert e["chunks"] == want, e["path"]
        else:
            assert "chunks" not in e
    assert run("verify", folder).returncode == 0


@pytest.mark.parametrize("damage, words", [
    ("flip", "SHA-256 mismatch"),
    ("truncate", "truncated or replaced"),
    ("remove", "missing"),
    ("add", "not in the manifest"),
])
def test_serve_refuses_a_damaged_version_naming_the_file(work, versions, damage, words):
    v1, _ = versions
    folder = os.path.join(work, "damaged-" + damage)
    shutil.copytree(v1, folder)
    assert run("manifest", folder).returncode == 0
    weights = os.path.join(folder, "model.safetensors")
    named = "model.safetensors"
    if damage == "flip":
        with open(weights, "r+b") as f:
            f.seek(os.path.getsize(weights) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 1]))
    elif damage == "truncate":
        os.truncate(weights, os.path.getsize(weights) - 4096)
    elif damage == "remove":
        os.remove(os.path.join(folder, "tokenizer_config.json"))
        named = "tokenizer_config.json"
    else:
        with open(os.path.join(folder, "extra.safetensors"), "wb") as f:
            f.write(b"\0" * 64)
        named = "extra.safetensors"
    res = subprocess.run([BIN, "serve", "--model", folder, "--port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert words in res.stderr and named in res.stderr, res.stderr
    # A truncated file is caught by its size without hashing: by sample too.
    if damage == "truncate":
        res = run("verify", folder, "--mode", "sample")
        assert res.returncode != 0 and "truncated" in res.stderr
    # Verification can be turned off; the version then loads.
    if damage == "add":
        with serve(["--model", folder, "--verify-weights", "off"]) as s:
            assert s.port


def test_a_missing_manifest_is_an_error_only_when_asked_for(work, versions):
    v1, _ = versions
    res = run("verify", v1)
    assert res.returncode != 0 and "r1serve manifest" in res.stderr


def test_mlflow_alias_is_served_with_its_version(store, versions):
    with serve(["--model", "models:/tiny-r1@production", "--model-repo", store[0]]) as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="unused")
        cards = {m.id: m for m in client.models.list().data}
        assert set(cards) == {"tiny-r1", "tiny-r1@1", "tiny-r1@production"}
        assert all(getattr(m, "version") == "1" for m in cards.values())
        for name in ("tiny-r1", "tiny-r1@production"):
            out = client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "Hello"}], max_tokens=4,
                temperature=0)
            assert out.choices[0].finish_reason in ("length", "stop")
        # Only the version being served answers: staging is another version.
        with pytest.raises(Exception) as e:
            client.chat.completions.create(
                model="tiny-r1@staging", messages=[{"role": "user", "content": "Hi"}],
                max_tokens=2)
        assert "404" in str(e.value) or "does not exist" in str(e.value)


@pytest.mark.parametrize("ref, version, path_index", [
    ("models:/tiny-r1/2", 2, 1),
    ("models:/tiny-r1/Staging", 2, 1),
    ("models:/tiny-r1/latest", 2, 1),  # 3 is deleted
    ("models:/tiny-r1@staging", 2, 1),
    ("tiny-r1", 1, 0),  # a bare name follows production
    ("tiny-r1@1", 1, 0),
])
def test_mlflow_references_resolve_like_mlflow(store, versions, ref, version, path_index):
    # `verify` resolves and names the folder it checks; the versions carry
    # no manifest, so it reports which folder it looked for one in.
    res = run("verify", ref, "--model-repo", store[0])
    assert res.returncode != 0
    want = versions[path_index]
    assert want + ":" in res.stderr or want + "/" in res.stderr, res.stderr
    # MLflow's own resolution agrees on the version.
    client = MlflowClient(registry_uri=store[1])
    if ref.startswith("models:/") and "@" in ref:
        mv = client.get_model_version_by_alias("tiny-r1", ref.split("@")[1])
        assert int(mv.version) == version


def test_the_default_mlflow_store_comes_from_the_environment(store, versions):
    env = dict(os.environ, MLFLOW_TRACKING_URI=store[1])
    env.pop("MLFLOW_REGISTRY_URI", None)
    with serve(["--model", "models:/tiny-r1@staging"], env=env) as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="unused")
        ids = {m.id for m in client.models.list().data}
        assert ids == {"tiny-r1", "tiny-r1@2", "tiny-r1@staging"}


def test_an_mlflow_database_is_found_as_a_file_a_folder_and_by_default(store, versions, work):
    if not store[1].startswith("sqlite:"):
        pytest.skip("the SQLite store's own forms")
    alone = tempfile.mkdtemp(dir=work)  # a folder holding mlflow.db and nothing else
    db = os.path.join(alone, "mlflow.db")
    shutil.copy(store[1][len("sqlite:///"):], db)
    binary = os.path.abspath(BIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    for args in (["--model-repo", db], ["--model-repo", alone], []):
        # No manifest: verify names the folder it resolved to, staging's.
        res = subprocess.run([binary, "verify", "models:/tiny-r1@staging", *args], cwd=alone,
                             env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode != 0
        assert versions[1] + ":" in res.stderr or versions[1] + "/" in res.stderr, \
            (args, res.stderr)


@pytest.mark.parametrize("ref, words", [
    ("models:/nope@production", "is not in the registry"),
    ("models:/tiny-r1/9", "has no version 9"),
    ("models:/tiny-r1/3", "has no version 3"),  # deleted
    ("models:/tiny-r1@champion", "no alias or version champion"),
    ("models:/tiny-r1/Production", "no version in stage Production"),
    ("models:/tiny-r1", "models:/NAME/VERSION"),
])
def test_bad_references_get_clear_errors(store, ref, words):
    res = subprocess.run([BIN, "serve", "--model", ref, "--model-repo", store[0], "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert words in res.stderr, res.stderr


def test_registry_yaml(work, versions):
    v1, v2 = versions
    reg = os.path.join(work, "reg")
    os.makedirs(reg, exist_ok=True)
    with open(os.path.join(reg, "registry.yaml"), "w") as f:
        f.write(f"""models:
  r1-tiny:
    default: stable
    versions:
      1: {v1}
      2: {{path: {os.path.relpath(v2, reg)}}}
    aliases:
      stable: 2
      canary: 1
""")
    with serve(["--model-repo", reg]) as s:  # one model: no --model needed
        client = OpenAI(base_url=s.base + "/v1", api_key="unused")
        ids = {m.id: m.version for m in client.models.list().data}
        assert ids == {"r1-tiny": "2", "r1-tiny@2": "2", "r1-tiny@stable": "2"}
    res = run("verify", "r1-tiny@canary", "--model-repo", reg)
    assert v1 in res.stderr, res.stderr
    with open(os.path.join(reg, "bad.yaml"), "w") as f:
        f.write("models:\n  x:\n    versions: {1: a}\n    aliases: {prod: 2}\n")
    res = run("verify", "x", "--model-repo", os.path.join(reg, "bad.yaml"))
    assert res.returncode != 0 and "alias prod names version 2" in res.stderr, res.stderr


def test_a_version_that_does_not_fit_is_refused_before_loading(versions):
    v1, _ = versions
    res = subprocess.run([BIN, "serve", "--model", v1, "--port", "0",
                          "--kv-cache-bytes", str(1 << 50)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "does not fit" in res.stderr and "KV cache" in res.stderr, res.stderr
