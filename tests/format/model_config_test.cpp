// config.json / generation_config.json parsing on the real distill configs
// (values from ../shared/reference/model-facts.md §1, §2.5) and on every error.
#include "format/model_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "format_test_util.h"

namespace r1 {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// DeepSeek-R1-Distill-Qwen-1.5B config.json.
constexpr const char* kQwen15B = R"({
  "_name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 1536,
  "initializer_range": 0.02,
  "intermediate_size": 8960,
  "max_position_embeddings": 131072,
  "max_window_layers": 21,
  "model_type": "qwen2",
  "num_attention_heads": 12,
  "num_hidden_layers": 28,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 10000,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.44.0",
  "use_cache": true,
  "use_mrope": false,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// DeepSeek-R1-Distill-Llama-8B config.json.
constexpr const char* kLlama8B = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// DeepSeek-R1-Distill-Qwen-32B config.json (the fields that matter here).
constexpr const char* kQwen32B = R"({
  "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151643,
  "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 27648,
  "max_position_embeddings": 131072, "max_window_layers": 64, "model_type": "qwen2",
  "num_attention_heads": 40, "num_hidden_layers": 64, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": 131072,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_sliding_window": false,
  "vocab_size": 152064
})";

// kQwen15B (or `base`) with `patch` merged in (RFC 7386: a null value deletes a key).
std::string patched(const json& patch, const char* base = kQwen15B) {
  json j = json::parse(base);
  j.merge_patch(patch);
  return j.dump();
}

void expect_error(const std::string& text, StatusCode code, const std::string& phrase) {
  auto r = parse_model_config(text);
  ASSERT_FALSE(r.ok()) << "expected: " << phrase;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr(phrase));
}

int64_t total_params(const ModelConfig& c) {
  int64_t n = 0;
  for (const ExpectedTensor& t : expected_tensors(c)) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

TEST(ModelConfigTest, ParsesQwen15B) {
  auto r = parse_model_config(kQwen15B);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ModelConfig& c = *r;
  EXPECT_EQ(c.arch, Arch::kQwen2);
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(c.hidden_size, 1536);
  EXPECT_EQ(c.intermediate_size, 8960);
  EXPECT_EQ(c.n_layers, 28);
  EXPECT_EQ(c.n_heads, 12);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  ASSERT_TRUE(c.bos_token_id.has_value());
  EXPECT_EQ(*c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151643});
}

TEST(ModelConfigTest, ParsesLlama8BWithLlama3RopeScaling) {
  auto r = parse_model_config(kLlama8B);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ModelConfig& c = *r;
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.n_layers, 32);
  EXPECT_EQ(c.n_heads, 32);
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(*c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{128001});
}

