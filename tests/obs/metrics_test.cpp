#include "obs/metrics.h"
#include "obs/gpu_monitor.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace r1 {
namespace {

// A parsed Prometheus text exposition: TYPE per family and every sample.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
struct Exposition {
  std::map<std::string, std::string> types;  // family name -> counter|gauge|histogram
  std::vector<Sample> samples;

  // The value of the one sample with this name and exactly these labels; the
  // test fails when there is none or more than one.
  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    const Sample* found = nullptr;
    int n = 0;
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) {
        found = &s;
        ++n;
      }
    }
    EXPECT_EQ(n, 1) << name;
    return found != nullptr ? found->value : -1;
  }
  bool has(const std::string& name) const {
    for (const Sample& s : samples) {
      if (s.name == name) return true;
    }
    return false;
  }
};

// Parses `name{k="v",...} value` lines; label values unescape \\ \" \n.
Exposition parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream ls(line.substr(7));
      std::string name, type;
      ls >> name >> type;
      EXPECT_EQ(e.types.count(name), 0u) << "TYPE twice for " << name;
      e.types[name] = type;
      continue;
    }
    if (line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        EXPECT_NE(eq, std::string::npos) << line;
        if (eq == std::string::npos) return e;
        std::string key = line.substr(i, eq - i);
        i = eq + 1;
        EXPECT_EQ(line[i], '"') << line;
        ++i;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value.push_back(line[i] == 'n' ? '\n' : line[i]);
          } else {
            value.push_back(line[i]);
          }
          ++i;
        }
        ++i;  // closing quote
        s.labels[key] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    EXPECT_EQ(line[i], ' ') << line;
    std::string number = line.substr(i + 1);
    number = number.substr(0, number.find(' '));  // drop an optional timestamp
    if (number == "+Inf") {
      s.value = 1e300;
    } else {
      char* end = nullptr;
      s.value = std::strtod(number.c_str(), &end);
      EXPECT_EQ(*end, '\0') << line;
    }
    e.samples.push_back(std::move(s));
  }
  return e;
}

TEST(MetricsTest, EveryFamilyHasItsNameAndType) {
  Metrics m;
  m.model("r1-1.5b");  // one series per model family
  m.inc_requests("/v1/chat/completions", "r1-1.5b", "1", 200);
  m.inc_rate_limited("/v1/chat/completions");
  const Exposition e = parse(m.serialize());

  const std::map<std::string, std::string> expected = {
      {"r1serve_requests_total", "counter"},
      {"r1serve_prompt_tokens_total", "counter"},
      {"r1serve_generation_tokens_total", "counter"},
      {"r1serve_reasoning_tokens_total", "counter"},
      {"r1serve_prefix_cache_queries_total", "counter"},
      {"r1serve_prefix_cache_hits_total", "counter"},
      {"r1serve_num_preemptions_total", "counter"},
      {"r1serve_rate_limited_total", "counter"},
      {"r1serve_response_cache_hits_total", "counter"},
      {"r1serve_num_requests_running", "gauge"},
      {"r1serve_num_requests_waiting", "gauge"},
      {"r1serve_kv_cache_usage_ratio", "gauge"},
      {"r1serve_kv_cache_free_blocks", "gauge"},
      {"r1serve_e2e_request_latency_seconds", "histogram"},
      {"r1serve_time_to_first_token_seconds", "histogram"},
      {"r1serve_time_per_output_token_seconds", "histogram"},
      {"r1serve_request_queue_time_seconds", "histogram"},
      {"r1serve_batch_size", "histogram"},
      {"r1serve_engine_step_seconds", "histogram"},
  };
  for (const auto& [name, type] : expected) {
    auto it = e.types.find(name);
    ASSERT_NE(it, e.types.end()) << name;
    EXPECT_EQ(it->second, type) << name;
    const std::string sample = type == "histogram" ? name + "_count" : name;
    EXPECT_TRUE(e.has(sample)) << sample;
  }
  for (const Sample& s : e.samples) {
    EXPECT_EQ(s.name.rfind("r1serve_", 0), 0u) << s.name;
  }
}

