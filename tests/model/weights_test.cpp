// bind_weights over a GGUF file whose matrices are Q8_0 blocks, so every
// matrix is converted at bind: with a layer sink (as the CUDA backend
// uploads), each layer reaches the sink with the same values a plain bind
// gives, its host copies are freed as the sink returns, and a sink error
// stops the bind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/weights.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

struct RawTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the row length
  GgmlType type;
  std::vector<uint8_t> bytes;
};

// Random Q8_0 blocks (f16 scale in [0.01, 0.05), int8 values) for a
// [rows, cols] matrix, or random f32 values for a vector.
RawTensor q8_0_matrix(std::string name, uint64_t rows, uint64_t cols, std::mt19937& rng) {
  RawTensor t{std::move(name), {cols, rows}, GgmlType::kQ8_0, {}};
  std::uniform_real_distribution<float> scale(0.01f, 0.05f);
  std::uniform_int_distribution<int> q(-127, 127);
  for (uint64_t b = 0; b < rows * cols / 32; ++b) {
    const uint16_t d = f32_to_f16(scale(rng));
    t.bytes.push_back(static_cast<uint8_t>(d & 0xFF));
    t.bytes.push_back(static_cast<uint8_t>(d >> 8));
    for (int j = 0; j < 32; ++j) t.bytes.push_back(static_cast<uint8_t>(q(rng)));
  }
  return t;
}

RawTensor f32_vector(std::string name, uint64_t n, std::mt19937& rng) {
  RawTensor t{std::move(name), {n}, GgmlType::kF32, std::vector<uint8_t>(n * 4)};
  std::uniform_real_distribution<float> v(0.5f, 1.5f);
  for (uint64_t i = 0; i < n; ++i) {
    const float x = v(rng);
    std::memcpy(t.bytes.data() + i * 4, &x, 4);
  }
  return t;
}

// A GGUF v3 file with no metadata and these tensors, 32-byte aligned.
void write_gguf(const std::string& path, const std::vector<RawTensor>& tensors) {
  std::vector<uint8_t> out;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  auto u32 = [&](uint32_t v) { put(&v, 4); };
  auto u64 = [&](uint64_t v) { put(&v, 8); };
  put("GGUF", 4);
  u32(3);
  u64(tensors.size());
  u64(0);
  uint64_t offset = 0;
  for (const RawTensor& t : tensors) {
    u64(t.name.size());
    put(t.name.data(), t.name.size());
    u32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) u64(d);
    u32(static_cast<uint32_t>(t.type));
    u64(offset);
    offset += (t.bytes.size() + 31) / 32 * 32;
  }
  out.resize((out.size() + 31) / 32 * 32);
  for (const RawTensor& t : tensors) {
    put(t.bytes.data(), t.bytes.size());
    out.resize((out.size() + 31) / 32 * 32);
  }
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
}

class LayerSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    c_.arch = Arch::kLlama;
    c_.architecture = "LlamaForCausalLM";
    c_.hidden_size = 64;
    c_.intermediate_size = 96;
    c_.n_layers = 3;
    c_.n_heads = 2;
    c_.n_kv_heads = 1;
    c_.head_dim = 32;
    c_.vocab_size = 40;
    c_.max_position_embeddings = 128;
    std::mt19937 rng(7);
    std::vector<RawTensor> t;
    t.push_back(q8_0_matrix("token_embd.weight", 40, 64, rng));
    t.push_back(q8_0_matrix("output.weight", 40, 64, rng));
    t.push_back(f32_vector("output_norm.weight", 64, rng));
    for (int l = 0; l < 3; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      t.push_back(f32_vector(p + "attn_norm.weight", 64, rng));
      t.push_back(q8_0_matrix(p + "attn_q.weight", 64, 64, rng));
      t.push_back(q8_0_matrix(p + "attn_k.weight", 32, 64, rng));
      t.push_back(q8_0_matrix(p + "attn_v.weight", 32, 64, rng));
      t.push_back(q8_0_matrix(p + "attn_output.weight", 64, 64, rng));
      t.push_back(f32_vector(p + "ffn_norm.weight", 64, rng));
      t.push_back(q8_0_matrix(p + "ffn_gate.weight", 96, 64, rng));
      t.push_back(q8_0_matrix(p + "ffn_up.weight", 96, 64, rng));
      t.push_back(q8_0_matrix(p + "ffn_down.weight", 64, 96, rng));
    }
    path_ =
        (fs::temp_directory_path() / ("r1-sink-" + std::to_string(getpid()) + ".gguf")).string();
    write_gguf(path_, t);
    auto model = GgufModel::open(path_);
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto files = WeightFiles::from_gguf(*model, false, c_.head_dim);
    ASSERT_TRUE(files.ok()) << files.status().message();
    files_ = std::make_unique<WeightFiles>(std::move(*files));
    precision_.layers = DType::kBF16;  // what the CUDA backend asks for
    precision_.embed = DType::kBF16;
  }
  void TearDown() override { fs::remove(path_); }

  ModelConfig c_;
  std::string path_;
  std::unique_ptr<WeightFiles> files_;
  WeightPrecision precision_;
};

std::vector<uint16_t> values(const kernels::MatrixView& m) {
  EXPECT_EQ(m.dtype, DType::kBF16);
  const auto* p = static_cast<const uint16_t*>(m.data);
  return std::vector<uint16_t>(p, p + m.rows * m.cols);
}

TEST_F(LayerSinkTest, EachLayerReachesTheSinkOnceInOrderThenItsCopiesAreFreed) {
  auto whole = bind_weights(c_, false, *files_, precision_, 1);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  // Every matrix is a Q8_0 block matrix, so every one was converted.
  EXPECT_EQ(whole->owned.size(), 2u + 7u * 3u);

  std::vector<int64_t> seen;
  auto streamed = bind_weights(c_, false, *files_, precision_, 1,
                               [&](int64_t l, const LayerWeights& lw) -> Status {
                                 seen.push_back(l);
                                 const LayerWeights& want = whole->layers[static_cast<size_t>(l)];
                                 for (auto [got, exp] : {std::pair{&lw.q, &want.q},
                                                         {&lw.k, &want.k},
                                                         {&lw.v, &want.v},
                                                         {&lw.o, &want.o},
                                                         {&lw.gate, &want.gate},
                                                         {&lw.up, &want.up},
                                                         {&lw.down, &want.down}}) {
                                   EXPECT_EQ(got->rows, exp->rows);
                                   EXPECT_EQ(got->cols, exp->cols);
                                   EXPECT_EQ(values(*got), values(*exp)) << "layer " << l;
                                 }
                                 EXPECT_EQ(lw.attn_norm, want.attn_norm);
                                 EXPECT_EQ(lw.mlp_norm, want.mlp_norm);
                                 return ok_status();
                               });
  ASSERT_TRUE(streamed.ok()) << streamed.status().message();
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2}));
  // Only the embedding's and lm_head's copies remain; the layers are empty.
  EXPECT_EQ(streamed->owned.size(), 2u);
  for (const LayerWeights& lw : streamed->layers) {
    EXPECT_EQ(lw.q.data, nullptr);
    EXPECT_EQ(lw.down.data, nullptr);
  }
  EXPECT_EQ(values(streamed->embed), values(whole->embed));
  EXPECT_EQ(values(streamed->lm_head), values(whole->lm_head));
}

TEST_F(LayerSinkTest, AnErrorFromTheSinkStopsTheBindAndIsReturned) {
  std::vector<int64_t> seen;
  auto r = bind_weights(c_, false, *files_, precision_, 1,
                        [&](int64_t l, const LayerWeights&) -> Status {
                          seen.push_back(l);
                          if (l == 1) return resource_exhausted("device full at layer 1");
                          return ok_status();
                        });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("device full at layer 1"), std::string::npos);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1}));
}

}  // namespace
}  // namespace r1