TEST(ModelConfigTest, ParameterCountsMatchThePublishedTotals) {
  // model-facts §1.3: computed from the shapes, equal to HF's published counts.
  EXPECT_EQ(total_params(*parse_model_config(kQwen15B)), 1'777'088'000);
  EXPECT_EQ(total_params(*parse_model_config(kLlama8B)), 8'030'261'248);
  EXPECT_EQ(total_params(*parse_model_config(kQwen32B)), 32'763'876'352);
}

TEST(ModelConfigTest, ExpectedTensorsForQwen15B) {
  auto tensors = expected_tensors(*parse_model_config(kQwen15B));
  ASSERT_EQ(tensors.size(), 28u * 12 + 3);
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(tensors.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(tensors.front().shape, (Shape{151936, 1536}));
  const std::vector<std::pair<std::string, Shape>> layer0 = {
      {"model.layers.0.input_layernorm.weight", {1536}},
      {"model.layers.0.self_attn.q_proj.weight", {1536, 1536}},
      {"model.layers.0.self_attn.q_proj.bias", {1536}},
      {"model.layers.0.self_attn.k_proj.weight", {256, 1536}},
      {"model.layers.0.self_attn.k_proj.bias", {256}},
      {"model.layers.0.self_attn.v_proj.weight", {256, 1536}},
      {"model.layers.0.self_attn.v_proj.bias", {256}},
      {"model.layers.0.self_attn.o_proj.weight", {1536, 1536}},
      {"model.layers.0.post_attention_layernorm.weight", {1536}},
      {"model.layers.0.mlp.gate_proj.weight", {8960, 1536}},
      {"model.layers.0.mlp.up_proj.weight", {8960, 1536}},
      {"model.layers.0.mlp.down_proj.weight", {1536, 8960}},
  };
  for (size_t i = 0; i < layer0.size(); ++i) {
    EXPECT_EQ(tensors[1 + i].name, layer0[i].first);
    EXPECT_EQ(tensors[1 + i].shape, layer0[i].second) << layer0[i].first;
  }
  EXPECT_EQ(tensors[tensors.size() - 3].name, "model.layers.27.mlp.down_proj.weight");
  EXPECT_EQ(tensors[tensors.size() - 2].name, "model.norm.weight");
  EXPECT_EQ(tensors.back().name, "lm_head.weight");
  EXPECT_EQ(tensors.back().shape, (Shape{151936, 1536}));
}

TEST(ModelConfigTest, ExpectedTensorsForLlamaHaveNoBiases) {
  auto tensors = expected_tensors(*parse_model_config(kLlama8B));
  EXPECT_EQ(tensors.size(), 32u * 9 + 3);
  for (const auto& t : tensors) EXPECT_EQ(t.name.find(".bias"), std::string::npos) << t.name;
  EXPECT_EQ(tensors[2].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(tensors[3].name, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(tensors[3].shape, (std::vector<int64_t>{1024, 4096}));
}

// HF's Llama with attention_bias also biases o_proj, which r1serve does not
// implement: refused rather than computed wrongly.
TEST(ModelConfigTest, LlamaAttentionBiasIsUnimplemented) {
  auto c = parse_model_config(patched({{"attention_bias", true}}, kLlama8B));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("attention_bias"), std::string::npos);
}

TEST(ModelConfigTest, OddHeadDimIsRejected) {
  auto c = parse_model_config(patched({{"head_dim", 127}}, kLlama8B));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("head_dim 127 is odd"), std::string::npos)
      << c.status().message();
}

TEST(ModelConfigTest, QwenAlwaysHasAttentionBias) {
  auto c = parse_model_config(patched({{"attention_bias", false}}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->attention_bias);
}

TEST(ModelConfigTest, TiedEmbeddingsDropLmHead) {
  auto c = parse_model_config(patched({{"tie_word_embeddings", true}}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tie_word_embeddings);
  auto tensors = expected_tensors(*c);
  EXPECT_EQ(tensors.size(), 28u * 12 + 2);
  EXPECT_EQ(tensors.back().name, "model.norm.weight");
}

TEST(ModelConfigTest, DefaultsForOptionalKeys) {
  auto c = parse_model_config(patched({{"num_key_value_heads", nullptr},
                                       {"tie_word_embeddings", nullptr},
                                       {"torch_dtype", nullptr},
                                       {"bos_token_id", nullptr},
                                       {"eos_token_id", nullptr},
                                       {"rope_scaling", nullptr}}));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->n_kv_heads, 12);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kNone);
}

TEST(ModelConfigTest, ExplicitHeadDim) {
  auto c = parse_model_config(patched({{"head_dim", 64}}));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->head_dim, 64);
  auto tensors = expected_tensors(*c);
  EXPECT_EQ(tensors[2].shape, (std::vector<int64_t>{12 * 64, 1536}));
  EXPECT_EQ(tensors[8].name, "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(tensors[8].shape, (std::vector<int64_t>{1536, 12 * 64}));
  // With head_dim given, hidden_size need not divide by the head count.
  EXPECT_TRUE(parse_model_config(patched({{"head_dim", 100}, {"hidden_size", 1000}})).ok());
}

TEST(ModelConfigTest, EosListAndTorchDtype) {
  auto c = parse_model_config(
      patched({{"eos_token_id", {128001, 128008, 128009}}, {"torch_dtype", "float16"}}, kLlama8B));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c->torch_dtype, DType::kF16);
  auto d = parse_model_config(patched({{"torch_dtype", nullptr}, {"dtype", "float32"}}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->torch_dtype, DType::kF32);
}

TEST(ModelConfigTest, LegacyRopeScalingTypeKey) {
  json scaling = json::parse(kLlama8B)["rope_scaling"];
  scaling.erase("rope_type");
  scaling["type"] = "llama3";
  json j = json::parse(kLlama8B);
  j["rope_scaling"] = scaling;
  auto c = parse_model_config(j.dump());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLlama3);
}

TEST(ModelConfigTest, ModelTypeFallback) {
  auto q = parse_model_config(patched({{"architectures", nullptr}}));
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->arch, Arch::kQwen2);
  EXPECT_EQ(q->architecture, "Qwen2ForCausalLM");
  auto l = parse_model_config(patched({{"architectures", nullptr}}, kLlama8B));
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->arch, Arch::kLlama);
  EXPECT_EQ(l->architecture, "LlamaForCausalLM");
}

TEST(ModelConfigTest, UnknownArchitecture) {
  expect_error(patched({{"architectures", {"MistralForCausalLM"}}}), StatusCode::kUnimplemented,
               "unknown architecture 'MistralForCausalLM' (supported: Qwen2ForCausalLM, "
               "LlamaForCausalLM)");
}

TEST(ModelConfigTest, UnknownModelType) {
  expect_error(patched({{"architectures", nullptr}, {"model_type", "gemma"}}),
               StatusCode::kUnimplemented, "unknown model_type 'gemma' (supported: qwen2, llama)");
}

TEST(ModelConfigTest, NoArchitectureAtAll) {
  expect_error(patched({{"architectures", nullptr}, {"model_type", nullptr}}),
               StatusCode::kInvalidArgument, "neither \"architectures\" nor \"model_type\"");
  expect_error(patched({{"architectures", json::array()}}), StatusCode::kInvalidArgument,
               "\"architectures\" must be a non-empty list of names");
}

TEST(ModelConfigTest, MissingRequiredKey) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "vocab_size"}) {
    expect_error(patched({{key, nullptr}}), StatusCode::kInvalidArgument,
                 std::string("config.json: \"") + key + "\" is missing");
  }
}

