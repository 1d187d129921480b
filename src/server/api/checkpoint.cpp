#include "server/api/checkpoint.h"

#include <cmath>
#include <limits>

#include "server/auth/api_key_store.h"

namespace r1 {

namespace {

using json = nlohmann::json;

constexpr int kFormat = 1;

// A logprob as JSON: -inf (a masked alternative) has no JSON number.
json logprob_json(float v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
float logprob_from(const json& j) {
  return j.is_number() ? j.get<float>() : -std::numeric_limits<float>::infinity();
}

}  // namespace

json Checkpoint::to_json() const {
  json j;
  j["format"] = kFormat;
  j["request_id"] = request_id;
  j["principal"] = principal;
  j["route"] = route;
  j["digest"] = digest;
  j["model"] = model;
  j["version"] = version;
  j["response_id"] = response_id;
  j["created"] = created;
  j["prompt"] = prompt;
  j["seed"] = std::to_string(seed);  // JSON numbers lose 64-bit integers in many readers
  json ids = json::array();
  json logprobs = json::array();
  bool any_logprobs = false;
  for (const SampledToken& t : output) {
    ids.push_back(t.id);
    json top = json::array();
    for (const TokenLogprob& alt : t.top) top.push_back({alt.id, logprob_json(alt.logprob)});
    any_logprobs = any_logprobs || t.logprob != 0.0f || !t.top.empty();
    logprobs.push_back({logprob_json(t.logprob), std::move(top)});
  }
  j["output"] = std::move(ids);
  if (any_logprobs) j["logprobs"] = std::move(logprobs);
  j["forced"] = forced;
  j["sent"] = sent;
  j["counted"] = {{"prompt_tokens", counted_prompt_tokens},
                  {"completion_tokens", counted_completion_tokens},
                  {"reasoning_tokens", counted_reasoning_tokens}};
  return j;
}

Result<Checkpoint> Checkpoint::from_json(const json& j) {
  Checkpoint c;
  try {
    if (!j.is_object() || j.at("format").get<int>() != kFormat) {
      return data_loss("not a checkpoint of this format");
    }
    c.request_id = j.at("request_id").get<std::string>();
    c.principal = j.at("principal").get<std::string>();
    c.route = j.at("route").get<std::string>();
    c.digest = j.at("digest").get<std::string>();
    c.model = j.at("model").get<std::string>();
    c.version = j.at("version").get<std::string>();
    c.response_id = j.at("response_id").get<std::string>();
    c.created = j.at("created").get<int64_t>();
    c.prompt = j.at("prompt").get<std::vector<int32_t>>();
    const std::string seed = j.at("seed").get<std::string>();
    if (seed.empty() || seed.size() > 20 ||
        seed.find_first_not_of("0123456789") != std::string::npos) {
      return data_loss("checkpoint seed is not a number");
    }
    c.seed = std::stoull(seed);
    const auto ids = j.at("output").get<std::vector<int32_t>>();
    const json* logprobs = j.contains("logprobs") ? &j["logprobs"] : nullptr;
    if (logprobs != nullptr && (!logprobs->is_array() || logprobs->size() != ids.size())) {
      return data_loss("checkpoint logprobs do not match its output");
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      SampledToken t{ids[i], 0.0f, {}};
      if (logprobs != nullptr) {
        const json& e = (*logprobs)[i];
        t.logprob = logprob_from(e.at(0));
        for (const json& alt : e.at(1)) {
          t.top.push_back({alt.at(0).get<int32_t>(), logprob_from(alt.at(1))});
        }
      }
      c.output.push_back(std::move(t));
    }
    c.forced = j.at("forced").get<std::vector<int32_t>>();
    c.sent = j.at("sent").get<int64_t>();
    const json& counted = j.at("counted");
    c.counted_prompt_tokens = counted.at("prompt_tokens").get<int64_t>();
    c.counted_completion_tokens = counted.at("completion_tokens").get<int64_t>();
    c.counted_reasoning_tokens = counted.at("reasoning_tokens").get<int64_t>();
  } catch (const std::exception& e) {
    return data_loss(std::string("not a checkpoint: ") + e.what());
  }
  int32_t previous = -1;
  for (int32_t i : c.forced) {
    if (i <= previous || i >= static_cast<int32_t>(c.output.size())) {
      return data_loss("checkpoint forced indices are out of order");
    }
    previous = i;
  }
  if (c.prompt.empty() || c.sent < 0 || c.sent > static_cast<int64_t>(c.output.size())) {
    return data_loss("checkpoint counts are inconsistent");
  }
  return c;
}

std::string checkpoint_key(const std::string& principal, const std::string& request_id) {
  // Length-prefixed, so no two (principal, id) pairs make the same text.
  return sha256_hex("r1serve-checkpoint-v1\n" + std::to_string(principal.size()) + ":" + principal +
                    "\n" + request_id);
}

Result<std::optional<ResumeTarget>> resume_target(const std::string& last_event_id,
                                                  const std::string& resume_header) {
  if (!last_event_id.empty()) {
    const size_t colon = last_event_id.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == last_event_id.size() ||
        last_event_id.size() - colon - 1 > 9) {
      return invalid_argument("Last-Event-ID must be REQUEST_ID:N, an id this server sent");
    }
    int64_t n = 0;
    for (size_t i = colon + 1; i < last_event_id.size(); ++i) {
      const char c = last_event_id[i];
      if (c < '0' || c > '9') {
        return invalid_argument("Last-Event-ID must be REQUEST_ID:N, an id this server sent");
      }
      n = n * 10 + (c - '0');
    }
    return std::optional<ResumeTarget>(ResumeTarget{last_event_id.substr(0, colon), n});
  }
  if (!resume_header.empty()) {
    return std::optional<ResumeTarget>(ResumeTarget{resume_header, std::nullopt});
  }
  return std::optional<ResumeTarget>();
}

std::string sse_event_id(const std::string& request_id, int64_t n_tokens) {
  return request_id + ":" + std::to_string(n_tokens);
}

}  // namespace r1
