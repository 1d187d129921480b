#include "server/auth/jwt_verifier.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "server/http/json_depth.h"

namespace r1 {

namespace {

using json = nlohmann::json;

// Tokens past this size are refused unparsed (a header line this long is
// already unusual; it bounds the work an unauthenticated client can cause).
constexpr size_t kMaxTokenBytes = 16 * 1024;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

Status refuse(std::string why) {
  return invalid_argument(std::move(why));
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("JWT key file " + path + ": cannot open it");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The claim at a dotted path ("realm_access.roles"), or nullptr.
const json* claim_at(const json& claims, const std::string& path) {
  const json* node = &claims;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

std::vector<Role> roles_from(const json* claim) {
  std::vector<std::string> names;
  if (claim != nullptr && claim->is_array()) {
    for (const auto& r : *claim) {
      if (r.is_string()) names.push_back(r.get<std::string>());
    }
  } else if (claim != nullptr && claim->is_string()) {
    std::istringstream words(claim->get<std::string>());
    for (std::string w; words >> w;) names.push_back(w);
  }
  std::vector<Role> roles;
  for (const auto& n : names) {
    if (auto r = parse_role(n)) roles.push_back(*r);
  }
  return roles;
}

// A NumericDate claim; false when present but not a number.
bool numeric_date(const json& claims, const char* name, std::optional<double>* out) {
  auto it = claims.find(name);
  if (it == claims.end()) return true;
  if (!it->is_number() || !std::isfinite(it->get<double>())) return false;
  *out = it->get<double>();
  return true;
}

}  // namespace

std::string_view jwt_algorithm_name(JwtAlgorithm alg) {
  switch (alg) {
    case JwtAlgorithm::kHS256:
      return "HS256";
    case JwtAlgorithm::kRS256:
      return "RS256";
    case JwtAlgorithm::kES256:
      return "ES256";
  }
  return "?";
}

Result<JwtAlgorithm> parse_jwt_algorithm(std::string_view name) {
  if (name == "HS256") return JwtAlgorithm::kHS256;
  if (name == "RS256") return JwtAlgorithm::kRS256;
  if (name == "ES256") return JwtAlgorithm::kES256;
  return invalid_argument("JWT algorithm '" + std::string(name) +
                          "' is not supported (HS256, RS256, ES256)");
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

bool base64url_decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 == 1) return false;  // no byte ends there
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base64url_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero, so each byte string has one encoding.
  return (acc & ((1u << bits) - 1)) == 0;
}

bool looks_like_jwt(std::string_view token) {
  const size_t a = token.find('.');
  if (a == std::string_view::npos) return false;
  const size_t b = token.find('.', a + 1);
  return b != std::string_view::npos && token.find('.', b + 1) == std::string_view::npos;
}

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::create(const JwtConfig& config) {
  auto v = std::unique_ptr<JwtVerifier>(new JwtVerifier(config));
  R1_ASSIGN_OR_RETURN(std::string text, read_file(config.key_file));
  const std::string where = "JWT key file " + config.key_file;
  if (config.algorithm == JwtAlgorithm::kHS256) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    // RFC 7518 §3.2: the key must be at least as long as the hash.
    if (text.size() < 32)
      return invalid_argument(where + ": an HS256 secret needs 32 bytes or more");
    v->secret_ = std::move(text);
    return v;
  }
  BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (key == nullptr) {
    return invalid_argument(where + ": not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  v->key_ = key;
  if (config.algorithm == JwtAlgorithm::kRS256) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
      return invalid_argument(where + ": RS256 needs an RSA public key");
    }
    if (EVP_PKEY_get_bits(key) < 2048) {
      return invalid_argument(where + ": RS256 needs an RSA key of 2048 bits or more");
    }
  } else {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1 ||
        std::string(group) != "prime256v1") {
      return invalid_argument(where + ": ES256 needs a P-256 (prime256v1) EC public key");
    }
  }
  return v;
}

JwtVerifier::~JwtVerifier() {
  EVP_PKEY_free(key_);
}

