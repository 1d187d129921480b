#include "engine/batch_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "engine/kv_cache/block_table.h"

namespace r1 {

namespace {

struct Sequence {
  const GenerationRequest* request = nullptr;
  std::vector<int32_t> tokens;  // prompt then generated
  int32_t n_computed = 0;       // tokens whose KV is in the cache
  BlockTable table;
  bool finished = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The flattened arrays of one step (ForwardBatch points into these).
struct StepArrays {
  std::vector<int32_t> token_ids, positions, slots, query_start{0}, block_tables, logit_rows;
  std::vector<size_t> seq_of_row;  // which sequence each logit row samples for

  ForwardBatch batch(int32_t max_blocks) const {
    return ForwardBatch{token_ids,    positions,  slots,     query_start,
                        block_tables, max_blocks, logit_rows};
  }
};

}  // namespace

BatchRunner::BatchRunner(Backend& backend, const BatchRunnerOptions& options)
    : backend_(backend), options_(options), pool_(backend.n_kv_blocks(), backend.block_size()) {}

Result<std::vector<GenerationResult>> BatchRunner::generate(
    std::span<const GenerationRequest> requests, const TokenCallback& on_token) {
  if (options_.max_batched_tokens < 1) return invalid_argument("max_batched_tokens must be >= 1");
  const int32_t bs = backend_.block_size();
  const int64_t max_ctx = backend_.config().max_position_embeddings;
  const int64_t vocab = backend_.config().vocab_size;
  int64_t blocks_wanted = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const std::string which = "request " + std::to_string(i) + ": ";
    if (r.prompt.empty()) return invalid_argument(which + "empty prompt");
    if (r.max_tokens < 1) return invalid_argument(which + "max_tokens must be at least 1");
    for (int32_t id : r.prompt) {
      if (id < 0 || id >= backend_.n_valid_vocab()) {
        return invalid_argument(which + "token id " + std::to_string(id) +
                                " is not in the vocabulary");
      }
    }
    R1_RETURN_IF_ERROR(validate(r.sampling).with_context(which));
    const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
    if (total > max_ctx) {
      return out_of_range(which + std::to_string(r.prompt.size()) + " prompt tokens + " +
                          std::to_string(r.max_tokens) + " new tokens exceed the context of " +
                          std::to_string(max_ctx));
    }
    blocks_wanted += blocks_needed(static_cast<int32_t>(total), bs);
  }
  if (blocks_wanted > pool_.n_free()) {
    return resource_exhausted("the requests need " + std::to_string(blocks_wanted) +
                              " KV blocks, the cache has " + std::to_string(pool_.n_free()));
  }

  std::vector<Sequence> seqs(requests.size());
  std::vector<Sampler> samplers;
  std::vector<GenerationResult> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    seqs[i].request = &requests[i];
    seqs[i].tokens = requests[i].prompt;
    samplers.emplace_back(requests[i].sampling, options_.seed + i);
  }
  std::vector<float> logits;
  Status failure;
  auto release_all = [&] {
    for (auto& s : seqs) {
      std::vector<int32_t> rev(s.table.blocks.rbegin(), s.table.blocks.rend());
      pool_.free(rev);
      s.table.blocks.clear();
    }
  };

