// `r1serve generate`: one prompt (raw text, a chat message, or token ids)
// through the model, the completion streamed to stdout.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/loaded_model.h"
#include "engine/offline_run.h"
#include "obs/log.h"
#include "tokenizer/incremental_detokenizer.h"

namespace r1 {

namespace {

struct GenerateArgs {
  std::string model;
  PrecisionArgs precision;
  DeviceArgs device;
  std::optional<std::string> prompt, chat, ids;
  int32_t max_tokens = 256;
  std::optional<float> temperature, top_p, min_p, repetition_penalty, presence_penalty,
      frequency_penalty;
  std::optional<int32_t> top_k;
  std::optional<uint64_t> seed;
  bool json = false;
  int threads = 0;
};

Result<std::vector<int32_t>> prompt_ids(const GenerateArgs& a, const ModelFolder& m) {
  const int given = a.prompt.has_value() + a.chat.has_value() + a.ids.has_value();
  if (given != 1) return invalid_argument("give exactly one of --prompt, --chat and --ids");
  if (a.ids) return parse_ids_csv(*a.ids);
  if (a.prompt) return m.tokenizer->encode(*a.prompt, /*add_special_tokens=*/true);
  if (!m.chat_template) return m.chat_template_status;
  std::vector<ChatMessage> messages{{"user", *a.chat, {}}};
  R1_ASSIGN_OR_RETURN(std::string text, m.chat_template->render(messages, true));
  // The rendered prompt carries its own BOS: no second one.
  return m.tokenizer->encode(text, /*add_special_tokens=*/false);
}

SamplingParams sampling_params(const GenerateArgs& a, const GenerationConfig& g) {
  SamplingParams p;
  // Defaults from generation_config.json (R1: temperature 0.6, top_p 0.95);
  // a model that does not sample by default is greedy.
  p.temperature = static_cast<float>(g.do_sample ? g.temperature.value_or(1.0) : 0.0);
  p.top_p = static_cast<float>(g.do_sample ? g.top_p.value_or(1.0) : 1.0);
  p.top_k = static_cast<int32_t>(g.do_sample ? g.top_k.value_or(0) : 0);
  p.repetition_penalty = static_cast<float>(g.repetition_penalty.value_or(1.0));
  if (a.temperature) p.temperature = *a.temperature;
  if (a.top_p) p.top_p = *a.top_p;
  if (a.top_k) p.top_k = *a.top_k;
  if (a.min_p) p.min_p = *a.min_p;
  if (a.repetition_penalty) p.repetition_penalty = *a.repetition_penalty;
  if (a.presence_penalty) p.presence_penalty = *a.presence_penalty;
  if (a.frequency_penalty) p.frequency_penalty = *a.frequency_penalty;
  p.seed = a.seed;
  return p;
}

Status run_generate(const GenerateArgs& a) {
  R1_ASSIGN_OR_RETURN(LoadOptions lo, load_options(a.precision, a.device));
  lo.n_threads = a.threads;
  lo.max_batched_tokens = 512;
  LoadedModel m;
  R1_ASSIGN_OR_RETURN(m.folder, open_model_folder(a.model));
  R1_ASSIGN_OR_RETURN(std::vector<int32_t> ids, prompt_ids(a, m.folder));
  const int64_t context = m.folder.config.max_position_embeddings;
  if (a.max_tokens < 1) return invalid_argument("--max-tokens must be at least 1");
  if (static_cast<int64_t>(ids.size()) + a.max_tokens > context) {
    return out_of_range(std::to_string(ids.size()) + " prompt tokens + --max-tokens " +
                        std::to_string(a.max_tokens) + " exceed the model's context of " +
                        std::to_string(context));
  }
  // A KV cache that fits this one request.
  lo.kv_cache_tokens = static_cast<int64_t>(ids.size()) + std::max(a.max_tokens, 1) + 16;
  R1_ASSIGN_OR_RETURN(m.backend, create_backend(m.folder, lo));

  EngineRequest req;
  req.prompt = ids;
  req.sampling = sampling_params(a, m.folder.generation);
  req.max_tokens = a.max_tokens;
  req.stop_ids = m.folder.stop_ids;
  Engine engine(*m.backend, offline_engine_options(512, a.seed.value_or(0)));
  IncrementalDetokenizer detok(*m.folder.tokenizer, /*skip_special=*/true);
  // Prefill: from the start to the first token; decode: the rest.
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point first_token;
  auto results = run_offline(engine, {std::move(req)}, [&](size_t, const EngineEvent& e) {
    if (first_token == std::chrono::steady_clock::time_point{}) first_token = e.time;
    if (a.json) return;
    const std::string piece = detok.push(e.token->id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  const auto end = std::chrono::steady_clock::now();
  if (!results.ok()) return results.status();
  const OfflineResult& r = (*results)[0];
  if (a.json) {
    nlohmann::json out;
    out["prompt_ids"] = ids;
    out["ids"] = r.tokens;
    out["text"] = m.folder.tokenizer->decode(r.tokens, /*skip_special=*/true);
    out["finish_reason"] = r.end_reason == EndReason::kStop ? "stop" : "length";
    std::cout << out.dump() << "\n";
  } else {
    const std::string rest = detok.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
  }
  const double prefill_s = std::chrono::duration<double>(first_token - start).count();
  const double decode_s = std::chrono::duration<double>(end - first_token).count();
  const size_t n_decoded = r.tokens.size() - 1;
  char line[256];
  std::snprintf(line, sizeof line,
                "prompt %zu tokens (%.1f tokens/s), generated %zu tokens (%.2f tokens/s decode)",
                ids.size(), prefill_s > 0 ? static_cast<double>(ids.size()) / prefill_s : 0.0,
                r.tokens.size(),
                decode_s > 0 && n_decoded > 0 ? static_cast<double>(n_decoded) / decode_s : 0.0);
  log_info(line);
  return ok_status();
}

}  // namespace

void add_generate_command(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate a completion");
  cmd->add_option("--model", a->model, "Hugging Face model folder, or a .gguf file")->required();
  cmd->add_option("--prompt", a->prompt, "raw text prompt (BOS added)");
  cmd->add_option("--chat", a->chat, "a user message, formatted with the chat template");
  cmd->add_option("--ids", a->ids, "prompt token ids, comma-separated");
  cmd->add_option("--max-tokens", a->max_tokens, "tokens to generate at most");
  cmd->add_option("--temperature", a->temperature, "0 = greedy");
  cmd->add_option("--top-p", a->top_p);
  cmd->add_option("--top-k", a->top_k);
  cmd->add_option("--min-p", a->min_p);
  cmd->add_option("--repetition-penalty", a->repetition_penalty);
  cmd->add_option("--presence-penalty", a->presence_penalty);
  cmd->add_option("--frequency-penalty", a->frequency_penalty);
  cmd->add_option("--seed", a->seed);
  cmd->add_option("--threads", a->threads, "0 = all cores")->check(CLI::Range(0, 1024));
  add_precision_options(cmd, &a->precision);
  add_device_options(cmd, &a->device);
  cmd->add_flag("--json", a->json, "print one JSON object with the ids and the text");
  cmd->callback([a, exit_code] {
    Status s = run_generate(*a);
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1
