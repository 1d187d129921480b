// libFuzzer target: the native DeepSeek-R1 chat template over message lists
// built from the input (roles, contents or null, tool calls), both template
// revisions, then the rendered prompt tokenized with the client ranges kept
// literal, as /v1/chat/completions does. An input whose first byte is 'T'
// is instead a template source for ChatTemplate::detect (a
// tokenizer_config.json's "chat_template", reformatted or not).
//
// Properties: invalid messages are errors that explain themselves; client
// ranges are ordered, disjoint and inside the text; render() and
// render_with_ranges() agree; the prompt ids decode back to the rendered
// text (the tokenizer here has no normalizer).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tiny_tokenizer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/detail/chat_template_sources.h"
#include "tokenizer/tokenizer.h"

namespace {

const r1::Tokenizer& tokenizer() {
  static const r1::Tokenizer* tok = [] {
    const auto [tokenizer_json, config_json] = r1::fuzz::tiny_tokenizer_files(/*nfc=*/false);
    auto t = r1::Tokenizer::from_json(tokenizer_json, config_json);
    if (!t.ok()) std::abort();
    return new r1::Tokenizer(std::move(t).value());  // lives for the process
  }();
  return *tok;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Client text: often a template marker, so markers inside contents are tried.
std::string client_text(FuzzedDataProvider& in) {
  static const char* kMarkers[] = {"<｜User｜>",         "<｜Assistant｜>",       "</think>",
                                   "<think>\n",          "<｜end▁of▁sentence｜>", "<｜tool▁sep｜>",
                                   "<｜tool▁call▁end｜>"};
  std::string s = in.ConsumeRandomLengthString(256);
  if (in.ConsumeBool()) {
    s.insert(in.ConsumeIntegralInRange<size_t>(0, s.size()),
             kMarkers[in.ConsumeIntegralInRange<size_t>(0, std::size(kMarkers) - 1)]);
  }
  return s;
}

std::vector<r1::ChatMessage> messages_from(FuzzedDataProvider& in) {
  static const char* kRoles[] = {"system", "user", "assistant", "tool", "user", "assistant"};
  std::vector<r1::ChatMessage> messages(in.ConsumeIntegralInRange<size_t>(0, 8));
  for (r1::ChatMessage& m : messages) {
    const size_t r = in.ConsumeIntegralInRange<size_t>(0, std::size(kRoles));
    m.role = r < std::size(kRoles) ? kRoles[r] : in.ConsumeRandomLengthString(12);
    if (in.ConsumeIntegralInRange<int>(0, 7) != 0) m.content = client_text(in);
    const size_t n_calls = in.ConsumeIntegralInRange<size_t>(0, 3);
    for (size_t i = 0; i < n_calls; ++i) {
      r1::ToolCall call;
      if (in.ConsumeBool()) call.type = in.ConsumeRandomLengthString(16);
      call.name = client_text(in);
      call.arguments = client_text(in);
      m.tool_calls.push_back(std::move(call));
    }
  }
  return messages;
}

void render(const r1::ChatTemplate& tmpl, const std::vector<r1::ChatMessage>& messages,
            bool add_generation_prompt) {
  auto rendered = tmpl.render_with_ranges(messages, add_generation_prompt);
  auto plain = tmpl.render(messages, add_generation_prompt);
  if (rendered.ok() != plain.ok()) std::abort();
  if (!rendered.ok()) {
    if (rendered.status().message().empty()) std::abort();
    return;
  }
  if (rendered->text != *plain) std::abort();
  size_t last_end = 0;
  for (const auto& [begin, end] : rendered->client_ranges) {
    if (begin < last_end || end < begin || end > rendered->text.size()) std::abort();
    last_end = end;
  }
  const r1::Tokenizer& tok = tokenizer();
  auto ids = tok.encode_with_literals(rendered->text, rendered->client_ranges);
  if (!ids.ok()) {
    if (valid_utf8(rendered->text)) std::abort();  // only invalid UTF-8 is refused
    return;
  }
  if (tok.decode(*ids) != rendered->text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == 'T') {
    const std::string source(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto detected = r1::ChatTemplate::detect(source, r1::fuzz::kBos);
    if (!detected.ok() && detected.status().message().empty()) std::abort();
    return 0;
  }
  static const r1::ChatTemplate current = r1::ChatTemplate::deepseek_r1(r1::fuzz::kBos);
  static const r1::ChatTemplate original = [] {
    auto t = r1::ChatTemplate::detect(std::string(r1::detail::kDeepSeekR1OriginalSource),
                                      r1::fuzz::kBos);
    if (!t.ok()) std::abort();
    return *t;
  }();
  FuzzedDataProvider in(data, size);
  const bool use_original = in.ConsumeBool();
  const bool add_generation_prompt = in.ConsumeBool();
  const std::vector<r1::ChatMessage> messages = messages_from(in);
  render(use_original ? original : current, messages, add_generation_prompt);
  return 0;
}