  for (;;) {
    // Plan: running decodes (one token each) first, then prompt chunks.
    StepArrays step;
    std::vector<std::pair<size_t, int32_t>> planned;  // (sequence, n new tokens)
    int32_t budget = options_.max_batched_tokens;
    for (int pass = 0; pass < 2 && budget > 0; ++pass) {
      for (size_t i = 0; i < seqs.size() && budget > 0; ++i) {
        Sequence& s = seqs[i];
        if (s.finished) continue;
        const int32_t remaining = static_cast<int32_t>(s.tokens.size()) - s.n_computed;
        const bool decoding = remaining == 1 && s.n_computed > 0;
        if ((pass == 0) != decoding) continue;
        planned.emplace_back(i, std::min(remaining, budget));
        budget -= planned.back().second;
      }
    }
    if (planned.empty()) break;

    int32_t max_blocks = 1;
    bool has_prefill = false;
    for (auto [i, n_new] : planned) {
      Sequence& s = seqs[i];
      const int32_t end = s.n_computed + n_new;
      const int32_t need = blocks_needed(end, bs) - static_cast<int32_t>(s.table.blocks.size());
      if (need > 0) {
        auto blocks = pool_.allocate(need);
        if (!blocks.ok()) {
          release_all();
          return blocks.status();
        }
        s.table.blocks.insert(s.table.blocks.end(), blocks->begin(), blocks->end());
      }
      max_blocks = std::max<int32_t>(max_blocks, static_cast<int32_t>(s.table.blocks.size()));
      has_prefill |= s.n_computed < static_cast<int32_t>(s.request->prompt.size());
    }
    for (auto [i, n_new] : planned) {
      Sequence& s = seqs[i];
      for (int32_t p = s.n_computed; p < s.n_computed + n_new; ++p) {
        step.token_ids.push_back(s.tokens[p]);
        step.positions.push_back(p);
        step.slots.push_back(slot_for(s.table, p, bs));
      }
      step.query_start.push_back(static_cast<int32_t>(step.token_ids.size()));
      std::vector<int32_t> row(static_cast<size_t>(max_blocks), -1);
      std::copy(s.table.blocks.begin(), s.table.blocks.end(), row.begin());
      step.block_tables.insert(step.block_tables.end(), row.begin(), row.end());
      if (s.n_computed + n_new == static_cast<int32_t>(s.tokens.size())) {
        step.logit_rows.push_back(static_cast<int32_t>(step.token_ids.size()) - 1);
        step.seq_of_row.push_back(i);
      }
    }

    const auto t0 = std::chrono::steady_clock::now();
    logits.resize(step.logit_rows.size() * static_cast<size_t>(vocab));
    Status st = backend_.forward(step.batch(max_blocks), logits);
    if (!st.ok()) {
      release_all();
      return st;
    }
    for (auto [i, n_new] : planned) seqs[i].n_computed += n_new;
    for (size_t r = 0; r < step.logit_rows.size(); ++r) {
      const size_t i = step.seq_of_row[r];
      Sequence& s = seqs[i];
      std::span<const float> row(logits.data() + r * static_cast<size_t>(vocab),
                                 static_cast<size_t>(vocab));
      auto sampled = samplers[i].sample(row, s.request->prompt, results[i].tokens);
      if (!sampled.ok()) {
        release_all();
        return sampled.status().with_context("request " + std::to_string(i));
      }
      results[i].tokens.push_back(sampled->id);
      results[i].samples.push_back(*sampled);
      s.tokens.push_back(sampled->id);
      if (on_token) on_token(i, *sampled);
      const auto& stops = s.request->stop_ids;
      if (std::find(stops.begin(), stops.end(), sampled->id) != stops.end()) {
        results[i].finish_reason = EndReason::kStop;
        s.finished = true;
      } else if (static_cast<int32_t>(results[i].tokens.size()) >= s.request->max_tokens) {
        results[i].finish_reason = EndReason::kLength;
        s.finished = true;
      }
      if (s.finished) {
        std::vector<int32_t> rev(s.table.blocks.rbegin(), s.table.blocks.rend());
        pool_.free(rev);
        s.table.blocks.clear();
      }
    }
    const double dt = seconds_since(t0);
    ++stats_.steps;
    if (has_prefill) {
      stats_.prefill_seconds += dt;
      for (auto [i, n_new] : planned) stats_.prefill_tokens += n_new;
    } else {
      stats_.decode_seconds += dt;
      stats_.decode_tokens += static_cast<int64_t>(planned.size());
    }
  }
  return results;
}

Result<std::vector<std::vector<TokenLogprob>>> BatchRunner::score(std::span<const int32_t> ids,
                                                                  int32_t top_k) {
  const int32_t bs = backend_.block_size();
  const int64_t vocab = backend_.config().vocab_size;
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n == 0) return invalid_argument("nothing to score: no token ids");
  if (options_.max_batched_tokens < 1) return invalid_argument("max_batched_tokens must be >= 1");
  if (top_k < 1 || top_k > backend_.n_valid_vocab()) {
    return invalid_argument("top must be between 1 and the vocabulary size " +
                            std::to_string(backend_.n_valid_vocab()) + ", got " +
                            std::to_string(top_k));
  }
  if (n > backend_.config().max_position_embeddings) {
    return out_of_range(std::to_string(n) + " tokens exceed the context of " +
                        std::to_string(backend_.config().max_position_embeddings));
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= backend_.n_valid_vocab()) {
      return invalid_argument("token id " + std::to_string(id) + " is not in the vocabulary");
    }
  }
  R1_ASSIGN_OR_RETURN(std::vector<int32_t> blocks, pool_.allocate(blocks_needed(n, bs)));
  BlockTable table{blocks, n};
  std::vector<std::vector<TokenLogprob>> out;
  std::vector<float> logits;
  Status status;
  for (int32_t begin = 0; begin < n && status.ok(); begin += options_.max_batched_tokens) {
    const int32_t end = std::min(n, begin + options_.max_batched_tokens);
    StepArrays step;
    for (int32_t p = begin; p < end; ++p) {
      step.token_ids.push_back(ids[p]);
      step.positions.push_back(p);
      step.slots.push_back(slot_for(table, p, bs));
      step.logit_rows.push_back(p - begin);
    }
    step.query_start.push_back(end - begin);
    step.block_tables = blocks;
    logits.resize(static_cast<size_t>(end - begin) * static_cast<size_t>(vocab));
    status = backend_.forward(step.batch(static_cast<int32_t>(blocks.size())), logits);
    for (int32_t r = 0; r < end - begin && status.ok(); ++r) {
      out.push_back(top_logprobs(
          std::span<const float>(logits.data() + static_cast<size_t>(r) * vocab, vocab), top_k));
    }
  }
  std::vector<int32_t> rev(blocks.rbegin(), blocks.rend());
  pool_.free(rev);
  if (!status.ok()) return status;
  return out;
}

}  // namespace r1
