#include "server/auth/api_key_store.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace r1 {

namespace {

std::array<uint8_t, 32> sha256(std::string_view data) {
  std::array<uint8_t, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

bool parse_hex32(const std::string& hex, std::array<uint8_t, 32>* out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : sha256(data)) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

Result<ApiKeyStore> ApiKeyStore::parse(const std::string& yaml, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return invalid_argument("key file " + origin + ": " + e.msg + " (line " +
                            std::to_string(e.mark.line + 1) + ")");
  }
  if (!root.IsMap() || !root["keys"] || !root["keys"].IsSequence()) {
    return invalid_argument("key file " + origin + ": expected a list under `keys:`");
  }
  for (const auto& kv : root) {
    if (kv.first.Scalar() != "keys") {
      return invalid_argument("key file " + origin + ": unknown field '" + kv.first.Scalar() + "'");
    }
  }
  ApiKeyStore store;
  std::set<std::string> ids;
  size_t index = 0;
  for (const auto& node : root["keys"]) {
    const std::string where = "key file " + origin + ": entry " + std::to_string(index++);
    if (!node.IsMap()) return invalid_argument(where + " is not a mapping");
    ApiKeyEntry e;
    try {
      for (const auto& kv : node) {
        const std::string field = kv.first.Scalar();
        const YAML::Node& v = kv.second;
        if (field == "id") {
          e.id = v.as<std::string>();
        } else if (field == "sha256") {
          if (!parse_hex32(v.as<std::string>(), &e.sha256)) {
            return invalid_argument(where +
                                    ": sha256 must be 64 hex digits (the hash of the key, "
                                    "never the key itself)");
          }
        } else if (field == "roles") {
          if (!v.IsSequence()) return invalid_argument(where + ": roles must be a list");
          for (const auto& r : v) {
            std::optional<Role> role = parse_role(r.as<std::string>());
            if (!role) {
              return invalid_argument(where + ": unknown role '" + r.as<std::string>() +
                                      "' (developer, operator, auditor)");
            }
            e.roles.push_back(*role);
          }
        } else if (field == "models") {
          if (!v.IsSequence() || v.size() == 0) {
            return invalid_argument(where + ": models must be a non-empty list of model names");
          }
          for (const auto& m : v) e.models.push_back(m.as<std::string>());
        } else if (field == "requests_per_second") {
          e.limits.requests_per_second = v.as<double>();
        } else if (field == "tokens_per_minute") {
          e.limits.tokens_per_minute = v.as<int64_t>();
        } else if (field == "max_concurrent") {
          e.limits.max_concurrent = v.as<int32_t>();
        } else if (field == "max_reasoning_tokens") {
          e.limits.max_reasoning_tokens = v.as<int32_t>();
        } else {
          return invalid_argument(where + ": unknown field '" + field + "'");
        }
      }
    } catch (const YAML::Exception& ex) {
      return invalid_argument(where + ": " + ex.msg);
    }
    if (e.id.empty()) return invalid_argument(where + ": id is required");
    if (!ids.insert(e.id).second) return invalid_argument(where + ": duplicate id '" + e.id + "'");
    if (e.sha256 == std::array<uint8_t, 32>{})
      return invalid_argument(where + ": sha256 is required");
    if (!(e.limits.requests_per_second >= 0) || !std::isfinite(e.limits.requests_per_second) ||
        e.limits.tokens_per_minute < 0 || e.limits.max_concurrent < 0) {
      return invalid_argument(where + ": limits must be finite and not negative");
    }
    store.entries_.push_back(std::move(e));
  }
  return store;
}

Result<ApiKeyStore> ApiKeyStore::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("key file " + path + ": cannot open it");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

const ApiKeyEntry* ApiKeyStore::find(std::string_view key) const {
  const std::array<uint8_t, 32> h = sha256(key);
  const ApiKeyEntry* match = nullptr;
  for (const ApiKeyEntry& e : entries_) {
    // Every entry is compared, whatever matched before.
    const bool equal = CRYPTO_memcmp(h.data(), e.sha256.data(), h.size()) == 0;
    if (equal) match = &e;
  }
  return match;
}

}  // namespace r1
