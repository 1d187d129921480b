"""A model loaded from GGUF gives the answers of the same model loaded from
its Hugging Face folder, for both architectures.

The tiny qwen2 and llama test models (`r1serve make-test-model`, f32) are
converted to GGUF here with llama.cpp's own writer (gguf-py), the way
llama.cpp's convert_hf_to_gguf.py lays them out: its tensor names, its
metadata keys, the Q/K rows of Llama permuted for interleaved RoPE,
Llama-3.1's RoPE scaling as a rope_freqs tensor, the tokenizer as
tokenizer.ggml.* arrays (added tokens typed control / user-defined), and the
chat template. Then:

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
import math
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import gguf
from gguf import GGMLQuantizationType as Q

BINARY = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")
SOURCE_DIR = os.environ.get("R1SERVE_SOURCE_DIR", ".")
TOLERANCE = 2e-3
CORPUS = ["Hello, world!", "The answer is 42.\n\n", "naïve café 東京 🙂",
          "<｜User｜>hi<｜Assistant｜><think>\nok</think>"]


def run(args, stdin=None):
    out = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{args[:3]}: {out.stderr}"
    return out.stdout


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", name
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + end], dtype="<f4").reshape(e["shape"])
    return out


LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}


def gguf_name(hf):
    if hf in GLOBAL:
        return GLOBAL[hf]
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{LAYER[rest]}"


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def llama3_rope_freqs(cfg):
    """convert_hf_to_gguf.py's rope_freqs for rope_type llama3."""
    rs = cfg["rope_scaling"]
    base, dim = cfg["rope_theta"], cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(folder, path, qtype, arch=None, drop=None, ffn=None, tokenizer_model="gpt2"):
    """`arch`, `drop` (a tensor left out), `ffn` (a wrong feed_forward_length)
    and `tokenizer_model` make broken files for the error tests."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    tok = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    tcfg = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
    arch = arch or cfg["model_type"]
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(ffn or cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    # the tokenizer, as llama.cpp's gpt2 vocab writer lays it out
    n = max(max(tok["model"]["vocab"].values()), max(a["id"] for a in tok["added_tokens"])) + 1
    tokens, types = [""] * n, [1] * n
    for t, i in tok["model"]["vocab"].items():
        tokens[i] = t
    for a in tok["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model(tokenizer_model)
    w.add_tokenizer_pre("deepseek-r1-qwen" if arch == "qwen2" else "llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    content = lambda v: v["content"] if isinstance(v, dict) else v  # noqa: E731
    w.add_bos_token_id(tokens.index(content(tcfg["bos_token"])))
    w.add_eos_token_id(tokens.index(content(tcfg["eos_token"])))
    w.add_add_bos_token(tcfg.get("add_bos_token", False))
    w.add_add_eos_token(tcfg.get("add_eos_token", False))
    w.add_chat_template(tcfg["chat_template"])
    tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    for hf, arr in tensors.items():
        name = gguf_name(hf)
        if name == drop:
            continue
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if arch == "llama" and name.endswith("attn_q.weight"):
            arr = permute(arr, cfg["num_attention_heads"])
        if arch == "llama" and name.endswith("attn_k.weight"):
            arr = permute(arr, cfg["num_key_value_heads"])
        if arr.ndim == 2 and qtype != Q.F32 and arr.shape[1] % gguf.GGML_QUANT_SIZES[qtype][0] == 0:
            w.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, arr)
    if cfg.get("rope_scaling"):
        w.add_tensor("rope_freqs.weight", llama3_rope_freqs(cfg))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


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


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_K])
def test_quantised_gguf_matches_the_reference_on_its_own_weights(models, qtype, tmp_path):
    _, files = models
    ref = str(tmp_path / "ref")
    run([sys.executable, os.path.join(SOURCE_DIR, "tools/reference/gguf_to_hf.py"), files[qtype], ref])
    compare(ref, files[qtype], IDS)
