// `r1serve perplexity --model DIR --file TEXT [--dtype D] [--kl-base DIR]`:
// like llama.cpp's perplexity tool. The text is tokenised, cut into chunks
// of --ctx tokens (each starting with BOS when the model has one), and every
// token after the first of a chunk is predicted from the ones before it:
// perplexity = exp(mean negative log-likelihood). With --kl-base, a second
// model (by default the same folder in its file dtype) runs on the same
// chunks and the command also reports the mean KL divergence
// KL(base || model) of the next-token distributions and how often the two
// agree on the most likely token: the measure of what quantisation costs.
// BOS leads a chunk when the tokenizer adds one (add_bos_token).
// --second-half scores the way llama.cpp's llama-perplexity does, so the
// two can be compared on one file: chunks of --ctx text tokens whose first
// token becomes BOS (when added), and only the predictions of positions
// ctx/2 .. ctx-2 count.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/loaded_model.h"
#include "engine/offline_run.h"

namespace r1 {

namespace {

struct PerplexityArgs {
  std::string model;
  std::string file;
  PrecisionArgs precision;
  DeviceArgs device;
  std::string kl_base;
  PrecisionArgs base_precision;
  int threads = 0;
  int ctx = 512;
  int batch = 128;
  int max_chunks = 0;
  bool second_half = false;
  bool json = false;
};

// Every position of `chunk` scored through the engine (prompt_logprobs),
// `batch` tokens per step: entry p holds the logprob of chunk[p + 1] and the
// `top` most likely tokens.
Result<std::vector<SampledToken>> score_chunk(Backend& backend, const std::vector<int32_t>& chunk,
                                              int batch, int32_t top) {
  EngineRequest req;
  req.prompt = chunk;
  req.sampling.temperature = 0.0f;
  req.max_tokens = 1;
  req.prompt_logprobs = top;
  Engine engine(backend, offline_engine_options(batch, 0));
  R1_ASSIGN_OR_RETURN(std::vector<OfflineResult> results, run_offline(engine, {std::move(req)}));
  return std::move(results[0].prompt_logprobs);
}

Status run_perplexity(const PerplexityArgs& a) {
  if (a.ctx < 2) return invalid_argument("--ctx must be at least 2");
  if (a.batch < 1) return invalid_argument("--batch must be at least 1");
  std::ifstream in(a.file, std::ios::binary);
  if (!in) return not_found("--file " + a.file + ": cannot open it");
  std::ostringstream text;
  text << in.rdbuf();

  R1_ASSIGN_OR_RETURN(LoadOptions lo, load_options(a.precision, a.device));
  lo.n_threads = a.threads;
  lo.max_batched_tokens = a.batch;
  lo.kv_cache_tokens = a.ctx + 16;
  // The KL base's options are checked before either model loads.
  // --int8-prefill applies to the base too when it is int8 as well.
  LoadOptions blo = lo;
  if (!a.kl_base.empty()) {
    DeviceArgs base_device = a.device;
    if (a.base_precision.dtype != "int8") base_device.int8_prefill = "dequantize";
    R1_ASSIGN_OR_RETURN(LoadOptions base_lo, load_options(a.base_precision, base_device));
    blo.precision = base_lo.precision;
    blo.fp8 = base_lo.fp8;
    blo.int8_gemm = base_lo.int8_gemm;
  }
  R1_ASSIGN_OR_RETURN(LoadedModel m, load_model(a.model, lo));
  std::optional<LoadedModel> base;
  if (!a.kl_base.empty()) {
    R1_ASSIGN_OR_RETURN(base, load_model(a.kl_base, blo));
    if (base->backend->n_valid_vocab() != m.backend->n_valid_vocab()) {
      return invalid_argument("--kl-base has another vocabulary than --model");
    }
  }
  if (a.ctx > m.folder.config.max_position_embeddings) {
    return out_of_range("--ctx exceeds the model's context");
  }

  R1_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, m.folder.tokenizer->encode(text.str(), false));
  std::optional<int32_t> bos;
  if (m.folder.tokenizer->add_bos_token()) bos = m.folder.bos_id;
  const size_t per_chunk = static_cast<size_t>(a.ctx - (bos && !a.second_half ? 1 : 0));
  size_t n_chunks = tokens.size() / per_chunk;
  if (a.max_chunks > 0) n_chunks = std::min(n_chunks, static_cast<size_t>(a.max_chunks));
  if (n_chunks == 0) {
    return invalid_argument("--file has " + std::to_string(tokens.size()) +
                            " tokens: fewer than one chunk of --ctx " + std::to_string(a.ctx));
  }

