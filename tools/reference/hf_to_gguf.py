#!/usr/bin/env python3
"""Writes a GGUF file from a Hugging Face folder of a Qwen2 or Llama model
(f32 safetensors, as `r1serve make-test-model --dtype f32` writes them) the
way llama.cpp's convert_hf_to_gguf.py lays one out: its tensor names and
metadata keys, the Q/K rows of Llama permuted for interleaved RoPE,
Llama-3.1's RoPE scaling as a rope_freqs tensor, the tokenizer as
tokenizer.ggml.* arrays (added tokens typed control / user-defined), and the
chat template. Written with llama.cpp's own gguf-py (PyPI `gguf`), so the
files are independent of r1serve's GGUF reader.

  python3 tools/reference/hf_to_gguf.py FOLDER OUT.gguf [--type F32|F16|Q8_0|Q4_0|Q4_K|...]

Matrices whose rows are not a whole number of the type's blocks stay F32.
Sharded folders (model.safetensors.index.json) are read whole; ids the
tokenizer leaves out up to config's vocab_size become [PAD<id>] tokens.
"""

import argparse
import json
import math
import os
import struct

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q

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


def write_gguf(folder, path, qtype, arch=None, drop=None, ffn=None, tokenizer_model="gpt2",
               extra=None, rope_freqs_dtype=np.float32):
    """`arch`, `drop` (a tensor left out), `ffn` (a wrong feed_forward_length),
    `tokenizer_model` and `extra` (called with the writer to add keys) make
    the unusual files of the error tests."""
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
    # Ids the tokenizer leaves out, up to the embedding's rows (Qwen2 pads
    # 151665 ids to 151936), are named [PAD<id>] and typed unused, as the
    # converter does, so llama.cpp's vocabulary size matches the embedding.
    n = max(n, cfg.get("vocab_size", n))
    tokens, types = [f"[PAD{i}]" for i in range(n)], [5] * n
    for t, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = t, 1
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
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):  # sharded: the files the index names
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(os.path.join(folder, shard)))
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
        w.add_tensor("rope_freqs.weight", llama3_rope_freqs(cfg).astype(rope_freqs_dtype))
    if extra:
        extra(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--type", default="Q8_0", help="ggml type of the matrices")
    a = ap.parse_args()
    write_gguf(a.folder, a.out, Q[a.type])


if __name__ == "__main__":
    main()
