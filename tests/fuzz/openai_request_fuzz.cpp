// libFuzzer target: the JSON bodies of the inference routes, through the
// real route handlers (handle_chat_completions, handle_completions,
// handle_predict) over a ServedModel with a tiny real tokenizer, the native
// DeepSeek-R1 template, a response cache and an Engine. The engine's queue
// holds nothing (max_queue 0), so every request that gets through parsing,
// templating, tokenizing, the context check and the cache is refused at
// submit with 429 and no step ever runs. /tokenize and /detokenize are
// lambdas inside OpenAiServer, reachable only over a socket; their bodies
// are read here the way those lambdas read them, through the same calls.
//
// Input: byte 0 picks the route (and whether a Cache-Control header is sent),
// the rest is the body. Every body also goes through json_nesting_depth,
// checked against nlohmann's own nesting (SAX, nothing built); as in
// HttpServer, only bodies within the depth limit reach a handler.
//
// Properties: no crash, leak or UB; every answer has a status in 200..599
// and a JSON body, an error body being {"error": {"message": non-empty}}.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "model/backend.h"
#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/api/errors.h"
#include "server/api/generation_routes.h"
#include "server/api/openai_request.h"
#include "server/http/json_depth.h"
#include "server/model_table.h"
#include "server/ops/memory_cache_store.h"
#include "server/ops/response_cache.h"
#include "server/served_model.h"
#include "tiny_tokenizer.h"

namespace r1 {
namespace {

constexpr int kMaxJsonDepth = 64;  // HttpServerOptions::max_json_depth

// A backend that only answers the engine's size questions; forward() is
// never reached because nothing is ever queued.
class IdleBackend final : public Backend {
 public:
  IdleBackend() {
    config_.architecture = "Qwen2ForCausalLM";
    config_.hidden_size = 64;
    config_.intermediate_size = 96;
    config_.n_layers = 1;
    config_.n_heads = 4;
    config_.n_kv_heads = 2;
    config_.head_dim = 16;
    config_.vocab_size = 320;
    config_.max_position_embeddings = 512;
  }
  const ModelConfig& config() const override { return config_; }
  int32_t n_valid_vocab() const override { return 315; }
  int32_t n_kv_blocks() const override { return 64; }
  int32_t block_size() const override { return 16; }
  int64_t weight_bytes_per_token() const override { return 1; }
  int64_t kv_bytes_per_position() const override { return 1; }
  Status step(const ForwardBatch&, std::span<const RowRequest>, std::span<RowResult>) override {
    std::abort();  // nothing is ever scheduled
  }

 private:
  ModelConfig config_;
};

struct Server {
  IdleBackend backend;
  std::unique_ptr<Engine> engine;
  Metrics metrics;
  AccessLog access_log;  // disabled
  std::atomic<int> in_flight{0};
  std::unique_ptr<ResponseCache> cache;
  ServedModel model;
  ModelTable table;
  GenerationRoutesContext ctx;

