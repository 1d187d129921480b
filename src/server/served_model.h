// What the server needs to know about the model it serves, assembled by the
// app from the model folder (the server never sees the model module): the
// tokenizer and chat template, the generation defaults, the context length,
// the stop ids, R1's think markers, and the engine that runs it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_client.h"
#include "format/model_config.h"
#include "obs/gpu_monitor.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace r1 {

struct ServedModel {
  std::string name;  // what clients pass as "model"
  std::vector<std::string> aliases;
  std::string version;
  int64_t created = 0;  // unix seconds, for /v1/models
  std::shared_ptr<const Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
  Status chat_template_status;  // why there is none
  GenerationConfig generation;
  int64_t context_len = 0;
  std::vector<int32_t> stop_ids;
  std::optional<int32_t> think_start_id;      // <think>
  std::optional<int32_t> think_end_id;        // </think>
  std::vector<int32_t> reasoning_close_ids;   // tokens of "\n</think>\n\n"
  int32_t default_max_reasoning_tokens = -1;  // server default budget; -1 = none
  // Match added tokens inside message contents too (Hugging Face's
  // behaviour). Off by default: a user could otherwise forge role markers.
  bool special_tokens_in_messages = false;
  EngineClient* engine = nullptr;
  GpuMonitor* gpu = nullptr;  // the model's GPU, when it runs on one
  // What keeps `engine` (and the backend and weights behind it) alive: the
  // app's, opaque to the server. The version is unloaded when the last
  // holder of this ServedModel (the model table, a request in flight) lets
  // go of it.
  std::shared_ptr<void> owner;

  // `name`, an alias, or NAME@VERSION.
  bool answers_to(const std::string& model) const;
  // NAME@VERSION: the id that names this loaded version alone.
  std::string version_id() const { return name + "@" + version; }
};

}  // namespace r1
