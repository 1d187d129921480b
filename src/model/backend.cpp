#include "model/backend.h"

#include <string>

namespace r1 {

void reference_row(const RowRequest& row, std::span<const float> logits, RowResult& out) {
  out.status = ok_status();
  if (row.sampling != nullptr) {
    Result<SampledToken> s = sample_row(*row.sampling, logits, row.prompt, row.generated, row.draw);
    if (!s.ok()) {
      out.status = s.status();
      return;
    }
    out.sampled = std::move(s).value();
  }
  if (row.score_target >= 0) out.target_logprob = raw_logprob(logits, row.score_target);
  if (row.score_top > 0) out.top = top_logprobs(logits, row.score_top);
}

Status validate_rows(const ForwardBatch& batch, std::span<const RowRequest> rows,
                     std::span<RowResult> results, int32_t n_valid_vocab) {
  if (rows.size() != batch.logit_rows.size() || results.size() != rows.size()) {
    return invalid_argument("step: " + std::to_string(batch.logit_rows.size()) + " logit rows, " +
                            std::to_string(rows.size()) + " row requests and " +
                            std::to_string(results.size()) + " results");
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const RowRequest& r = rows[i];
    if (r.score_target >= n_valid_vocab || r.score_top < 0 || r.score_top > n_valid_vocab) {
      return invalid_argument("step: row " + std::to_string(i) + " scores target " +
                              std::to_string(r.score_target) + " with top " +
                              std::to_string(r.score_top) + " over a vocabulary of " +
                              std::to_string(n_valid_vocab));
    }
  }
  return ok_status();
}

}  // namespace r1
