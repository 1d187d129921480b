// The server's TLS identity: a certificate chain and its private key, and
// optionally the CAs that client certificates must chain to (mutual TLS),
// read from PEM files. Loaded whole or not at all, so a reload that fails
// leaves the previous identity serving.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "core/status.h"

namespace r1 {

struct TlsOptions {
  std::string cert_file;       // PEM: the server certificate, then its chain
  std::string key_file;        // PEM: the certificate's private key
  std::string client_ca_file;  // PEM: CAs for client certificates; empty = none asked
  // Any of the three set asks for TLS (and load() then insists on both
  // certificate and key).
  bool enabled() const {
    return !cert_file.empty() || !key_file.empty() || !client_ca_file.empty();
  }
};

class TlsCredentials {
 public:
  // INVALID_ARGUMENT naming the file for a missing or malformed file, a key
  // that does not match the certificate, or a key without a certificate.
  static Result<std::shared_ptr<const TlsCredentials>> load(const TlsOptions& options);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  // Puts this identity on one connection (from the context's certificate
  // callback): certificate, chain, key, and the client CA store.
  bool apply(SSL* ssl) const;

  // The context settings every connection shares: TLS 1.2 at least,
  // forward-secret AEAD cipher suites only, no compression or
  // renegotiation, and client certificates required when `mutual`.
  static void configure(SSL_CTX* ctx, bool mutual);

 private:
  TlsCredentials() = default;
  X509* leaf_ = nullptr;
  STACK_OF(X509) * chain_ = nullptr;
  EVP_PKEY* key_ = nullptr;
  X509_STORE* client_cas_ = nullptr;
};

}  // namespace r1
