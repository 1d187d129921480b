#include "tokenizer/chat_template.h"

#include <string_view>

#include "tokenizer/detail/chat_template_canonical.h"
#include "tokenizer/detail/chat_template_sources.h"

namespace r1 {
namespace {

// The markers the DeepSeek-R1 template writes as literals (model-facts §2.4).
// "｜" is U+FF5C, "▁" is U+2581. The end-of-sentence marker is a literal in the
// template, not eos_token.
constexpr std::string_view kUser = "<｜User｜>";
constexpr std::string_view kAssistant = "<｜Assistant｜>";
constexpr std::string_view kEndOfSentence = "<｜end▁of▁sentence｜>";
constexpr std::string_view kThinkEnd = "</think>";
constexpr std::string_view kToolCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kToolCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kToolCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kToolCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kToolSep = "<｜tool▁sep｜>";
constexpr std::string_view kToolOutputsBegin = "<｜tool▁outputs▁begin｜>";
constexpr std::string_view kToolOutputsEnd = "<｜tool▁outputs▁end｜>";
constexpr std::string_view kToolOutputBegin = "<｜tool▁output▁begin｜>";
constexpr std::string_view kToolOutputEnd = "<｜tool▁output▁end｜>";

// `{type}<｜tool▁sep｜>{name}\n```json\n{arguments}\n```<｜tool▁call▁end｜>`
// `client` appends client-supplied text (and records its range).
template <typename Client>
void append_tool_call(const ToolCall& call, std::string& out, Client& client) {
  client(call.type);
  out += kToolSep;
  client(call.name);
  out += "\n```json\n";
  client(call.arguments);
  out += "\n```";
  out += kToolCallEnd;
}

// What the template's `content.split('</think>')[-1]` keeps: the text after
// the last "</think>", or all of it when there is none.
std::string_view after_last_think_end(std::string_view content) {
  size_t at = content.rfind(kThinkEnd);
  return at == std::string_view::npos ? content : content.substr(at + kThinkEnd.size());
}

Status check_message(const ChatMessage& m, size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "]";
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
    return invalid_argument(where + ": unknown role \"" + m.role +
                            "\" (expected system, user, assistant or tool)");
  }
  // The template concatenates these contents with strings: null has no
  // rendering there (Jinja raises, or prints "None").
  if (m.role != "assistant" && !m.content.has_value()) {
    return invalid_argument(where + ": content must be a string for role \"" + m.role + "\"");
  }
  if (!m.tool_calls.empty() && m.role != "assistant") {
    return invalid_argument(where + ": tool_calls are only allowed on assistant messages");
  }
  return ok_status();
}

}  // namespace

std::string_view deepseek_r1_template_source() {
  return detail::kDeepSeekR1CurrentSource;
}

std::string_view smollm2_chatml_template_source() {
  return detail::kSmolLM2ChatMLSource;
}

Result<ChatTemplate> ChatTemplate::detect(const std::string& template_source,
                                          const std::string& bos_token) {
  if (template_source == detail::kDeepSeekR1CurrentSource) {
    return ChatTemplate(ChatTemplateKind::kDeepSeekR1, bos_token);
  }
  if (template_source == detail::kDeepSeekR1OriginalSource) {
    return ChatTemplate(ChatTemplateKind::kDeepSeekR1Original, bos_token);
  }
  if (template_source == detail::kSmolLM2ChatMLSource) {
    return ChatTemplate(ChatTemplateKind::kSmolLM2ChatML, bos_token);
  }
  if (template_source.empty()) {
    return unimplemented(
        "chat template not supported: the model has no chat template (r1serve implements the "
        "DeepSeek-R1 template natively)");
  }
  // The same template reformatted: compare the tags with the whitespace that
  // cannot change the output removed.
  if (auto form = detail::jinja_canonical_form(template_source)) {
    if (*form == detail::jinja_canonical_form(detail::kDeepSeekR1CurrentSource)) {
      return ChatTemplate(ChatTemplateKind::kDeepSeekR1, bos_token);
    }
    if (*form == detail::jinja_canonical_form(detail::kDeepSeekR1OriginalSource)) {
      return ChatTemplate(ChatTemplateKind::kDeepSeekR1Original, bos_token);
    }
    if (*form == detail::jinja_canonical_form(detail::kSmolLM2ChatMLSource)) {
      return ChatTemplate(ChatTemplateKind::kSmolLM2ChatML, bos_token);
    }
  }
  std::string excerpt = template_source.substr(0, 80);
  // Do not cut a UTF-8 sequence in half in the message.
  while (!excerpt.empty() && (static_cast<unsigned char>(excerpt.back()) & 0xC0) == 0x80) {
    excerpt.pop_back();
  }
  if (!excerpt.empty() && (static_cast<unsigned char>(excerpt.back()) & 0x80) != 0) {
    excerpt.pop_back();
  }
  return unimplemented("chat template not supported: \"" + excerpt +
                       (template_source.size() > excerpt.size() ? "..." : "") + "\" (" +
                       std::to_string(template_source.size()) +
                       " bytes) is not a template r1serve knows (r1serve implements the "
                       "DeepSeek-R1 template natively)");
}

