#include "server/http/tls_credentials.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace r1 {

namespace {

// The newest OpenSSL error as text, and the queue cleared.
std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no detail";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

struct BioCloser {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioCloser>;

}  // namespace

TlsCredentials::~TlsCredentials() {
  X509_free(leaf_);
  sk_X509_pop_free(chain_, X509_free);
  EVP_PKEY_free(key_);
  X509_STORE_free(client_cas_);
}

Result<std::shared_ptr<const TlsCredentials>> TlsCredentials::load(const TlsOptions& o) {
  if (o.cert_file.empty() || o.key_file.empty()) {
    return invalid_argument("TLS needs both --tls-cert and --tls-key");
  }
  std::shared_ptr<TlsCredentials> c(new TlsCredentials());
  BioPtr cert_bio(BIO_new_file(o.cert_file.c_str(), "r"));
  if (!cert_bio) return invalid_argument(o.cert_file + ": cannot read (" + openssl_error() + ")");
  c->leaf_ = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
  if (c->leaf_ == nullptr) {
    return invalid_argument(o.cert_file + ": no PEM certificate (" + openssl_error() + ")");
  }
  c->chain_ = sk_X509_new_null();
  while (X509* next = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(c->chain_, next);
  }
  ERR_clear_error();  // the end of the file reads as an error
  BioPtr key_bio(BIO_new_file(o.key_file.c_str(), "r"));
  if (!key_bio) return invalid_argument(o.key_file + ": cannot read (" + openssl_error() + ")");
  c->key_ = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (c->key_ == nullptr) {
    return invalid_argument(o.key_file + ": no PEM private key (" + openssl_error() + ")");
  }
  if (X509_check_private_key(c->leaf_, c->key_) != 1) {
    ERR_clear_error();
    return invalid_argument(o.key_file + ": the key does not match the certificate in " +
                            o.cert_file);
  }
  if (!o.client_ca_file.empty()) {
    c->client_cas_ = X509_STORE_new();
    if (X509_STORE_load_file(c->client_cas_, o.client_ca_file.c_str()) != 1) {
      return invalid_argument(o.client_ca_file + ": no PEM CA certificates (" + openssl_error() +
                              ")");
    }
  }
  return std::shared_ptr<const TlsCredentials>(std::move(c));
}

bool TlsCredentials::apply(SSL* ssl) const {
  if (SSL_use_certificate(ssl, leaf_) != 1 || SSL_use_PrivateKey(ssl, key_) != 1 ||
      SSL_set1_chain(ssl, chain_) != 1) {
    return false;
  }
  if (client_cas_ != nullptr && SSL_set1_verify_cert_store(ssl, client_cas_) != 1) return false;
  return true;
}

void TlsCredentials::configure(SSL_CTX* ctx, bool mutual) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only (TLS
  // 1.3's suites are all of that kind).
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
  if (mutual) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // No resumption: a resumed session would skip checking the client's
    // certificate against CAs that SIGHUP may since have changed. A session
    // id context still has to be set, or OpenSSL fails the handshake of a
    // client that offers a session instead of starting a new one.
    static constexpr unsigned char kContext[] = "r1serve-mtls";
    SSL_CTX_set_session_id_context(ctx, kContext, sizeof(kContext) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
}

}  // namespace r1
