#!/usr/bin/python3
"""Checks of the reference forward (forward.py) against hand-derived values.

Run: /usr/bin/python3 -m unittest discover -s tools/reference -p 'test_*.py'

The expected values here do not reuse forward.py's code: tiny models are
written with a safetensors writer of this file, and compared against constants
from the model facts, closed-form cases, and a loop-based numpy forward
(`np_forward`) written per position and per head.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import forward  # noqa: E402

# ---------------------------------------------------------------------------
# tiny-model writer
# ---------------------------------------------------------------------------


def f32_to_bf16_bits(a):
    """Truncate float32 to bf16 bit patterns (uint16)."""
    return (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def bf16_value(a):
    """The float64 value a bf16-truncated float32 array holds."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    return bits.view(np.float32).astype(np.float64)


def write_safetensors(path, tensors):
    """tensors: {name: (dtype string, numpy array already in storage dtype)}."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        dt, arr = tensors[name]
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hj = json.dumps(header).encode("utf-8")
    hj += b" " * ((8 - (8 + len(hj)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)


def random_weights(cfg, seed, zero_outputs=False, with_lm_head=True):
    """float32 weights with HF names for a config dict."""
    rng = np.random.default_rng(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    D = cfg.get("head_dim", H // nh)
    qwen = cfg["model_type"] == "qwen2"
    ab = qwen or cfg.get("attention_bias", False)
    ob = (not qwen) and cfg.get("attention_bias", False)
    mb = (not qwen) and cfg.get("mlp_bias", False)

    def r(*shape, s=0.3):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    w = {"model.embed_tokens.weight": r(V, H, s=1.0), "model.norm.weight": 1 + r(H, s=0.2)}
    if with_lm_head:
        w["lm_head.weight"] = r(V, H, s=0.5)
    for L in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % L
        w[p + "input_layernorm.weight"] = 1 + r(H, s=0.2)
        w[p + "post_attention_layernorm.weight"] = 1 + r(H, s=0.2)
        w[p + "self_attn.q_proj.weight"] = r(nh * D, H)
        w[p + "self_attn.k_proj.weight"] = r(nkv * D, H)
        w[p + "self_attn.v_proj.weight"] = r(nkv * D, H)
        w[p + "self_attn.o_proj.weight"] = r(H, nh * D)
        w[p + "mlp.gate_proj.weight"] = r(I, H)
        w[p + "mlp.up_proj.weight"] = r(I, H)
        w[p + "mlp.down_proj.weight"] = r(H, I)
        if ab:
            w[p + "self_attn.q_proj.bias"] = r(nh * D)
            w[p + "self_attn.k_proj.bias"] = r(nkv * D)
            w[p + "self_attn.v_proj.bias"] = r(nkv * D)
        if ob:
            w[p + "self_attn.o_proj.bias"] = r(H)
        if mb:
            w[p + "mlp.gate_proj.bias"] = r(I)
            w[p + "mlp.up_proj.bias"] = r(I)
            w[p + "mlp.down_proj.bias"] = r(H)
        if zero_outputs:
            w[p + "self_attn.o_proj.weight"][:] = 0
            w[p + "mlp.down_proj.weight"][:] = 0
            if ob:
                w[p + "self_attn.o_proj.bias"][:] = 0
            if mb:
                w[p + "mlp.down_proj.bias"][:] = 0
    return w


def write_model(d, cfg, weights, dtype="F32", tok_size=None, shards=1):
    """Write config.json, safetensors (one file or `shards` files plus index),
    and optionally a tokenizer.json with ids 0..tok_size-1 (the last 3 as
    added tokens). Returns {name: float64 value as stored}."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    stored, values = {}, {}
    for n, a in weights.items():
        if dtype == "BF16":
            stored[n] = ("BF16", f32_to_bf16_bits(a))
            values[n] = bf16_value(a)
        elif dtype == "F16":
            stored[n] = ("F16", a.astype(np.float16))
            values[n] = a.astype(np.float16).astype(np.float64)
        else:
            stored[n] = ("F32", a)
            values[n] = a.astype(np.float64)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), stored)
    else:
        names = sorted(stored)
        wm = {}
        for s in range(shards):
            fn = "model-%05d-of-%06d.safetensors" % (s + 1, shards)
            part = {n: stored[n] for n in names[s::shards]}
            write_safetensors(os.path.join(d, fn), part)
            for n in part:
                wm[n] = fn
        total = sum(v[1].nbytes for v in stored.values())
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f)
    if tok_size is not None:
        vocab = {"t%d" % i: i for i in range(tok_size - 3)}
        added = [{"id": i, "content": "<a%d>" % i, "special": True} for i in range(tok_size - 3, tok_size)]
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump({"model": {"type": "BPE", "vocab": vocab, "merges": []}, "added_tokens": added}, f)
    return values


