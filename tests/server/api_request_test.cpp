// Request parsing and validation: every refusal has the right status and
// `param`; defaults come from generation_config; accepted shapes map to the
// right structs.
#include <gtest/gtest.h>

#include <string>

#include "server/api/openai_request.h"

namespace r1 {
namespace {

GenerationConfig r1_defaults() {
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = 0.6;
  g.top_p = 0.95;
  return g;
}

// A chat body with `extra` spliced in ("" or `"key": value`).
std::string chat(const std::string& extra) {
  std::string body = R"({"model": "r1", "messages": [{"role": "user", "content": "hi"}]})";
  if (!extra.empty()) body.insert(body.size() - 1, ", " + extra);
  return body;
}

std::string completion(const std::string& extra) {
  std::string body = R"({"model": "r1", "prompt": "Once upon")";
  if (!extra.empty()) body += ", " + extra;
  return body + "}";
}

ChatCompletionRequest chat_ok(const std::string& body,
                              const GenerationConfig& defaults = r1_defaults()) {
  auto r = parse_chat_completion_request(body, defaults);
  EXPECT_TRUE(r.ok()) << body << " -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : ChatCompletionRequest{};
}

CompletionRequest completion_ok(const std::string& body) {
  auto r = parse_completion_request(body, r1_defaults());
  EXPECT_TRUE(r.ok()) << body << " -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : CompletionRequest{};
}

struct BadCase {
  std::string body;
  std::string param;  // expected `param` ("" = null)
};

void expect_chat_400(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    auto r = parse_chat_completion_request(c.body, r1_defaults());
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().http_status, 400) << c.body;
    EXPECT_EQ(r.error().type, "invalid_request_error") << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << " -> " << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
  }
}

void expect_completion_400(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    auto r = parse_completion_request(c.body, r1_defaults());
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().http_status, 400) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << " -> " << r.error().message;
  }
}

TEST(ApiRequestTest, MalformedJson) {
  expect_chat_400({{"", ""},
                   {"{", ""},
                   {R"({"model": "r1",})", ""},
                   {R"({"model": "r1"} trailing)", ""},
                   {"\xff\xfe", ""},
                   {R"({"model": "bad \xff utf8"})", ""},
                   {R"([1, 2])", ""},
                   {R"("just a string")", ""},
                   {"null", ""}});
  auto r = parse_chat_completion_request("{", r1_defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos) << r.error().message;
}

TEST(ApiRequestTest, DeeplyNestedJsonIsAnErrorNotACrash) {
  std::string body = R"({"model": "r1", "messages": [{"role": "user", "content": "x"}], "x": )";
  body += std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = parse_chat_completion_request(body, r1_defaults());
  // An unknown field, deeply nested: refused, never a crash.
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 400);
}

TEST(ApiRequestTest, ModelField) {
  expect_chat_400({{R"({"messages": [{"role": "user", "content": "hi"}]})", "model"},
                   {R"({"model": 5, "messages": [{"role": "user", "content": "hi"}]})", "model"},
                   {R"({"model": "", "messages": [{"role": "user", "content": "hi"}]})", "model"},
                   {R"({"model": null, "messages": []})", "model"}});
}

TEST(ApiRequestTest, WrongTypesNameTheField) {
  expect_chat_400({
      {chat(R"("stream": "yes")"), "stream"},
      {chat(R"("stream": 1)"), "stream"},
      {chat(R"("stream": true, "stream_options": 3)"), "stream_options"},
      {chat(R"("stream": true, "stream_options": {"include_usage": "true"})"),
       "stream_options.include_usage"},
      {chat(R"("max_tokens": "10")"), "max_tokens"},
      {chat(R"("max_tokens": 1.5)"), "max_tokens"},
      {chat(R"("max_completion_tokens": [10])"), "max_completion_tokens"},
      {chat(R"("temperature": "0.7")"), "temperature"},
      {chat(R"("temperature": true)"), "temperature"},
      {chat(R"("top_p": {})"), "top_p"},
      {chat(R"("top_k": 2.5)"), "top_k"},
      {chat(R"("top_k": "5")"), "top_k"},
      {chat(R"("min_p": "0")"), "min_p"},
      {chat(R"("presence_penalty": [])"), "presence_penalty"},
      {chat(R"("frequency_penalty": "1")"), "frequency_penalty"},
      {chat(R"("repetition_penalty": false)"), "repetition_penalty"},
      {chat(R"("seed": "42")"), "seed"},
      {chat(R"("seed": 1.25)"), "seed"},
      {chat(R"("stop": 5)"), "stop"},
      {chat(R"("stop": ["a", 5])"), "stop[1]"},
      {chat(R"("stop_token_ids": 5)"), "stop_token_ids"},
      {chat(R"("stop_token_ids": ["a"])"), "stop_token_ids[0]"},
      {chat(R"("n": "2")"), "n"},
      {chat(R"("logprobs": 1)"), "logprobs"},
      {chat(R"("top_logprobs": "3")"), "top_logprobs"},
      {chat(R"("user": 7)"), "user"},
      {chat(R"("max_reasoning_tokens": "100")"), "max_reasoning_tokens"},
      {chat(R"("priority": "high")"), "priority"},
  });
  expect_completion_400({
      {completion(R"("logprobs": true)"), "logprobs"},
      {completion(R"("echo": "no")"), "echo"},
      {completion(R"("suffix": 3)"), "suffix"},
      {completion(R"("best_of": "2")"), "best_of"},
  });
}

