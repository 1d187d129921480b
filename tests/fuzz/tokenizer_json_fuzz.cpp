// libFuzzer target: Tokenizer::from_json on arbitrary tokenizer.json and
// tokenizer_config.json texts (the input split at its first NUL byte: before
// it tokenizer.json, after it tokenizer_config.json), then, when the files
// load, a few encodes and decodes, the incremental detokenizer over what
// they produce, and the detection of the config's chat template.
//
// Properties: errors explain themselves; every id encode returns is below
// n_tokens(); token_bytes of an id past the vocabulary is empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

constexpr std::string_view kTexts[] = {
    "Hello world, the answer is 42.\n\n",
    "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜><think>\nok</think>\n\n2",
    "  spaces\t\tand\r\nnewlines   \n",
    "Ünïcödé 漢字 😀 e\xcc\x81",
    "it's we'll THEY'RE",
};

void check_ids(const r1::Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.n_tokens()) std::abort();
  }
}

void exercise(const r1::Tokenizer& tok) {
  for (std::string_view text : kTexts) {
    for (bool special : {false, true}) {
      auto ids = tok.encode(text, special);
      if (!ids.ok()) continue;
      check_ids(tok, *ids);
      (void)tok.decode(*ids);
      (void)tok.decode(*ids, /*skip_special=*/true);
      r1::IncrementalDetokenizer detok(tok, /*skip_special=*/true);
      detok.set_hold_back(3);
      for (int32_t id : *ids) (void)detok.push(id);
      (void)detok.flush();
    }
    // The first half of the text as a literal range (client text).
    const std::pair<size_t, size_t> literal[] = {{0, text.size() / 2}};
    auto ids = tok.encode_with_literals(text, literal);
    if (ids.ok()) check_ids(tok, *ids);
  }
  // Ids around the edges of the vocabulary.
  const int32_t n = tok.n_tokens();
  const std::vector<int32_t> edge = {0, 1, n / 2, n - 1, n, -1};
  (void)tok.decode(edge);
  if (!tok.token_bytes(n).empty() || !tok.token_bytes(-1).empty()) std::abort();
  for (int32_t id : edge) (void)tok.is_special(id);
  (void)tok.token_to_id("<think>");
  if (!tok.chat_template_source().empty()) {
    const std::string bos = tok.bos_id() ? tok.token_bytes(*tok.bos_id()) : "";
    (void)r1::ChatTemplate::detect(tok.chat_template_source(), bos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string tokenizer_json(input.substr(0, nul));
  const std::string config_json(nul == std::string_view::npos ? "" : input.substr(nul + 1));
  auto tok = r1::Tokenizer::from_json(tokenizer_json, config_json);
  if (!tok.ok()) {
    if (tok.status().message().empty()) std::abort();
    return 0;
  }
  exercise(*tok);
  return 0;
}