  // A KL divergence needs both whole distributions: every token, sorted.
  const int32_t n_vocab = m.backend->n_valid_vocab();
  const int32_t top = base ? n_vocab : 1;
  double nll = 0.0, base_nll = 0.0, kl = 0.0;
  int64_t scored = 0, agree = 0;
  std::vector<double> model_lp(static_cast<size_t>(base ? n_vocab : 0));
  for (size_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk;
    if (bos && !a.second_half) chunk.push_back(*bos);
    chunk.insert(chunk.end(), tokens.begin() + static_cast<std::ptrdiff_t>(c * per_chunk),
                 tokens.begin() + static_cast<std::ptrdiff_t>((c + 1) * per_chunk));
    if (bos && a.second_half) chunk.front() = *bos;
    R1_ASSIGN_OR_RETURN(std::vector<SampledToken> lp, score_chunk(*m.backend, chunk, a.batch, top));
    std::vector<SampledToken> blp;
    if (base) {
      R1_ASSIGN_OR_RETURN(blp, score_chunk(*base->backend, chunk, a.batch, top));
    }
    // Position p predicts token p + 1; the first real token after BOS is
    // predicted too.
    const size_t first = a.second_half ? chunk.size() / 2 : 0;
    for (size_t p = first; p + 1 < chunk.size(); ++p) {
      nll -= lp[p].logprob;
      ++scored;
      if (!base) continue;
      base_nll -= blp[p].logprob;
      // KL(base || model) = sum over the base's tokens of p_b (log p_b - log p_m).
      std::fill(model_lp.begin(), model_lp.end(), -INFINITY);
      for (const TokenLogprob& t : lp[p].top) model_lp[static_cast<size_t>(t.id)] = t.logprob;
      double d = 0.0;
      for (const TokenLogprob& t : blp[p].top) {
        const double pb = std::exp(static_cast<double>(t.logprob));
        if (pb > 0.0) d += pb * (t.logprob - model_lp[static_cast<size_t>(t.id)]);
      }
      kl += d;
      agree += lp[p].top.front().id == blp[p].top.front().id ? 1 : 0;
    }
  }
  nlohmann::ordered_json out;
  out["model"] = a.model;
  out["dtype"] = a.precision.dtype.empty() ? "file" : a.precision.dtype;
  out["ctx"] = a.ctx;
  out["chunks"] = n_chunks;
  out["tokens_scored"] = scored;
  out["perplexity"] = std::exp(nll / static_cast<double>(scored));
  if (base) {
    out["base"] = a.kl_base;
    out["base_dtype"] = a.base_precision.dtype.empty() ? "file" : a.base_precision.dtype;
    out["base_perplexity"] = std::exp(base_nll / static_cast<double>(scored));
    out["mean_kl_divergence"] = kl / static_cast<double>(scored);
    out["top1_agreement"] = static_cast<double>(agree) / static_cast<double>(scored);
  }
  if (a.json) {
    std::cout << out.dump() << "\n";
  } else {
    for (const auto& [k, v] : out.items()) std::cout << k << ": " << v.dump() << "\n";
  }
  return ok_status();
}

}  // namespace

void add_perplexity_command(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a text, and KL divergence against a base model (--kl-base)");
  cmd->add_option("--model", a->model, "Hugging Face model folder, or a .gguf file")->required();
  cmd->add_option("--file", a->file, "UTF-8 text to score")->required();
  add_precision_options(cmd, &a->precision);
  add_device_options(cmd, &a->device);
  cmd->add_option("--kl-base", a->kl_base,
                  "a base model folder (often the same one) to compare the distributions with");
  cmd->add_option("--kl-base-dtype", a->base_precision.dtype,
                  "the base model's dtype; empty = its file's");
  cmd->add_option("--threads", a->threads, "0 = all cores")->check(CLI::Range(0, 1024));
  cmd->add_option("--ctx", a->ctx, "tokens per chunk (BOS included)");
  cmd->add_option("--batch", a->batch, "tokens per forward step within a chunk");
  cmd->add_option("--chunks", a->max_chunks, "score at most this many chunks; 0 = all");
  cmd->add_flag("--second-half", a->second_half,
                "llama.cpp's convention: score only the second half of each chunk, its first "
                "token replaced by BOS");
  cmd->add_flag("--json", a->json, "one JSON object");
  cmd->callback([a, exit_code] {
    Status s = run_perplexity(*a);
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1