TEST(ApiRequestTest, OutOfRangeValues) {
  expect_chat_400({
      {chat(R"("max_tokens": 0)"), "max_tokens"},
      {chat(R"("max_tokens": -5)"), "max_tokens"},
      {chat(R"("max_tokens": 4294967296)"), "max_tokens"},
      {chat(R"("max_completion_tokens": 0)"), "max_completion_tokens"},
      {chat(R"("temperature": -0.1)"), "temperature"},
      {chat(R"("temperature": 101)"), "temperature"},
      {chat(R"("temperature": 1e300)"), "temperature"},
      {chat(R"("top_p": 0)"), "top_p"},
      {chat(R"("top_p": 1.01)"), "top_p"},
      {chat(R"("top_k": -2)"), "top_k"},
      {chat(R"("min_p": 1.5)"), "min_p"},
      {chat(R"("presence_penalty": 2.5)"), "presence_penalty"},
      {chat(R"("frequency_penalty": -3)"), "frequency_penalty"},
      {chat(R"("repetition_penalty": 0)"), "repetition_penalty"},
      {chat(R"("n": 0)"), "n"},
      {chat(R"("n": 17)"), "n"},
      {chat(R"("n": 1000000)"), "n"},
      {chat(R"("top_logprobs": 21)"), "top_logprobs"},
      {chat(R"("top_logprobs": -1)"), "top_logprobs"},
      {chat(R"("top_logprobs": 3)"), "top_logprobs"},  // needs logprobs: true
      {chat(R"("logprobs": false, "top_logprobs": 3)"), "top_logprobs"},
      {chat(R"("max_reasoning_tokens": -1)"), "max_reasoning_tokens"},
      {chat(R"("priority": 3000000000)"), "priority"},
      {chat(R"("stop_token_ids": [-1])"), "stop_token_ids[0]"},
      {chat(R"("stop": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"])"),
       "stop"},
  });
  expect_completion_400({
      {completion(R"("logprobs": 6)"), "logprobs"},
      {completion(R"("logprobs": -1)"), "logprobs"},
      {completion(R"("n": 17)"), "n"},
  });
}

TEST(ApiRequestTest, RangeMessages) {
  auto r = parse_chat_completion_request(chat(R"("max_tokens": 0)"), r1_defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "max_tokens must be at least 1, got 0");
  r = parse_chat_completion_request(chat(R"("max_tokens": 4294967296)"), r1_defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "max_tokens must be in [1, 2147483647], got 4294967296");
  r = parse_chat_completion_request(chat(R"("temperature": "hot")"), r1_defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "temperature must be a number, got a string");
}

TEST(ApiRequestTest, NTooLargeMessageSaysTheLimit) {
  auto r = parse_chat_completion_request(chat(R"("n": 17)"), r1_defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("[1, 16]"), std::string::npos) << r.error().message;
  RequestLimits limits;
  limits.max_n = 32;
  EXPECT_TRUE(parse_chat_completion_request(chat(R"("n": 17)"), r1_defaults(), limits).ok());
}

