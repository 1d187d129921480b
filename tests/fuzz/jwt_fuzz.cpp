// libFuzzer target: JwtVerifier::verify with a fixed HS256 configuration
// (issuer, audience and a dotted roles claim checked), and base64url.
//
// Input: byte 0 picks the mode, the rest is its text.
//   0: the text is a token as a client would send it.
//   1: the text is "header JSON \n claims JSON"; they are encoded and signed
//      with the configured secret, so the claim checks behind the signature
//      are reached too.
//   2: the text goes through base64url_decode / base64url_encode.
// Properties: errors say why; an accepted token has a subject of 1..256
// bytes; a signed token with a valid header is never refused for its
// signature; base64url has one encoding per byte string.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/auth/jwt_verifier.h"

namespace {

constexpr char kSecret[] = "fuzz-shared-secret-of-32-bytes!!";
constexpr int64_t kNow = 1800000000;

r1::JwtVerifier& verifier() {
  static r1::JwtVerifier* v = [] {
    char path[] = "/tmp/r1serve-jwt-fuzz-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, kSecret, sizeof(kSecret) - 1) != sizeof(kSecret) - 1) std::abort();
    close(fd);
    r1::JwtConfig config;
    config.algorithm = r1::JwtAlgorithm::kHS256;
    config.key_file = path;
    config.issuer = "https://issuer.example";
    config.audience = "r1serve";
    config.roles_claim = "realm_access.roles";
    auto created = r1::JwtVerifier::create(config);
    unlink(path);
    if (!created.ok()) std::abort();
    return std::move(created).value().release();  // lives for the process
  }();
  return *v;
}

std::string sign(std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), kSecret, sizeof(kSecret) - 1,
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

void check(const r1::Result<r1::JwtIdentity>& id) {
  if (!id.ok()) {
    if (id.status().message().empty()) std::abort();
    return;
  }
  if (id->subject.empty() || id->subject.size() > 256) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const r1::JwtVerifier& v = verifier();
  switch (data[0] % 3) {
    case 0: {
      (void)r1::looks_like_jwt(text);
      check(v.verify(text, kNow));
      break;
    }
    case 1: {
      const size_t nl = text.find('\n');
      const std::string_view header = text.substr(0, nl);
      const std::string_view claims = nl == std::string_view::npos ? "" : text.substr(nl + 1);
      const std::string input = r1::base64url_encode(header) + "." + r1::base64url_encode(claims);
      const std::string token = input + "." + r1::base64url_encode(sign(input));
      const auto id = v.verify(token, kNow);
      check(id);
      if (!id.ok() && id.status().message() == "token signature is invalid") std::abort();
      break;
    }
    default: {
      std::string bytes;
      if (r1::base64url_decode(text, &bytes)) {
        if (r1::base64url_encode(bytes) != text) std::abort();
      }
      std::string back;
      if (!r1::base64url_decode(r1::base64url_encode(text), &back) || back != text) std::abort();
      break;
    }
  }
  return 0;
}
