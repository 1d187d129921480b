#include "server/http/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>

#include "obs/request_id.h"
#include "server/http/connection_probe.h"

namespace r1 {

namespace {

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

struct HttpServer::Impl {
  HttpServerOptions options;
  httplib::Server server;
};

HttpServer::HttpServer(const HttpServerOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  auto& s = impl_->server;
  const int n = std::max(1, options.n_threads);
  s.new_task_queue = [n] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  s.set_payload_max_length(options.max_body_bytes);
  s.set_keep_alive_timeout(options.keep_alive_seconds);
  s.set_tcp_nodelay(true);
  // Errors raised by the library itself (unknown route, body over the limit,
  // bad request line) get an OpenAI-shaped body too.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* message = res.status == 404   ? "no such route"
                          : res.status == 413 ? "request body too large"
                          : res.status == 405 ? "method not allowed"
                                              : "bad request";
    const char* type = res.status == 404 ? "not_found_error" : "invalid_request_error";
    res.set_content(std::string(R"({"error":{"message":")") + message + R"(","type":")" + type +
                        R"(","param":null,"code":null}})",
                    "application/json");
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
  auto adapter = [handler = std::move(handler)](const httplib::Request& req,
                                                httplib::Response& res) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    r.remote_addr = req.remote_addr;
    for (const auto& [k, v] : req.headers) r.headers.emplace(k, v);
    for (const auto& [k, v] : req.params) r.query.emplace(k, v);
    r.request_id = request_id_or_new(req.get_header_value("X-Request-Id"));
    auto probe = std::make_shared<ConnectionProbe>(req.remote_addr, req.remote_port);
    r.client_connected = [probe] { return probe->connected(); };
    HttpResponse out = handler(r);
    res.status = out.status;
    res.set_header("X-Request-Id", r.request_id);
    for (const auto& [k, v] : out.headers) res.set_header(k.c_str(), v);
    if (out.stream) {
      auto stream = std::make_shared<std::function<void(StreamWriter&)>>(std::move(out.stream));
      res.set_chunked_content_provider(out.content_type,
                                       [stream, probe](size_t, httplib::DataSink& sink) {
                                         SinkWriter writer(sink, *probe);
                                         (*stream)(writer);
                                         sink.done();
                                         return true;
                                       });
    } else {
      res.set_content(out.body, out.content_type);
    }
  };
  auto& s = impl_->server;
  if (method == "GET") {
    s.Get(path, adapter);
  } else if (method == "POST") {
    s.Post(path, adapter);
  } else if (method == "DELETE") {
    s.Delete(path, adapter);
  } else if (method == "PUT") {
    s.Put(path, adapter);
  }
}

Result<int> HttpServer::bind() {
  const auto& o = impl_->options;
  if (o.port == 0) {
    const int port = impl_->server.bind_to_any_port(o.host);
    if (port <= 0) return unavailable("cannot bind " + o.host + " on any port");
    return port;
  }
  if (!impl_->server.bind_to_port(o.host, o.port)) {
    return unavailable("cannot bind " + o.host + ":" + std::to_string(o.port) +
                       " (in use, or no permission)");
  }
  return o.port;
}

void HttpServer::serve() {
  impl_->server.listen_after_bind();
}

void HttpServer::stop() {
  if (impl_->server.is_running()) impl_->server.stop();
}

}  // namespace r1