TEST(MetricsTest, GpuGaugesAppearOnlyOnceSet) {
  Metrics m;
  m.model("a");
  Exposition e = parse(m.serialize());
  EXPECT_FALSE(e.has("r1serve_gpu_utilization_ratio"));
  EXPECT_FALSE(e.has("r1serve_gpu_memory_used_bytes"));
  EXPECT_FALSE(e.has("r1serve_gpu_memory_total_bytes"));
  EXPECT_FALSE(e.has("r1serve_gpu_power_watts"));

  m.set_gpu_utilization(0.75);
  m.set_gpu_memory_used(int64_t(12) << 30);
  m.set_gpu_memory_total(int64_t(80) << 30);
  m.set_gpu_power(412.5);
  e = parse(m.serialize());
  EXPECT_DOUBLE_EQ(e.value("r1serve_gpu_memory_total_bytes", {}), double(int64_t(80) << 30));
  EXPECT_DOUBLE_EQ(e.value("r1serve_gpu_power_watts", {}), 412.5);
  EXPECT_EQ(e.types["r1serve_gpu_utilization_ratio"], "gauge");
  EXPECT_EQ(e.types["r1serve_gpu_memory_used_bytes"], "gauge");
  EXPECT_DOUBLE_EQ(e.value("r1serve_gpu_utilization_ratio", {}), 0.75);
  EXPECT_DOUBLE_EQ(e.value("r1serve_gpu_memory_used_bytes", {}), double(int64_t(12) << 30));
}

// Without NVML (a machine with no NVIDIA driver, as CI's) the monitor says
// so instead of failing later; with it, a sample is in range.
TEST(GpuMonitorTest, OpensOnlyWhereNvmlIs) {
  auto m = GpuMonitor::open(0);
  if (!m.ok()) {
    EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(m.status().message().find("NVML"), std::string::npos) << m.status().message();
    return;
  }
  std::optional<GpuSample> s = (*m)->latest();
  ASSERT_TRUE(s.has_value());
  EXPECT_GE(s->utilization, 0.0);
  EXPECT_LE(s->utilization, 1.0);
  EXPECT_GT(s->memory_total, 0);
  EXPECT_LE(s->memory_used, s->memory_total);
}

TEST(MetricsTest, CountersAndGaugesCarryTheirLabels) {
  Metrics m;
  m.inc_requests("/v1/chat/completions", "r1-7b", "3", 200);
  m.inc_requests("/v1/chat/completions", "r1-7b", "3", 200);
  m.inc_requests("/v1/chat/completions", "r1-7b", "4", 200);  // a canary's own series
  m.inc_requests("/v1/chat/completions", "r1-7b", "3", 429);
  m.inc_requests("/v1/completions", "r1-1.5b", "1", 400);
  m.inc_rate_limited("/v1/chat/completions");
  m.add_prompt_tokens("r1-7b", 120);
  m.add_generation_tokens("r1-7b", 50);
  m.add_reasoning_tokens("r1-7b", 30);
  m.inc_response_cache_hits("r1-7b");
  ModelMetrics& mm = m.model("r1-7b");
  mm.add_prefix_cache_queries(64);
  mm.add_prefix_cache_hits(48);
  mm.inc_preemptions();
  mm.inc_preemptions(2);
  mm.set_running(5);
  mm.set_waiting(3);
  mm.set_running(4);  // a gauge keeps the last value
  mm.set_kv_cache_usage(0.25);
  mm.set_kv_cache_free_blocks(321);

  const Exposition e = parse(m.serialize());
  using L = std::map<std::string, std::string>;
  const L chat7b = {{"route", "/v1/chat/completions"}, {"model", "r1-7b"}, {"version", "3"}};
  L ok = chat7b;
  ok["status"] = "200";
  L limited = chat7b;
  limited["status"] = "429";
  L canary = ok;
  canary["version"] = "4";
  EXPECT_EQ(e.value("r1serve_requests_total", ok), 2);
  EXPECT_EQ(e.value("r1serve_requests_total", canary), 1);
  EXPECT_EQ(e.value("r1serve_requests_total", limited), 1);
  EXPECT_EQ(e.value("r1serve_requests_total", {{"route", "/v1/completions"},
                                               {"model", "r1-1.5b"},
                                               {"version", "1"},
                                               {"status", "400"}}),
            1);
  EXPECT_EQ(e.value("r1serve_rate_limited_total", {{"route", "/v1/chat/completions"}}), 1);
  const L model = {{"model", "r1-7b"}};
  EXPECT_EQ(e.value("r1serve_prompt_tokens_total", model), 120);
  EXPECT_EQ(e.value("r1serve_generation_tokens_total", model), 50);
  EXPECT_EQ(e.value("r1serve_reasoning_tokens_total", model), 30);
  EXPECT_EQ(e.value("r1serve_response_cache_hits_total", model), 1);
  EXPECT_EQ(e.value("r1serve_prefix_cache_queries_total", model), 64);
  EXPECT_EQ(e.value("r1serve_prefix_cache_hits_total", model), 48);
  EXPECT_EQ(e.value("r1serve_num_preemptions_total", model), 3);
  EXPECT_EQ(e.value("r1serve_num_requests_running", model), 4);
  EXPECT_EQ(e.value("r1serve_num_requests_waiting", model), 3);
  EXPECT_DOUBLE_EQ(e.value("r1serve_kv_cache_usage_ratio", model), 0.25);
  EXPECT_EQ(e.value("r1serve_kv_cache_free_blocks", model), 321);
  // Another model has its own, untouched series.
  m.model("r1-1.5b");
  const Exposition e2 = parse(m.serialize());
  EXPECT_EQ(e2.value("r1serve_prompt_tokens_total", {{"model", "r1-7b"}}), 120);
  EXPECT_EQ(e2.value("r1serve_prompt_tokens_total", {{"model", "r1-1.5b"}}), 0);
}

