#!/usr/bin/python3
"""Independent float64 reference forward pass for Qwen2 / Llama checkpoints.

This is the numerical oracle the C++ model code is tested against. It is
written from the Hugging Face transformers modeling semantics (Qwen2ForCausalLM,
LlamaForCausalLM), not from the C++ sources, and computes everything in
torch.float64 with the weights upcast to float64.

Usage:
  /usr/bin/python3 tools/reference/forward.py --model DIR --ids 1,2,3 [--top 5]
  /usr/bin/python3 tools/reference/forward.py --model DIR --ids-file FILE \
      [--top 5] [--logits-out FILE.npy] [--sequences]

Prints one JSON object to stdout:
  {"top": [[[id, logprob], ...K entries, most likely first], ...one per position]}
logprob is the natural-log log_softmax of the logits at that position after
padding rows (ids >= tokenizer size) are masked to -inf. Equal logprobs are
ordered by id ascending.

Quantised models (r1serve --dtype int8 / int4) are checked with
  --weight-quant int8|int4 [--int8-group N] [--lm-head-quant none|int8|int4]
  [--act-quant]
which quantise the weights here, independently, by the rules of
src/kernels/quant.h (symmetric; int8 per output channel or per group, int4
per 32 with f16 scales) and, with --act-quant, also quantise the input of
every quantised product in blocks of 32 the way the integer kernels do; the
rest of the forward stays float64.

Only Debian's python3-torch and python3-numpy are needed: safetensors files
are read by the small reader below.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

DTYPE = torch.float64

# ---------------------------------------------------------------------------
# safetensors reader
# ---------------------------------------------------------------------------

# storage dtype as read from the file (little-endian), per safetensors dtype
_STORAGE = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
}


def decode_to_f64(raw, st_dtype):
    """Decode a numpy array in storage dtype `st_dtype` to a float64 array."""
    if st_dtype == "BF16":
        # bf16 is the top half of an IEEE float32: widen by shifting left 16.
        bits = raw.astype(np.uint32) << np.uint32(16)
        return bits.view(np.float32).astype(np.float64)
    if st_dtype in ("F32", "F16", "F64"):
        return np.asarray(raw).astype(np.float64)
    raise ValueError("unsupported safetensors dtype %s" % st_dtype)


class SafetensorsFile:
    """One .safetensors file, memory-mapped; tensors are decoded on request."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("%s: too short for a safetensors header" % path)
            n = int.from_bytes(head, "little")
            if n > 100 * 1024 * 1024:
                raise ValueError("%s: header of %d bytes is too large" % (path, n))
            header = json.loads(f.read(n).decode("utf-8"))
        size = os.path.getsize(path)
        self.data_start = 8 + n
        data_len = size - self.data_start
        self.entries = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            dt = e["dtype"]
            if dt not in _STORAGE:
                raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
            shape = [int(s) for s in e["shape"]]
            begin, end = (int(o) for o in e["data_offsets"])
            count = 1
            for s in shape:
                count *= s
            if not (0 <= begin <= end <= data_len):
                raise ValueError("%s: tensor %s lies outside the data" % (path, name))
            if end - begin != count * _STORAGE[dt].itemsize:
                raise ValueError("%s: tensor %s has %d bytes for shape %s %s"
                                 % (path, name, end - begin, shape, dt))
            self.entries[name] = (dt, shape, begin, end)
        self._buf = None

    def _buffer(self):
        if self._buf is None:
            if os.path.getsize(self.path) == self.data_start:
                self._buf = np.zeros(0, dtype=np.uint8)
            else:
                self._buf = np.memmap(self.path, dtype=np.uint8, mode="r",
                                      offset=self.data_start)
        return self._buf

    def raw(self, name):
        """(storage-dtype numpy view, safetensors dtype string); no copy."""
        dt, shape, begin, end = self.entries[name]
        arr = self._buffer()[begin:end].view(_STORAGE[dt]).reshape(shape)
        return arr, dt


