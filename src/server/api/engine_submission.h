// Engine submission: a job's n choices become n engine requests, each with
// the model's stop ids, the reasoning budget and its own seed.
#pragma once

#include <memory>
#include <vector>

#include "server/api/choice_run.h"
#include "server/api/errors.h"
#include "server/api/generation_job.h"

namespace r1 {

// Submits the job's choices to the version's engine; on a refusal cancels
// those already submitted (429 for a full queue, 503 for an engine that is
// not serving).
ApiResult<std::vector<std::unique_ptr<ChoiceRun>>> submit_choices(const ServedModel& m,
                                                                  const Job& job);

}  // namespace r1