ChatTemplate ChatTemplate::deepseek_r1(const std::string& bos_token) {
  return ChatTemplate(ChatTemplateKind::kDeepSeekR1, bos_token);
}

// Mirrors the Jinja template statement by statement; the names of the flags
// are the template's own (ns.is_first, ns.is_tool, ns.is_output_first).
Result<std::string> ChatTemplate::render(std::span<const ChatMessage> messages,
                                         bool add_generation_prompt) const {
  R1_ASSIGN_OR_RETURN(Rendered r, render_with_ranges(messages, add_generation_prompt));
  return std::move(r.text);
}

Result<ChatTemplate::Rendered> ChatTemplate::render_with_ranges(
    std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  for (size_t i = 0; i < messages.size(); ++i) {
    R1_RETURN_IF_ERROR(check_message(messages[i], i));
  }
  if (kind_ == ChatTemplateKind::kSmolLM2ChatML) {
    return render_chatml(messages, add_generation_prompt);
  }

  Rendered rendered;
  std::string& out = rendered.text;
  out = bos_;
  // Appends client-supplied text and records where it went.
  auto client = [&](std::string_view text) {
    rendered.client_ranges.emplace_back(out.size(), out.size() + text.size());
    out += text;
  };
  // The last system message wins and goes right after BOS, without a tag;
  // system messages render nothing where they stand.
  const std::string* system_prompt = nullptr;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") system_prompt = &*m.content;
  }
  if (system_prompt) client(*system_prompt);

  bool is_first = false;        // a tool call was rendered; never reset
  bool is_tool = false;         // inside a run of tool outputs
  bool is_output_first = true;  // no tool output yet; never reset
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      is_tool = false;
      out += kUser;
      client(*m.content);
    } else if (m.role == "assistant" && !m.content.has_value()) {
      is_tool = false;
      // The first call of the conversation opens the assistant turn and the
      // call list; every later call (also in later messages) is appended with
      // its own calls-end and end-of-sentence. A single call is never closed.
      for (const ToolCall& call : m.tool_calls) {
        if (!is_first) {
          out += kAssistant;
          out += kToolCallsBegin;
          out += kToolCallBegin;
          append_tool_call(call, out, client);
          is_first = true;
        } else {
          out += '\n';
          out += kToolCallBegin;
          append_tool_call(call, out, client);
          out += kToolCallsEnd;
          out += kEndOfSentence;
        }
      }
    } else if (m.role == "assistant") {
      // Content wins over tool_calls: the calls of a message with content are
      // not rendered.
      if (is_tool) {
        // After tool outputs the content is kept whole, reasoning included,
        // and there is no assistant tag.
        out += kToolOutputsEnd;
        client(*m.content);
        out += kEndOfSentence;
        is_tool = false;
      } else {
        out += kAssistant;
        client(after_last_think_end(*m.content));
        out += kEndOfSentence;
      }
    } else if (m.role == "tool") {
      is_tool = true;
      if (is_output_first) {
        out += kToolOutputsBegin;
        out += kToolOutputBegin;
        client(*m.content);
        out += kToolOutputEnd;
        is_output_first = false;
      } else {
        out += '\n';
        out += kToolOutputBegin;
        client(*m.content);
        out += kToolOutputEnd;
      }
    }
  }
  if (is_tool) out += kToolOutputsEnd;
  // After a trailing tool output the template adds no generation prompt.
  if (add_generation_prompt && !is_tool) {
    out += kAssistant;
    if (kind_ == ChatTemplateKind::kDeepSeekR1) out += "<think>\n";
  }
  return rendered;
}

// Mirrors kSmolLM2ChatMLSource: no BOS; tool calls are not rendered, and a
// message without content cannot be (the template concatenates it).
Result<ChatTemplate::Rendered> ChatTemplate::render_chatml(std::span<const ChatMessage> messages,
                                                           bool add_generation_prompt) const {
  Rendered rendered;
  std::string& out = rendered.text;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!m.content.has_value()) {
      return invalid_argument("messages[" + std::to_string(i) +
                              "]: content must be a string: this model's chat template renders "
                              "no tool calls");
    }
    if (i == 0 && m.role != "system") {
      out +=
          "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
          "Face<|im_end|>\n";
    }
    out += "<|im_start|>";
    out += m.role;
    out += '\n';
    rendered.client_ranges.emplace_back(out.size(), out.size() + m.content->size());
    out += *m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return rendered;
}

}  // namespace r1
