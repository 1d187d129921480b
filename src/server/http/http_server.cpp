#include "server/http/http_server.h"

#include <httplib.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <mutex>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "obs/request_id.h"
#include "server/http/connection_probe.h"
#include "server/http/connection_reactor.h"
#include "server/http/json_depth.h"
#include "server/http/tls_credentials.h"

namespace r1 {

namespace {

// Whether `path` matches route `route`, segment by segment; a route segment
// "{name}" takes any one non-empty segment, stored in *params when given.
bool match_route(const std::string& route, const std::string& path,
                 std::map<std::string, std::string>* params) {
  size_t r = 0, p = 0;
  for (;;) {
    const size_t re = std::min(route.find('/', r), route.size());
    const size_t pe = std::min(path.find('/', p), path.size());
    const std::string_view rs(route.data() + r, re - r), ps(path.data() + p, pe - p);
    if (rs.size() >= 2 && rs.front() == '{' && rs.back() == '}') {
      if (ps.empty()) return false;
      if (params != nullptr) (*params)[std::string(rs.substr(1, rs.size() - 2))] = std::string(ps);
    } else if (rs != ps) {
      return false;
    }
    if (re == route.size() || pe == path.size()) return re == route.size() && pe == path.size();
    r = re + 1;
    p = pe + 1;
  }
}

// The regular expression httplib routes `route` by: literal segments
// escaped, "{name}" segments one segment of anything but '/'.
std::string route_pattern(const std::string& route) {
  static const std::regex kSpecial(R"([.^$|()\[\]{}*+?\\])");
  std::string out;
  size_t r = 0;
  for (;;) {
    const size_t re = std::min(route.find('/', r), route.size());
    const std::string seg = route.substr(r, re - r);
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      out += "[^/]+";
    } else {
      out += std::regex_replace(seg, kSpecial, R"(\$&)");
    }
    if (re == route.size()) return out;
    out += '/';
    r = re + 1;
  }
}

class SinkWriter final : public StreamWriter {
 public:
  SinkWriter(httplib::DataSink& sink, ConnectionProbe& probe) : sink_(sink), probe_(probe) {}
  bool write(const std::string& bytes) override {
    if (!open_) return false;
    if (!sink_.is_writable() || !sink_.write(bytes.data(), bytes.size())) open_ = false;
    return open_;
  }
  // A writable socket may still have a peer that left (FIN received): the
  // probe sees that too, so a request still queued is cancelled early.
  bool client_connected() const override {
    return open_ && sink_.is_writable() && probe_.connected();
  }

 private:
  httplib::DataSink& sink_;
  ConnectionProbe& probe_;
  bool open_ = true;
};

// An OpenAI-shaped error body on a response the library or the adapter
// answers itself.
void set_error(httplib::Response& res, int status, const std::string& message) {
  const char* type = status == 404 ? "not_found_error" : "invalid_request_error";
  res.status = status;
  res.set_content(
      nlohmann::json(
          {{"error",
            {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}})
          .dump(),
      "application/json");
}

// The same, on a connection that must not carry another request (a body
// left unread, a request framed two ways). cpp-httplib 0.11 keeps a
// connection open whatever the response's Connection header says; a body
// provider that reports failure once it has written the body makes it
// close the socket.
void set_error_and_close(httplib::Response& res, int status, const std::string& message) {
  set_error(res, status, message);
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  res.set_header("Connection", "close");
  res.headers.erase("Content-Type");  // set again with the provider
  res.set_content_provider(body->size(), "application/json",
                           [body](size_t offset, size_t length, httplib::DataSink& sink) {
                             sink.write(body->data() + offset, length);
                             return false;  // written; now close
                           });
}

// True when the request carries a body (which the screen does not read).
bool has_body(const httplib::Request& req) {
  return req.has_header("Transfer-Encoding") ||
         req.get_header_value<uint64_t>("Content-Length") > 0;
}

// Real clients send a few dozen at most; the library reads any number
// (and adds four of its own: REMOTE_ADDR, REMOTE_PORT, LOCAL_ADDR,
// LOCAL_PORT, which are not counted).
constexpr size_t kMaxHeaders = 100;

size_t n_client_headers(const httplib::Request& req) {
  size_t n = req.headers.size();
  for (const char* own : {"REMOTE_ADDR", "REMOTE_PORT", "LOCAL_ADDR", "LOCAL_PORT"}) {
    n -= std::min(n, req.get_header_value_count(own));
  }
  return n;
}

// cpp-httplib parses, routes and answers each request; the connections,
// their deadlines and the workers are the ConnectionReactor's. The library's
// own accept loop (one worker per connection from accept to close, a read
// timeout that restarts with every byte) is not used.
template <class Base>
class RoutedServer final : public Base {
 public:
  using Base::Base;
  bool serve_request(httplib::Stream& stream, bool close_connection, bool& connection_closed,
                     SSL* ssl) {
    if (ssl == nullptr) {
      return this->process_request(stream, close_connection, connection_closed, nullptr);
    }
    return this->process_request(stream, close_connection, connection_closed,
                                 [ssl](httplib::Request& req) { req.ssl = ssl; });
  }
  // Streamed bodies stop once the listening socket is marked closed (the
  // library's shutdown signal).
  void end_streams() { this->svr_sock_ = INVALID_SOCKET; }
};

using PlainServer = RoutedServer<httplib::Server>;
using TlsServer = RoutedServer<httplib::SSLServer>;

}  // namespace

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return v;
    }
  }
  return "";
}

