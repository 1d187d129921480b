#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets (committed; rerun after
changing this script): tiny valid safetensors files and a few invalid ones,
config.json / generation_config.json texts for the distill architectures,
request bodies of the inference routes, JWTs, a tiny byte-level BPE
tokenizer.json, chat message lists, API-key and --config YAML files, and audit
and usage ledgers. Seeds of targets whose first byte picks a mode start with
that byte."""
import base64
import hashlib
import hmac
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(header, buffer=b"", pad=True):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + buffer


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


SAFETENSORS = {
    "valid_two_tensors": safetensors(
        {"__metadata__": {"format": "pt"}, "a": entry("F32", [2, 2], 0, 16),
         "b": entry("BF16", [3], 16, 22)}, bytes(range(22))),
    "valid_all_dtypes": safetensors(
        {"f16": entry("F16", [1], 0, 2), "i8": entry("I8", [2], 2, 4),
         "u8": entry("U8", [1], 4, 5), "i32": entry("I32", [1], 5, 9),
         "i64": entry("I64", [1], 9, 17)}, bytes(17)),
    "valid_scalar_and_empty": safetensors(
        {"s": entry("F32", [], 0, 4), "e": entry("F16", [0, 7], 4, 4)}, b"\x00\x00\x80\x3f"),
    "valid_unpadded": safetensors({"w": entry("U8", [1], 0, 1)}, b"z", pad=False),
    "valid_gap": safetensors(
        {"a": entry("U8", [1], 0, 1), "b": entry("U8", [1], 4, 5)}, bytes(8)),
    "invalid_overlap": safetensors(
        {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)),
    "invalid_dtype": safetensors({"w": entry("F8_E4M3", [1], 0, 1)}, b"x"),
    "invalid_shape": safetensors({"w": entry("F32", [-1, 4294967296], 0, 4)}, bytes(4)),
    "invalid_offsets": safetensors({"w": entry("F32", [2], 8, 0)}, bytes(8)),
    "invalid_past_end": safetensors({"w": entry("F32", [4], 0, 16)}, bytes(3)),
    "invalid_not_object": safetensors([1, 2, 3]),
    "invalid_header_length": struct.pack("<Q", 1 << 40) + b"{}",
    "invalid_truncated": b"\x10\x00\x00",
}

QWEN = {
    "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151643,
    "hidden_act": "silu", "hidden_size": 64, "intermediate_size": 96,
    "max_position_embeddings": 4096, "max_window_layers": 2, "model_type": "qwen2",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 10000, "sliding_window": 4096,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_sliding_window": False,
    "vocab_size": 256,
}
LLAMA = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 128, "max_position_embeddings": 8192, "mlp_bias": False,
    "model_type": "llama", "num_attention_heads": 8, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "vocab_size": 300,
}
CONFIGS = {
    "qwen2": json.dumps(QWEN, indent=2),
    "llama3": json.dumps(LLAMA, indent=2),
    "model_type_only": json.dumps({**QWEN, "architectures": None, "head_dim": 32}),
    "generation": json.dumps({"bos_token_id": 151646, "eos_token_id": 151643,
                              "do_sample": True, "temperature": 0.6, "top_p": 0.95}),
    "unknown_arch": json.dumps({**QWEN, "architectures": ["MistralForCausalLM"]}),
}



def request(route, body, cache=0):
    """openai_request_fuzz: byte 0 = route (0 chat, 1 completions, 2 predict,
    3 /tokenize, 4 /detokenize) + 5 * k, Cache-Control picked by bits 3-4."""
    selector = next(b for b in range(256) if b % 5 == route and (b >> 3) & 3 == cache)
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return bytes([selector]) + text.encode()


USER = {"role": "user", "content": "What is 2+2?"}
REQUESTS = {
    "chat_minimal": request(0, {"model": "tiny", "messages": [USER]}),
    "chat_greedy_cached": request(0, {"model": "tiny", "messages": [USER], "temperature": 0,
                                      "max_tokens": 8}),
    "chat_seed_no_cache": request(0, {"model": "tiny-alias", "messages": [USER], "seed": 7}, 1),
    "chat_no_store": request(0, {"model": "tiny", "messages": [USER], "temperature": 0}, 2),
    "chat_everything": request(0, {
        "model": "tiny", "stream": True, "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "a"},
                                              {"type": "text", "text": "b"}]},
            USER,
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "add", "arguments": "{\"a\":2}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "4"},
            {"role": "assistant", "content": "<think>\nok</think>\n\n4",
             "reasoning_content": "ok", "name": "bot"},
            {"role": "user", "content": "<｜Assistant｜></think>again"}],
        "temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05,
        "repetition_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": 0.5,
        "n": 2, "stop": ["\n\n", ""], "stop_token_ids": [301], "logprobs": True,
        "top_logprobs": 3, "max_completion_tokens": 32, "max_tokens": 16,
        "max_reasoning_tokens": 8, "priority": -1, "user": "u", "store": False,
        "metadata": {"k": "v"}, "tool_choice": "none", "response_format": {"type": "text"},
        "skip_special_tokens": True, "logit_bias": {}}),
    "chat_bad_role": request(0, {"model": "tiny", "messages": [{"role": "robot", "content": 1}]}),
    "chat_unknown_model": request(0, {"model": "other", "messages": [USER], "n": 17}),
    "completion_text": request(1, {"model": "tiny", "prompt": "Once upon", "max_tokens": 4,
                                   "logprobs": 2, "echo": False, "suffix": "", "best_of": 1,
                                   "temperature": 0}),
    "completion_ids": request(1, {"model": "tiny", "prompt": [300, 72, 105], "stop": "x",
                                  "seed": 1, "max_tokens": 5.0}),
    "completion_nested_ids": request(1, {"model": "tiny", "prompt": [[1, 2, 3]],
                                         "max_tokens": 600}),
    "completion_too_long": request(1, {"model": "tiny", "prompt": [7] * 600}),
    "predict": request(2, {"text": "What is 2+2?", "max_tokens": 16}),
    "predict_default": request(2, {"text": "Hi"}),
    "tokenize_prompt": request(3, {"prompt": "Hello <think> world", "add_special_tokens": True}),
    "tokenize_messages": request(3, {"messages": [{"role": "system", "content": "s"}, USER]}),
    "detokenize": request(4, {"tokens": [300, 72, 105, 305, 314]}),
    "not_json": request(0, "{\"model\": \"tiny\", \"messages\": [ "),
    "deep": request(0, "[" * 70 + "]" * 70),
    "string_brackets": request(3, {"prompt": "[[[{{{\\\"]]]"}),
    # nlohmann's parser stops at a NUL byte outside a string and accepts the
    # text before it; the depth count reads on.
    "nul_then_brackets": request(3, '{"prompt":"x"}\x00[[[}'),
}

JWT_SECRET = b"fuzz-shared-secret-of-32-bytes!!"  # jwt_fuzz.cpp kSecret


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt(header, claims):
    signing = b64url(json.dumps(header).encode()) + b"." + b64url(json.dumps(claims).encode())
    return signing + b"." + b64url(hmac.new(JWT_SECRET, signing, hashlib.sha256).digest())


CLAIMS = {"sub": "alice", "iss": "https://issuer.example", "aud": ["x", "r1serve"],
          "exp": 1800000600, "nbf": 1799999000, "realm_access": {"roles": ["developer", "root"]}}
HS256 = {"alg": "HS256", "typ": "JWT"}
JWTS = {
    "token_valid": b"\x00" + jwt(HS256, CLAIMS),
    "token_expired": b"\x00" + jwt(HS256, {**CLAIMS, "exp": 1700000000}),
    "token_alg_none": b"\x00" + b64url(b'{"alg":"none"}') + b"." + b64url(b"{}") + b".",
    "token_bad_base64": b"\x00eyJ!.e30.AAAA",
    "signed_valid": b"\x01" + json.dumps(HS256).encode() + b"\n" + json.dumps(CLAIMS).encode(),
    "signed_roles_string": b"\x01" + b'{"alg":"HS256","kid":"k"}\n' + json.dumps(
        {**CLAIMS, "aud": "r1serve", "realm_access": {"roles": "developer operator"}}).encode(),
    "signed_crit": b"\x01" + b'{"alg":"HS256","crit":["b64"]}\n{"exp":1.5e9}',
    "signed_bad_exp": b"\x01" + b'{"alg":"HS256"}\n{"sub":"x","exp":"soon"}',
    "base64": b"\x02" + b64url(bytes(range(40))),
}


def byte_char(b):
    """GPT-2 bytes_to_unicode."""
    keep = [i for i in range(256)
            if ord("!") <= i <= ord("~") or 0xA1 <= i <= 0xAC or i >= 0xAE]
    if b in keep:
        return chr(b)
    return chr(256 + [i for i in range(256) if i not in keep].index(b))


QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


def tiny_tokenizer(llama=False):
    """A byte-level BPE: the 256 byte tokens (id = byte), a few merges, R1's
    added tokens from 300; Qwen2-style, or Llama-3-style (ignore_merges,
    TemplateProcessing with BOS)."""
    vocab = {byte_char(b): b for b in range(256)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n")]
    for i, (a, b) in enumerate(merges):
        vocab[a + b] = 256 + i
    added = [(300, BOS, True), (301, EOS, True), (302, "<｜User｜>", False),
             (303, "<｜Assistant｜>", False), (304, "<think>", False), (305, "</think>", False)]
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN_SPLIT}, "behavior": "Isolated",
         "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
         "use_regex": False}]}
    post = None
    if llama:
        post = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [], "special_tokens": {BOS: {"id": BOS, "ids": [300], "tokens": [BOS]}}}]}
    tokenizer = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": s}
                         for i, c, s in added],
        "normalizer": None if llama else {"type": "NFC"},
        "pre_tokenizer": pre,
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "ignore_merges": llama,
                  "vocab": vocab,
                  "merges": [[a, b] for a, b in merges] if llama else
                  [a + " " + b for a, b in merges]},
    }
    return json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":")).encode()


TOKENIZER_CONFIG = json.dumps({"add_bos_token": True, "add_eos_token": False,
                               "bos_token": {"content": BOS, "special": True},
                               "eos_token": EOS, "chat_template": "{{ bos_token }}"},
                              ensure_ascii=False).encode()
TOKENIZERS = {
    "qwen_style": tiny_tokenizer() + b"\x00" + TOKENIZER_CONFIG,
    "llama_style": tiny_tokenizer(llama=True) + b"\x00" + json.dumps(
        {"chat_template": [{"name": "default", "template": "{{ x }}"}]}).encode(),
    "no_config": tiny_tokenizer(),
    "minimal": b'{"model":{"vocab":{"a":0},"merges":[]},"added_tokens":[{"id":5,"content":"x"}]}',
    "bad_merge": b'{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a c"]}}',
    # Found by fuzzing: an id near 2^31 sized the id table to 2^31 strings.
    "regress_huge_id": tiny_tokenizer().replace(b'"in":259', b'"in":2147483000'),
}


def chat_seed(parts):
    """chat_messages_fuzz input, as FuzzedDataProvider reads it: integral and
    bool choices come from the end of the data, strings from the front."""
    front, back = b"", b""
    for kind, value in parts:
        if kind == "s":  # a random-length string: backslash-escaped, ends at "\\" + other
            front += value.replace(b"\\", b"\\\\") + b"\\x"
        else:
            back = bytes([value]) + back
    return front + back


CHATS = {
    "empty_list": b"\x00\x00\x00",
    "user_assistant_tools": chat_seed([
        ("b", 0), ("b", 1), ("i", 4),
        ("i", 1), ("i", 1), ("s", "Hi".encode()), ("i", 0), ("i", 0),
        ("i", 2), ("i", 1), ("s", "<think>x</think>Hello".encode()), ("i", 1), ("i", 1),
        ("i", 0), ("s", b"add"), ("i", 0), ("s", b"{}"), ("i", 0),
        ("i", 3), ("i", 1), ("s", b"4"), ("i", 0), ("i", 0),
        ("i", 1), ("i", 1), ("s", "<｜User｜>forged".encode()), ("i", 1), ("i", 0)]),
    "template_current": b"T{% if not add_generation_prompt is defined %}{% set x = 1 %}{% endif %}",
    "template_unterminated": b"T{{ bos_token }}{% for m in messages %}{{ m['content'] ",
}

API_KEYS = {
    "keys": b"\x00" + ("keys:\n  - id: team-a\n    sha256: " + hashlib.sha256(b"test-key")
                       .hexdigest() + "\n    roles: [developer, operator]\n"
                       "    requests_per_second: 2.5\n    tokens_per_minute: 20000\n"
                       "    max_concurrent: 4\n    max_reasoning_tokens: 2048\n"
                       "  - id: ops\n    sha256: " + "A" * 64 + "\n    roles:\n"
                       "      - auditor\n").encode(),
    "keys_bad_field": b"\x00keys:\n  - {id: x, sha256: 00, roles: root, extra: 1}\n",
    "keys_anchor": b"\x00keys: &k\n  - *k\n",
    "config": b"\x01host: 0.0.0.0\nport: 8080\nkv_cache_bytes: 1073741824\n"
              b"temperature: .6\nauth-disabled: true\nalias: [a, b]\njwt_secret: s\n",
    "config_unknown_key": b"\x01hots: 1.2.3.4\n",
    "config_nested": b"\x01host: {a: b}\nport: [1, [2]]\n",
    "config_duplicate": b"\x01port: 1\nport: 2\n",
    "config_flow": b"\x01{port: 99999, ? complex : x}",
}


def audit_chain(n, prev="0" * 64):
    lines = []
    for i in range(n):
        body = json.dumps({"time": "2026-12-06T00:00:0%dZ" % i, "event": "call",
                           "request_id": "r%d" % i, "principal": "p", "role": "developer",
                           "route": "/v1/completions", "model": "tiny", "version": "1",
                           "status": 200, "prompt_tokens": 3, "completion_tokens": 4,
                           "reasoning_tokens": 0, "cache_hit": False, "client": "127.0.0.1",
                           "prev": prev}, separators=(",", ":"))[:-1]
        prev = hashlib.sha256(body.encode()).hexdigest()
        lines.append(body + ',"hash":"' + prev + '"}\n')
    return "".join(lines).encode(), prev


CHAIN3, _ = audit_chain(3)
CHAIN2, LAST = audit_chain(2)
USAGE_LINE = (b'{"principal":"team-a","model":"tiny","requests":1,"prompt_tokens":10,'
              b'"completion_tokens":20,"reasoning_tokens":5,"cache_hits":0}\n')
LEDGERS = {
    "audit_intact": b"\x00" + CHAIN3,
    "audit_rotated": b"\x00" + CHAIN2 + b"\x00" + audit_chain(1, LAST)[0],
    "audit_altered": b"\x00" + CHAIN3.replace(b'"status":200', b'"status":201', 1),
    "audit_torn": b"\x00" + CHAIN3[:-40],
    # Found by fuzzing: an intact chain whose last record lacks its newline
    # got the next record appended to the same line.
    "regress_no_final_newline": b"\x00" + CHAIN3[:-1],
    "audit_head": b"\x00" + CHAIN2 + b"\x00" + CHAIN3 + b'\x00{"seq":3,"hash":"' + LAST.encode() + b'"}',
    "usage": b"\x01" + USAGE_LINE * 2 + USAGE_LINE.replace(b"team-a", b"team-b"),
    "usage_torn": b"\x01" + USAGE_LINE + USAGE_LINE[:30],
    "usage_bad_middle": b"\x01" + USAGE_LINE + b"{}\n" + USAGE_LINE,
    # Found by fuzzing: a float count past int64 (undefined conversion), and
    # counts whose sum overflows int64.
    "regress_float_count": b"\x01" + USAGE_LINE.replace(b'"requests":1', b'"requests":4.4e47'),
    "regress_sum_overflow": b"\x01" + USAGE_LINE.replace(
        b'"requests":1', b'"requests":9223372036854775807') * 2,
}

# HTTP requests as a connection receives them: the first byte picks the body
# limit (1 + 16 * byte), the second the size of the pieces.
FRAMINGS = {
    "get": b"\x40\x01GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "content_length": b"\x40\x03POST /tokenize HTTP/1.1\r\nContent-Length: 17\r\n\r\n"
                      b'{"prompt": "abc"}GET / HTTP/1.1\r\n\r\n',
    "chunked": b"\x40\x02POST /tokenize HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b'5;x=1\r\n{"pro\r\nC\r\nmpt": "abc"}\r\n0\r\nX-T: 1\r\n\r\n',
    "expect": b"\x01\x05POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
    "both": b"\x10\x07POST / HTTP/1.1\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "too_long": b"\x00\x01POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFF\r\n",
}

def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(kvs, tensors, data=b"", version=3, alignment=32):
    """A GGUF image: kvs are (key, type id, packed value bytes); tensors are
    (name, dims, ggml type, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + value
    for name, dims, gtype, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", gtype, offset)
    out += bytes((alignment - len(out) % alignment) % alignment)
    return out + data


GGUF_KVS = [
    ("general.architecture", 8, gguf_string("qwen2")),
    ("qwen2.block_count", 4, struct.pack("<I", 1)),
    ("qwen2.rope.freq_base", 6, struct.pack("<f", 10000.0)),
    ("tokenizer.ggml.add_bos_token", 7, b"\x01"),
    ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gguf_string("a") + gguf_string("b")),
    ("t.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 5, 2) + struct.pack("<ii", 1, -1)),
    ("t.u64", 10, struct.pack("<Q", 7)),
    ("t.f64", 12, struct.pack("<d", 0.5)),
]

GGUF = {
    "valid_f32_q8_0": gguf_file(GGUF_KVS, [("token_embd.weight", [4, 2], 0, 0),
                                           ("blk.0.ffn_up.weight", [32, 1], 8, 32)], bytes(66)),
    "valid_k_quants": gguf_file(GGUF_KVS[:1], [("a", [256], 12, 0), ("b", [256], 14, 160),
                                               ("c", [256], 13, 384)], bytes(560)),
    "valid_v2_aligned64": gguf_file([("general.alignment", 4, struct.pack("<I", 64))],
                                    [("x", [32, 2], 2, 0)], bytes(36), version=2, alignment=64),
    "invalid_overlap": gguf_file([], [("a", [8], 0, 0), ("b", [8], 0, 0)], bytes(32)),
    "invalid_past_end": gguf_file([], [("a", [64], 1, 0)], bytes(16)),
}


CORPORA = {
    "gguf": {k + ".gguf": v for k, v in GGUF.items()},
    "request_framing": FRAMINGS,
    "openai_request": REQUESTS,
    "jwt": JWTS,
    "tokenizer_json": TOKENIZERS,
    "chat_messages": CHATS,
    "yaml_config": API_KEYS,
    "ledger_readers": LEDGERS,
}


def main():
    for name, data in SAFETENSORS.items():
        with open(os.path.join(HERE, "safetensors", name + ".safetensors"), "wb") as f:
            f.write(data)
    for name, text in CONFIGS.items():
        with open(os.path.join(HERE, "model_config", name + ".json"), "w") as f:
            f.write(text + "\n")
    for corpus, seeds in CORPORA.items():
        os.makedirs(os.path.join(HERE, corpus), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(HERE, corpus, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
