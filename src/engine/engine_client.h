// What the server holds of an engine: submit, cancel, and a stats snapshot,
// all thread-safe. Engine is the implementation; the server's route tests
// use a scripted one. (DESIGN.md §3: everything that talks to the engine
// thread goes through this.)
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "engine/request_stream.h"
#include "engine/scheduler.h"

namespace r1 {

struct EngineRequest;

class EngineClient {
 public:
  virtual ~EngineClient() = default;
  // Queues a request; its events arrive on the returned stream. Refusals
  // (nothing queued) come back as errors: INVALID_ARGUMENT, OUT_OF_RANGE,
  // RESOURCE_EXHAUSTED for a full queue.
  virtual Result<std::shared_ptr<RequestStream>> submit(EngineRequest request) = 0;
  // Ends a request at the next step; its stream gets a kAborted finish.
  virtual void cancel(const std::string& id) = 0;
  // A snapshot for metrics.
  virtual SchedulerStats stats() const = 0;
};

}  // namespace r1
