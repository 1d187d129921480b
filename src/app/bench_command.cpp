// `r1serve bench --url URL`: a load generator for any OpenAI-compatible
// server. C workers send N streamed completions in total, each with a prompt
// of about P tokens and max_tokens M, and it reports requests/s, output
// tokens/s, time to first token and inter-token latency percentiles, errors.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/offline_bench.h"
#include "server/http/http_client.h"

namespace r1 {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string url;
  std::string model;
  int concurrency = 1;
  int requests = 16;
  int prompt_tokens = 128;
  int max_tokens = 64;
  bool json = false;
  bool offline = false;
};

struct RequestResult {
  bool ok = false;
  double ttft = 0;            // seconds to the first text chunk
  std::vector<double> gaps;   // seconds between text chunks
  int64_t output_tokens = 0;  // from usage, else text chunks
  std::string error;          // why it failed, when it did
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

// One streamed request; SSE events parsed as they arrive.
RequestResult run_one(const HttpClient& client, const std::string& body) {
  RequestResult r;
  const auto start = Clock::now();
  auto last = start;
  std::string buffer;
  int64_t chunks = 0;
  bool done = false;
  auto res = client.post("/v1/completions", body, [&](std::string_view data) {
    buffer.append(data);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) {
        r.output_tokens = j["usage"].value("completion_tokens", int64_t{0});
      }
      if (!j.contains("choices") || j["choices"].empty()) continue;
      const auto& c = j["choices"][0];
      if (c.contains("text") && c["text"].is_string() && !c["text"].get<std::string>().empty()) {
        const auto now = Clock::now();
        if (chunks == 0) {
          r.ttft = std::chrono::duration<double>(now - start).count();
        } else {
          r.gaps.push_back(std::chrono::duration<double>(now - last).count());
        }
        last = now;
        ++chunks;
      }
    }
    return true;
  });
  r.ok = res.ok() && res->status == 200 && done;
  if (!res.ok()) {
    r.error = res.status().message();
  } else if (res->status != 200) {
    r.error = "HTTP " + std::to_string(res->status);
  } else if (!done) {
    r.error = "the stream ended without [DONE]";
  }
  if (r.output_tokens == 0) r.output_tokens = chunks;
  return r;
}

Status run_bench(const BenchArgs& a) {
  if (a.concurrency < 1 || a.requests < 1 || a.prompt_tokens < 1 || a.max_tokens < 1) {
    return invalid_argument(
        "--concurrency, --requests, --prompt-tokens, --max-tokens must be >= 1");
  }
  R1_ASSIGN_OR_RETURN(HttpClient client, HttpClient::create(a.url));
  const std::string& model = a.model;
  // " the" is one token for the R1-Distill vocabularies (and most others);
  // a distinct number in front keeps prefix caching from sharing prompts.
  auto body_for = [&](int index) {
    std::string prompt = std::to_string(index) + ":";
    for (int i = 0; i < a.prompt_tokens; ++i) prompt += " the";
    // ignore_eos: every request runs to max_tokens, as serving benchmarks
    // ask, so runs compare equal work.
    const nlohmann::json req = {{"model", model},
                                {"prompt", prompt},
                                {"max_tokens", a.max_tokens},
                                {"ignore_eos", true},
                                {"temperature", 0},
                                {"stream", true},
                                {"stream_options", {{"include_usage", true}}}};
    return req.dump();
  };

  std::atomic<int> next{0};
  std::mutex mu;  // guards results
  std::vector<RequestResult> results;
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < a.concurrency; ++w) {
    workers.emplace_back([&] {
      for (int i = next.fetch_add(1); i < a.requests; i = next.fetch_add(1)) {
        RequestResult r = run_one(client, body_for(i));
        std::lock_guard<std::mutex> lock(mu);
        results.push_back(std::move(r));
      }
    });
  }
  for (auto& t : workers) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();

  int64_t ok = 0, tokens = 0;
  std::vector<double> ttft, itl;
  for (const auto& r : results) {
    if (!r.ok) continue;
    ++ok;
    tokens += r.output_tokens;
    ttft.push_back(r.ttft);
    itl.insert(itl.end(), r.gaps.begin(), r.gaps.end());
  }
  nlohmann::ordered_json out;
  out["url"] = a.url;
  out["concurrency"] = a.concurrency;
  out["requests"] = a.requests;
  out["prompt_tokens"] = a.prompt_tokens;
  out["max_tokens"] = a.max_tokens;
  out["errors"] = static_cast<int64_t>(results.size()) - ok;
  for (const auto& r : results) {
    if (!r.ok) {
      out["first_error"] = r.error;
      break;
    }
  }
  out["seconds"] = wall;
  out["requests_per_second"] = static_cast<double>(ok) / wall;
  out["output_tokens_per_second"] = static_cast<double>(tokens) / wall;
  for (double p : {50.0, 90.0, 99.0}) {
    const std::string s = std::to_string(static_cast<int>(p));
    out["ttft_p" + s + "_ms"] = percentile(ttft, p) * 1000;
    out["itl_p" + s + "_ms"] = percentile(itl, p) * 1000;
  }
  if (a.json) {
    std::cout << out.dump() << "\n";
  } else {
    for (const auto& [k, v] : out.items()) std::cout << k << ": " << v.dump() << "\n";
  }
  return ok == static_cast<int64_t>(results.size())
             ? ok_status()
             : unavailable(std::to_string(results.size() - ok) + " requests failed");
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Load-test an OpenAI-compatible server");
  auto off = std::make_shared<OfflineBenchArgs>();
  cmd->add_flag("--offline", a->offline,
                "measure the model in this process (--model is then a folder) against the "
                "memory bandwidth measured in the same run");
  cmd->add_option("--url", a->url, "server base URL, e.g. http://127.0.0.1:8000");
  cmd->add_option("--model", a->model, "model name to request; with --offline, the folder")
      ->required();
  cmd->add_option("--threads", off->threads, "--offline: compute threads, 0 = all cores")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--gen-tokens", off->gen_tokens, "--offline: tokens to decode");
  cmd->add_option("--batch", off->batches,
                  "--offline: sequences prefilled and decoded together; a list (1,8,64) runs "
                  "each, smallest first, with a 1-sequence run added for the batched runs' ratio")
      ->delimiter(',');
  cmd->add_flag("--profile", off->profile,
                "--offline: where decode's time goes, op by op, with each product's GB/s");
  add_precision_options(cmd, &off->precision);
  add_device_options(cmd, &off->device);
  cmd->add_option("--concurrency", a->concurrency, "requests in flight");
  cmd->add_option("--requests", a->requests, "requests in total");
  cmd->add_option("--prompt-tokens", a->prompt_tokens, "prompt length (about)");
  cmd->add_option("--max-tokens", a->max_tokens, "max_tokens of every request");
  cmd->add_flag("--json", a->json, "one JSON object");
  cmd->callback([a, off, exit_code] {
    Status s;
    if (a->offline) {
      off->model = a->model;
      off->prompt_tokens = a->prompt_tokens;
      off->json = a->json;
      s = run_offline_bench(*off);
    } else if (a->url.empty()) {
      s = invalid_argument("bench needs --url URL (a server), or --offline");
    } else {
      s = run_bench(*a);
    }
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1