bool JwtVerifier::signature_holds(std::string_view input, const std::string& sig) const {
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (config_.algorithm == JwtAlgorithm::kHS256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), data, input.size(),
             mac, &mac_len) == nullptr) {
      return false;
    }
    return sig.size() == mac_len && CRYPTO_memcmp(mac, sig.data(), mac_len) == 0;
  }
  std::string der;
  std::string_view signature = sig;
  if (config_.algorithm == JwtAlgorithm::kES256) {
    // JWS carries R || S (32 bytes each); OpenSSL verifies DER.
    if (sig.size() != 64) return false;
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
    if (es == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(es);
      return false;
    }
    unsigned char* buf = nullptr;
    const int n = i2d_ECDSA_SIG(es, &buf);
    ECDSA_SIG_free(es);
    if (n <= 0) return false;
    der.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
    OPENSSL_free(buf);
    signature = der;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return false;
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_) == 1 &&
                  EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                                   signature.size(), data, input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

Result<JwtIdentity> JwtVerifier::verify(std::string_view token, int64_t now_unix) const {
  if (token.size() > kMaxTokenBytes) return refuse("token too large");
  if (!looks_like_jwt(token)) return refuse("not a JWT (expected header.payload.signature)");
  const size_t a = token.find('.');
  const size_t b = token.find('.', a + 1);
  std::string header_text, payload_text, signature;
  if (!base64url_decode(token.substr(0, a), &header_text) ||
      !base64url_decode(token.substr(a + 1, b - a - 1), &payload_text) ||
      !base64url_decode(token.substr(b + 1), &signature)) {
    return refuse("token is not base64url");
  }
  // Claims are flat; anything nested deeper is refused before it is parsed.
  constexpr int kMaxJsonDepth = 16;
  if (json_nesting_depth(header_text, kMaxJsonDepth) > kMaxJsonDepth ||
      json_nesting_depth(payload_text, kMaxJsonDepth) > kMaxJsonDepth) {
    return refuse("token header or claims nest too deep");
  }
  const json header = json::parse(header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return refuse("token header is not JSON");
  auto alg = header.find("alg");
  const std::string_view want = jwt_algorithm_name(config_.algorithm);
  // The pinned algorithm, whatever the token asks for: "none", or HS256
  // keyed with our RSA public key, never reach a verifier.
  if (alg == header.end() || !alg->is_string() || alg->get<std::string>() != want) {
    return refuse("token algorithm is not the configured " + std::string(want));
  }
  if (header.contains("crit")) return refuse("token header has critical extensions");
  if (!signature_holds(token.substr(0, b), signature)) return refuse("token signature is invalid");

  const json claims = json::parse(payload_text, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return refuse("token claims are not JSON");
  std::optional<double> exp, nbf;
  if (!numeric_date(claims, "exp", &exp) || !numeric_date(claims, "nbf", &nbf)) {
    return refuse("token exp/nbf must be numbers");
  }
  const double now = static_cast<double>(now_unix);
  const double skew = static_cast<double>(config_.leeway_seconds);
  if (!exp) return refuse("token has no exp claim");
  if (now >= *exp + skew) return refuse("token expired");
  if (nbf && now + skew < *nbf) return refuse("token not valid yet (nbf)");
  if (!config_.issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || iss->get<std::string>() != config_.issuer) {
      return refuse("token issuer is not the configured one");
    }
  }
  if (!config_.audience.empty()) {
    bool match = false;
    auto aud = claims.find("aud");
    if (aud != claims.end() && aud->is_string())
      match = aud->get<std::string>() == config_.audience;
    if (aud != claims.end() && aud->is_array()) {
      for (const auto& x : *aud) match = match || (x.is_string() && x == config_.audience);
    }
    if (!match) return refuse("token audience does not include the configured one");
  }
  const json* sub = claim_at(claims, config_.subject_claim);
  if (sub == nullptr || !sub->is_string() || sub->get<std::string>().empty() ||
      sub->get<std::string>().size() > 256) {
    return refuse("token has no usable '" + config_.subject_claim + "' claim");
  }
  JwtIdentity id;
  id.subject = sub->get<std::string>();
  id.roles = roles_from(claim_at(claims, config_.roles_claim));
  return id;
}

}  // namespace r1