TEST(ApiRequestTest, Messages) {
  expect_chat_400({
      {R"({"model": "r1"})", "messages"},
      {R"({"model": "r1", "messages": null})", "messages"},
      {R"({"model": "r1", "messages": []})", "messages"},
      {R"({"model": "r1", "messages": "hi"})", "messages"},
      {R"({"model": "r1", "messages": [5]})", "messages[0]"},
      {R"({"model": "r1", "messages": [{"content": "hi"}]})", "messages[0].role"},
      {R"({"model": "r1", "messages": [{"role": 1, "content": "hi"}]})", "messages[0].role"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": "a"},
          {"role": "robot", "content": "hi"}]})",
       "messages[1].role"},
      {R"({"model": "r1", "messages": [{"role": "function", "content": "x"}]})",
       "messages[0].role"},
      {R"({"model": "r1", "messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": null}]})",
       "messages[0].content"},
      {R"({"model": "r1", "messages": [{"role": "system", "content": 3}]})", "messages[0].content"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": [3]}]})",
       "messages[0].content[0]"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": [{"text": "a"}]}]})",
       "messages[0].content[0].type"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": [{"type": "image_url",
          "image_url": {"url": "http://x"}}]}]})",
       "messages[0].content[0].type"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": [{"type": "text"}]}]})",
       "messages[0].content[0].text"},
      {R"({"model": "r1", "messages": [{"role": "user", "content": "a",
          "tool_calls": []}]})",
       "messages[0].tool_calls"},
      {R"({"model": "r1", "messages": [{"role": "assistant", "tool_calls": {}}]})",
       "messages[0].tool_calls"},
      {R"({"model": "r1", "messages": [{"role": "assistant", "tool_calls": [{"type":
          "function"}]}]})",
       "messages[0].tool_calls[0].function"},
      {R"({"model": "r1", "messages": [{"role": "assistant", "tool_calls": [{"function":
          {"arguments": "{}"}}]}]})",
       "messages[0].tool_calls[0].function.name"},
      {R"({"model": "r1", "messages": [{"role": "assistant", "tool_calls": [{"type": "code",
          "function": {"name": "f"}}]}]})",
       "messages[0].tool_calls[0].type"},
  });
}

TEST(ApiRequestTest, MessageShapesAccepted) {
  ChatCompletionRequest r = chat_ok(R"({"model": "r1", "messages": [
      {"role": "developer", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
       "name": "bob"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
       "function": {"name": "add", "arguments": "{\"x\": 1}"}}]},
      {"role": "tool", "content": "2", "tool_call_id": "call_1"},
      {"role": "assistant", "reasoning_content": "hmm", "tool_calls": [{"function":
       {"name": "mul", "arguments": {"y": 2}}}]},
      {"role": "assistant", "content": "done"}]})");
  ASSERT_EQ(r.messages.size(), 6u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "be brief");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].content, "a\nb");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_FALSE(r.messages[2].content.has_value());
  ASSERT_EQ(r.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[2].tool_calls[0].type, "function");
  EXPECT_EQ(r.messages[2].tool_calls[0].name, "add");
  EXPECT_EQ(r.messages[2].tool_calls[0].arguments, "{\"x\": 1}");
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].content, "2");
  EXPECT_FALSE(r.messages[4].content.has_value());
  EXPECT_EQ(r.messages[4].tool_calls[0].arguments, "{\"y\":2}");
  EXPECT_EQ(r.messages[5].content, "done");
}

TEST(ApiRequestTest, DefaultsComeFromGenerationConfig) {
  ChatCompletionRequest r = chat_ok(chat(""));
  const SamplingParams& sp = r.options.sampling;
  EXPECT_FLOAT_EQ(sp.temperature, 0.6f);
  EXPECT_FLOAT_EQ(sp.top_p, 0.95f);
  EXPECT_EQ(sp.top_k, 0);
  EXPECT_FLOAT_EQ(sp.min_p, 0.0f);
  EXPECT_FLOAT_EQ(sp.repetition_penalty, 1.0f);
  EXPECT_FLOAT_EQ(sp.presence_penalty, 0.0f);
  EXPECT_FLOAT_EQ(sp.frequency_penalty, 0.0f);
  EXPECT_FALSE(sp.seed.has_value());
  EXPECT_FALSE(sp.logprobs);
  EXPECT_EQ(sp.n_top_logprobs, 0);
  EXPECT_FALSE(r.options.stream);
  EXPECT_FALSE(r.options.include_usage);
  EXPECT_FALSE(r.options.max_tokens.has_value());
  EXPECT_EQ(r.options.n, 1);
  EXPECT_TRUE(r.options.stop.empty());
  EXPECT_FALSE(r.options.max_reasoning_tokens.has_value());
  EXPECT_EQ(r.options.priority, 0);
  EXPECT_TRUE(r.options.ignored_fields.empty());

  GenerationConfig other;
  other.temperature = 0.3;
  other.top_k = 40;
  other.repetition_penalty = 1.1;
  ChatCompletionRequest r2 = chat_ok(chat(""), other);
  EXPECT_FLOAT_EQ(r2.options.sampling.temperature, 0.3f);
  EXPECT_FLOAT_EQ(r2.options.sampling.top_p, 1.0f);
  EXPECT_EQ(r2.options.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r2.options.sampling.repetition_penalty, 1.1f);

  // No generation_config values at all: OpenAI's defaults.
  ChatCompletionRequest r3 = chat_ok(chat(""), GenerationConfig{});
  EXPECT_FLOAT_EQ(r3.options.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r3.options.sampling.top_p, 1.0f);
}

