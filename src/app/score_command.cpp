// `r1serve score`: teacher-forced top-K next-token logprobs at every position.
#include <cstdio>
#include <string>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/loaded_model.h"
#include "engine/offline_run.h"

namespace r1 {

namespace {

struct ScoreArgs {
  std::string model;
  PrecisionArgs precision;
  DeviceArgs device;
  std::string ids;
  int32_t top = 5;
  int threads = 0;
  int32_t chunk = 128;
};

Status run_score(const ScoreArgs& a) {
  R1_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids_csv(a.ids));
  if (a.chunk < 1) return invalid_argument("--chunk must be at least 1");
  R1_ASSIGN_OR_RETURN(ModelFolder folder, open_model_folder(a.model));
  const int64_t context = folder.config.max_position_embeddings;
  if (static_cast<int64_t>(ids.size()) > context) {
    return out_of_range(std::to_string(ids.size()) + " tokens exceed the model's context of " +
                        std::to_string(context));
  }
  R1_ASSIGN_OR_RETURN(LoadOptions lo, load_options(a.precision, a.device));
  lo.n_threads = a.threads;
  lo.max_batched_tokens = a.chunk;
  lo.kv_cache_tokens = static_cast<int64_t>(ids.size()) + 16;
  R1_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, create_backend(folder, lo));
  if (a.top < 1 || a.top > backend->n_valid_vocab()) {
    return invalid_argument("top must be between 1 and the vocabulary size " +
                            std::to_string(backend->n_valid_vocab()) + ", got " +
                            std::to_string(a.top));
  }
  // The prompt scored through the engine (prompt_logprobs), one greedy
  // token generated and dropped.
  EngineRequest req;
  req.prompt = ids;
  req.sampling.temperature = 0.0f;
  req.max_tokens = 1;
  req.prompt_logprobs = a.top;
  Engine engine(*backend, offline_engine_options(a.chunk, 0));
  R1_ASSIGN_OR_RETURN(std::vector<OfflineResult> results, run_offline(engine, {std::move(req)}));
  std::vector<std::vector<TokenLogprob>> top;
  for (SampledToken& p : results[0].prompt_logprobs) top.push_back(std::move(p.top));
  // Printed by hand: %.9g keeps every digit of an f32 logprob.
  std::string out = "{\"top\": [";
  char buf[64];
  for (size_t p = 0; p < top.size(); ++p) {
    out += p ? ", [" : "[";
    for (size_t k = 0; k < top[p].size(); ++k) {
      std::snprintf(buf, sizeof buf, "%s[%d, %.9g]", k ? ", " : "", top[p][k].id,
                    static_cast<double>(top[p][k].logprob));
      out += buf;
    }
    out += "]";
  }
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return ok_status();
}

}  // namespace

void add_score_command(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* cmd = app.add_subcommand("score", "Teacher-forced top-K logprobs per position");
  cmd->add_option("--model", a->model, "Hugging Face model folder, or a .gguf file")->required();
  cmd->add_option("--ids", a->ids, "token ids, comma-separated")->required();
  cmd->add_option("--top", a->top, "alternatives per position");
  cmd->add_option("--threads", a->threads, "0 = all cores")->check(CLI::Range(0, 1024));
  add_precision_options(cmd, &a->precision);
  add_device_options(cmd, &a->device);
  cmd->add_option("--chunk", a->chunk, "prompt tokens per forward step (chunked prefill)");
  cmd->callback([a, exit_code] {
    Status s = run_score(*a);
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1
