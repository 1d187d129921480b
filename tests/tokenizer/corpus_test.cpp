// The tokenizer against Hugging Face tokenizers (the Rust library
// transformers runs; tools/python/encode_corpus.py) on every line of
// corpus.txt, for the R1-Distill Qwen and Llama tokenizers, id for id; plus
// decode(encode(x)) round trips.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1_tokenizers.h"
#include "tokenizer/detail/normalizer.h"
#include "tokenizer/detail/utf8.h"
#include "tokenizer/tokenizer.h"

namespace r1 {
namespace {

using nlohmann::json;

std::string run_hf_oracle() {
  const std::string cmd = "cd '" + testing::source_dir() +
                          "' && .venv/bin/python tools/python/encode_corpus.py "
                          "tests/tokenizer/corpus.txt";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << "`" << cmd << "` failed (needs the Python test tooling in .venv: "
                       << "run scripts/install-deps.sh)";
  return status == 0 ? out : std::string();
}

// corpus.txt as the C++ side reads it: line number -> text.
std::map<int, std::string> read_corpus() {
  std::map<int, std::string> lines;
  std::istringstream in(
      testing::read_text_file(testing::source_dir() + "/tests/tokenizer/corpus.txt"));
  std::string raw;
  for (int number = 1; std::getline(in, raw); ++number) {
    if (raw.empty() || raw[0] == '#') continue;
    lines[number] = json::parse(raw).get<std::string>();
  }
  return lines;
}

struct OracleLine {
  int line;
  std::string text;
  std::string nfc;
  std::vector<int32_t> ids[2];  // [llama]
};

const std::vector<OracleLine>& oracle() {
  static const std::vector<OracleLine> lines = [] {
    std::vector<OracleLine> out;
    const std::string text = run_hf_oracle();
    if (text.empty()) return out;
    const json doc = json::parse(text);
    for (const json& l : doc.at("lines")) {
      OracleLine o;
      o.line = l.at("line").get<int>();
      o.text = l.at("text").get<std::string>();
      o.nfc = l.at("nfc").get<std::string>();
      o.ids[0] = l.at("qwen").get<std::vector<int32_t>>();
      o.ids[1] = l.at("llama").get<std::vector<int32_t>>();
      out.push_back(std::move(o));
    }
    return out;
  }();
  return lines;
}

std::string show_ids(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(ids[i]) + " " + json(detail::utf8_lossy(tok.token_bytes(ids[i]))).dump();
  }
  return s + "]";
}

void check_corpus_matches_the_script() {
  const std::map<int, std::string> corpus = read_corpus();
  EXPECT_GE(corpus.size(), 300u);
  const std::vector<OracleLine>& hf = oracle();
  ASSERT_EQ(hf.size(), corpus.size());
  for (const OracleLine& o : hf) {
    ASSERT_TRUE(corpus.count(o.line)) << "line " << o.line;
    EXPECT_EQ(corpus.at(o.line), o.text) << "corpus line " << o.line << " parsed differently";
  }
}

void compare_with_hf(bool llama) {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_tokenizer(llama));
  const std::vector<OracleLine>& hf = oracle();
  ASSERT_FALSE(hf.empty());
  int n_mismatch = 0;
  double seconds = 0;
  for (const OracleLine& o : hf) {
    const auto t0 = std::chrono::steady_clock::now();
    Result<std::vector<int32_t>> ids = tok->encode(o.text, false);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    if (ids.value() != o.ids[llama]) {
      ++n_mismatch;
      ADD_FAILURE() << "corpus line " << o.line << " " << json(o.text).dump()
                    << "\n  C++: " << show_ids(*tok, ids.value())
                    << "\n  HF : " << show_ids(*tok, o.ids[llama]);
    }
  }
  std::printf("%s: encoded %zu corpus lines in %.1f ms\n", llama ? "llama" : "qwen", hf.size(),
              seconds * 1e3);
#ifdef NDEBUG
  EXPECT_LT(seconds, 1.0);
#endif
  EXPECT_EQ(n_mismatch, 0);
}

void round_trip(bool llama) {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_tokenizer(llama));
  const std::vector<OracleLine>& hf = oracle();
  ASSERT_FALSE(hf.empty());
  for (const OracleLine& o : hf) {
    Result<std::vector<int32_t>> ids = tok->encode(o.text, false);
    ASSERT_TRUE(ids.ok());
    // Qwen normalises to NFC (outside added tokens, which are NFC already);
    // the expectation comes from Python's unicodedata.
    EXPECT_EQ(tok->decode(ids.value()), llama ? o.text : o.nfc)
        << "corpus line " << o.line << " " << json(o.text).dump();
  }
}

void check_icu_nfc_matches_python() {
  const std::vector<OracleLine>& hf = oracle();
  ASSERT_FALSE(hf.empty());
  int n_changed = 0;
  for (const OracleLine& o : hf) {
    EXPECT_EQ(detail::nfc(o.text), o.nfc) << "corpus line " << o.line;
    n_changed += o.nfc != o.text;
  }
  EXPECT_GE(n_changed, 15) << "the corpus should exercise NFC";
}

// One test: ctest runs every test in its own process, and the oracle (which
// recovers the Qwen merges and loads two large vocabularies) and the
// tokenizers are built per process.
TEST(TokenizerCorpus, MatchesHfTokenizers) {
  {
    SCOPED_TRACE("corpus.txt parses the same in C++ and Python");
    check_corpus_matches_the_script();
  }
  if (oracle().empty()) return;
  {
    SCOPED_TRACE("Qwen ids equal HF tokenizers' ids");
    compare_with_hf(false);
  }
  {
    SCOPED_TRACE("Llama ids equal HF tokenizers' ids");
    compare_with_hf(true);
  }
  {
    SCOPED_TRACE("Qwen decode(encode(x)) == NFC(x)");
    round_trip(false);
  }
  {
    SCOPED_TRACE("Llama decode(encode(x)) == x");
    round_trip(true);
  }
  {
    SCOPED_TRACE("ICU NFC equals Python's unicodedata NFC");
    check_icu_nfc_matches_python();
  }
}

}  // namespace
}  // namespace r1