std::string HttpRequest::query_param(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

std::string HttpRequest::path_param(const std::string& name) const {
  auto it = path_params.find(name);
  return it == path_params.end() ? "" : it->second;
}

struct HttpServer::Impl {
  HttpServerOptions options;
  // The TLS identity every new connection gets (TlsCredentials::apply from
  // the context's certificate callback); SIGHUP swaps it. Declared before
  // the server, whose construction loads it.
  std::mutex tls_mu;
  std::shared_ptr<const TlsCredentials> tls;
  Status tls_status;                       // why the identity could not be loaded at start
  std::unique_ptr<httplib::Server> owned;  // a PlainServer, or a TlsServer with TLS
  httplib::Server& server;
  std::map<std::string, std::set<std::string>> methods;  // route path -> methods routed
  // The route path `path` falls under: itself, or a template whose {name}
  // segments each take one non-empty segment of it. Null when none.
  const std::string* route_of(const std::string& path) const {
    if (const auto it = methods.find(path); it != methods.end()) return &it->first;
    for (const auto& [route, m] : methods) {
      if (route.find('{') != std::string::npos && match_route(route, path, nullptr)) return &route;
    }
    return nullptr;
  }
  int listen_fd = -1;  // the listening socket, once bind() made it
  ConnectionReactor reactor;

  // Runs `handler` on `req` with `body`, filling `res`.
  void respond(const HttpHandler& handler, const httplib::Request& req, std::string body,
               httplib::Response& res) const;
  // Runs before the library reads a body: answers (and returns true for)
  // every request no route will take (unknown path or method, control
  // characters in the path, a body on GET/HEAD, framing by both
  // Content-Length and Transfer-Encoding, too many header fields), without
  // reading its body.
  bool screen(const httplib::Request& req, httplib::Response& res) const;

  explicit Impl(const HttpServerOptions& o)
      : options(o),
        owned(make_server()),
        server(*owned),
        reactor(connection_limits(o), tls_context(), serve_function(),
                [this](std::string_view method, std::string_view target) {
                  return reads_body(method, target);
                }) {}
  static ConnectionLimits connection_limits(const HttpServerOptions& o) {
    ConnectionLimits limits = o.connections;
    limits.max_body_bytes = o.max_body_bytes;
    return limits;
  }
  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
  }
  std::unique_ptr<httplib::Server> make_server();
  // Whether a route takes a body for this method and target (the screen
  // refuses everything else unread); `methods` is fixed once serving.
  bool reads_body(std::string_view method, std::string_view target) const {
    const std::string path =
        httplib::detail::decode_url(std::string(target.substr(0, target.find('?'))), false);
    const std::string* route = route_of(path);
    return method != "GET" && method != "HEAD" && route != nullptr &&
           methods.at(*route).count(std::string(method)) != 0;
  }
  SSL_CTX* tls_context() const {
    return options.tls.enabled() ? static_cast<TlsServer&>(*owned).ssl_context() : nullptr;
  }
  ConnectionReactor::ServeRequest serve_function() {
    if (options.tls.enabled()) {
      return [s = static_cast<TlsServer*>(owned.get())](httplib::Stream& strm, bool close,
                                                        bool& closed, SSL* ssl) {
        return s->serve_request(strm, close, closed, ssl);
      };
    }
    return [s = static_cast<PlainServer*>(owned.get())](httplib::Stream& strm, bool close,
                                                        bool& closed, SSL* ssl) {
      return s->serve_request(strm, close, closed, ssl);
    };
  }
  void end_streams() {
    if (options.tls.enabled()) {
      static_cast<TlsServer&>(*owned).end_streams();
    } else {
      static_cast<PlainServer&>(*owned).end_streams();
    }
  }
  static int apply_tls(SSL* ssl, void* self);
};