TEST(ApiRequestTest, NullMeansDefault) {
  ChatCompletionRequest r = chat_ok(chat(
      R"("temperature": null, "top_p": null, "max_tokens": null, "stop": null, "n": null,
         "seed": null, "stream": null, "user": null, "logprobs": null, "top_logprobs": null)"));
  EXPECT_FLOAT_EQ(r.options.sampling.temperature, 0.6f);
  EXPECT_FLOAT_EQ(r.options.sampling.top_p, 0.95f);
  EXPECT_EQ(r.options.n, 1);
}

TEST(ApiRequestTest, RequestValuesOverrideDefaults) {
  ChatCompletionRequest r = chat_ok(chat(
      R"("temperature": 0, "top_p": 0.5, "top_k": 5.0, "min_p": 0.1, "presence_penalty": 1,
         "frequency_penalty": -1, "repetition_penalty": 1.2, "seed": 42, "n": 3,
         "logprobs": true, "top_logprobs": 4, "user": "u-1", "max_reasoning_tokens": 0,
         "priority": -2, "stream": true, "stream_options": {"include_usage": true},
         "stop_token_ids": [151643])"));
  const SamplingParams& sp = r.options.sampling;
  EXPECT_FLOAT_EQ(sp.temperature, 0.0f);
  EXPECT_FLOAT_EQ(sp.top_p, 0.5f);
  EXPECT_EQ(sp.top_k, 5);
  EXPECT_FLOAT_EQ(sp.min_p, 0.1f);
  EXPECT_FLOAT_EQ(sp.presence_penalty, 1.0f);
  EXPECT_FLOAT_EQ(sp.frequency_penalty, -1.0f);
  EXPECT_FLOAT_EQ(sp.repetition_penalty, 1.2f);
  EXPECT_EQ(sp.seed, 42u);
  EXPECT_TRUE(sp.logprobs);
  EXPECT_EQ(sp.n_top_logprobs, 4);
  EXPECT_EQ(r.options.n, 3);
  EXPECT_EQ(r.options.user, "u-1");
  EXPECT_EQ(r.options.max_reasoning_tokens, 0);
  EXPECT_EQ(r.options.priority, -2);
  EXPECT_TRUE(r.options.stream);
  EXPECT_TRUE(r.options.include_usage);
  EXPECT_EQ(r.options.stop_token_ids, std::vector<int32_t>{151643});
}

TEST(ApiRequestTest, Seeds) {
  EXPECT_EQ(chat_ok(chat(R"("seed": 18446744073709551615)")).options.sampling.seed,
            18446744073709551615ull);
  EXPECT_EQ(chat_ok(chat(R"("seed": -1)")).options.sampling.seed, 18446744073709551615ull);
  EXPECT_EQ(chat_ok(chat(R"("seed": 7.0)")).options.sampling.seed, 7u);
}

TEST(ApiRequestTest, MaxTokensAndMaxCompletionTokens) {
  ChatCompletionRequest r = chat_ok(chat(R"("max_tokens": 100)"));
  EXPECT_EQ(r.options.max_tokens, 100);
  EXPECT_EQ(r.options.max_tokens_param, "max_tokens");
  r = chat_ok(chat(R"("max_tokens": 100, "max_completion_tokens": 50)"));
  EXPECT_EQ(r.options.max_tokens, 50);
  EXPECT_EQ(r.options.max_tokens_param, "max_completion_tokens");
  // Completions has no max_completion_tokens (OpenAI and vLLM).
  expect_completion_400({{completion(R"("max_completion_tokens": 5)"), "max_completion_tokens"}});
}

// vLLM's ignore_eos and min_tokens, which serving benchmarks send for fixed
// output lengths, in chat and completions.
TEST(ApiRequestTest, IgnoreEosAndMinTokens) {
  ChatCompletionRequest r =
      chat_ok(chat(R"("ignore_eos": true, "min_tokens": 16, "max_tokens": 16)"));
  EXPECT_TRUE(r.options.ignore_eos);
  EXPECT_EQ(r.options.min_tokens, 16);
  r = chat_ok(chat(R"("ignore_eos": null, "min_tokens": null)"));
  EXPECT_FALSE(r.options.ignore_eos);
  EXPECT_EQ(r.options.min_tokens, 0);
  CompletionRequest c = completion_ok(completion(R"("ignore_eos": true, "min_tokens": 3)"));
  EXPECT_TRUE(c.options.ignore_eos);
  EXPECT_EQ(c.options.min_tokens, 3);
  expect_chat_400({{chat(R"("ignore_eos": "yes")"), "ignore_eos"},
                   {chat(R"("min_tokens": -1)"), "min_tokens"},
                   {chat(R"("min_tokens": 1.5)"), "min_tokens"},
                   {chat(R"("min_tokens": 9, "max_completion_tokens": 8)"), "min_tokens"}});
  expect_completion_400({{completion(R"("min_tokens": 20, "max_tokens": 10)"), "min_tokens"}});
}

TEST(ApiRequestTest, StopForms) {
  EXPECT_EQ(chat_ok(chat(R"("stop": "\n\n")")).options.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(chat_ok(chat(R"("stop": ["a", "", "bc"])")).options.stop,
            (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(chat_ok(chat(R"("stop": "")")).options.stop.empty());
  EXPECT_TRUE(chat_ok(chat(R"("stop": [])")).options.stop.empty());
  EXPECT_EQ(chat_ok(chat(R"("stop": ["世界"])")).options.stop, std::vector<std::string>{"世界"});
  expect_chat_400({{chat(R"("stop": ")" + std::string(1025, 'x') + "\""), "stop"}});
}

TEST(ApiRequestTest, StreamOptionsNeedStream) {
  expect_chat_400({{chat(R"("stream_options": {"include_usage": true})"), "stream_options"},
                   {chat(R"("stream": false, "stream_options": {})"), "stream_options"}});
  EXPECT_TRUE(chat_ok(chat(R"("stream_options": null)")).options.include_usage == false);
}

TEST(ApiRequestTest, UnknownFieldsAreRefusedLikeOpenAI) {
  expect_chat_400({{chat(R"("temprature": 0.5)"), "temprature"},
                   {chat(R"("guided_json": {"type": "object"})"), "guided_json"}});
  auto r = parse_chat_completion_request(chat(R"("foo": 1)"), r1_defaults());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Unrecognized request argument supplied: foo");
  // Known keys of the other endpoint are unknown here.
  expect_completion_400({{completion(R"("messages": [])"), "messages"},
                         {completion(R"("top_logprobs": 2)"), "top_logprobs"}});
  expect_chat_400({{chat(R"("prompt": "x")"), "prompt"}});
}

TEST(ApiRequestTest, FieldsWithoutEffectAreAcceptedAndReported) {
  ChatCompletionRequest r = chat_ok(chat(
      R"("metadata": {"a": 1}, "store": false, "parallel_tool_calls": true,
         "chat_template_kwargs": {"thinking": true}, "skip_special_tokens": true)"));
  EXPECT_EQ(r.options.ignored_fields,
            (std::vector<std::string>{"chat_template_kwargs", "metadata", "parallel_tool_calls",
                                      "skip_special_tokens", "store"}));
}

TEST(ApiRequestTest, UnknownFieldsIgnoredWhenConfigured) {
  RequestLimits limits;
  limits.reject_unknown_fields = false;
  auto r = parse_chat_completion_request(chat(R"("zeta": 1, "alpha": [])"), r1_defaults(), limits);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->options.ignored_fields, (std::vector<std::string>{"alpha", "zeta"}));
}

TEST(ApiRequestTest, UnsupportedFeaturesAreRefused) {
  expect_chat_400({
      {chat(R"("tools": [{"type": "function", "function": {"name": "f"}}])"), "tools"},
      {chat(R"("tools": {})"), "tools"},
      {chat(R"("functions": [{"name": "f"}])"), "functions"},
      {chat(R"("tool_choice": "required")"), "tool_choice"},
      {chat(R"("tool_choice": {"type": "function", "function": {"name": "f"}})"), "tool_choice"},
      {chat(R"("response_format": {"type": "json_object"})"), "response_format"},
      {chat(R"("response_format": "json")"), "response_format"},
      {chat(R"("logit_bias": {"50256": -100})"), "logit_bias"},
  });
  expect_completion_400({
      {completion(R"("echo": true)"), "echo"},
      {completion(R"("suffix": "end")"), "suffix"},
      {completion(R"("best_of": 3)"), "best_of"},
  });
  // Harmless values of the same fields are fine.
  chat_ok(chat(R"("tools": [], "tool_choice": "none", "response_format": {"type": "text"},
                  "logit_bias": {})"));
  completion_ok(completion(R"("echo": false, "suffix": "", "best_of": 1)"));
}

TEST(ApiRequestTest, CompletionPrompts) {
  CompletionRequest c = completion_ok(completion(""));
  EXPECT_EQ(c.prompt_text, "Once upon");
  EXPECT_TRUE(c.prompt_token_ids.empty());
  c = completion_ok(R"({"model": "r1", "prompt": [1, 2, 3]})");
  EXPECT_FALSE(c.prompt_text.has_value());
  EXPECT_EQ(c.prompt_token_ids, (std::vector<int32_t>{1, 2, 3}));
  c = completion_ok(R"({"model": "r1", "prompt": ["only one"]})");
  EXPECT_EQ(c.prompt_text, "only one");
  c = completion_ok(R"({"model": "r1", "prompt": [[7, 8]]})");
  EXPECT_EQ(c.prompt_token_ids, (std::vector<int32_t>{7, 8}));

  expect_completion_400({
      {R"({"model": "r1"})", "prompt"},
      {R"({"model": "r1", "prompt": null})", "prompt"},
      {R"({"model": "r1", "prompt": ""})", "prompt"},
      {R"({"model": "r1", "prompt": []})", "prompt"},
      {R"({"model": "r1", "prompt": 5})", "prompt"},
      {R"({"model": "r1", "prompt": {"text": "x"}})", "prompt"},
      {R"({"model": "r1", "prompt": ["a", "b"]})", "prompt"},
      {R"({"model": "r1", "prompt": [[1], [2]]})", "prompt"},
      {R"({"model": "r1", "prompt": [1, "a"]})", "prompt[1]"},
      {R"({"model": "r1", "prompt": [1, -4]})", "prompt[1]"},
      {R"({"model": "r1", "prompt": [[1, 2.5]]})", "prompt[0][1]"},
  });

  RequestLimits limits;
  limits.n_vocab = 100;
  auto r =
      parse_completion_request(R"({"model": "r1", "prompt": [99, 100]})", r1_defaults(), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().param, "prompt[1]");
  EXPECT_NE(r.error().message.find("[0, 100)"), std::string::npos) << r.error().message;
}

TEST(ApiRequestTest, CompletionLogprobs) {
  CompletionRequest c = completion_ok(completion(R"("logprobs": 0)"));
  EXPECT_TRUE(c.options.sampling.logprobs);
  EXPECT_EQ(c.options.sampling.n_top_logprobs, 0);
  c = completion_ok(completion(R"("logprobs": 5)"));
  EXPECT_EQ(c.options.sampling.n_top_logprobs, 5);
  c = completion_ok(completion(""));
  EXPECT_FALSE(c.options.sampling.logprobs);
}

TEST(ApiRequestTest, ResolveMaxTokens) {
  auto r = resolve_max_tokens(100, std::nullopt, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 3996);
  r = resolve_max_tokens(100, 50, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 50);
  r = resolve_max_tokens(100, 3996, 4096);
  ASSERT_TRUE(r.ok());
  r = resolve_max_tokens(100, 3997, 4096, "max_completion_tokens");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_EQ(r.error().param, "max_completion_tokens");
  r = resolve_max_tokens(4096, std::nullopt, 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 413);
  r = resolve_max_tokens(9000, 10, 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 413);
}

}  // namespace
}  // namespace r1
