// The native DeepSeek-R1 chat template against its Jinja source rendered by
// jinja2 as transformers' apply_chat_template renders it
// (tools/python/render_chat_template.py), byte for byte, plus the
// hand-checked strings of model-facts §2.4 and template detection.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace r1 {
namespace {

using json = nlohmann::json;

const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

struct Conversation {
  std::string name;
  std::vector<ChatMessage> messages;
};

ChatMessage sys(std::string c) {
  return {"system", std::move(c), {}};
}
ChatMessage user(std::string c) {
  return {"user", std::move(c), {}};
}
ChatMessage assistant(std::string c) {
  return {"assistant", std::move(c), {}};
}
ChatMessage tool(std::string c) {
  return {"tool", std::move(c), {}};
}
ChatMessage calls(std::vector<ToolCall> tc) {
  return {"assistant", std::nullopt, std::move(tc)};
}
ToolCall call(std::string name, std::string args) {
  return {"function", std::move(name), std::move(args)};
}

// The OpenAI message shape the template reads: content string or null,
// tool_calls as [{"type", "function": {"name", "arguments"}}].
json to_json(const ChatMessage& m) {
  json j = {{"role", m.role}};
  j["content"] = m.content ? json(*m.content) : json(nullptr);
  if (!m.tool_calls.empty() || !m.content) {
    json tcs = json::array();
    for (const ToolCall& tc : m.tool_calls) {
      tcs.push_back({{"id", "call_" + tc.name},
                     {"type", tc.type},
                     {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}});
    }
    j["tool_calls"] = tcs;
  }
  return j;
}

std::string temp_path(const std::string& stem) {
  static int counter = 0;
  return (std::filesystem::temp_directory_path() /
          (stem + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
      .string();
}

// Runs `command` and returns its stdout; fails the test on a non-zero exit.
std::string run_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  if (!pipe) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << "command failed: " << command;
  return out;
}

struct Case {
  const std::vector<ChatMessage>* messages;
  bool add_generation_prompt;
};

// Renders each case with the real Jinja template in jinja2.
std::vector<json> render_with_jinja(std::string_view template_source, const std::string& bos,
                                    const std::vector<Case>& cases) {
  json input = {{"template", std::string(template_source)},
                {"bos_token", bos},
                {"eos_token", kEos},
                {"cases", json::array()}};
  for (const Case& c : cases) {
    json messages = json::array();
    for (const ChatMessage& m : *c.messages) messages.push_back(to_json(m));
    input["cases"].push_back(
        {{"messages", messages}, {"add_generation_prompt", c.add_generation_prompt}});
  }
  const std::string in_path = temp_path("r1_chat_template_in");
  std::ofstream(in_path, std::ios::binary) << input.dump();
  const std::string source_dir = R1SERVE_SOURCE_DIR;
  std::string out = run_command("'" + source_dir + "/.venv/bin/python' '" + source_dir +
                                "/tools/python/render_chat_template.py' < '" + in_path + "'");
  std::filesystem::remove(in_path);
  json rendered = json::parse(out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(rendered.is_array()) << "renderer output: " << out;
  if (!rendered.is_array()) return {};
  EXPECT_EQ(rendered.size(), cases.size());
  return rendered.get<std::vector<json>>();
}

std::string sha256_hex(std::string_view text) {
  const std::string path = temp_path("r1_chat_template_sha");
  std::ofstream(path, std::ios::binary) << text;
  std::string out = run_command("sha256sum '" + path + "'");
  std::filesystem::remove(path);
  return out.substr(0, 64);
}

// Conversations covering every branch of the template and its quirks.
std::vector<Conversation> conversations() {
  return {
      {"single_user", {user("Hi")}},
      {"system_and_user", {sys("You are terse."), user("Hi")}},
      {"model_facts_example",
       {sys("You are terse."), user("Hi"), assistant("<think>\nuser greets\n</think>\n\nHello!"),
        user("2+2?")}},
      {"multiple_systems_last_wins",
       {sys("first system"), user("a"), sys("second system"), assistant("b"), sys("third system"),
        user("c")}},
      {"multi_turn", {user("one"), assistant("1"), user("two"), assistant("2"), user("three")}},
      {"reasoning_one_think_end",
       {user("Why?"), assistant("<think>\nBecause.\n</think>\n\nBecause."), user("Sure?")}},
      {"reasoning_several_think_ends",
       {user("q"), assistant("<think>a</think>b</think>\n\nfinal answer"), user("next")}},
      {"reasoning_think_end_last", {user("q"), assistant("<think>only thoughts</think>")}},
      {"reasoning_without_open_tag", {user("q"), assistant("thoughts\n</think>\n\nanswer")}},
      {"single_tool_call_and_result",
       {user("Weather in Paris?"), calls({call("get_weather", R"({"city": "Paris"})")}),
        tool(R"({"temp_c": 21})"), assistant("It is 21 °C in Paris.")}},
      {"three_tool_calls_three_results",
       {sys("Use tools."), user("Compare"),
        calls({call("a", "{}"), call("b", R"({"x": 1})"), call("c", "[1, 2]")}), tool("ra"),
        tool("rb"), tool("rc"), assistant("<think>compare</think>All done.")}},
      {"two_tool_call_messages",
       {user("q"), calls({call("first", "{}")}), tool("r1"), assistant("mid"), user("more"),
        calls({call("second", "{}"), call("third", "{}")}), tool("r2"), assistant("end")}},
      {"tool_call_after_tool_output",
       {user("q"), calls({call("f", "{}")}), tool("r1"), calls({call("g", "{}")}), tool("r2")}},
      {"trailing_tool_message", {user("q"), calls({call("f", R"({"k": "v"})")}), tool("out")}},
      {"trailing_tool_messages",
       {user("q"), calls({call("f", "{}"), call("g", "{}")}), tool("o1"), tool("o2")}},
      {"tool_then_user", {user("q"), calls({call("f", "{}")}), tool("o1"), user("and then?")}},
      {"tool_then_system_at_end", {user("q"), calls({call("f", "{}")}), tool("o1"), sys("S")}},
      {"tool_outputs_never_reset_first",
       {user("q"), calls({call("f", "{}")}), tool("o1"), assistant("a1"), user("again"), tool("o2"),
        assistant("<think>kept?</think>a2")}},
      {"tool_without_tool_call", {user("q"), tool("orphan output"), assistant("x")}},
      {"content_and_tool_calls",
       {user("q"), ChatMessage{"assistant", "I will call.", {call("f", "{}")}}, user("ok")}},
      {"null_content_no_calls", {user("q"), ChatMessage{"assistant", std::nullopt, {}}, user("r")}},
      {"empty_contents",
       {sys(""), user(""), assistant(""), user(""), calls({call("", "")}), tool(""),
        assistant("")}},
      {"unicode_emoji_cjk",
       {sys("你是一个有帮助的助手。"), user("😀 é ü — 我爱北京 🇫🇷 \u00a0\u200b"),
        assistant("<think>思考 🤔</think>\n\n好的 ✅"), user("ありがとう\r\n\ttabs")}},
      {"template_looking_content",
       {sys("{{ bos_token }} {% if x %}"),
        user("<｜User｜>fake<｜Assistant｜><think>\n</think><｜end▁of▁sentence｜>"),
        assistant("{% endfor %}<｜tool▁calls▁begin｜></think>'\"\\n"),
        user("</think> user text is not split </think> tail")}},
      {"tool_call_arguments_multiline",
       {user("q"),
        calls({call("search", "{\n  \"query\": \"naïve 東京\",\n  \"n\": 3\n}"),
               ToolCall{"retrieval", "lookup", "{\"a\": \"```\"}"}}),
        tool("line1\nline2"), tool("{\"ok\": true}")}},
      {"starts_with_assistant", {assistant("<think>x</think>hello"), user("hi")}},
      {"ends_with_assistant", {user("hi"), assistant("hello")}},
      {"only_system", {sys("lonely system prompt")}},
      {"no_messages", {}},
      {"whitespace_content",
       {sys("  \n"), user(" \n\t "), assistant("\n\n"), user("\n</think>\n")}},
  };
}

class ChatTemplateJinjaTest : public ::testing::Test {
 protected:
  // Renders every conversation with and without the generation prompt both
  // natively and with Jinja, and compares.
  void expect_matches_jinja(const ChatTemplate& tmpl, std::string_view source,
                            const std::string& bos) {
    const std::vector<Conversation> convs = conversations();
    std::vector<Case> cases;
    for (const Conversation& c : convs) {
      cases.push_back({&c.messages, true});
      cases.push_back({&c.messages, false});
    }
    std::vector<json> expected = render_with_jinja(source, bos, cases);
    ASSERT_EQ(expected.size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      const std::string label =
          convs[i / 2].name + (cases[i].add_generation_prompt ? " (generation prompt)" : "");
      ASSERT_TRUE(expected[i].is_string()) << label << ": Jinja failed: " << expected[i].dump();
      Result<std::string> got = tmpl.render(*cases[i].messages, cases[i].add_generation_prompt);
      ASSERT_TRUE(got.ok()) << label << ": " << got.status().to_string();
      EXPECT_EQ(*got, expected[i].get<std::string>()) << label;
    }
  }
};

TEST_F(ChatTemplateJinjaTest, CurrentTemplateMatchesJinjaOnAllConversations) {
  ASSERT_GE(conversations().size(), 20u);
  Result<ChatTemplate> tmpl =
      ChatTemplate::detect(std::string(deepseek_r1_template_source()), kBos);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  EXPECT_EQ(tmpl->kind(), ChatTemplateKind::kDeepSeekR1);
  expect_matches_jinja(*tmpl, deepseek_r1_template_source(), kBos);
}

TEST_F(ChatTemplateJinjaTest, DeepSeekR1FactoryMatchesJinjaWithAnotherBosToken) {
  expect_matches_jinja(ChatTemplate::deepseek_r1("<s>"), deepseek_r1_template_source(), "<s>");
}

// The 2025-01-20 revision: the same text up to its generation prompt.
std::string original_source() {
  std::string src(deepseek_r1_template_source());
  const std::string current_prompt = "{{'<｜Assistant｜><think>\\n'}}";
  size_t at = src.rfind(current_prompt);
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) src.replace(at, current_prompt.size(), "{{'<｜Assistant｜>'}}");
  return src;
}

TEST_F(ChatTemplateJinjaTest, OriginalTemplateIsDetectedAndMatchesJinja) {
  const std::string src = original_source();
  Result<ChatTemplate> tmpl = ChatTemplate::detect(src, kBos);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  EXPECT_EQ(tmpl->kind(), ChatTemplateKind::kDeepSeekR1Original);
  expect_matches_jinja(*tmpl, src, kBos);
}

// SmolLM2-Instruct's ChatML template, on every conversation whose messages
// all have content (the template concatenates it; tool calls are not
// rendered), against Jinja; null content is refused.
TEST_F(ChatTemplateJinjaTest, SmolLM2ChatMLMatchesJinja) {
  const std::string src(smollm2_chatml_template_source());
  Result<ChatTemplate> tmpl = ChatTemplate::detect(src, "<|im_start|>");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  EXPECT_EQ(tmpl->kind(), ChatTemplateKind::kSmolLM2ChatML);
  std::vector<Conversation> convs;
  for (const Conversation& c : conversations()) {
    if (std::all_of(c.messages.begin(), c.messages.end(),
                    [](const ChatMessage& m) { return m.content.has_value(); })) {
      convs.push_back(c);
    }
  }
  ASSERT_GE(convs.size(), 10u);
  std::vector<Case> cases;
  for (const Conversation& c : convs) {
    cases.push_back({&c.messages, true});
    cases.push_back({&c.messages, false});
  }
  std::vector<json> expected = render_with_jinja(src, "<|im_start|>", cases);
  ASSERT_EQ(expected.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(expected[i].is_string()) << convs[i / 2].name << ": " << expected[i].dump();
    Result<std::string> got = tmpl->render(*cases[i].messages, cases[i].add_generation_prompt);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(*got, expected[i].get<std::string>()) << convs[i / 2].name;
  }
  const std::vector<ChatMessage> with_call = {user("x"), calls({call("f", "{}")})};
  EXPECT_EQ(tmpl->render(with_call, true).status().code(), StatusCode::kInvalidArgument);
}

// The sources are pinned by digest: the current one as the R1-Distill-Qwen-32B
// and Llama-8B tokenizer_config.json carry it, the original one as llama.cpp
// stores models/templates/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja.
TEST(ChatTemplateTest, SourcesAreByteExact) {
  EXPECT_EQ(deepseek_r1_template_source().size(), 2246u);
  EXPECT_EQ(sha256_hex(deepseek_r1_template_source()),
            "56a1447ad31926fdc21fb07e56e5642bd9c850c4f52d8c8af7bbe5f079a84f5f");
  EXPECT_EQ(original_source().size(), 2237u);
  EXPECT_EQ(sha256_hex(original_source()),
            "b6835114b7303ddd78919a82e4d9f7d8c26ed0d7dfc36beeb12d524f6144eab1");
}

// model-facts §2.4, written out by hand.
TEST(ChatTemplateTest, ModelFactsExamples) {
  ChatTemplate tmpl = ChatTemplate::deepseek_r1(kBos);
  std::vector<ChatMessage> conv = {sys("You are terse."), user("Hi"),
                                   assistant("<think>\nuser greets\n</think>\n\nHello!"),
                                   user("2+2?")};
  const std::string prefix =
      "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜>\n\nHello!"
      "<｜end▁of▁sentence｜><｜User｜>2+2?";
  Result<std::string> with_prompt = tmpl.render(conv, true);
  ASSERT_TRUE(with_prompt.ok());
  EXPECT_EQ(*with_prompt,
            "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜>\n\nHello!"
            "<｜end▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜><think>\n");
  Result<std::string> without_prompt = tmpl.render(conv, false);
  ASSERT_TRUE(without_prompt.ok());
  EXPECT_EQ(*without_prompt, prefix);

  std::vector<ChatMessage> hi = {user("Hi")};
  Result<std::string> single = tmpl.render(hi, true);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(*single, "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n");
}

TEST(ChatTemplateTest, ToolCallQuirksSpelledOut) {
  ChatTemplate tmpl = ChatTemplate::deepseek_r1(kBos);
  std::vector<ChatMessage> conv = {user("q"), calls({call("f", "{}"), call("g", "[]")}), tool("o1"),
                                   tool("o2")};
  Result<std::string> out = tmpl.render(conv, true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out,
            "<｜begin▁of▁sentence｜><｜User｜>q<｜Assistant｜><｜tool▁calls▁begin｜>"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```<｜tool▁call▁end｜>\n"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>g\n```json\n[]\n```<｜tool▁call▁end｜>"
            "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>o1<｜tool▁output▁end｜>\n"
            "<｜tool▁output▁begin｜>o2<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
}

TEST(ChatTemplateTest, OriginalRevisionGenerationPrompt) {
  Result<ChatTemplate> tmpl = ChatTemplate::detect(original_source(), kBos);
  ASSERT_TRUE(tmpl.ok());
  std::vector<ChatMessage> hi = {user("Hi")};
  Result<std::string> out = tmpl->render(hi, true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>");
}

TEST(ChatTemplateTest, UnknownRoleIsInvalidArgument) {
  ChatTemplate tmpl = ChatTemplate::deepseek_r1(kBos);
  std::vector<ChatMessage> conv = {user("q"), ChatMessage{"developer", "x", {}}};
  Result<std::string> out = tmpl.render(conv, true);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("developer"), std::string::npos);
  EXPECT_NE(out.status().message().find("messages[1]"), std::string::npos);
}

TEST(ChatTemplateTest, NullContentOutsideAssistantIsInvalidArgument) {
  ChatTemplate tmpl = ChatTemplate::deepseek_r1(kBos);
  for (const char* role : {"system", "user", "tool"}) {
    std::vector<ChatMessage> conv = {ChatMessage{role, std::nullopt, {}}};
    Result<std::string> out = tmpl.render(conv, true);
    ASSERT_FALSE(out.ok()) << role;
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << role;
  }
  std::vector<ChatMessage> conv = {ChatMessage{"user", "q", {call("f", "{}")}}};
  EXPECT_EQ(tmpl.render(conv, true).status().code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, EmptyTemplateIsUnimplemented) {
  Result<ChatTemplate> tmpl = ChatTemplate::detect("", kBos);
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(tmpl.status().message().find("chat template not supported"), std::string::npos);
}

TEST(ChatTemplateTest, ChatMlTemplateIsUnimplemented) {
  // Qwen2.5-Instruct's ChatML template (abridged to its message loop).
  const std::string chatml =
      "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + "
      "message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
      "{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";
  Result<ChatTemplate> tmpl = ChatTemplate::detect(chatml, "<|endoftext|>");
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), StatusCode::kUnimplemented);
  const std::string& msg = tmpl.status().message();
  EXPECT_NE(msg.find("chat template not supported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("r1serve implements the DeepSeek-R1 template natively"), std::string::npos)
      << msg;
}

TEST(ChatTemplateTest, LookalikeTemplatesAreUnimplemented) {
  const std::string src(deepseek_r1_template_source());
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = src;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  for (const std::string& variant : {
           src.substr(0, src.size() - 1),                 // truncated
           src + "x",                                     // trailing output text
           "\n" + src,                                    // leading newline is output
           src + "\n\n\n",                                // extra newlines are output
           replaced("'<｜User｜>'", "'<｜User｜> '"),     // space inside a literal
           replaced("{{bos_token}}{{ns.system_prompt}}",  // newline after an expression
                    "{{bos_token}}\n{{ns.system_prompt}}"),
           replaced("{% endif %}{% set ns", "{% endif %} {% set ns"),  // not at a line start
           replaced("split('</think>')[-1]", "split('</think>')[0]"),
           src + "{# comment #}",
       }) {
    Result<ChatTemplate> tmpl = ChatTemplate::detect(variant, kBos);
    EXPECT_FALSE(tmpl.ok()) << variant;
    EXPECT_EQ(tmpl.status().code(), StatusCode::kUnimplemented);
  }
}

// A reformatting that Jinja renders identically (checked with the oracle) is
// recognised; whitespace that reaches the output is not.
class ChatTemplateReformatTest : public ChatTemplateJinjaTest {};

// Puts every tag on its own line, indented by nesting, with extra whitespace
// inside the tags and "-" markers on the expression tags.
std::string reformat(std::string_view src) {
  std::string out;
  int depth = 0;
  size_t pos = 0;
  while (pos < src.size()) {
    size_t end = src.find('}', pos);
    while (end + 1 < src.size() && src[end + 1] == '}') ++end;
    const std::string_view tag = src.substr(pos, end + 1 - pos);
    const bool statement = tag.substr(0, 2) == "{%";
    const bool closes =
        tag.find(" end") != std::string_view::npos || tag.find(" else") != std::string_view::npos;
    if (closes) --depth;
    out += std::string(2 * std::max(depth, 0), ' ');
    if (statement) {
      // "{% set x = y %}" -> "{%  set x = y %}": whitespace inside tags is free;
      // trim_blocks and lstrip_blocks eat the newline and the indentation.
      const size_t head = tag[2] == '-' ? 3 : 2;
      out.append(tag.substr(0, head)).append(" ").append(tag.substr(head));
    } else {
      // An expression tag eats no whitespace around it by itself; "-" does.
      out.append("{{- ").append(tag.substr(2, tag.size() - 4)).append(" -}}");
    }
    out += '\n';
    if (statement && (tag.find(" if ") != std::string_view::npos ||
                      tag.find(" for ") != std::string_view::npos ||
                      tag.find(" else") != std::string_view::npos)) {
      ++depth;
    }
    pos = end + 1;
  }
  return out;
}

TEST_F(ChatTemplateReformatTest, ReformattedTemplateIsRecognisedAndRendersTheSame) {
  std::string variant = reformat(deepseek_r1_template_source());
  // Whitespace next to brackets and commas inside tags is free too (no string
  // literal of the template contains these sequences).
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"['", "[ '"}, {"']", "' ]"}, {"namespace(", "namespace(\n    "}, {", ", " ,\t"}}) {
    for (size_t at = variant.find(from); at != std::string::npos;
         at = variant.find(from, at + to.size())) {
      variant.replace(at, from.size(), to);
    }
  }
  ASSERT_NE(variant, deepseek_r1_template_source());
  ASSERT_NE(variant.find("message[ 'role' ]"), std::string::npos) << variant;
  ASSERT_NE(variant.find("\n    "), std::string::npos) << variant;
  Result<ChatTemplate> tmpl = ChatTemplate::detect(variant, kBos);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string() << "\n" << variant;
  EXPECT_EQ(tmpl->kind(), ChatTemplateKind::kDeepSeekR1);
  // The oracle renders the reformatted text itself.
  expect_matches_jinja(*tmpl, variant, kBos);
}

TEST_F(ChatTemplateReformatTest, TrailingNewlinesDroppedByJinjaAreAccepted) {
  // One trailing newline is dropped by Jinja; a second one follows a
  // statement tag and is eaten by trim_blocks.
  const std::string variant = std::string(deepseek_r1_template_source()) + "\n\n";
  Result<ChatTemplate> tmpl = ChatTemplate::detect(variant, kBos);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  EXPECT_EQ(tmpl->kind(), ChatTemplateKind::kDeepSeekR1);
  expect_matches_jinja(*tmpl, variant, kBos);
}

TEST_F(ChatTemplateReformatTest, ReformatWithoutTrimMarkersIsRefused) {
  // Without the "-" markers of the expression tags their newlines reach the
  // output.
  std::string variant = reformat(deepseek_r1_template_source());
  for (size_t at; (at = variant.find(" -}}")) != std::string::npos;) variant.replace(at, 4, " }}");
  for (size_t at; (at = variant.find("{{- ")) != std::string::npos;) variant.replace(at, 4, "{{ ");
  Result<ChatTemplate> tmpl = ChatTemplate::detect(variant, kBos);
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), StatusCode::kUnimplemented);
  // And Jinja indeed renders it differently.
  std::vector<ChatMessage> hi = {user("Hi")};
  std::vector<json> rendered = render_with_jinja(variant, kBos, {{&hi, true}});
  ASSERT_EQ(rendered.size(), 1u);
  ASSERT_TRUE(rendered[0].is_string()) << rendered[0].dump();  // rendered, not refused
  EXPECT_NE(rendered[0], json("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n"));
}

}  // namespace
}  // namespace r1