std::unique_ptr<httplib::Server> HttpServer::Impl::make_server() {
  if (!options.tls.enabled()) return std::make_unique<PlainServer>();
  Result<std::shared_ptr<const TlsCredentials>> loaded = TlsCredentials::load(options.tls);
  if (loaded.ok()) {
    tls = std::move(loaded).value();
  } else {
    tls_status = loaded.status();
  }
  const bool mutual = !options.tls.client_ca_file.empty();
  return std::make_unique<TlsServer>([this, mutual](SSL_CTX& ctx) {
    TlsCredentials::configure(&ctx, mutual);
    SSL_CTX_set_cert_cb(&ctx, &Impl::apply_tls, this);
    return true;
  });
}

int HttpServer::Impl::apply_tls(SSL* ssl, void* self) {
  Impl& impl = *static_cast<Impl*>(self);
  std::shared_ptr<const TlsCredentials> creds;
  {
    std::lock_guard<std::mutex> lock(impl.tls_mu);
    creds = impl.tls;
  }
  return creds != nullptr && creds->apply(ssl) ? 1 : 0;
}

void HttpServer::Impl::respond(const HttpHandler& handler, const httplib::Request& req,
                               std::string body, httplib::Response& res) const {
  if (!body.empty() && json_nesting_depth(body, options.max_json_depth) > options.max_json_depth) {
    set_error(res, 400,
              "the request body nests JSON too deep: more than " +
                  std::to_string(options.max_json_depth) + " levels of arrays and objects");
    return;
  }
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  if (const std::string* route = route_of(req.path); route != nullptr) {
    match_route(*route, req.path, &r.path_params);
  }
  r.body = std::move(body);
  r.remote_addr = req.remote_addr;
  for (const auto& [k, v] : req.headers) r.headers.emplace(k, v);
  for (const auto& [k, v] : req.params) r.query.emplace(k, v);
  r.request_id = request_id_or_new(req.get_header_value("X-Request-Id"));
  auto probe = std::make_shared<ConnectionProbe>(ConnectionReactor::current_socket());
  r.client_connected = [probe] { return probe->connected(); };
  HttpResponse out = handler(r);
  res.status = out.status;
  res.set_header("X-Request-Id", r.request_id);
  for (const auto& [k, v] : out.headers) res.set_header(k.c_str(), v);
  if (out.stream) {
    auto stream = std::make_shared<std::function<void(StreamWriter&)>>(std::move(out.stream));
    const bool http10 = req.version == "HTTP/1.0";
    auto provider = [stream, probe, http10](size_t, httplib::DataSink& sink) {
      SinkWriter writer(sink, *probe);
      (*stream)(writer);
      sink.done();
      // HTTP/1.0's body runs to the close, so the connection must end here
      // even when the client asked to keep it (see set_error_and_close).
      return !http10;
    };
    if (http10) {
      // HTTP/1.0 has no chunked transfer.
      res.set_header("Connection", "close");
      res.set_content_provider(out.content_type, std::move(provider));
    } else {
      res.set_chunked_content_provider(out.content_type, std::move(provider));
    }
  } else {
    res.set_content(out.body, out.content_type);
  }
}

