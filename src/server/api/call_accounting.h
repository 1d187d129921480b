// What a generation request leaves behind: the request metrics, the access
// log line and the caller's usage (rate-limit charges, usage ledger, audit
// record, through CallContext::on_usage).
#pragma once

#include <memory>
#include <vector>

#include "server/api/choice_run.h"
#include "server/api/generation_job.h"
#include "server/api/openai_response.h"
#include "server/ops/response_cache.h"

namespace r1 {

// The job's usage so far: the prompt once, the choices' tokens.
Usage usage_of(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs);

// Tells the caller's accounting what the job has used so far: the prompt at
// once, completion tokens as they are generated.
void report_usage(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs);

// The job has ended with `status` (499 when the client left): counts the
// request and its tokens, reports the usage and writes the access log line.
// `runs` may be empty (refused before submission).
void record_job(const GenerationRoutesContext& ctx, const Job& job, int status,
                const std::vector<std::unique_ptr<ChoiceRun>>& runs);

// The job was answered from the response cache with `answer`: charged to the
// caller like the original, counted as a hit.
void record_cache_hit(const GenerationRoutesContext& ctx, const Job& job,
                      const CachedAnswer& answer);

}  // namespace r1
