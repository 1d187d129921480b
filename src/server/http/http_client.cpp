#include "server/http/http_client.h"

#include <httplib.h>

namespace r1 {

Result<HttpClient> HttpClient::create(const std::string& base_url) {
  std::string rest = base_url;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return invalid_argument("--url " + base_url + ": only http:// is supported");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  HttpClient c;
  c.host_ = colon == std::string::npos ? rest : rest.substr(0, colon);
  c.port_ = 80;
  if (colon != std::string::npos) {
    try {
      c.port_ = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      return invalid_argument("--url " + base_url + ": bad port");
    }
  }
  if (c.host_.empty() || c.port_ <= 0 || c.port_ > 65535) {
    return invalid_argument("--url " + base_url + ": expected http://host:port");
  }
  return c;
}

Result<HttpClientResponse> HttpClient::post(
    const std::string& path, const std::string& body,
    const std::function<bool(std::string_view)>& on_chunk) const {
  httplib::Client client(host_, port_);
  client.set_read_timeout(600, 0);
  HttpClientResponse out;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (on_chunk) return on_chunk(std::string_view(data, n));
    out.body.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!client.send(req, res, err)) {
    if (err == httplib::Error::Canceled) {
      out.status = res.status;
      return out;
    }
    return unavailable("POST " + path + ": " + httplib::to_string(err));
  }
  out.status = res.status;
  return out;
}

Result<HttpClientResponse> HttpClient::send(
    const std::string& method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
    int timeout_ms) const {
  httplib::Client client(host_, port_);
  const time_t sec = timeout_ms / 1000;
  const time_t usec = static_cast<time_t>(timeout_ms % 1000) * 1000;
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.body = body;
  for (const auto& [k, v] : headers) req.set_header(k, v);
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!client.send(req, res, err)) {
    return unavailable(method + " " + path + ": " + httplib::to_string(err));
  }
  return HttpClientResponse{res.status, res.body};
}

}  // namespace r1