bool HttpServer::Impl::screen(const httplib::Request& req, httplib::Response& res) const {
  if (req.has_header("Transfer-Encoding") && req.has_header("Content-Length")) {
    set_error_and_close(res, 400, "a request framed by both Content-Length and Transfer-Encoding");
    return true;
  }
  if (n_client_headers(req) > kMaxHeaders) {
    set_error_and_close(res, 431,
                        "too many header fields: more than " + std::to_string(kMaxHeaders));
    return true;
  }
  const bool body = has_body(req);
  const auto refuse = [&](int status, const std::string& message) {
    if (body) {
      set_error_and_close(res, status, message);
    } else {
      set_error(res, status, message);
    }
    return true;
  };
  if (std::any_of(req.path.begin(), req.path.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return refuse(400, "control characters in the path");
  }
  const std::string* route = route_of(req.path);
  if (route == nullptr) return refuse(404, "no such route");
  const auto it = methods.find(*route);
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  if (it->second.count(method) == 0) {
    std::string allow;
    for (const std::string& m : it->second) {
      allow += (allow.empty() ? "" : ", ") + m + (m == "GET" ? ", HEAD" : "");
    }
    res.set_header("Allow", allow);
    return refuse(405, req.method + " is not allowed on " + req.path + "; it takes " + allow);
  }
  if (method == "GET" && body) return refuse(400, "a GET request with a body");
  return false;
}

HttpServer::HttpServer(const HttpServerOptions& options) : impl_(std::make_unique<Impl>(options)) {
  auto& s = impl_->server;
  s.set_payload_max_length(options.max_body_bytes);
  // What the Keep-Alive response header advertises; the reactor enforces it.
  s.set_keep_alive_timeout(
      static_cast<time_t>(std::ceil(options.connections.keep_alive_timeout_s)));
  s.set_keep_alive_max_count(static_cast<size_t>(ConnectionReactor::max_requests_per_connection()));
  // Errors raised by the library itself (unknown route, body over the limit,
  // bad request line) get an OpenAI-shaped body too.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return;
    set_error(res, res.status,
              res.status == 404   ? "no such route"
              : res.status == 413 ? "request body too large"
              : res.status == 405 ? "method not allowed"
                                  : "bad request");
  });
  // Before the library reads a body: what no route takes is answered here.
  s.set_pre_routing_handler([&impl = *impl_](const httplib::Request& req, httplib::Response& res) {
    return impl.screen(req, res) ? httplib::Server::HandlerResponse::Handled
                                 : httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(
        R"({"error":{"message":"internal error","type":"internal_error","param":null,"code":null}})",
        "application/json");
  });
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler) {
  Impl& impl = *impl_;
  auto& s = impl.server;
  R1_CHECK_MSG(method == "GET" || method == "POST" || method == "PUT" || method == "DELETE",
               "HttpServer::route takes GET, POST, PUT or DELETE");
  impl.methods[path].insert(method);
  const std::string pattern = route_pattern(path);
  if (method == "GET") {
    s.Get(pattern, [&impl, handler = std::move(handler)](const httplib::Request& req,
                                                         httplib::Response& res) {
      impl.respond(handler, req, std::string(), res);
    });
    return;
  }
  // Bodies are read here, never past max_body_bytes, whatever the transfer
  // encoding (the library's own limit covers Content-Length only).
  auto with_body = [&impl, handler = std::move(handler)](const httplib::Request& req,
                                                         httplib::Response& res,
                                                         const httplib::ContentReader& read) {
    if (req.is_multipart_form_data()) {
      set_error_and_close(res, 415, "multipart bodies are not accepted; send application/json");
      return;
    }
    std::string body;
    // A request with neither Content-Length nor Transfer-Encoding has no
    // body (RFC 9112 6.3); httplib would read one until the connection
    // closed, holding a bodiless POST (curl -X POST) for the whole request
    // timeout.
    if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      impl.respond(handler, req, std::move(body), res);
      return;
    }
    bool too_large = false;
    const size_t limit = impl.options.max_body_bytes;
    const bool read_all = read([&](const char* data, size_t n) {
      if (n > limit - std::min(limit, body.size())) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (!read_all) {
      if (ConnectionReactor::request_read_timed_out()) {
        set_error_and_close(res, 408,
                            "the request body did not arrive within " +
                                std::to_string(impl.options.connections.request_timeout_s) +
                                " s of the request's start");
      } else if (too_large || res.status == 413) {
        set_error_and_close(
            res, 413, "request body too large: the limit is " + std::to_string(limit) + " bytes");
      } else {
        set_error_and_close(res, 400, "the request body could not be read");
      }
      return;
    }
    impl.respond(handler, req, std::move(body), res);
  };
  if (method == "POST") {
    s.Post(pattern, std::move(with_body));
  } else if (method == "PUT") {
    s.Put(pattern, std::move(with_body));
  } else if (method == "DELETE") {
    s.Delete(pattern, std::move(with_body));
  }
}

Result<int> HttpServer::bind() {
  Impl& impl = *impl_;
  const auto& o = impl.options;
  auto& s = impl.server;
  R1_RETURN_IF_ERROR(impl.tls_status);
  if (!s.is_valid()) return internal_error("the TLS context could not be set up");
  // The library's default options (SO_REUSEADDR), and the socket kept so its
  // backlog can be raised once it listens.
  s.set_socket_options([&impl](int fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl.listen_fd = fd;
  });
  int port = o.port;
  if (o.port == 0) {
    port = s.bind_to_any_port(o.host);
    if (port <= 0) return unavailable("cannot bind " + o.host + " on any port");
  } else if (!s.bind_to_port(o.host, o.port)) {
    return unavailable("cannot bind " + o.host + ":" + std::to_string(o.port) +
                       " (in use, or no permission)");
  }
  // The library listens with a backlog of 5, which overflows (SYN-flood
  // warnings, refused connects) under bursts; listen() again raises it, and
  // the kernel caps it at net.core.somaxconn.
  if (impl.listen_fd >= 0) ::listen(impl.listen_fd, 65535);
  return port;
}

bool HttpServer::tls() const {
  return impl_->options.tls.enabled();
}

Status HttpServer::reload_tls() {
  if (!tls()) return ok_status();
  R1_ASSIGN_OR_RETURN(std::shared_ptr<const TlsCredentials> loaded,
                      TlsCredentials::load(impl_->options.tls));
  std::lock_guard<std::mutex> lock(impl_->tls_mu);
  impl_->tls = std::move(loaded);
  return ok_status();
}

void HttpServer::serve() {
  if (impl_->listen_fd >= 0) impl_->reactor.run(impl_->listen_fd);
}

void HttpServer::stop() {
  impl_->end_streams();
  impl_->reactor.stop();
}

}  // namespace r1
