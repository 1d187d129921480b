// Response builders against hand-written JSON in the shapes of OpenAI's API
// reference (chat completion, chunk, usage chunk, legacy completion, model
// list), and SSE framing.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "server/api/openai_response.h"

namespace r1 {
namespace {

using json = nlohmann::json;

const ResponseHeader kChatHeader{"chatcmpl-abc123", 1700000000, "r1-1.5b"};
const ResponseHeader kCmplHeader{"cmpl-abc123", 1700000000, "r1-1.5b"};

TEST(ApiResponseTest, ChatCompletion) {
  ChatChoice choice;
  choice.content = "4";
  choice.reasoning_content = "2 + 2 is 4.";
  choice.finish_reason = FinishReason::kStop;
  json got = chat_completion_json(kChatHeader, {&choice, 1}, Usage{10, 7, 5});
  json want = json::parse(R"({
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "r1-1.5b",
    "choices": [{
      "index": 0,
      "message": {"role": "assistant", "content": "4", "reasoning_content": "2 + 2 is 4."},
      "logprobs": null,
      "finish_reason": "stop"
    }],
    "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
              "completion_tokens_details": {"reasoning_tokens": 5}}
  })");
  EXPECT_EQ(got, want) << got.dump(2);
}

TEST(ApiResponseTest, ChatCompletionNullPartsAndLength) {
  std::vector<ChatChoice> choices(2);
  choices[0].reasoning_content = "never closed";
  choices[0].finish_reason = FinishReason::kLength;
  choices[1].index = 1;
  choices[1].content = "plain";
  json got = chat_completion_json(kChatHeader, choices, Usage{1, 2, 2});
  EXPECT_TRUE(got["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(got["choices"][0]["message"]["reasoning_content"], "never closed");
  EXPECT_EQ(got["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(got["choices"][1]["index"], 1);
  EXPECT_TRUE(got["choices"][1]["message"]["reasoning_content"].is_null());
  EXPECT_EQ(got["choices"][1]["message"]["content"], "plain");
}

TEST(ApiResponseTest, ChatLogprobs) {
  LogprobEntry entry{"Hi", -0.25f, {{"Hi", -0.25f}, {"Hey", -1.5f}}};
  json got = chat_logprobs_json({&entry, 1});
  json want = json::parse(R"({
    "content": [{
      "token": "Hi", "logprob": -0.25, "bytes": [72, 105],
      "top_logprobs": [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
        {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121]}
      ]
    }],
    "refusal": null
  })");
  EXPECT_EQ(got, want) << got.dump(2);
}

TEST(ApiResponseTest, LogprobsOfPartialCharactersAndInfinity) {
  // First byte of "é": the token text is replaced, the bytes are exact.
  LogprobEntry entry{"\xC3", -std::numeric_limits<float>::infinity(), {}};
  json got = chat_logprobs_json({&entry, 1});
  std::string text = to_json_text(got);
  json back = json::parse(text);
  EXPECT_EQ(back["content"][0]["token"], "\xEF\xBF\xBD");
  EXPECT_EQ(back["content"][0]["bytes"], json::array({195}));
  EXPECT_EQ(back["content"][0]["logprob"], -9999.0);
}

TEST(ApiResponseTest, ChatChunks) {
  ChatChunkChoice first;
  first.role = true;
  first.content = "";
  json got = chat_chunk_json(kChatHeader, {&first, 1}, false);
  json want = json::parse(R"({
    "id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "r1-1.5b",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                 "logprobs": null, "finish_reason": null}]
  })");
  EXPECT_EQ(got, want) << got.dump(2);

  ChatChunkChoice reasoning;
  reasoning.reasoning_content = "Let me see";
  got = chat_chunk_json(kChatHeader, {&reasoning, 1}, true);
  want = json::parse(R"({
    "id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "r1-1.5b",
    "choices": [{"index": 0, "delta": {"reasoning_content": "Let me see"},
                 "logprobs": null, "finish_reason": null}],
    "usage": null
  })");
  EXPECT_EQ(got, want) << got.dump(2);

  ChatChunkChoice last;
  last.finish_reason = FinishReason::kLength;
  got = chat_chunk_json(kChatHeader, {&last, 1}, false);
  EXPECT_EQ(got["choices"][0]["delta"], json::object());
  EXPECT_EQ(got["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(got.contains("usage"));
}

TEST(ApiResponseTest, ChatUsageChunk) {
  json got = chat_usage_chunk_json(kChatHeader, Usage{3, 4, 1});
  json want = json::parse(R"({
    "id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "r1-1.5b", "choices": [],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
              "completion_tokens_details": {"reasoning_tokens": 1}}
  })");
  EXPECT_EQ(got, want) << got.dump(2);
}