  Server() {
    EngineOptions options;
    options.max_queue = 0;  // every submit is refused: RESOURCE_EXHAUSTED
    engine = std::make_unique<Engine>(backend, options);
    cache = std::make_unique<ResponseCache>(std::make_unique<MemoryCacheStore>(1 << 20), 3600);
    const auto [tokenizer_json, config_json] = fuzz::tiny_tokenizer_files();
    auto tok = Tokenizer::from_json(tokenizer_json, config_json);
    if (!tok.ok()) std::abort();
    model.name = "tiny";
    model.aliases = {"tiny-alias"};
    model.version = "1";
    model.tokenizer = std::make_shared<const Tokenizer>(std::move(tok).value());
    auto tmpl = ChatTemplate::detect(model.tokenizer->chat_template_source(), fuzz::kBos);
    if (!tmpl.ok()) std::abort();
    model.chat_template = *tmpl;
    model.generation.temperature = 0.6;
    model.generation.top_p = 0.95;
    model.context_len = 512;
    model.stop_ids = {*model.tokenizer->eos_id()};
    model.think_start_id = model.tokenizer->token_to_id("<think>");
    model.think_end_id = model.tokenizer->token_to_id("</think>");
    model.reasoning_close_ids = *model.tokenizer->encode("\n</think>\n\n", false);
    model.default_max_reasoning_tokens = 64;
    model.engine = engine.get();
    // The table shares `model` without owning it (the server outlives it).
    if (!table.add(std::shared_ptr<const ServedModel>(&model, [](const ServedModel*) {})).ok()) {
      std::abort();
    }
    ctx = GenerationRoutesContext{&table, &metrics, &access_log, &in_flight, cache.get()};
  }
};

// nlohmann's view of a text: whether it is one JSON value, and how deeply
// it nests arrays and objects. A SAX walk, so depth costs no recursion.
struct DepthSax : nlohmann::json_sax<nlohmann::json> {
  int depth = 0, deepest = 0;
  bool open() {
    deepest = std::max(deepest, ++depth);
    return true;
  }
  bool close() {
    --depth;
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

// nlohmann's lexer takes a NUL byte outside a string for the end of the
// input, so it reads only what comes before one; the lexical count goes on
// past it and can only count deeper (it refuses more, never less).
void check_depth(const std::string& body) {
  const int lexical = json_nesting_depth(body, kMaxJsonDepth);
  if (lexical < 0 || lexical > kMaxJsonDepth + 1) std::abort();
  const std::string_view parsed = std::string_view(body).substr(0, body.find('\0'));
  const int lexical_parsed = json_nesting_depth(parsed, kMaxJsonDepth);
  if (lexical_parsed > lexical) std::abort();
  DepthSax sax;
  if (!nlohmann::json::sax_parse(parsed, &sax)) return;  // not JSON: any depth will do
  if (lexical_parsed != std::min(sax.deepest, kMaxJsonDepth + 1)) std::abort();
}

void check_response(const HttpResponse& res) {
  if (res.status < 200 || res.status > 599) std::abort();
  if (res.stream) std::abort();  // nothing is generated, so nothing streams
  const auto body = nlohmann::json::parse(res.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) std::abort();
  if (res.status == 200) return;
  const auto it = body.find("error");
  if (it == body.end() || !it->is_object()) std::abort();
  const auto msg = it->find("message");
  if (msg == it->end() || !msg->is_string() || msg->get<std::string>().empty()) std::abort();
}

// POST /tokenize through its real handler, plus a property: plain text
// round-trips through the byte-level vocabulary.
HttpResponse tokenize(const GenerationRoutesContext& ctx, const ServedModel& m,
                      const HttpRequest& req) {
  HttpResponse res = handle_tokenize(ctx, req);
  if (res.status != 200) return res;
  const auto body = nlohmann::json::parse(req.body, nullptr, false);
  const auto out = nlohmann::json::parse(res.body, nullptr, false);
  if (body.contains("prompt") && body["prompt"].is_string() &&
      !body.value("add_special_tokens", false)) {
    const auto ids = out.at("tokens").get<std::vector<int32_t>>();
    if (m.tokenizer->decode(ids) != body["prompt"].get<std::string>()) std::abort();
  }
  return res;
}

}  // namespace
}  // namespace r1

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static r1::Server* server = new r1::Server();  // lives for the process
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  r1::HttpRequest req;
  req.method = "POST";
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  req.request_id = "fuzz";
  req.remote_addr = "127.0.0.1";
  switch ((selector >> 3) & 3) {
    case 1:
      req.headers.emplace("Cache-Control", "no-cache");
      break;
    case 2:
      req.headers.emplace("Cache-Control", "no-store");
      break;
    default:
      break;
  }

  r1::check_depth(req.body);
  if (r1::json_nesting_depth(req.body, r1::kMaxJsonDepth) > r1::kMaxJsonDepth) return 0;

  const r1::ServedModel& m = server->model;
  r1::HttpResponse res;
  switch (selector % 5) {
    case 0:
      req.path = "/v1/chat/completions";
      res = r1::handle_chat_completions(server->ctx, req);
      break;
    case 1:
      req.path = "/v1/completions";
      res = r1::handle_completions(server->ctx, req);
      break;
    case 2:
      req.path = "/predict";
      res = r1::handle_predict(server->ctx, req);
      break;
    case 3:
      res = r1::tokenize(server->ctx, m, req);
      break;
    default:
      res = r1::handle_detokenize(server->ctx, req);
      break;
  }
  r1::check_response(res);
  return 0;
}