// Buckets are cumulative: le="x" counts every observation <= x.
TEST(MetricsTest, HistogramBucketsCountObservations) {
  Metrics m;
  ModelMetrics& mm = m.model("r1");
  mm.observe_ttft(0.003);   // in (0.001, 0.005]
  mm.observe_ttft(0.005);   // exactly on a bound: counts in le="0.005"
  mm.observe_ttft(0.3);     // in (0.25, 0.5]
  mm.observe_ttft(5000.0);  // above the last bound: only +Inf
  for (int n : {1, 3, 3, 32, 600}) mm.observe_batch_size(n);
  m.observe_e2e_latency("r1", 1.2);
  m.observe_tpot("r1", 0.02);
  m.observe_queue_time("r1", 0.1);

  const Exposition e = parse(m.serialize());
  auto bucket = [&](const std::string& name, const std::string& le) {
    return e.value(name + "_bucket", {{"model", "r1"}, {"le", le}});
  };
  const std::string ttft = "r1serve_time_to_first_token_seconds";
  EXPECT_EQ(bucket(ttft, "0.001"), 0);
  EXPECT_EQ(bucket(ttft, "0.005"), 2);
  EXPECT_EQ(bucket(ttft, "0.25"), 2);
  EXPECT_EQ(bucket(ttft, "0.5"), 3);
  EXPECT_EQ(bucket(ttft, "2560"), 3);
  EXPECT_EQ(bucket(ttft, "+Inf"), 4);
  EXPECT_EQ(e.value(ttft + "_count", {{"model", "r1"}}), 4);
  EXPECT_NEAR(e.value(ttft + "_sum", {{"model", "r1"}}), 5000.308, 1e-9);

  // Every declared bucket is exposed, plus +Inf.
  int n_ttft_buckets = 0;
  for (const Sample& s : e.samples) n_ttft_buckets += s.name == ttft + "_bucket";
  EXPECT_EQ(n_ttft_buckets, int(ttft_buckets().size()) + 1);

  const std::string batch = "r1serve_batch_size";
  EXPECT_EQ(bucket(batch, "1"), 1);
  EXPECT_EQ(bucket(batch, "2"), 1);
  EXPECT_EQ(bucket(batch, "4"), 3);
  EXPECT_EQ(bucket(batch, "32"), 4);
  EXPECT_EQ(bucket(batch, "512"), 4);
  EXPECT_EQ(bucket(batch, "+Inf"), 5);
  EXPECT_EQ(e.value(batch + "_sum", {{"model", "r1"}}), 639);

  EXPECT_EQ(bucket("r1serve_e2e_request_latency_seconds", "1"), 0);
  EXPECT_EQ(bucket("r1serve_e2e_request_latency_seconds", "1.5"), 1);
  EXPECT_EQ(bucket("r1serve_time_per_output_token_seconds", "0.01"), 0);
  EXPECT_EQ(bucket("r1serve_time_per_output_token_seconds", "0.025"), 1);
  EXPECT_EQ(bucket("r1serve_request_queue_time_seconds", "0.3"), 1);
}

// A decode step's batch falls in one seqs bucket; any other step is a
// prefill step.
TEST(MetricsTest, StepsByKindAndBatch) {
  Metrics m;
  ModelMetrics& mm = m.model("r1");
  mm.observe_step(1, true, 0.03);
  mm.observe_step(4, true, 0.05);
  mm.observe_step(5, true, 0.07);
  mm.observe_step(8, true, 0.09);
  mm.observe_step(33, true, 0.5);
  mm.observe_step(1, false, 0.2);   // a prompt
  mm.observe_step(8, false, 0.15);  // decodes and a prompt chunk together
  const Exposition e = parse(m.serialize());
  const std::string step = "r1serve_engine_step_seconds";
  auto count = [&](const char* kind, const char* seqs) {
    return e.value(step + "_count", {{"model", "r1"}, {"kind", kind}, {"seqs", seqs}});
  };
  auto sum = [&](const char* kind, const char* seqs) {
    return e.value(step + "_sum", {{"model", "r1"}, {"kind", kind}, {"seqs", seqs}});
  };
  EXPECT_EQ(count("decode", "1"), 1);
  EXPECT_EQ(count("decode", "2-4"), 1);
  EXPECT_EQ(count("decode", "5-8"), 2);
  EXPECT_NEAR(sum("decode", "5-8"), 0.16, 1e-12);
  EXPECT_EQ(count("decode", "9-16"), 0);
  EXPECT_EQ(count("decode", "17-32"), 0);
  EXPECT_EQ(count("decode", "33+"), 1);
  EXPECT_EQ(count("prefill", "any"), 2);
  EXPECT_NEAR(sum("prefill", "any"), 0.35, 1e-12);
  EXPECT_EQ(e.value(step + "_bucket",
                    {{"model", "r1"}, {"kind", "decode"}, {"seqs", "5-8"}, {"le", "0.08"}}),
            1);
}