TEST(ModelConfigTest, SizesMustBePositiveIntegers) {
  expect_error(patched({{"hidden_size", 0}}), StatusCode::kInvalidArgument,
               "\"hidden_size\" must be positive, got 0");
  expect_error(patched({{"num_hidden_layers", -2}}), StatusCode::kInvalidArgument,
               "\"num_hidden_layers\" must be positive, got -2");
  expect_error(patched({{"num_key_value_heads", 0}}), StatusCode::kInvalidArgument,
               "\"num_key_value_heads\" must be positive");
  expect_error(patched({{"vocab_size", 151936.5}}), StatusCode::kInvalidArgument,
               "\"vocab_size\" must be an integer, got 151936.5");
  expect_error(patched({{"intermediate_size", "8960"}}), StatusCode::kInvalidArgument,
               "\"intermediate_size\" must be an integer");
  expect_error(patched({{"head_dim", 0}}), StatusCode::kInvalidArgument,
               "\"head_dim\" must be positive");
  expect_error(patched({{"rms_norm_eps", -1e-6}}), StatusCode::kInvalidArgument,
               "\"rms_norm_eps\" must be positive");
  expect_error(patched({{"rope_theta", "big"}}), StatusCode::kInvalidArgument,
               "\"rope_theta\" must be a number");
}

TEST(ModelConfigTest, SizesOverTheLimits) {
  expect_error(patched({{"num_hidden_layers", 100000}}), StatusCode::kOutOfRange,
               "\"num_hidden_layers\" 100000 is over the limit of 4096");
  expect_error(patched({{"hidden_size", int64_t{1} << 40}, {"head_dim", 128}}),
               StatusCode::kOutOfRange, "\"hidden_size\" 1099511627776 is over the limit");
  expect_error(patched({{"vocab_size", int64_t{1} << 25}}), StatusCode::kOutOfRange,
               "\"vocab_size\" 33554432 is over the limit of 16777216");
  expect_error(patched({{"head_dim", int64_t{1} << 21}}), StatusCode::kOutOfRange,
               "\"head_dim\" 2097152 is over the limit");
  expect_error(patched({{"max_position_embeddings", int64_t{1} << 31}}), StatusCode::kOutOfRange,
               "\"max_position_embeddings\" 2147483648 is over the limit");
}

