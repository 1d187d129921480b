// validate_weights on tiny folders whose tensors follow a small Qwen2 / Llama
// config, with one thing wrong at a time.
#include "format/weight_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "format_test_util.h"

namespace r1 {
namespace {

using test::RawTensor;
using ::testing::HasSubstr;

// hidden 8, intermediate 12, 2 layers, 2 heads of 4, 1 kv head, vocab 16.
ModelConfig tiny_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.architecture = arch == Arch::kQwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.vocab_size = 16;
  c.attention_bias = arch == Arch::kQwen2;
  return c;
}

// Every expected tensor as BF16 with its expected shape.
std::vector<RawTensor> expected_raw(const ModelConfig& c) {
  std::vector<RawTensor> out;
  for (const ExpectedTensor& e : expected_tensors(c)) out.push_back({e.name, "BF16", e.shape});
  return out;
}

RawTensor* find_raw(std::vector<RawTensor>& tensors, const std::string& name) {
  for (RawTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

// Writes `tensors` as <dir>/model.safetensors and validates them against `c`.
Status validate(const test::TempDir& dir, const ModelConfig& c,
                const std::vector<RawTensor>& tensors,
                std::vector<std::string>* unexpected = nullptr) {
  test::write_file(dir.file("model.safetensors"), test::raw_file(tensors));
  auto files = WeightFiles::open_folder(dir.path());
  if (!files.ok()) return files.status().with_context("test setup");
  return validate_weights(c, *files, unexpected);
}

TEST(WeightValidationTest, CompleteQwenFolderPasses) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  std::vector<std::string> unexpected = {"stale"};
  Status st = validate(dir, c, expected_raw(c), &unexpected);
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(unexpected.empty());
}

TEST(WeightValidationTest, CompleteLlamaFolderPasses) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kLlama);
  Status st = validate(dir, c, expected_raw(c));
  EXPECT_TRUE(st.ok()) << st.to_string();
}

TEST(WeightValidationTest, F32AndF16AreAccepted) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  auto tensors = expected_raw(c);
  tensors[0].dtype = "F32";
  tensors[1].dtype = "F16";
  Status st = validate(dir, c, tensors);
  EXPECT_TRUE(st.ok()) << st.to_string();
}

TEST(WeightValidationTest, MissingTensor) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  auto tensors = expected_raw(c);
  std::erase_if(tensors,
                [](const RawTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  Status st = validate(dir, c, tensors);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "tensor model.layers.1.mlp.up_proj.weight: missing from " +
                              dir.file("model.safetensors"));
}

TEST(WeightValidationTest, MissingBiasForQwen) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  auto tensors = expected_raw(c);
  std::erase_if(
      tensors, [](const RawTensor& t) { return t.name == "model.layers.0.self_attn.k_proj.bias"; });
  Status st = validate(dir, c, tensors);
  EXPECT_THAT(st.message(), HasSubstr("tensor model.layers.0.self_attn.k_proj.bias: missing"));
}

TEST(WeightValidationTest, MissingLmHeadUnlessTied) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kLlama);
  auto tensors = expected_raw(c);
  std::erase_if(tensors, [](const RawTensor& t) { return t.name == "lm_head.weight"; });
  Status st = validate(dir, c, tensors);
  EXPECT_THAT(st.message(), HasSubstr("tensor lm_head.weight: missing from"));
  c.tie_word_embeddings = true;
  st = validate(dir, c, tensors);
  EXPECT_TRUE(st.ok()) << st.to_string();
}

TEST(WeightValidationTest, WrongShape) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  auto tensors = expected_raw(c);
  find_raw(tensors, "model.layers.1.mlp.up_proj.weight")->shape = {12, 7};
  Status st = validate(dir, c, tensors);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tensor model.layers.1.mlp.up_proj.weight: shape [12, 8] "
                                      "expected, file has [12, 7]"));
}

TEST(WeightValidationTest, TransposedMatrixIsAWrongShape) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kLlama);
  auto tensors = expected_raw(c);
  find_raw(tensors, "model.layers.0.mlp.down_proj.weight")->shape = {12, 8};
  Status st = validate(dir, c, tensors);
  EXPECT_THAT(st.message(), HasSubstr("tensor model.layers.0.mlp.down_proj.weight: shape [8, 12] "
                                      "expected, file has [12, 8]"));
}

TEST(WeightValidationTest, NonFloatDtype) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  auto tensors = expected_raw(c);
  find_raw(tensors, "model.norm.weight")->dtype = "I8";
  Status st = validate(dir, c, tensors);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(),
              HasSubstr("tensor model.norm.weight: dtype I8 is not a float type (F32, F16, BF16)"));
}

TEST(WeightValidationTest, ExtraTensorsAreReportedNotRejected) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kLlama);
  auto tensors = expected_raw(c);
  tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {2}});
  tensors.push_back({"model.layers.0.self_attn.q_proj.bias", "BF16", {8}});
  std::vector<std::string> unexpected;
  Status st = validate(dir, c, tensors, &unexpected);
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(unexpected, (std::vector<std::string>{"model.layers.0.self_attn.q_proj.bias",
                                                  "model.layers.0.self_attn.rotary_emb.inv_freq"}));
}

TEST(WeightValidationTest, CountsFurtherProblems) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kQwen2);
  auto tensors = expected_raw(c);
  tensors.erase(tensors.begin());  // model.embed_tokens.weight
  find_raw(tensors, "model.norm.weight")->shape = {9};
  find_raw(tensors, "lm_head.weight")->dtype = "I32";
  Status st = validate(dir, c, tensors);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("tensor model.embed_tokens.weight: missing from"));
  EXPECT_THAT(st.message(), HasSubstr("(and 2 more problems)"));
}

TEST(WeightValidationTest, ShardedFolderNamesTheIndex) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Arch::kLlama);
  auto tensors = expected_raw(c);
  std::vector<RawTensor> first(tensors.begin(), tensors.begin() + 5);
  std::vector<RawTensor> second(tensors.begin() + 5, tensors.end() - 1);  // lm_head dropped
  const char* s1 = "model-00001-of-000002.safetensors";
  const char* s2 = "model-00002-of-000002.safetensors";
  test::write_file(dir.file(s1), test::raw_file(first));
  test::write_file(dir.file(s2), test::raw_file(second));
  std::string index = R"({"weight_map":{)";
  for (size_t i = 0; i + 1 < tensors.size(); ++i) {
    index += (i ? ",\"" : "\"") + tensors[i].name + "\":\"" + (i < 5 ? s1 : s2) + "\"";
  }
  index += "}}";
  test::write_file(dir.file("model.safetensors.index.json"), index);
  auto files = WeightFiles::open_folder(dir.path());
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  Status st = validate_weights(c, *files);
  EXPECT_EQ(st.message(),
            "tensor lm_head.weight: missing from " + dir.file("model.safetensors.index.json"));
}

}  // namespace
}  // namespace r1
