// The HTTP/1.1 + SSE adapter. Everything above it sees plain HttpRequest /
// HttpResponse values, so the library underneath (cpp-httplib today) can be
// swapped without touching the routes.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/http/connection_reactor.h"
#include "server/http/tls_credentials.h"

namespace r1 {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::string remote_addr;
  std::string request_id;                           // X-Request-Id if valid, else generated
  std::multimap<std::string, std::string> headers;  // names as the client sent them
  std::multimap<std::string, std::string> query;    // decoded query-string parameters
  // The segments a route's "{name}" parts took ("/admin/models/{name}/x").
  std::map<std::string, std::string> path_params;

  // For handlers that answer with a whole body: false once the client has
  // closed the connection (poll it while waiting; see ConnectionProbe).
  // Always set by HttpServer; unset in tests that build requests by hand.
  std::function<bool()> client_connected;

  // Case-insensitive header lookup; empty when absent.
  std::string header(const std::string& name) const;
  // The first value of query parameter `name`; empty when absent.
  std::string query_param(const std::string& name) const;
  // Path parameter `name`; empty when absent.
  std::string path_param(const std::string& name) const;
};

// Writes one streamed response. write() blocks until the bytes are handed to
// the socket and returns false once the client is gone (the handler should
// cancel its work and return).
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(const std::string& bytes) = 0;
  virtual bool client_connected() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
  // When set, the body is streamed (chunked transfer) by calling this on the
  // connection's worker thread; `body` is ignored.
  std::function<void(StreamWriter&)> stream;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port
  // Deadlines, head size, per-address connection cap and workers
  // (connection_reactor.h). Workers: each running request, and each open SSE
  // stream for its whole life, holds one; idle and slow connections do not.
  ConnectionLimits connections;
  // Bodies past this many bytes are refused with 413 whatever their
  // transfer encoding; a chunked one is read no further than the limit.
  size_t max_body_bytes = 8u << 20;
  // Bodies whose JSON nests arrays and objects deeper than this are refused
  // with 400 before any handler parses them (json_depth.h).
  int max_json_depth = 64;
  // HTTPS when tls.cert_file is set (mutual TLS with tls.client_ca_file).
  TlsOptions tls;
};

class HttpServer {
 public:
  explicit HttpServer(const HttpServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for an exact path (GET, POST, PUT or DELETE). Call
  // before bind(). Another method on a registered path answers 405 with
  // Allow; an unknown path 404.
  void route(const std::string& method, const std::string& path, HttpHandler handler);

  // Binds the socket, listening with the largest backlog the kernel allows
  // (net.core.somaxconn); returns the port (useful with port 0).
  Result<int> bind();
  // Serves until stop(); call from one thread after bind().
  void serve();
  // Stops accepting and returns from serve(); safe from any thread.
  void stop();

  // Whether the server speaks TLS.
  bool tls() const;
  // Reads the TLS files again; new connections get the new identity, open
  // ones keep theirs. On error the previous identity stays. Safe from any
  // thread.
  Status reload_tls();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r1