TEST(MetricsTest, BucketBoundsAreIncreasing) {
  for (const auto* b : {&ttft_buckets(), &tpot_buckets(), &request_latency_buckets(),
                        &batch_size_buckets(), &step_seconds_buckets()}) {
    ASSERT_FALSE(b->empty());
    for (size_t i = 1; i < b->size(); ++i) EXPECT_LT((*b)[i - 1], (*b)[i]);
  }
  EXPECT_EQ(batch_size_buckets().front(), 1);
  EXPECT_EQ(batch_size_buckets().back(), 512);
}

TEST(MetricsTest, ConcurrentUpdatesGiveExactTotals) {
  Metrics m;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      // Half the threads look the handles up each time, half keep them.
      ModelMetrics& kept = m.model("shared");
      for (int i = 0; i < kPerThread; ++i) {
        m.inc_requests("/v1/completions", "shared", "1", 200);
        if (t % 2 == 0) {
          m.add_generation_tokens("shared", 3);
          m.model("per-thread-" + std::to_string(t)).add_prompt_tokens(1);
        } else {
          kept.add_generation_tokens(3);
        }
        kept.observe_ttft(0.01);
      }
    });
  }
  for (std::thread& t : threads) t.join();

  const Exposition e = parse(m.serialize());
  EXPECT_EQ(
      e.value(
          "r1serve_requests_total",
          {{"route", "/v1/completions"}, {"model", "shared"}, {"version", "1"}, {"status", "200"}}),
      kThreads * kPerThread);
  EXPECT_EQ(e.value("r1serve_generation_tokens_total", {{"model", "shared"}}),
            3.0 * kThreads * kPerThread);
  EXPECT_EQ(e.value("r1serve_time_to_first_token_seconds_count", {{"model", "shared"}}),
            kThreads * kPerThread);
  for (int t = 0; t < kThreads; t += 2) {
    EXPECT_EQ(
        e.value("r1serve_prompt_tokens_total", {{"model", "per-thread-" + std::to_string(t)}}),
        kPerThread);
  }
}

TEST(MetricsTest, ModelLabelsAreCapped) {
  Metrics m;
  for (int i = 0; i < Metrics::kMaxModels + 10; ++i) {
    m.inc_requests("/v1/completions", std::to_string(i) + "m", "7", 404);
  }
  m.model("0m").add_prompt_tokens(1);  // known before the cap: keeps its name
  m.model("late").add_prompt_tokens(2);
  m.model("later").add_prompt_tokens(3);

  const Exposition e = parse(m.serialize());
  int n_request_series = 0;
  for (const Sample& s : e.samples) n_request_series += s.name == "r1serve_requests_total";
  EXPECT_EQ(n_request_series, Metrics::kMaxModels + 1);
  EXPECT_EQ(e.value("r1serve_requests_total", {{"route", "/v1/completions"},
                                               {"model", std::string(Metrics::kOverflowModel)},
                                               {"version", ""},
                                               {"status", "404"}}),
            10);
  EXPECT_EQ(e.value("r1serve_prompt_tokens_total", {{"model", "0m"}}), 1);
  EXPECT_EQ(
      e.value("r1serve_prompt_tokens_total", {{"model", std::string(Metrics::kOverflowModel)}}), 5);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics m;
  const std::string odd = "a\"b\\c\nd";
  m.inc_requests("/v1/completions", odd, "2", 200);
  const Exposition e = parse(m.serialize());
  EXPECT_EQ(
      e.value("r1serve_requests_total",
              {{"route", "/v1/completions"}, {"model", odd}, {"version", "2"}, {"status", "200"}}),
      1);
}

TEST(MetricsTest, ProcessWideInstanceIsOne) {
  EXPECT_EQ(&metrics(), &metrics());
  EXPECT_EQ(Metrics::kContentType.substr(0, 10), "text/plain");
}

}  // namespace
}  // namespace r1
