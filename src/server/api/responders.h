// The responders of a generation request: they wait on the job's choices
// and format what the output processing (ChoiceRun) produced, as one JSON
// answer or as SSE chunks. A client that leaves cancels the generation.
#pragma once

#include <memory>
#include <vector>

#include "server/api/choice_run.h"
#include "server/api/generation_job.h"
#include "server/http/http_server.h"

namespace r1 {

// Waits for every choice and answers with the whole response (OpenAI's
// chat or completion object, or /predict's {"response", "reasoning"}).
// Stores the answer in the response cache when the job has a cache key.
// A resumable job is checkpointed as it goes; when the replica is
// interrupted it answers 503 replica_interrupted, naming how to resume.
HttpResponse respond_whole(const GenerationRoutesContext& ctx, const Job& job,
                           std::vector<std::unique_ptr<ChoiceRun>> runs);

// A streamed response: the choices' deltas as SSE chunks, the usage chunk
// when asked for, then [DONE]. The stream holds the version (ctx.keep) and
// counts as in flight until it ends. A resumed job starts with `replayed`,
// what the client missed of the output before its checkpoint.
HttpResponse respond_streamed(const GenerationRoutesContext& ctx, Job job,
                              std::vector<std::unique_ptr<ChoiceRun>> runs,
                              ChoiceDelta replayed = {});

}  // namespace r1