class Checkpoint:
    """All tensors of a model folder: model.safetensors or a sharded index."""

    def __init__(self, model_dir):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        single = os.path.join(model_dir, "model.safetensors")
        self.where = {}
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
            files = {}
            for name, shard in weight_map.items():
                if shard not in files:
                    files[shard] = SafetensorsFile(os.path.join(model_dir, shard))
                if name not in files[shard].entries:
                    raise ValueError("index names %s in %s, which lacks it" % (name, shard))
                self.where[name] = files[shard]
        elif os.path.exists(single):
            st = SafetensorsFile(single)
            for name in st.entries:
                self.where[name] = st
        else:
            raise FileNotFoundError("no model.safetensors(.index.json) in %s" % model_dir)

    def has(self, name):
        return name in self.where

    def shape(self, name):
        return list(self.where[name].entries[name][1])

    def get(self, name):
        """The whole tensor as torch.float64."""
        raw, dt = self.where[name].raw(name)
        return torch.from_numpy(decode_to_f64(raw, dt))

    def rows(self, name, ids):
        """Selected rows of a 2-D tensor as torch.float64 (embedding lookup)."""
        raw, dt = self.where[name].raw(name)
        return torch.from_numpy(decode_to_f64(raw[np.asarray(ids, dtype=np.int64)], dt))


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------


class Config:
    def __init__(self, d):
        mt = d.get("model_type")
        if mt is None:
            archs = d.get("architectures") or [""]
            mt = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}.get(archs[0])
        if mt not in ("qwen2", "llama"):
            raise ValueError("unsupported model_type %r" % mt)
        self.model_type = mt
        self.hidden = int(d["hidden_size"])
        self.inter = int(d["intermediate_size"])
        self.n_layers = int(d["num_hidden_layers"])
        self.n_heads = int(d["num_attention_heads"])
        self.n_kv = int(d.get("num_key_value_heads") or self.n_heads)
        hd = d.get("head_dim")
        self.head_dim = int(hd) if hd else self.hidden // self.n_heads
        self.eps = float(d.get("rms_norm_eps", 1e-6))
        self.theta = float(d.get("rope_theta", 10000.0))
        self.rope_scaling = d.get("rope_scaling")
        self.tie = bool(d.get("tie_word_embeddings", False))
        self.vocab = int(d["vocab_size"]) if "vocab_size" in d else None
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError("unsupported hidden_act %r" % act)
        if self.n_heads % self.n_kv:
            raise ValueError("num_attention_heads not a multiple of num_key_value_heads")
        if self.head_dim % 2:
            raise ValueError("head_dim must be even")
        if mt == "qwen2":
            # Qwen2Attention: q/k/v have biases, o_proj none; the MLP has none.
            if d.get("use_sliding_window", False):
                raise ValueError("use_sliding_window true is not supported")
            self.qkv_bias, self.o_bias, self.mlp_bias = True, False, False
        else:
            # LlamaAttention: all four projections follow attention_bias;
            # LlamaMLP: all three follow mlp_bias.
            ab = bool(d.get("attention_bias", False))
            self.qkv_bias, self.o_bias = ab, ab
            self.mlp_bias = bool(d.get("mlp_bias", False))
            prf = d.get("partial_rotary_factor", 1.0)
            if prf not in (None, 1, 1.0):
                raise ValueError("partial_rotary_factor %r is not supported" % prf)


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return Config(json.load(f))


