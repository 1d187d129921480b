"""A model loaded from GGUF gives the answers of the same model loaded from
its Hugging Face folder, for both architectures.

The tiny qwen2 and llama test models (`r1serve make-test-model`, f32) are
converted to GGUF with llama.cpp's own writer (gguf-py) the way llama.cpp's
convert_hf_to_gguf.py lays them out (tools/reference/hf_to_gguf.py). Then:

- tokenising the GGUF gives the folder's ids (the folder's tokenizer is
  checked against Hugging Face tokenizers elsewhere);
- the GGUF's chat prompt is the folder's (the R1 template is recognised);
- F32 tensors: `r1serve score` on the GGUF matches the float64 reference
  on the folder (tools/reference/forward.py), tolerance 2e-3 as in
  numerics_test;
- Q8_0 and Q4_K tensors: `r1serve score --dtype f32` on the GGUF matches the
  float64 reference on the weights gguf-py dequantises from that file
  (tools/reference/gguf_to_hf.py), same tolerance.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gguf import GGMLQuantizationType as Q

sys.path.insert(0, os.path.join(os.environ.get("R1SERVE_SOURCE_DIR", "."), "tools", "reference"))
from hf_to_gguf import write_gguf  # noqa: E402

BINARY = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")
SOURCE_DIR = os.environ.get("R1SERVE_SOURCE_DIR", ".")
TOLERANCE = 2e-3
CORPUS = ["Hello, world!", "The answer is 42.\n\n", "naïve café 東京 🙂",
          "<｜User｜>hi<｜Assistant｜><think>\nok</think>"]


def run(args, stdin=None):
    out = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{args[:3]}: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def models(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    folder = str(d / "hf")
    run([BINARY, "make-test-model", "--arch", request.param, "--size", "tiny", "--dtype", "f32",
         "--seed", "11", "--out", folder])
    files = {}
    for qtype in (Q.F32, Q.Q8_0, Q.Q4_K):
        files[qtype] = str(d / f"model-{qtype.name}.gguf")
        write_gguf(folder, files[qtype], qtype)
    return folder, files


def tokenize(model, texts):
    out = run([BINARY, "tokenize", "--model", model], "".join(json.dumps(t) + "\n" for t in texts))
    return [json.loads(line) for line in out.splitlines()]


def test_tokenizer_and_chat_prompt_match_the_folder(models):
    folder, files = models
    assert tokenize(files[Q.F32], CORPUS) == tokenize(folder, CORPUS)
    args = ["generate", "--chat", "What is 17 x 23?", "--max-tokens", "3", "--json", "--dtype", "f32",
            "--temperature", "0"]
    a = json.loads(run([BINARY, *args, "--model", folder]))
    b = json.loads(run([BINARY, *args, "--model", files[Q.F32]]))
    assert a["prompt_ids"] == b["prompt_ids"]
    assert a["ids"] == b["ids"]


def top_lists(text):
    return [[(int(i), float(lp)) for i, lp in pos] for pos in json.loads(text)["top"]]


def compare(reference_folder, gguf_file, ids):
    csv = ",".join(map(str, ids))
    want = top_lists(run(["/usr/bin/python3", os.path.join(SOURCE_DIR, "tools/reference/forward.py"),
                          "--model", reference_folder, "--ids", csv, "--top", "5"]))
    got = top_lists(run([BINARY, "score", "--model", gguf_file, "--dtype", "f32", "--ids", csv,
                         "--top", "10"]))
    assert len(want) == len(got) == len(ids)
    for p, (w, g) in enumerate(zip(want, got)):
        ours = dict(g)
        for token, lp in w:
            assert token in ours, f"position {p}: id {token} missing"
            assert ours[token] == pytest.approx(lp, abs=TOLERANCE), f"position {p} id {token}"


IDS = [17, 1, 9707, 11, 1879, 0, 220, 16, 17, 18, 13, 198, 4021, 374]


def test_f32_gguf_matches_the_reference_on_the_folder(models):
    folder, files = models
    compare(folder, files[Q.F32], IDS)


@pytest.mark.parametrize("broken, words", [
    ({"arch": "gemma"}, 'architecture "gemma" is not supported'),
    ({"drop": "blk.1.ffn_up.weight"}, "model.layers.1.mlp.up_proj.weight: missing"),
    ({"ffn": 48}, "expected, file has"),
    ({"tokenizer_model": "llama"}, 'tokenizer.ggml.model "llama" is not supported'),
    ({"extra": lambda w: w.add_string(w.arch + ".rope.scaling.type", "yarn")},
     'rope.scaling.type "yarn" is not supported'),
])
def test_broken_files_get_clear_errors(models, tmp_path, broken, words):
    folder, _ = models
    path = str(tmp_path / "broken.gguf")
    write_gguf(folder, path, Q.F32, **broken)
    out = subprocess.run([BINARY, "generate", "--model", path, "--ids", "1,2", "--max-tokens", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert words in out.stderr, out.stderr
    assert "broken.gguf" in out.stderr, out.stderr


def test_f16_rope_freqs_and_a_sliding_window_key_are_read(models, tmp_path):
    folder, files = models
    path = str(tmp_path / "f16-freqs.gguf")
    write_gguf(folder, path, Q.F32, rope_freqs_dtype=np.float16,
               extra=lambda w: w.add_uint32(w.arch + ".attention.sliding_window", 4096))
    compare(folder, path, IDS[:6])


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_K])
def test_quantised_gguf_matches_the_reference_on_its_own_weights(models, qtype, tmp_path):
    _, files = models
    ref = str(tmp_path / "ref")
    run([sys.executable, os.path.join(SOURCE_DIR, "tools/reference/gguf_to_hf.py"), files[qtype], ref])
    compare(ref, files[qtype], IDS)