TEST(ModelConfigTest, HeadsNotAMultipleOfKvHeads) {
  expect_error(patched({{"num_key_value_heads", 5}}), StatusCode::kInvalidArgument,
               "\"num_attention_heads\" 12 is not a multiple of \"num_key_value_heads\" 5");
}

TEST(ModelConfigTest, HiddenNotAMultipleOfHeads) {
  expect_error(patched({{"hidden_size", 1537}}), StatusCode::kInvalidArgument,
               "\"hidden_size\" 1537 is not a multiple of \"num_attention_heads\" 12");
}

TEST(ModelConfigTest, UnsupportedRopeScalingType) {
  expect_error(patched({{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}),
               StatusCode::kUnimplemented,
               "rope_scaling type 'yarn' is not supported (supported: llama3)");
  expect_error(patched({{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}}),
               StatusCode::kUnimplemented, "rope_scaling type 'linear' is not supported");
}

TEST(ModelConfigTest, MalformedRopeScaling) {
  expect_error(patched({{"rope_scaling", "llama3"}}), StatusCode::kInvalidArgument,
               "\"rope_scaling\" must be null or an object");
  expect_error(patched({{"rope_scaling", {{"factor", 8.0}}}}), StatusCode::kInvalidArgument,
               "rope_scaling: \"rope_type\" is missing");
  expect_error(patched({{"rope_scaling", {{"factor", nullptr}}}}, kLlama8B),
               StatusCode::kInvalidArgument, "rope_scaling: \"factor\" is missing");
  expect_error(
      patched({{"rope_scaling", {{"original_max_position_embeddings", nullptr}}}}, kLlama8B),
      StatusCode::kInvalidArgument, "\"original_max_position_embeddings\" is missing");
  expect_error(patched({{"rope_scaling", {{"low_freq_factor", 4.0}}}}, kLlama8B),
               StatusCode::kInvalidArgument, "must be greater than low_freq_factor");
  expect_error(patched({{"rope_scaling", {{"factor", -8.0}}}}, kLlama8B),
               StatusCode::kInvalidArgument, "\"factor\" must be positive");
}

TEST(ModelConfigTest, UnsupportedFeatures) {
  expect_error(patched({{"hidden_act", "gelu"}}), StatusCode::kUnimplemented,
               "hidden_act 'gelu' is not supported");
  expect_error(patched({{"use_sliding_window", true}}), StatusCode::kUnimplemented,
               "use_sliding_window true is not supported");
  expect_error(patched({{"mlp_bias", true}}, kLlama8B), StatusCode::kUnimplemented,
               "mlp_bias true is not supported");
  expect_error(patched({{"torch_dtype", "float64"}}), StatusCode::kUnimplemented,
               "torch_dtype 'float64' is not supported");
}

TEST(ModelConfigTest, BadTokenIds) {
  expect_error(patched({{"eos_token_id", "151643"}}), StatusCode::kInvalidArgument,
               "\"eos_token_id\" must be an integer or a list of integers");
  expect_error(patched({{"eos_token_id", {1, 2.5}}}), StatusCode::kInvalidArgument,
               "\"eos_token_id\" must be an integer or a list of integers");
  expect_error(patched({{"eos_token_id", -1}}), StatusCode::kInvalidArgument,
               "negative token id -1");
  expect_error(patched({{"bos_token_id", true}}), StatusCode::kInvalidArgument,
               "\"bos_token_id\" must be an integer");
  expect_error(patched({{"tie_word_embeddings", 1}}), StatusCode::kInvalidArgument,
               "\"tie_word_embeddings\" must be true or false");
}

TEST(ModelConfigTest, NotJsonOrNotAnObject) {
  expect_error("{\"hidden_size\": ", StatusCode::kInvalidArgument, "config.json: not valid JSON");
  expect_error("[]", StatusCode::kInvalidArgument, "config.json: is a JSON array, not an object");
  expect_error(R"({"hidden_size": 1, "hidden_size": 2})", StatusCode::kInvalidArgument,
               "key \"hidden_size\" appears twice");
}

TEST(ModelConfigTest, LoadsFromAFolder) {
  test::TempDir dir;
  test::write_file(dir.file("config.json"), kLlama8B);
  auto c = load_model_config(dir.path());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->arch, Arch::kLlama);

  test::write_file(dir.file("config.json"), patched({{"hidden_size", nullptr}}));
  auto bad = load_model_config(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr(dir.path() + ": config.json: \"hidden_size\" is missing"));
}

