// API keys from a YAML key file that stores only SHA-256 hashes:
//
//   keys:
//     - id: team-a                 # the principal id (logged; never secret)
//       sha256: 9f86d081...        # hex SHA-256 of the key the client sends
//       roles: [developer]
//       requests_per_second: 5     # optional limits, 0 or absent = none
//       tokens_per_minute: 20000
//       max_concurrent: 4
//       max_reasoning_tokens: 2048
//
// A presented key is hashed and compared with every stored hash in constant
// time (no early exit, CRYPTO_memcmp), so timing does not reveal which key
// or how much of one matched.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "server/auth/role.h"

namespace r1 {

struct PrincipalLimits {
  double requests_per_second = 0;  // 0 = unlimited
  int64_t tokens_per_minute = 0;
  int32_t max_concurrent = 0;
  int32_t max_reasoning_tokens = -1;  // -1 = the server's default
};

struct ApiKeyEntry {
  std::string id;
  std::array<uint8_t, 32> sha256{};
  std::vector<Role> roles;
  PrincipalLimits limits;
  // The model names this key may use and see (`models:`); empty: every
  // model. Any other model is answered 404, as if it did not exist.
  std::vector<std::string> models;
};

class ApiKeyStore {
 public:
  // Parses a key file's text; `origin` names it in messages. Errors name the
  // entry and field: unknown fields, a malformed hash, an unknown role, a
  // duplicate id.
  static Result<ApiKeyStore> parse(const std::string& yaml, const std::string& origin);
  static Result<ApiKeyStore> load(const std::string& path);

  // The entry whose hash matches SHA-256(key), or nullptr.
  const ApiKeyEntry* find(std::string_view key) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<ApiKeyEntry> entries_;
};

// Lower-case hex SHA-256 of `data` (to make key-file entries).
std::string sha256_hex(std::string_view data);

}  // namespace r1
