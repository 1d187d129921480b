// A minimal HTTP/1.1 client for r1serve's own tools (the load generator)
// and its calls out (a cloud's instance metadata): POST a body and receive
// the response as it streams, or send one short request. Kept behind
// server/http like the server side, so the library can be swapped.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace r1 {

struct HttpClientResponse {
  int status = 0;
  std::string body;  // only when no chunk handler consumed it
};

class HttpClient {
 public:
  // base_url: "http://host:port" (no TLS).
  static Result<HttpClient> create(const std::string& base_url);

  // POSTs `body` (JSON) to `path`. `on_chunk` receives the body as it
  // arrives and returns false to stop reading. UNAVAILABLE when the server
  // cannot be reached.
  Result<HttpClientResponse> post(const std::string& path, const std::string& body,
                                  const std::function<bool(std::string_view)>& on_chunk) const;

  // One request (GET, PUT, ...) with `headers`, the whole body read;
  // `timeout_ms` bounds the connect and each read. UNAVAILABLE when the
  // server cannot be reached or does not answer in time.
  Result<HttpClientResponse> send(const std::string& method, const std::string& path,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  const std::string& body = "", int timeout_ms = 2000) const;

 private:
  std::string host_;
  int port_ = 0;
};

}  // namespace r1
