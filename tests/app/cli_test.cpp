// The r1serve binary end to end: make-test-model, generate, tokenize and score
// on generated tiny models, and a clear error with a non-zero exit status for
// bad input.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cpu_features.h"
#include "format/safetensors.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs r1serve with the given arguments (a shell fragment) and stdin text.
CliRun r1serve(const std::string& args, const std::string& stdin_text = "") {
  static int counter = 0;
  const fs::path base =
      fs::current_path() / ("cli-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::ofstream(base.string() + ".in") << stdin_text;
  const std::string cmd = std::string(R1SERVE_BINARY) + " " + args + " <" + base.string() +
                          ".in >" + base.string() + ".out 2>" + base.string() + ".err";
  CliRun r;
  int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(base.string() + ".out");
  r.err = read_file(base.string() + ".err");
  for (const char* ext : {".in", ".out", ".err"}) fs::remove(base.string() + ext);
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  // One tiny bf16 Qwen2 model per test process.
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::current_path() / ("cli-model-" + std::to_string(getpid())));
    CliRun r = r1serve("make-test-model --arch qwen2 --size tiny --dtype bf16 --seed 3 --out " +
                       dir_->string());
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static const fs::path& model() { return *dir_; }
  static fs::path* dir_;
};
fs::path* CliTest::dir_ = nullptr;

