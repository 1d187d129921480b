// Chat templates implemented natively (no Jinja at run time). Detected from a
// model's tokenizer_config.json "chat_template"; a template we do not
// implement is an UNIMPLEMENTED error, never a silently wrong format.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace r1 {

struct ToolCall {
  std::string type = "function";
  std::string name;
  std::string arguments;  // JSON text as the client sent it
};

struct ChatMessage {
  std::string role;                    // system | user | assistant | tool
  std::optional<std::string> content;  // null allowed for assistant tool calls
  std::vector<ToolCall> tool_calls;
};

enum class ChatTemplateKind {
  kDeepSeekR1,          // current revision: generation prompt ends with "<think>\n"
  kDeepSeekR1Original,  // 2025-01-20 revision: generation prompt "<｜Assistant｜>"
  kSmolLM2ChatML,       // SmolLM2-Instruct's ChatML, with its default system message
};

// The Jinja source of DeepSeek-R1's current chat template, byte for byte as
// the R1-Distill tokenizer_config.json files carry it ("chat_template").
// Generated test models write it; detect() recognises it.
std::string_view deepseek_r1_template_source();
// SmolLM2-Instruct's ChatML template, byte for byte as its files carry it.
std::string_view smollm2_chatml_template_source();

class ChatTemplate {
 public:
  // Recognises the template text (the DeepSeek-R1 revisions, SmolLM2's
  // ChatML); UNIMPLEMENTED for anything else. An empty
  // source is UNIMPLEMENTED too (the caller may choose a default).
  static Result<ChatTemplate> detect(const std::string& template_source,
                                     const std::string& bos_token);
  static ChatTemplate deepseek_r1(const std::string& bos_token);

  ChatTemplateKind kind() const { return kind_; }

  // Renders like the model's Jinja template with the same inputs (tool calls
  // as OpenAI's {"type", "function": {"name", "arguments"}}). Unknown roles,
  // null content outside assistant messages and tool_calls outside assistant
  // messages are INVALID_ARGUMENT.
  Result<std::string> render(std::span<const ChatMessage> messages,
                             bool add_generation_prompt) const;

  // render(), plus where the client-supplied strings (message contents, tool
  // call names and arguments) landed: [begin, end) byte ranges of the text,
  // for Tokenizer::encode_with_literals.
  struct Rendered {
    std::string text;
    std::vector<std::pair<size_t, size_t>> client_ranges;
  };
  Result<Rendered> render_with_ranges(std::span<const ChatMessage> messages,
                                      bool add_generation_prompt) const;

 private:
  ChatTemplate(ChatTemplateKind kind, std::string bos) : kind_(kind), bos_(std::move(bos)) {}
  Result<Rendered> render_chatml(std::span<const ChatMessage> messages,
                                 bool add_generation_prompt) const;
  ChatTemplateKind kind_;
  std::string bos_;
};

}  // namespace r1
