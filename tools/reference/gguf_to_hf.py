#!/usr/bin/env python3
"""Writes a Hugging Face folder (config.json + model.safetensors in F32) from
a GGUF file, for the float64 reference (forward.py) to run on the same
weights r1serve reads from the file.

Independent of r1serve's C++ GGUF code: the file is read and every tensor
dequantised by llama.cpp's own Python package (gguf-py, PyPI `gguf`); the
tensor names, the config keys, the undoing of llama.cpp's Q/K row order
for Llama files and the rope_freqs tensor (passed to forward.py as RoPE
divisors, the way ggml applies it) are written here from the GGUF conventions
(../shared/reference/model-facts.md §4.2).

Runs in the project's .venv (gguf, numpy):
  .venv/bin/python tools/reference/gguf_to_hf.py MODEL.gguf OUT_DIR
"""

import json
import os
import struct
import sys

import numpy as np

import gguf

GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
LAYER = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.contents()
    return v


def hf_name(name):
    if name in GLOBAL:
        return GLOBAL[name]
    parts = name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in LAYER:
        return "model.layers.%s.%s" % (parts[1], LAYER[parts[2]])
    return None


def unpermute(w, n_heads):
    """Inverse of llama.cpp's convert_hf_to_gguf permute(): each head's rows
    were stored as (head_dim/2, 2) pairs instead of (2, head_dim/2)."""
    out, cols = w.shape
    hd = out // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).swapaxes(1, 2).reshape(out, cols)


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    for name, arr in tensors:
        n = arr.size * 4
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, arr in tensors:
            f.write(np.ascontiguousarray(arr, dtype="<f4").tobytes())


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: gguf_to_hf.py MODEL.gguf OUT_DIR")
    src, out_dir = argv[1], argv[2]
    reader = gguf.GGUFReader(src)
    arch = field(reader, "general.architecture")
    if arch not in ("qwen2", "llama"):
        sys.exit("unsupported architecture %r" % arch)
    n_heads = int(field(reader, arch + ".attention.head_count"))
    n_kv = int(field(reader, arch + ".attention.head_count_kv") or n_heads)
    tensors = []
    names = set()
    divisors = None
    for t in reader.tensors:
        if t.name == "rope_freqs.weight":
            divisors = [float(x) for x in gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)]
            continue
        name = hf_name(t.name)
        if name is None:
            sys.exit("tensor %s has no Hugging Face name" % t.name)
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(d) for d in reversed(t.shape)])
        if arch == "llama" and t.name.endswith("attn_q.weight"):
            w = unpermute(w, n_heads)
        elif arch == "llama" and t.name.endswith("attn_k.weight"):
            w = unpermute(w, n_kv)
        tensors.append((name, w))
        names.add(name)
    embed = dict(tensors)["model.embed_tokens.weight"]
    config = {
        "architectures": ["Qwen2ForCausalLM" if arch == "qwen2" else "LlamaForCausalLM"],
        "model_type": arch,
        "hidden_size": int(field(reader, arch + ".embedding_length")),
        "intermediate_size": int(field(reader, arch + ".feed_forward_length")),
        "num_hidden_layers": int(field(reader, arch + ".block_count")),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "max_position_embeddings": int(field(reader, arch + ".context_length")),
        # f32 in the file: the decimal the converter wrote
        "rms_norm_eps": float(np.format_float_positional(
            np.float32(field(reader, arch + ".attention.layer_norm_rms_epsilon")), unique=True)),
        "rope_theta": float(field(reader, arch + ".rope.freq_base") or 10000.0),
        "vocab_size": int(embed.shape[0]),
        "tie_word_embeddings": "lm_head.weight" not in names,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    if divisors is not None:
        config["rope_scaling"] = {"rope_type": "divisors", "divisors": divisors}
    if arch == "llama":
        config["attention_bias"] = "model.layers.0.self_attn.q_proj.bias" in names
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    # forward.py masks the embedding rows past the tokenizer as padding: give
    # it the vocabulary without llama.cpp's "[PAD<id>]" filler entries.
    tokens = field(reader, "tokenizer.ggml.tokens") or []
    n = len(tokens)
    while n > 0 and tokens[n - 1] == "[PAD%d]" % (n - 1):
        n -= 1
    if n:
        with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump({"model": {"vocab": {t: i for i, t in enumerate(tokens[:n])}}}, f)


if __name__ == "__main__":
    main(sys.argv)
