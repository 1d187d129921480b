#!/usr/bin/env python3
"""Writes the seed corpora for the format fuzz targets (committed; rerun after
changing this script): tiny valid safetensors files and a few invalid ones, and
config.json / generation_config.json texts for the distill architectures."""
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


def main():
    for name, data in SAFETENSORS.items():
        with open(os.path.join(HERE, "safetensors", name + ".safetensors"), "wb") as f:
            f.write(data)
    for name, text in CONFIGS.items():
        with open(os.path.join(HERE, "model_config", name + ".json"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
