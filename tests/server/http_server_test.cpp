// The HTTP adapter over real sockets on loopback: routes, request ids, body
// limit, streamed responses, and a client that disconnects mid-stream.
#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

namespace r1 {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  void start() {
    auto port = server_->bind();
    ASSERT_TRUE(port.ok()) << port.status().message();
    port_ = *port;
    thread_ = std::thread([this] { server_->serve(); });
  }
  void TearDown() override {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Client client() { return httplib::Client("127.0.0.1", port_); }

  std::unique_ptr<HttpServer> server_ = std::make_unique<HttpServer>(
      HttpServerOptions{.host = "127.0.0.1",
                        .port = 0,
                        .connections = {.keep_alive_timeout_s = 5, .n_workers = 8},
                        .max_body_bytes = 1024,
                        .tls = {}});
  int port_ = 0;
  std::thread thread_;
};

TEST_F(HttpServerTest, RoutesEchoAndRequestIds) {
  server_->route("POST", "/echo", [](const HttpRequest& r) {
    HttpResponse out;
    out.body = r.method + " " + r.path + " " + r.body + " " + r.header("x-custom");
    out.content_type = "text/plain";
    return out;
  });
  start();
  auto c = client();
  auto res =
      c.Post("/echo", {{"X-Custom", "v1"}, {"X-Request-Id", "abc-123"}}, "hello", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "POST /echo hello v1");
  EXPECT_EQ(res->get_header_value("X-Request-Id"), "abc-123");
  // No id, or an unusable one: a generated id comes back.
  auto res2 = c.Post("/echo", {{"X-Request-Id", std::string(200, 'x')}}, "", "text/plain");
  ASSERT_TRUE(res2);
  const std::string id = res2->get_header_value("X-Request-Id");
  EXPECT_EQ(id.size(), 32u) << id;  // a generated id (obs/request_id.h)
  auto res3 = c.Post("/echo", "", "text/plain");
  EXPECT_NE(res3->get_header_value("X-Request-Id"), id);
}

TEST_F(HttpServerTest, UnknownRouteAndOversizeBodyGetJsonErrors) {
  server_->route("POST", "/x", [](const HttpRequest&) { return HttpResponse{}; });
  start();
  auto c = client();
  auto missing = c.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("\"error\""), std::string::npos);
  auto big = c.Post("/x", std::string(4096, 'a'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_NE(big->body.find("too large"), std::string::npos);
}

TEST_F(HttpServerTest, StreamsChunksInOrder) {
  server_->route("GET", "/sse", [](const HttpRequest&) {
    HttpResponse out;
    out.content_type = "text/event-stream";
    out.stream = [](StreamWriter& w) {
      for (int i = 0; i < 5; ++i) {
        if (!w.write("data: " + std::to_string(i) + "\n\n")) return;
      }
      w.write("data: [DONE]\n\n");
    };
    return out;
  });
  start();
  auto res = client().Get("/sse");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: [DONE]\n\n");
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
}

// The handler writes until the client is gone; it must notice (write returns
// false) soon after the client closes its socket.
TEST_F(HttpServerTest, HandlerSeesClientDisconnect) {
  std::promise<int> writes_after_close;
  std::atomic<bool> closed{false};
  server_->route("GET", "/forever", [&](const HttpRequest&) {
    HttpResponse out;
    out.content_type = "text/event-stream";
    out.stream = [&](StreamWriter& w) {
      int after = 0;
      for (int i = 0; i < 2000000; ++i) {
        if (!w.write(std::string(1024, 'x') + "\n")) break;
        if (closed.load()) ++after;
        std::this_thread::yield();
      }
      writes_after_close.set_value(after);
    };
    return out;
  });
  start();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  char buf[4096];
  ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);  // the stream has started
  closed = true;
  close(fd);
  auto f = writes_after_close.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the handler never noticed the disconnect";
  // Socket buffers absorb some writes after the close; never the whole stream.
  EXPECT_LT(f.get(), 100000);
}

}  // namespace
}  // namespace r1