def tokenizer_size(model_dir):
    """max id in tokenizer.json (model.vocab and added_tokens) + 1, or None."""
    path = os.path.join(model_dir, "tokenizer.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    top = -1
    vocab = (tok.get("model") or {}).get("vocab")
    if isinstance(vocab, dict) and vocab:
        top = max(top, max(int(v) for v in vocab.values()))
    elif isinstance(vocab, list) and vocab:
        top = max(top, len(vocab) - 1)
    for t in tok.get("added_tokens") or []:
        top = max(top, int(t["id"]))
    return top + 1 if top >= 0 else None


# ---------------------------------------------------------------------------
# building blocks (HF semantics, float64)
# ---------------------------------------------------------------------------


def rope_inv_freq(head_dim, theta, rope_scaling=None):
    """inv_freq[i] = 1 / theta^(2i/head_dim), i = 0..head_dim/2-1, with the
    llama3 rule of transformers' _compute_llama3_parameters when asked, or
    divided by explicit per-frequency divisors ({"rope_type": "divisors",
    "divisors": [...]}, what tools/reference/gguf_to_hf.py writes for a GGUF
    file's rope_freqs tensor)."""
    exponent = torch.arange(0, head_dim, 2, dtype=DTYPE) / head_dim
    inv_freq = 1.0 / (theta ** exponent)
    if not rope_scaling:
        return inv_freq
    kind = rope_scaling.get("rope_type", rope_scaling.get("type"))
    if kind in (None, "default"):
        return inv_freq
    if kind == "divisors":
        # llama.cpp's rope_freqs tensor (GGUF): each frequency divided by its
        # stored factor, as ggml's rope applies freq_factors.
        divisors = torch.tensor(rope_scaling["divisors"], dtype=DTYPE)
        if divisors.shape != inv_freq.shape:
            raise ValueError("rope divisors: %d values for %d frequencies"
                             % (divisors.numel(), inv_freq.numel()))
        return inv_freq / divisors
    if kind != "llama3":
        raise ValueError("unsupported rope_scaling type %r" % kind)
    factor = float(rope_scaling["factor"])
    low_freq_factor = float(rope_scaling["low_freq_factor"])
    high_freq_factor = float(rope_scaling["high_freq_factor"])
    old_context_len = float(rope_scaling["original_max_position_embeddings"])
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rope_cos_sin(positions, inv_freq):
    """cos, sin of shape [T, head_dim]: the half-size angles concatenated twice."""
    angles = positions.to(DTYPE)[:, None] * inv_freq[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x: [n_heads, T, head_dim]; cos/sin: [T, head_dim]."""
    return x * cos[None] + rotate_half(x) * sin[None]


def rms_norm(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps))


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


# Quantisation settings (set by main); None = the weights as stored.
QUANT = {"layers": None, "lm_head": None, "group": 0, "act": False, "kv_bf16": False}


def to_bf16(x):
    """x as a bf16 KV cache stores it: rounded to float32, then to the
    nearest bf16 (ties to even), back in the working precision."""
    return x.to(torch.float32).to(torch.bfloat16).to(DTYPE)


def _pad32(w):
    rows, cols = w.shape
    padded = (cols + 31) // 32 * 32
    out = torch.zeros(rows, padded, dtype=torch.float32)
    out[:, :cols] = w.to(torch.float32)
    return out, cols


def quantize_weight(w, kind, group=0):
    """Dequantised float64 copy of w after int8 / int4 quantisation, every
    step in float32 as the C++ quantiser does it."""
    wp, cols = _pad32(w)
    rows, padded = wp.shape
    if kind == "int8":
        g = padded if group == 0 else group
        wg = wp.view(rows, padded // g, g)
        s = wg.abs().amax(dim=-1, keepdim=True) / 127.0
        inv = torch.where(s > 0, 1.0 / s, torch.zeros_like(s))
        q = torch.round(wg * inv).clamp(-127, 127)
    elif kind == "int4":
        wg = wp.view(rows, padded // 32, 32)
        idx = wg.abs().argmax(dim=-1, keepdim=True)  # first largest magnitude
        m = torch.gather(wg, -1, idx)
        s = (m / -8.0).to(torch.float16).to(torch.float32)
        inv = torch.where(s != 0, 1.0 / s, torch.zeros_like(s))
        q = torch.round(wg * inv).clamp(-8, 7)
    else:
        raise ValueError("unknown quantisation %s" % kind)
    return (q * s).view(rows, padded)[:, :cols].to(DTYPE)


def quantize_activations(x):
    """x as the integer kernels see it: float32, blocks of 32 along the last
    axis, scale max|x| / 127, q = round-half-even(x * (127 / max|x|))."""
    xf = x.to(torch.float32)
    t, cols = xf.shape
    padded = (cols + 31) // 32 * 32
    xp = torch.zeros(t, padded, dtype=torch.float32)
    xp[:, :cols] = xf
    xb = xp.view(t, padded // 32, 32)
    amax = xb.abs().amax(dim=-1, keepdim=True)
    s = amax / 127.0
    inv = torch.where(amax > 0, 127.0 / amax, torch.zeros_like(amax))
    q = torch.round(xb * inv)
    return (q.to(DTYPE) * s.to(DTYPE)).view(t, padded)[:, :cols]


def qlinear(x, w, b=None, kind=None):
    """linear() for a product whose weight is quantised as `kind`."""
    if kind is None:
        return linear(x, w, b)
    w = quantize_weight(w, kind, QUANT["group"])
    if QUANT["act"]:
        x = quantize_activations(x)
    return linear(x, w, b)


def causal_attention(q, k, v, scale):
    """q: [n_heads, T, d], k/v: [n_kv, T, d] (RoPE already applied).
    GQA as HF repeat_kv: kv head j serves q heads j*n_rep .. j*n_rep+n_rep-1."""
    n_heads, t, _ = q.shape
    n_rep = n_heads // k.shape[0]
    k = k.repeat_interleave(n_rep, dim=0)
    v = v.repeat_interleave(n_rep, dim=0)
    scores = (q @ k.transpose(1, 2)) * scale
    future = torch.ones(t, t, dtype=torch.bool).triu(diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v  # [n_heads, T, d]


def silu(x):
    return x * torch.sigmoid(x)


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def _get(ckpt, name, expected_shape):
    if not ckpt.has(name):
        raise KeyError("missing tensor %s" % name)
    if ckpt.shape(name) != list(expected_shape):
        raise ValueError("tensor %s has shape %s, expected %s"
                         % (name, ckpt.shape(name), list(expected_shape)))
    return ckpt.get(name)


def final_hidden(cfg, ckpt, ids):
    """Hidden states after the final RMSNorm, [T, hidden] float64."""
    H, D = cfg.hidden, cfg.head_dim
    nh, nkv = cfg.n_heads, cfg.n_kv
    vocab_rows = ckpt.shape("model.embed_tokens.weight")[0]
    for i in ids:
        if not 0 <= i < vocab_rows:
            raise ValueError("token id %d outside the embedding (%d rows)" % (i, vocab_rows))
    t = len(ids)
    x = ckpt.rows("model.embed_tokens.weight", ids)  # no scaling
    cos, sin = rope_cos_sin(torch.arange(t), rope_inv_freq(D, cfg.theta, cfg.rope_scaling))
    scale = D ** -0.5
    for layer in range(cfg.n_layers):
        p = "model.layers.%d." % layer
        a = p + "self_attn."
        m = p + "mlp."
        g = lambda n, s: _get(ckpt, n, s)  # noqa: E731
        bias = lambda n, s, on: g(n, s) if on else None  # noqa: E731

        h = rms_norm(x, g(p + "input_layernorm.weight", [H]), cfg.eps)
        q = qlinear(h, g(a + "q_proj.weight", [nh * D, H]), bias(a + "q_proj.bias", [nh * D], cfg.qkv_bias), kind=QUANT["layers"])
        k = qlinear(h, g(a + "k_proj.weight", [nkv * D, H]), bias(a + "k_proj.bias", [nkv * D], cfg.qkv_bias), kind=QUANT["layers"])
        v = qlinear(h, g(a + "v_proj.weight", [nkv * D, H]), bias(a + "v_proj.bias", [nkv * D], cfg.qkv_bias), kind=QUANT["layers"])
        # [T, n*D] -> [n, T, D]; head n occupies columns n*D .. n*D+D-1
        q = q.view(t, nh, D).transpose(0, 1)
        k = k.view(t, nkv, D).transpose(0, 1)
        v = v.view(t, nkv, D).transpose(0, 1)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if QUANT["kv_bf16"]:
            k, v = to_bf16(k), to_bf16(v)
        o = causal_attention(q, k, v, scale)
        o = o.transpose(0, 1).reshape(t, nh * D)
        x = x + qlinear(o, g(a + "o_proj.weight", [H, nh * D]), bias(a + "o_proj.bias", [H], cfg.o_bias), kind=QUANT["layers"])

        h = rms_norm(x, g(p + "post_attention_layernorm.weight", [H]), cfg.eps)
        gate = qlinear(h, g(m + "gate_proj.weight", [cfg.inter, H]), bias(m + "gate_proj.bias", [cfg.inter], cfg.mlp_bias), kind=QUANT["layers"])
        up = qlinear(h, g(m + "up_proj.weight", [cfg.inter, H]), bias(m + "up_proj.bias", [cfg.inter], cfg.mlp_bias), kind=QUANT["layers"])
        x = x + qlinear(silu(gate) * up, g(m + "down_proj.weight", [H, cfg.inter]), bias(m + "down_proj.bias", [H], cfg.mlp_bias), kind=QUANT["layers"])

    return rms_norm(x, _get(ckpt, "model.norm.weight", [H]), cfg.eps)


def output_matrix(cfg, ckpt):
    """lm_head.weight, or the embedding when tie_word_embeddings is true."""
    name = "model.embed_tokens.weight" if cfg.tie else "lm_head.weight"
    if not ckpt.has(name):
        raise KeyError("missing tensor %s (tie_word_embeddings=%s)" % (name, cfg.tie))
    shape = ckpt.shape(name)
    if len(shape) != 2 or shape[1] != cfg.hidden:
        raise ValueError("%s has shape %s" % (name, shape))
    return ckpt.get(name)


def top_k_rows(lp, k):
    """For each row of a 2-D float64 tensor, [(id, logprob)] of its k largest
    entries, most likely first, ties by id ascending."""
    k = min(k, lp.shape[-1])
    if k <= 0:
        return [[] for _ in range(lp.shape[0])]
    kth = torch.topk(lp, k, dim=-1).values[:, -1].numpy()  # k-th largest value
    out = []
    for row, v in zip(lp.numpy(), kth):
        cand = np.nonzero(row >= v)[0]  # every id tied with the k-th is here
        order = np.lexsort((cand, -row[cand]))[:k]
        out.append([(int(cand[j]), float(row[cand[j]])) for j in order])
    return out


def top_k(row, k):
    """top_k_rows for one 1-D numpy row."""
    return top_k_rows(torch.from_numpy(np.asarray(row, dtype=np.float64))[None], k)[0]


_OUTPUT_CACHE = {}


def run(model_dir, ids, k=5, logits_out=None, chunk=64):
    """Forward over `ids`; returns the per-position top-k list.
    With logits_out, writes the full float64 log-probs [T, vocab] as .npy."""
    cfg = load_config(model_dir)
    ckpt = Checkpoint(model_dir)
    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError("no token ids")
    x = final_hidden(cfg, ckpt, ids)
    key = (model_dir, QUANT["lm_head"], QUANT["group"])
    if key not in _OUTPUT_CACHE:  # --sequences runs many sequences on one model
        w_out = output_matrix(cfg, ckpt)
        if QUANT["lm_head"]:
            w_out = quantize_weight(w_out, QUANT["lm_head"], QUANT["group"])
        _OUTPUT_CACHE.clear()
        _OUTPUT_CACHE[key] = w_out
    w_out = _OUTPUT_CACHE[key]
    vocab = w_out.shape[0]
    n_valid = tokenizer_size(model_dir)
    if n_valid is None or n_valid > vocab:
        n_valid = vocab
    dump = None
    if logits_out:
        dump = np.lib.format.open_memmap(logits_out, mode="w+", dtype=np.float64,
                                         shape=(len(ids), vocab))
    result = []
    for c0 in range(0, len(ids), chunk):
        xc = x[c0:c0 + chunk]
        if QUANT["lm_head"] and QUANT["act"]:
            xc = quantize_activations(xc)
        logits = xc @ w_out.T
        logits[:, n_valid:] = float("-inf")  # padding rows belong to no token
        lp = torch.log_softmax(logits, dim=-1)
        if dump is not None:
            dump[c0:c0 + lp.shape[0]] = lp.numpy()
        result.extend(top_k_rows(lp, min(k, n_valid)))
    if dump is not None:
        dump.flush()
        del dump
    return result


def _parse_ids(text):
    return [int(s) for s in text.replace("\n", ",").split(",") if s.strip()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model folder")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", help="comma-separated token ids")
    src.add_argument("--ids-file", help="file holding comma-separated token ids")
    ap.add_argument("--top", type=int, default=5, help="entries per position (default 5)")
    ap.add_argument("--logits-out", help="write full float64 log-probs [T, vocab] to this .npy")
    ap.add_argument("--weight-quant", choices=["int8", "int4"],
                    help="quantise the decoder layers' weights as r1serve --dtype does")
    ap.add_argument("--lm-head-quant", choices=["none", "int8", "int4"],
                    help="the lm_head's quantisation (default: as r1serve: int8 under int4, "
                         "else --weight-quant)")
    ap.add_argument("--int8-group", type=int, default=0,
                    help="columns per int8 scale, 0 = one per output channel")
    ap.add_argument("--act-quant", action="store_true",
                    help="quantise the inputs of quantised products as the kernels do")
    ap.add_argument("--kv-bf16", action="store_true",
                    help="round K (after RoPE) and V to bf16, as r1serve's bf16 KV cache stores them")
    ap.add_argument("--sequences", action="store_true",
                    help="--ids-file holds one sequence per line, each run on its own")
    args = ap.parse_args(argv)
    QUANT["layers"] = args.weight_quant
    head = args.lm_head_quant
    if head is None:
        head = "int8" if args.weight_quant == "int4" else args.weight_quant
    QUANT["lm_head"] = None if head == "none" else head
    QUANT["group"] = args.int8_group
    QUANT["act"] = args.act_quant
    QUANT["kv_bf16"] = args.kv_bf16
    if args.sequences:
        # One independent sequence per line; the positions of all of them,
        # sequence after sequence, in one output.
        with open(args.ids_file) as f:
            seqs = [_parse_ids(line) for line in f if line.strip()]
        top = []
        for seq in seqs:
            top.extend(run(args.model, seq, k=args.top))
    else:
        if args.ids is not None:
            ids = _parse_ids(args.ids)
        else:
            with open(args.ids_file) as f:
                ids = _parse_ids(f.read())
        top = run(args.model, ids, k=args.top, logits_out=args.logits_out)
    out = {"top": [[[i, lp] for i, lp in pos] for pos in top]}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