# ---------------------------------------------------------------------------
# loop-based numpy forward (independent of forward.py)
# ---------------------------------------------------------------------------


def np_inv_freq(d, theta, scaling=None):
    out = []
    for i in range(d // 2):
        f = math.pow(theta, -2.0 * i / d)
        if scaling and scaling.get("rope_type", scaling.get("type")) == "llama3":
            factor = scaling["factor"]
            lo, hi = scaling["low_freq_factor"], scaling["high_freq_factor"]
            old = scaling["original_max_position_embeddings"]
            wl = 2 * math.pi / f
            if wl < old / hi:
                pass
            elif wl > old / lo:
                f = f / factor
            else:
                s = (old / wl - lo) / (hi - lo)
                f = (1 - s) * f / factor + s * f
        out.append(f)
    return out


def np_rms(x, w, eps):
    return w * x / math.sqrt(float(np.mean(x * x)) + eps)


def np_rope(vec, pos, inv):
    half = len(vec) // 2
    out = np.empty_like(vec)
    for i in range(half):
        c, s = math.cos(pos * inv[i]), math.sin(pos * inv[i])
        out[i] = vec[i] * c - vec[i + half] * s
        out[i + half] = vec[i + half] * c + vec[i] * s
    return out


def np_forward(cfg, W, ids, tok_size=None):
    """Full log-probs [T, vocab] computed position by position, head by head."""
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    D = cfg.get("head_dim", H // nh)
    eps = cfg.get("rms_norm_eps", 1e-6)
    inv = np_inv_freq(D, cfg.get("rope_theta", 10000.0), cfg.get("rope_scaling"))
    group = nh // nkv
    T = len(ids)
    x = [W["model.embed_tokens.weight"][i].copy() for i in ids]
    zb = lambda n, size: W.get(n, np.zeros(size))  # noqa: E731
    for L in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % L
        Q, K, Vv = [], [], []
        for t in range(T):
            h = np_rms(x[t], W[p + "input_layernorm.weight"], eps)
            q = W[p + "self_attn.q_proj.weight"] @ h + zb(p + "self_attn.q_proj.bias", nh * D)
            k = W[p + "self_attn.k_proj.weight"] @ h + zb(p + "self_attn.k_proj.bias", nkv * D)
            v = W[p + "self_attn.v_proj.weight"] @ h + zb(p + "self_attn.v_proj.bias", nkv * D)
            Q.append([np_rope(q[j * D:(j + 1) * D], t, inv) for j in range(nh)])
            K.append([np_rope(k[j * D:(j + 1) * D], t, inv) for j in range(nkv)])
            Vv.append([v[j * D:(j + 1) * D] for j in range(nkv)])
        new_x = []
        for t in range(T):
            heads = []
            for j in range(nh):
                kv = j // group
                sc = [float(Q[t][j] @ K[s][kv]) / math.sqrt(D) for s in range(t + 1)]
                m = max(sc)
                e = [math.exp(a - m) for a in sc]
                z = sum(e)
                heads.append(sum(e[s] / z * Vv[s][kv] for s in range(t + 1)))
            o = W[p + "self_attn.o_proj.weight"] @ np.concatenate(heads) + zb(p + "self_attn.o_proj.bias", H)
            hh = x[t] + o
            n2 = np_rms(hh, W[p + "post_attention_layernorm.weight"], eps)
            I = cfg["intermediate_size"]
            g = W[p + "mlp.gate_proj.weight"] @ n2 + zb(p + "mlp.gate_proj.bias", I)
            u = W[p + "mlp.up_proj.weight"] @ n2 + zb(p + "mlp.up_proj.bias", I)
            act = g / (1 + np.exp(-g)) * u
            new_x.append(hh + W[p + "mlp.down_proj.weight"] @ act + zb(p + "mlp.down_proj.bias", H))
        x = new_x
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    rows = []
    for t in range(T):
        logits = head @ np_rms(x[t], W["model.norm.weight"], eps)
        n = head.shape[0] if tok_size is None else tok_size
        valid = logits[:n]
        m = valid.max()
        lse = m + math.log(float(np.sum(np.exp(valid - m))))
        row = np.full(head.shape[0], -np.inf)
        row[:n] = valid - lse
        rows.append(row)
    return np.array(rows)


QWEN = {
    "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 50,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None,
    "tie_word_embeddings": False, "hidden_act": "silu", "use_sliding_window": False,
}

LLAMA = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"],
    "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
    "vocab_size": 40, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    # small original context so that kept, blended and divided frequencies
    # all occur with head_dim 16: wavelengths 6.3 | 19.9, 62.8 | 199 ...
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "tie_word_embeddings": False, "hidden_act": "silu",
    "attention_bias": False, "mlp_bias": False,
}

IDS = [3, 17, 0, 38, 17, 9, 25]


class Base(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def full_logprobs(self, d, ids):
        path = os.path.join(self.tmp, "lp_%d.npy" % len(os.listdir(self.tmp)))
        forward.run(d, ids, k=3, logits_out=path)
        return np.load(path)


class TestRope(Base):
    def test_default_inv_freq_model_facts(self):
        f = forward.rope_inv_freq(128, 10000.0).numpy()
        self.assertEqual(f.shape, (64,))
        self.assertEqual(f[0], 1.0)
        self.assertAlmostEqual(f[1] / 0.8659643234, 1.0, delta=1e-9)
        self.assertAlmostEqual(f[63] / 1.154781985e-4, 1.0, delta=1e-9)
        f = forward.rope_inv_freq(128, 1e6).numpy()
        self.assertAlmostEqual(f[1] / 0.8058421878, 1.0, delta=1e-9)
        self.assertAlmostEqual(f[63] / 1.240937761e-6, 1.0, delta=1e-9)

    def test_llama3_inv_freq_model_facts(self):
        sc = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
        base = forward.rope_inv_freq(128, 500000.0).numpy()
        f = forward.rope_inv_freq(128, 500000.0, sc).numpy()
        for i, before, after in [(30, 2.131119537e-3, 1.371893568e-3),
                                 (35, 7.644969883e-4, 9.556212354e-5),
                                 (63, 2.455140791e-6, 3.068925989e-7)]:
            self.assertAlmostEqual(base[i] / before, 1.0, delta=1e-9, msg=i)
            self.assertAlmostEqual(f[i] / after, 1.0, delta=1e-9, msg=i)
        # indices 0-28 unchanged, 29-34 blended, 35-63 divided by 8
        np.testing.assert_array_equal(f[:29], base[:29])
        for i in range(29, 35):
            self.assertTrue(base[i] / 8 < f[i] < base[i], i)
        np.testing.assert_allclose(f[35:], base[35:] / 8, rtol=1e-15)
        # the older "type" key means the same
        sc2 = dict(sc)
        sc2["type"] = sc2.pop("rope_type")
        np.testing.assert_array_equal(forward.rope_inv_freq(128, 500000.0, sc2).numpy(), f)
        # and the test's own numpy rule agrees with the model-facts values
        mine = np_inv_freq(128, 500000.0, sc)
        self.assertAlmostEqual(mine[30] / 1.371893568e-3, 1.0, delta=1e-9)
        self.assertAlmostEqual(mine[35] / 9.556212354e-5, 1.0, delta=1e-9)

    def test_rotate_half_pairs_i_with_i_plus_half(self):
        d = 8
        x = torch.arange(1.0, d + 1, dtype=torch.float64).view(1, 1, d)  # [heads, T, d]
        inv = forward.rope_inv_freq(d, 100.0)
        pos = 3
        cos, sin = forward.rope_cos_sin(torch.tensor([pos]), inv)
        got = forward.apply_rope(x, cos, sin)[0, 0].numpy()
        inv_hand = [100.0 ** (-2 * i / d) for i in range(d // 2)]
        for i in range(d // 2):
            a = pos * inv_hand[i]
            self.assertAlmostEqual(got[i], (i + 1) * math.cos(a) - (i + 1 + d // 2) * math.sin(a), places=12)
            self.assertAlmostEqual(got[i + d // 2], (i + 1 + d // 2) * math.cos(a) + (i + 1) * math.sin(a), places=12)
        # position 0 is the identity
        cos0, sin0 = forward.rope_cos_sin(torch.tensor([0]), inv)
        np.testing.assert_array_equal(forward.apply_rope(x, cos0, sin0).numpy(), x.numpy())


class TestBlocks(Base):
    def test_rms_norm_by_hand(self):
        x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
        w = torch.tensor([1.0, 1.0, 2.0, 0.5], dtype=torch.float64)
        r = 1 / math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6)  # mean(x^2) = 7.5
        got = forward.rms_norm(x, w, 1e-6).numpy()
        np.testing.assert_allclose(got, [1 * r, 2 * r, 6 * r, 2 * r], rtol=1e-15)
        self.assertAlmostEqual(got[0], 0.36514835, places=7)

    def test_attention_single_position_is_value(self):
        rng = np.random.default_rng(1)
        q = torch.from_numpy(rng.standard_normal((4, 1, 8)))
        k = torch.from_numpy(rng.standard_normal((2, 1, 8)))
        v = torch.from_numpy(rng.standard_normal((2, 1, 8)))
        o = forward.causal_attention(q, k, v, 8 ** -0.5).numpy()
        # q heads 0,1 use kv head 0; q heads 2,3 use kv head 1
        for h in range(4):
            np.testing.assert_array_equal(o[h, 0], v.numpy()[h // 2, 0])

    def test_attention_one_hot_keys(self):
        T, d, c = 4, 4, 2.0
        scale = d ** -0.5
        k = torch.eye(T, d, dtype=torch.float64)[None]  # key at position j = e_j
        rng = np.random.default_rng(2)
        v = torch.from_numpy(rng.standard_normal((1, T, d)))
        s = 1  # every query points at key 1
        q = (c * torch.eye(T, d, dtype=torch.float64)[s]).expand(1, T, d).clone()
        o = forward.causal_attention(q, k, v, scale).numpy()[0]
        vn = v.numpy()[0]
        np.testing.assert_allclose(o[0], vn[0], rtol=0, atol=1e-15)  # only itself visible
        big = math.exp(c * scale)
        for t in range(1, T):
            # scores: c*scale for j == s, 0 for the other visible j; none after t
            want = (big * vn[s] + sum(vn[j] for j in range(t + 1) if j != s)) / (big + t)
            np.testing.assert_allclose(o[t], want, rtol=1e-13)

    def test_top_k_ties_by_id(self):
        row = np.array([0.1, 0.5, 0.5, -1.0, 0.5, 0.7])
        self.assertEqual(forward.top_k(row, 3), [(5, 0.7), (1, 0.5), (2, 0.5)])
        self.assertEqual(forward.top_k(row, 1), [(5, 0.7)])
        self.assertEqual(len(forward.top_k(row, 10)), 6)


class TestSafetensors(Base):
    def test_bf16_f16_f32_decoding(self):
        path = os.path.join(self.tmp, "t.safetensors")
        write_safetensors(path, {
            "b": ("BF16", np.array([0x3F80, 0xC040, 0x0000, 0x4049, 0x7F80, 0x8000], dtype=np.uint16)),
            "h": ("F16", np.array([0x3C00, 0xC000, 0x3555], dtype=np.uint16).view(np.float16)),
            "f": ("F32", np.array([[1.5, -2.25], [3.0, 0.1]], dtype=np.float32)),
        })
        st = forward.SafetensorsFile(path)
        raw, dt = st.raw("b")
        b = forward.decode_to_f64(raw, dt)
        self.assertEqual(b.dtype, np.float64)
        self.assertEqual(list(b[:4]), [1.0, -3.0, 0.0, 3.140625])
        self.assertEqual(b[4], math.inf)
        self.assertEqual(math.copysign(1, b[5]), -1.0)
        raw, dt = st.raw("h")
        self.assertEqual(list(forward.decode_to_f64(raw, dt)), [1.0, -2.0, 0.333251953125])
        raw, dt = st.raw("f")
        f = forward.decode_to_f64(raw, dt)
        self.assertEqual(f.shape, (2, 2))
        self.assertEqual(f[1, 1], float(np.float32(0.1)))

    def test_rejects_bad_offsets(self):
        path = os.path.join(self.tmp, "bad.safetensors")
        hj = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}).encode()
        with open(path, "wb") as f:
            f.write(len(hj).to_bytes(8, "little") + hj + b"\0" * 16)
        with self.assertRaises(ValueError):
            forward.SafetensorsFile(path)


class TestModels(Base):
    def check_against_numpy(self, cfg, dtype="F32", tok_size=None, seed=0, ids=IDS, **kw):
        d = os.path.join(self.tmp, "m")
        W = write_model(d, cfg, random_weights(cfg, seed, **kw), dtype=dtype, tok_size=tok_size)
        got = self.full_logprobs(d, ids)
        want = np_forward(cfg, W, ids, tok_size)
        self.assertEqual(got.shape, (len(ids), cfg["vocab_size"]))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
        return d, got

    def test_zero_output_layer_is_lm_head_of_norm_of_embed(self):
        cfg = dict(QWEN, num_hidden_layers=1)
        d = os.path.join(self.tmp, "m")
        W = write_model(d, cfg, random_weights(cfg, 5, zero_outputs=True))
        ids = [4, 4, 31, 0]
        got = self.full_logprobs(d, ids)
        E, N, LM = W["model.embed_tokens.weight"], W["model.norm.weight"], W["lm_head.weight"]
        for t, i in enumerate(ids):
            x = E[i]
            y = N * x / np.sqrt(np.mean(x ** 2) + 1e-6)
            z = LM @ y
            want = z - z.max() - np.log(np.sum(np.exp(z - z.max())))
            np.testing.assert_allclose(got[t], want, rtol=0, atol=1e-12)
        # same token at positions 0 and 1 gives the same row: nothing mixes in
        np.testing.assert_allclose(got[0], got[1], rtol=0, atol=1e-13)

    def test_single_token_by_hand(self):
        # one position: RoPE is the identity and attention returns v exactly
        cfg = dict(QWEN, num_hidden_layers=1)
        d = os.path.join(self.tmp, "m")
        W = write_model(d, cfg, random_weights(cfg, 6))
        tok = 13
        got = self.full_logprobs(d, [tok])[0]
        p = "model.layers.0."
        x = W["model.embed_tokens.weight"][tok]
        h = W[p + "input_layernorm.weight"] * x / np.sqrt(np.mean(x ** 2) + 1e-6)
        v = W[p + "self_attn.v_proj.weight"] @ h + W[p + "self_attn.v_proj.bias"]  # 2 kv heads of 8
        attn = np.concatenate([v[0:8], v[0:8], v[8:16], v[8:16]])  # q heads 0,1 -> kv 0; 2,3 -> kv 1
        x = x + W[p + "self_attn.o_proj.weight"] @ attn
        h = W[p + "post_attention_layernorm.weight"] * x / np.sqrt(np.mean(x ** 2) + 1e-6)
        g = W[p + "mlp.gate_proj.weight"] @ h
        u = W[p + "mlp.up_proj.weight"] @ h
        x = x + W[p + "mlp.down_proj.weight"] @ (g * (1 / (1 + np.exp(-g))) * u)
        y = W["model.norm.weight"] * x / np.sqrt(np.mean(x ** 2) + 1e-6)
        z = W["lm_head.weight"] @ y
        want = z - np.log(np.sum(np.exp(z)))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)

    def test_qwen2_gqa_biases_masking(self):
        self.check_against_numpy(QWEN, tok_size=45)

    def test_qwen2_bf16(self):
        self.check_against_numpy(QWEN, dtype="BF16", seed=3)

    def test_qwen2_f16(self):
        self.check_against_numpy(QWEN, dtype="F16", seed=4)

    def test_llama3_scaling_head_dim_key(self):
        self.check_against_numpy(LLAMA, seed=7, ids=list(range(0, 40, 3)))

    def test_llama_biases(self):
        cfg = dict(LLAMA, attention_bias=True, mlp_bias=True, rope_scaling=None,
                   num_key_value_heads=2)
        d = os.path.join(self.tmp, "m")
        w = random_weights(cfg, 8)
        self.assertIn("model.layers.1.self_attn.o_proj.bias", w)
        self.assertIn("model.layers.1.mlp.down_proj.bias", w)
        W = write_model(d, cfg, w)
        np.testing.assert_allclose(self.full_logprobs(d, IDS), np_forward(cfg, W, IDS), rtol=0, atol=1e-10)

    def test_llama_defaults_num_kv_heads(self):
        cfg = dict(LLAMA, rope_scaling=None)
        del cfg["num_key_value_heads"]
        self.check_against_numpy(cfg, seed=9)

    def test_tied_embeddings(self):
        cfg = dict(QWEN, tie_word_embeddings=True)
        self.check_against_numpy(cfg, seed=10, with_lm_head=False)

    def test_untied_without_lm_head_fails(self):
        d = os.path.join(self.tmp, "m")
        write_model(d, QWEN, random_weights(QWEN, 0, with_lm_head=False))
        with self.assertRaises(KeyError):
            forward.run(d, IDS)

    def test_masking_and_uniform_ties(self):
        # an all-zero lm_head makes every logit equal: the logprob of each of
        # the tok_size valid ids is -log(tok_size), padding rows are -inf,
        # and the top entries are the lowest ids
        d = os.path.join(self.tmp, "m")
        w = random_weights(QWEN, 11)
        w["lm_head.weight"][:] = 0
        write_model(d, QWEN, w, tok_size=45)
        lp = self.full_logprobs(d, [1, 2])
        np.testing.assert_allclose(lp[:, :45], -math.log(45), rtol=1e-15)
        self.assertTrue(np.all(lp[:, 45:] == -np.inf))
        top = forward.run(d, [1, 2], k=4)
        for pos in top:
            self.assertEqual([i for i, _ in pos], [0, 1, 2, 3])
        # top larger than the tokenizer stops at the valid ids
        self.assertEqual(len(forward.run(d, [1], k=100)[0]), 45)

    def test_no_tokenizer_no_masking(self):
        d, lp = self.check_against_numpy(QWEN, seed=12)
        self.assertFalse(os.path.exists(os.path.join(d, "tokenizer.json")))
        self.assertTrue(np.all(np.isfinite(lp)))

    def test_causal_prefix(self):
        d = os.path.join(self.tmp, "m")
        write_model(d, QWEN, random_weights(QWEN, 13))
        full = self.full_logprobs(d, IDS)
        part = self.full_logprobs(d, IDS[:3])
        np.testing.assert_allclose(part, full[:3], rtol=0, atol=1e-12)

    def test_sharded_equals_single(self):
        w = random_weights(QWEN, 14)
        one = os.path.join(self.tmp, "one")
        three = os.path.join(self.tmp, "three")
        write_model(one, QWEN, w, dtype="BF16", tok_size=45)
        write_model(three, QWEN, w, dtype="BF16", tok_size=45, shards=3)
        self.assertFalse(os.path.exists(os.path.join(three, "model.safetensors")))
        self.assertEqual(len([f for f in os.listdir(three) if f.endswith(".safetensors")]), 3)
        np.testing.assert_array_equal(self.full_logprobs(one, IDS), self.full_logprobs(three, IDS))


class TestCli(Base):
    def test_cli_output_format(self):
        d = os.path.join(self.tmp, "m")
        write_model(d, QWEN, random_weights(QWEN, 15), tok_size=45)
        exe = os.path.join(HERE, "forward.py")
        out = subprocess.run([sys.executable, exe, "--model", d, "--ids", "5,6,7", "--top", "4"],
                             check=True, capture_output=True, text=True).stdout
        obj = json.loads(out)
        self.assertEqual(list(obj), ["top"])
        self.assertEqual(len(obj["top"]), 3)
        for pos in obj["top"]:
            self.assertEqual(len(pos), 4)
            ids = [e[0] for e in pos]
            lps = [e[1] for e in pos]
            self.assertTrue(all(isinstance(i, int) and 0 <= i < 45 for i in ids))
            self.assertTrue(all(isinstance(x, float) and x <= 0 for x in lps))
            self.assertEqual(lps, sorted(lps, reverse=True))
        self.assertEqual(obj["top"], [[list(e) for e in pos] for pos in forward.run(d, [5, 6, 7], k=4)])
        # --ids-file and --logits-out give the same answer
        idf = os.path.join(self.tmp, "ids.txt")
        with open(idf, "w") as f:
            f.write("5, 6,7\n")
        npy = os.path.join(self.tmp, "lp.npy")
        out2 = subprocess.run([sys.executable, exe, "--model", d, "--ids-file", idf, "--top", "4",
                               "--logits-out", npy], check=True, capture_output=True, text=True).stdout
        self.assertEqual(json.loads(out2), obj)
        lp = np.load(npy)
        self.assertEqual(lp.shape, (3, 50))
        self.assertEqual(lp.dtype, np.float64)
        self.assertEqual(lp[0, obj["top"][0][0][0]], obj["top"][0][0][1])


if __name__ == "__main__":
    unittest.main()
