#include "tokenizer/detail/normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <nlohmann/json.hpp>

#include "core/check.h"

namespace r1::detail {
namespace {

const icu::Normalizer2& nfc_instance() {
  static const icu::Normalizer2* instance = [] {
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(err);
    R1_CHECK_MSG(U_SUCCESS(err) && n != nullptr, "ICU NFC data is not available");
    return n;
  }();
  return *instance;
}

bool is_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

Status add_step(const nlohmann::json& step, bool& nfc) {
  if (!step.is_object() || !step.contains("type") || !step["type"].is_string()) {
    return invalid_argument("normalizer: every step needs a string \"type\"");
  }
  const std::string type = step["type"].get<std::string>();
  if (type == "NFC") {
    nfc = true;
    return ok_status();
  }
  if (type == "Sequence") {
    if (!step.contains("normalizers") || !step["normalizers"].is_array()) {
      return invalid_argument("normalizer: Sequence without a \"normalizers\" array");
    }
    for (const nlohmann::json& inner : step["normalizers"]) {
      R1_RETURN_IF_ERROR(add_step(inner, nfc));
    }
    return ok_status();
  }
  return unimplemented("normalizer type \"" + type + "\" is not supported (only NFC)");
}

}  // namespace

Result<Normalizer> Normalizer::from_json(const nlohmann::json& config) {
  Normalizer normalizer;
  if (config.is_null()) return normalizer;
  R1_RETURN_IF_ERROR(add_step(config, normalizer.nfc_));
  return normalizer;
}

std::string_view Normalizer::normalize(std::string_view text, std::string& storage) const {
  if (!nfc_ || is_ascii(text)) return text;  // ASCII is always NFC
  const icu::Normalizer2& n = nfc_instance();
  UErrorCode err = U_ZERO_ERROR;
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (n.isNormalizedUTF8(piece, err) && U_SUCCESS(err)) return text;
  storage.clear();
  err = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&storage, static_cast<int32_t>(text.size()));
  n.normalizeUTF8(0, piece, sink, nullptr, err);
  R1_CHECK_MSG(U_SUCCESS(err), "ICU NFC failed on valid UTF-8");
  return storage;
}

std::string nfc(std::string_view text) {
  static const Normalizer n = Normalizer::from_json(nlohmann::json{{"type", "NFC"}}).value();
  std::string storage;
  return std::string(n.normalize(text, storage));
}

}  // namespace r1::detail