TEST_F(CliTest, MakeTestModelIsDeterministicAndNeverZero) {
  const fs::path again = fs::current_path() / ("cli-again-" + std::to_string(getpid()));
  const fs::path other = fs::current_path() / ("cli-other-" + std::to_string(getpid()));
  ASSERT_EQ(r1serve("make-test-model --arch qwen2 --size tiny --dtype bf16 --seed 3 --out " +
                    again.string())
                .status,
            0);
  ASSERT_EQ(r1serve("make-test-model --arch qwen2 --size tiny --dtype bf16 --seed 4 --out " +
                    other.string())
                .status,
            0);
  const std::string a = read_file(model() / "model.safetensors");
  EXPECT_EQ(a, read_file(again / "model.safetensors"));
  EXPECT_NE(a, read_file(other / "model.safetensors"));
  for (const char* f :
       {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_EQ(read_file(model() / f), read_file(other / f)) << f;
  }
  auto file = SafetensorsFile::open((model() / "model.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.status().message();
  for (const TensorInfo& t : (*file)->tensors()) {
    ASSERT_EQ(t.dtype, DType::kBF16) << t.name;
    const uint16_t* v = reinterpret_cast<const uint16_t*>(t.data);
    for (int64_t i = 0; i < t.n_elements(); ++i) {
      ASSERT_NE(v[i] & 0x7fff, 0) << t.name << " has a zero at " << i;
    }
  }
  fs::remove_all(again);
  fs::remove_all(other);
}

TEST_F(CliTest, ShardedFolderScoresExactlyLikeTheSingleFile) {
  const fs::path sharded = fs::current_path() / ("cli-sharded-" + std::to_string(getpid()));
  CliRun made = r1serve(
      "make-test-model --arch qwen2 --size tiny --dtype bf16 --seed 3 "
      "--shard-size 20000000 --out " +
      sharded.string());
  ASSERT_EQ(made.status, 0) << made.err;
  auto index = nlohmann::json::parse(read_file(sharded / "model.safetensors.index.json"));
  std::set<std::string> shards;
  for (auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  EXPECT_GT(shards.size(), 1u);
  for (const auto& s : shards) EXPECT_TRUE(fs::exists(sharded / s)) << s;
  EXPECT_FALSE(fs::exists(sharded / "model.safetensors"));
  const std::string ids = "151646,9707,1879,0,220,16,151644,13048,151645";
  CliRun single = r1serve("score --model " + model().string() + " --ids " + ids);
  CliRun multi = r1serve("score --model " + sharded.string() + " --ids " + ids);
  ASSERT_EQ(single.status, 0) << single.err;
  ASSERT_EQ(multi.status, 0) << multi.err;
  EXPECT_EQ(single.out, multi.out);
  fs::remove_all(sharded);
}

TEST_F(CliTest, TokenizeGivesTheReferenceIds) {
  // Fixed ids from model-facts.md §2.2.
  CliRun r = r1serve("tokenize --model " + model().string(),
                     "\"Hello world\"\n\"   leading spaces\"\n\"</think>\\n\\n\"\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "[9707,1879]\n[256,6388,12621]\n[151649,271]\n");
}

TEST_F(CliTest, ChatPromptHasOneBosAndEndsInsideThink) {
  CliRun r = r1serve("generate --model " + model().string() +
                     " --chat Hi --max-tokens 3 --temperature 0 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  // <｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n
  EXPECT_EQ(j["prompt_ids"], nlohmann::json({151646, 151644, 13048, 151645, 151648, 198}));
  EXPECT_EQ(j["ids"].size(), 3u);
}

// Greedy decoding through the KV cache must pick, at every step, the top-1
// token of a teacher-forced pass over the same sequence.
TEST_F(CliTest, GreedyDecodeAgreesWithTeacherForcedScore) {
  CliRun g = r1serve("generate --model " + model().string() +
                     " --ids 151646,9707,1879 --max-tokens 12 --temperature 0 --json");
  ASSERT_EQ(g.status, 0) << g.err;
  auto j = nlohmann::json::parse(g.out);
  std::vector<int> seq = {151646, 9707, 1879};
  for (auto& id : j["ids"]) seq.push_back(id.get<int>());
  std::string csv;
  for (size_t i = 0; i < seq.size(); ++i) csv += (i ? "," : "") + std::to_string(seq[i]);
  CliRun s = r1serve("score --model " + model().string() + " --top 1 --ids " + csv);
  ASSERT_EQ(s.status, 0) << s.err;
  auto top = nlohmann::json::parse(s.out)["top"];
  for (size_t p = 2; p + 1 < seq.size(); ++p) {
    EXPECT_EQ(top[p][0][0].get<int>(), seq[p + 1]) << "position " << p;
  }
}

// The offline benchmark's per-op profile: every op of the step appears once,
// the shares cover the step, and the bytes the products say they stream add
// up to the model's weight bytes per token (computed apart, from the weight
// table).
TEST_F(CliTest, OfflineBenchProfileCoversTheStepAndItsWeightBytes) {
  CliRun r = r1serve("bench --offline --model " + model().string() +
                     " --threads 2 --prompt-tokens 8 --gen-tokens 3 --profile --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& ops = j.at("decode_profile");
  std::set<std::string> names;
  double share = 0.0;
  int64_t product_bytes = 0;
  for (const auto& op : ops) {
    const std::string name = op.at("op");
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
    EXPECT_GE(op.at("ms_per_token").get<double>(), 0.0) << name;
    share += op.at("share").get<double>();
    if (name == "qkv" || name == "o_proj" || name == "gate_up_silu" || name == "down" ||
        name == "lm_head") {
      ASSERT_TRUE(op.contains("gbps")) << name;
      EXPECT_GT(op.at("gbps").get<double>(), 0.0) << name;
      product_bytes += op.at("bytes_per_token").get<int64_t>();
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"embedding", "rmsnorm", "qkv", "rope_kv_store",
                                          "attention", "o_proj", "residual", "gate_up_silu", "down",
                                          "lm_head", "sample"}));
  EXPECT_NEAR(share, 1.0, 1e-9);
  EXPECT_EQ(product_bytes, j.at("weight_bytes_per_token").get<int64_t>());
  // Attention reads K and V of every layer up to each decoded position:
  // positions 8, 9 and 10 of 3 steps, averaged per token.
  const auto cfg = nlohmann::json::parse(read_file(model() / "config.json"));
  const int64_t kv_row =
      2 * cfg.at("num_hidden_layers").get<int64_t>() *
      cfg.at("num_key_value_heads").get<int64_t>() *
      (cfg.at("hidden_size").get<int64_t>() / cfg.at("num_attention_heads").get<int64_t>()) *
      2;  // bf16 K and V: --kv-cache-dtype auto for a bf16 model
  for (const auto& op : ops) {
    if (op.at("op") == "attention") {
      EXPECT_EQ(op.at("bytes_per_token").get<int64_t>(), (9 + 10 + 11) * kv_row / 3);
    }
  }
}

TEST_F(CliTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  auto gen = [&](int seed) {
    CliRun r = r1serve("generate --model " + model().string() +
                       " --prompt 'Once upon a time' --max-tokens 16 --temperature 1.0 --top-p 1 "
                       "--seed " +
                       std::to_string(seed) + " --json");
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out)["ids"];
  };
  EXPECT_EQ(gen(1), gen(1));
  EXPECT_NE(gen(1), gen(2));
}

TEST_F(CliTest, BadInputIsAClearErrorWithNonZeroStatus) {
  struct Case {
    std::string args, stdin_text, phrase;
  };
  const std::string m = model().string();
  for (const Case& c : std::vector<Case>{
           {"generate --model /nonexistent/model --prompt hi", "", "/nonexistent/model"},
           {"generate --model " + m + " --prompt hi --chat hi", "", "exactly one of"},
           {"generate --model " + m + " --ids 1,x,3", "", "'x' is not a token id"},
           {"generate --model " + m + " --ids 151700", "", "not in the vocabulary"},
           {"generate --model " + m + " --prompt hi --temperature -1", "", "temperature"},
           {"score --model " + m + " --ids 1,2,999999", "", "not in the vocabulary"},
           {"score --model " + m + " --ids 1,2 --top 2147483647", "", "top must be between"},
           {"score --model " + m + " --ids 1,2 --threads 100000", "", "--threads"},
           {"generate --model " + m + " --prompt hi --max-tokens 1000000000", "", "context"},
           {"tokenize --model " + m, "\"ok\"\nnot json\n", "line 2"},
           {"tokenize --model " + m, "42\n", "expected a JSON string"},
           {"make-test-model --arch qwen2 --size 70b --out /tmp/x-never", "", "70b"},
           {"generate --model " + m + " --ids 1,2 --device tpu", "",
            "expected cpu, cuda or cuda:N"},
           {"generate --model " + m + " --ids 1,2 --dtype fp8", "", "fp8 needs --device cuda"},
           {"score --model " + m + " --ids 1,2 --device cuda:x", "", "--device cuda:x"},
           {"generate --model " + m + " --ids 1,2 --dtype int8 --int8-prefill int8-gemm", "",
            "needs --device cuda and --dtype int8"},
           {"generate --model " + m + " --ids 1,2 --device cuda --int8-prefill int8-gemm", "",
            "needs --device cuda and --dtype int8"},
           {"generate --model " + m + " --ids 1,2 --int8-prefill tiles", "", "--int8-prefill"},
       }) {
    CliRun r = r1serve(c.args, c.stdin_text);
    EXPECT_NE(r.status, 0) << c.args;
    EXPECT_NE(r.err.find(c.phrase), std::string::npos) << c.args << "\nstderr: " << r.err;
  }
}

// Asking for a GPU where there is none (or in a build without CUDA) is one
// line on stderr and exit status 1, never a crash; every command takes
// --device.
TEST_F(CliTest, DeviceCudaWithoutAGpuIsAOneLineError) {
  const std::string m = model().string();
  for (const std::string& args :
       {"serve --model " + m + " --port 0 --device cuda",
        "generate --model " + m + " --ids 1,2 --device cuda",
        "score --model " + m + " --ids 1,2 --device cuda:1",
        "bench --offline --model " + m + " --device cuda",
        "perplexity --model " + m + " --file /etc/hostname --device cuda",
        // --int8-prefill passes its checks, for the KL base (bf16 here) too.
        "perplexity --model " + m + " --file /etc/hostname --device cuda --dtype int8 " +
            "--int8-prefill int8-gemm --kl-base " + m,
        "generate --model " + m + " --ids 1,2 --device cuda --dtype int8 --int8-prefill " +
            "int8-gemm"}) {
    CliRun r = r1serve(args);
    EXPECT_EQ(r.status, 1) << args << "\nstderr: " << r.err;
    const size_t at = r.err.find("r1serve: error: ");
    ASSERT_NE(at, std::string::npos) << args << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find("CUDA", at), std::string::npos) << r.err;
    // Only the error line (serve may log its start-up before it).
    EXPECT_EQ(r.err.find('\n', at), r.err.size() - 1) << r.err;
  }
}

// A batched offline run is paired with a 1-sequence run of the same
// process, and both are set against the arithmetic peak measured then: the
// multiply-adds per token are the layer matrices' elements (counted here
// from the weight file), and each fraction is the rate over the peak.
TEST_F(CliTest, OfflineBenchBatchesAgainstOneSequenceAndThePeak) {
  CliRun r = r1serve("bench --offline --model " + model().string() +
                     " --dtype int8 --threads 2 --prompt-tokens 8 --gen-tokens 4 --batch 3 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<nlohmann::json> runs;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) runs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(runs.size(), 2u) << r.out;
  EXPECT_EQ(runs[0].at("batch"), 1);
  EXPECT_EQ(runs[1].at("batch"), 3);
  EXPECT_FALSE(runs[0].contains("decode_step_vs_batch1_median"));
  EXPECT_NEAR(runs[1].at("decode_step_vs_batch1_median").get<double>(),
              runs[1].at("decode_step_ms_median").get<double>() /
                  runs[0].at("decode_step_ms_median").get<double>(),
              1e-9);
  auto file = SafetensorsFile::open((model() / "model.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.status().message();
  int64_t layer_elements = 0;
  for (const TensorInfo& t : (*file)->tensors()) {
    if (t.name.find(".layers.") != std::string::npos && t.name.ends_with("_proj.weight")) {
      layer_elements += t.n_elements();
    }
  }
  const std::string instruction = runs[1].at("int8_peak_instruction");
  const CpuFeatures& f = cpu_features();
  EXPECT_EQ(instruction, f.avx512f && f.avx512bw && f.avx512vnni ? "vpdpbusd zmm"
                         : f.avx2                                ? "vpmaddubsw+vpmaddwd ymm"
                                                                 : "scalar imul+add");
  // The KV bytes a decode token reads: the timed steps' mean context
  // (8 + (4 + 1) / 2 positions) x K and V of every layer in bf16.
  const auto cfg = nlohmann::json::parse(read_file(model() / "config.json"));
  const double kv_position =
      2.0 * cfg.at("num_hidden_layers").get<int64_t>() *
      cfg.at("num_key_value_heads").get<int64_t>() *
      (cfg.at("hidden_size").get<int64_t>() / cfg.at("num_attention_heads").get<int64_t>()) * 2;
  for (const auto& j : runs) {
    EXPECT_DOUBLE_EQ(j.at("kv_bytes_per_token").get<double>(), 10.5 * kv_position);
    const double batch = j.at("batch").get<double>();
    EXPECT_NEAR(j.at("decode_bound_with_kv_tokens_per_second").get<double>(),
                j.at("triad_gbps_median").get<double>() * 1e9 * batch /
                    (j.at("weight_bytes_per_token").get<double>() + batch * 10.5 * kv_position),
                1e-6 * j.at("decode_bound_with_kv_tokens_per_second").get<double>());
    EXPECT_EQ(j.at("layer_macs_per_token").get<int64_t>(), layer_elements);
    const double peak = j.at("int8_peak_gmacs").get<double>();
    EXPECT_GT(peak, 0.0);
    EXPECT_NEAR(j.at("prefill_fraction_of_peak").get<double>(),
                j.at("prefill_gmacs").get<double>() / peak, 1e-9);
    EXPECT_NEAR(j.at("decode_fraction_of_peak_median_step").get<double>(),
                j.at("decode_gmacs_median_step").get<double>() / peak, 1e-9);
  }
}

// --kv-cache-dtype takes auto, bf16 or f32 (a GPU's cache is bf16 only),
// and the flag reaches the cache: the scores of a bf16 and an f32 cache
// differ by the rounding of K and V (numerics_test checks each against the
// oracle).
TEST_F(CliTest, KvCacheDtypeIsCheckedAndBothRun) {
  const std::string m = model().string();
  for (const std::string& args :
       {"generate --model " + m + " --ids 1,2 --kv-cache-dtype f16",
        "score --model " + m + " --ids 1,2 --kv-cache-dtype int8",
        "generate --model " + m + " --ids 1,2 --device cuda --kv-cache-dtype f32"}) {
    CliRun r = r1serve(args);
    EXPECT_EQ(r.status, 1) << args << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find("--kv-cache-dtype"), std::string::npos) << args << "\n" << r.err;
  }
  CliRun f32 = r1serve("score --model " + m + " --ids 1,2,3,4 --top 1 --kv-cache-dtype f32");
  CliRun bf16 = r1serve("score --model " + m + " --ids 1,2,3,4 --top 1 --kv-cache-dtype bf16");
  ASSERT_EQ(f32.status, 0) << f32.err;
  ASSERT_EQ(bf16.status, 0) << bf16.err;
  EXPECT_NE(f32.out, bf16.out) << "the two caches gave identical scores";
}

TEST_F(CliTest, AuditVerifyReportsTheFirstBrokenRecord) {
  const fs::path log = fs::current_path() / ("audit-" + std::to_string(getpid()) + ".jsonl");
  // Two records chained by hand the way the server writes them: the hash is
  // SHA-256 of the line up to ,"hash": (computed here with sha256sum).
  auto sha = [](const std::string& text) {
    const fs::path tmp = fs::current_path() / ("sha-" + std::to_string(getpid()));
    std::ofstream(tmp, std::ios::binary) << text;
    FILE* p = popen(("sha256sum " + tmp.string()).c_str(), "r");
    char buf[65] = {};
    EXPECT_EQ(fread(buf, 1, 64, p), 64u);
    pclose(p);
    fs::remove(tmp);
    return std::string(buf);
  };
  const std::string genesis(64, '0');
  const std::string b1 = "{\"event\":\"call\",\"principal\":\"a\",\"prev\":\"" + genesis + "\"";
  const std::string h1 = sha(b1);
  const std::string b2 = "{\"event\":\"call\",\"principal\":\"b\",\"prev\":\"" + h1 + "\"";
  const std::string h2 = sha(b2);
  const std::string l1 = b1 + ",\"hash\":\"" + h1 + "\"}";
  const std::string l2 = b2 + ",\"hash\":\"" + h2 + "\"}";
  std::ofstream(log) << l1 << "\n" << l2 << "\n";
  CliRun ok = r1serve("audit-verify " + log.string());
  EXPECT_EQ(ok.status, 0) << ok.err;
  std::string bad = l2;
  bad[bad.find("\"b\"") + 1] = 'c';
  std::ofstream(log, std::ios::trunc) << l1 << "\n" << bad << "\n";
  CliRun broken = r1serve("audit-verify " + log.string());
  EXPECT_EQ(broken.status, 1);
  EXPECT_NE(broken.err.find("record 2"), std::string::npos) << broken.err;
  fs::remove(log);
}

}  // namespace
}  // namespace r1