TEST(ModelConfigTest, LoadFromFolderWithoutConfig) {
  test::TempDir dir;
  auto c = load_model_config(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr(dir.file("config.json")));
}

// --- generation_config.json ---

constexpr const char* kQwenGeneration = R"({
  "_from_model_config": true,
  "bos_token_id": 151646,
  "eos_token_id": 151643,
  "do_sample": true,
  "temperature": 0.6,
  "top_p": 0.95,
  "transformers_version": "4.39.3"
})";

TEST(GenerationConfigTest, ParsesQwenDistill) {
  auto g = parse_generation_config(kQwenGeneration);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(*g->bos_token_id, 151646);
  EXPECT_EQ(g->eos_token_ids, std::vector<int64_t>{151643});
  EXPECT_TRUE(g->do_sample);
  EXPECT_DOUBLE_EQ(*g->temperature, 0.6);
  EXPECT_DOUBLE_EQ(*g->top_p, 0.95);
  EXPECT_FALSE(g->top_k.has_value());
  EXPECT_FALSE(g->repetition_penalty.has_value());
}

TEST(GenerationConfigTest, ListOfEosAndOtherKeys) {
  auto g = parse_generation_config(
      R"({"eos_token_id": [128001, 128008, 128009], "top_k": 40, "repetition_penalty": 1.1})");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(*g->top_k, 40);
  EXPECT_DOUBLE_EQ(*g->repetition_penalty, 1.1);
  EXPECT_FALSE(g->do_sample);
  EXPECT_FALSE(g->bos_token_id.has_value());
}

TEST(GenerationConfigTest, Errors) {
  struct Case {
    const char* text;
    const char* phrase;
  } cases[] = {
      {"{", "generation_config.json: not valid JSON"},
      {"3", "generation_config.json: is a JSON number, not an object"},
      {R"({"eos_token_id": "x"})", "\"eos_token_id\" must be an integer or a list of integers"},
      {R"({"temperature": "hot"})", "\"temperature\" must be a number"},
      {R"({"temperature": -0.5})", "\"temperature\" must not be negative"},
      {R"({"top_p": 1.5})", "\"top_p\" must be in (0, 1]"},
      {R"({"top_k": 2.5})", "\"top_k\" must be an integer"},
      {R"({"top_k": -1})", "\"top_k\" must not be negative"},
      {R"({"do_sample": "yes"})", "\"do_sample\" must be true or false"},
      {R"({"repetition_penalty": 0})", "\"repetition_penalty\" must be positive"},
      {R"({"bos_token_id": 1.5})", "\"bos_token_id\" must be an integer"},
  };
  for (const Case& c : cases) {
    auto g = parse_generation_config(c.text);
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(g.status().message(), HasSubstr(c.phrase)) << c.text;
  }
}

TEST(GenerationConfigTest, MissingFileGivesDefaults) {
  test::TempDir dir;
  auto g = load_generation_config(dir.path());
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_TRUE(g->eos_token_ids.empty());
  EXPECT_FALSE(g->temperature.has_value());
  EXPECT_FALSE(g->do_sample);
}

TEST(GenerationConfigTest, LoadsAndReportsErrorsWithTheFolder) {
  test::TempDir dir;
  test::write_file(dir.file("generation_config.json"), kQwenGeneration);
  auto g = load_generation_config(dir.path());
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(*g->bos_token_id, 151646);
  test::write_file(dir.file("generation_config.json"), "{\"top_p\": 2}");
  auto bad = load_generation_config(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr(dir.path() + ": generation_config.json: \"top_p\" must be in (0, 1]"));
}

}  // namespace
}  // namespace r1