TEST(ApiResponseTest, TextCompletion) {
  CompletionChoice choice;
  choice.text = " a time";
  choice.finish_reason = FinishReason::kLength;
  json got = completion_json(kCmplHeader, {&choice, 1}, Usage{2, 2, 0});
  json want = json::parse(R"({
    "id": "cmpl-abc123", "object": "text_completion", "created": 1700000000,
    "model": "r1-1.5b",
    "choices": [{"index": 0, "text": " a time", "logprobs": null, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4,
              "completion_tokens_details": {"reasoning_tokens": 0}}
  })");
  EXPECT_EQ(got, want) << got.dump(2);
}

TEST(ApiResponseTest, TextCompletionChunksAndLogprobs) {
  CompletionChoice choice;
  choice.text = " a time";
  choice.text_offset = 9;
  choice.logprobs = std::vector<LogprobEntry>{{" a", -0.5f, {{" a", -0.5f}, {" the", -2.0f}}},
                                              {" time", -0.125f, {}}};
  json got = completion_chunk_json(kCmplHeader, {&choice, 1}, false);
  json want = json::parse(R"({
    "id": "cmpl-abc123", "object": "text_completion", "created": 1700000000,
    "model": "r1-1.5b",
    "choices": [{"index": 0, "text": " a time",
                 "logprobs": {"tokens": [" a", " time"], "token_logprobs": [-0.5, -0.125],
                              "top_logprobs": [{" a": -0.5, " the": -2.0}, {}],
                              "text_offset": [9, 11]},
                 "finish_reason": null}]
  })");
  EXPECT_EQ(got, want) << got.dump(2);
  EXPECT_TRUE(completion_chunk_json(kCmplHeader, {&choice, 1}, true)["usage"].is_null());
  json usage = completion_usage_chunk_json(kCmplHeader, Usage{1, 1, 0});
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 2);
  EXPECT_EQ(usage["object"], "text_completion");
}

TEST(ApiResponseTest, ModelList) {
  std::vector<ModelCard> models = {{"r1-1.5b", 1700000000, "r1serve", 16384},
                                   {"r1-7b", 1700000001, "deepseek", std::nullopt, "", ""}};
  json got = model_list_json(models);
  json want = json::parse(R"({
    "object": "list",
    "data": [
      {"id": "r1-1.5b", "object": "model", "created": 1700000000, "owned_by": "r1serve",
       "max_model_len": 16384},
      {"id": "r1-7b", "object": "model", "created": 1700000001, "owned_by": "deepseek"}
    ]
  })");
  EXPECT_EQ(got, want) << got.dump(2);
  EXPECT_EQ(model_list_json({}), json::parse(R"({"object": "list", "data": []})"));
}

TEST(ApiResponseTest, IdsAndTime) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = make_response_id("chatcmpl");
    ASSERT_EQ(id.size(), std::string("chatcmpl-").size() + 24);
    ASSERT_EQ(id.rfind("chatcmpl-", 0), 0u);
    for (char c : id.substr(9)) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  int64_t now = unix_time_now();
  EXPECT_GT(now, 1700000000);  // after 2023-11
}

TEST(ApiResponseTest, SseFraming) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // Newlines inside strings are escaped, so one event stays one line.
  EXPECT_EQ(sse_event(json{{"t", "x\ny"}}), "data: {\"t\":\"x\\ny\"}\n\n");
}

}  // namespace
}  // namespace r1
