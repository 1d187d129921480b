// Owns the server's connections: accepts them, reads each request on one
// event-loop thread (epoll), and hands a connection to a worker only once the
// request's head and body are buffered. A client that trickles its headers
// (slowloris) or its body, never sends a request, never finishes a TLS
// handshake, or idles between requests holds a socket and a bounded buffer,
// never a worker; deadlines end it. Workers run the request (body,
// handler, response, SSE stream) and give the connection back for the next
// one. cpp-httplib parses and routes the request from the buffered stream
// (HttpServer); this class knows sockets and TLS records, not HTTP semantics
// beyond finding the end of a head.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct ssl_st;
struct ssl_ctx_st;
namespace httplib {
class Stream;
}

namespace r1 {

struct ConnectionLimits {
  // A request head (request line and header fields) must arrive whole within
  // this many seconds of its first byte; the first request of a connection
  // counts from the connect, TLS handshake included. Past it: 408 and close.
  double header_timeout_s = 10;
  // The whole request, head and body, within this many seconds of its first
  // byte. Past it the body read fails (the handler answers 408).
  double request_timeout_s = 60;
  // An idle connection between requests is closed after this many seconds.
  double keep_alive_timeout_s = 30;
  // One write (a response chunk) may wait this long for the client to read.
  double write_timeout_s = 30;
  // A head larger than this gets 431 and the connection is closed.
  size_t max_head_bytes = 64 << 10;
  // A body up to this size (HttpServer's max_body_bytes) is read whole by
  // the event loop before a worker takes the request, so a stalled body
  // holds no worker either. Larger ones, and bodies the client sends only
  // after "100 Continue", are read by the worker, under the same deadline.
  size_t max_body_bytes = 8 << 20;
  // Open connections from one client address; past it a new connection gets
  // 429 (plain HTTP; closed at once with TLS). 0 = no limit.
  int max_per_client = 0;
  // Workers: each runs one request at a time (an SSE stream holds its worker
  // for the stream's life). Requests with a complete head wait for one.
  int n_workers = 128;
};

class ConnectionReactor {
 public:
  // Requests one connection may carry; the last is answered with
  // Connection: close.
  static int max_requests_per_connection();

  // Serves one request whose head is buffered in `stream`, as
  // httplib::Server::process_request does; returns false when the
  // connection must close. `ssl` is the connection's TLS session, or null.
  // Called on a worker thread.
  using ServeRequest = std::function<bool(httplib::Stream& stream, bool close_connection,
                                          bool& connection_closed, ssl_st* ssl)>;

  // Whether a request with this method and request target would have its
  // body read; a request that will be refused unread (no such route or
  // method) goes to a worker as soon as its head is whole. Called on the
  // event-loop thread.
  using ReadsBody = std::function<bool(std::string_view method, std::string_view target)>;

  // `tls` (owned by the caller, outliving the reactor) makes every
  // connection TLS; null serves plain HTTP. A null `reads_body` reads every
  // body first.
  ConnectionReactor(const ConnectionLimits& limits, ssl_ctx_st* tls, ServeRequest serve,
                    ReadsBody reads_body = nullptr);
  ~ConnectionReactor();
  ConnectionReactor(const ConnectionReactor&) = delete;
  ConnectionReactor& operator=(const ConnectionReactor&) = delete;

  // Accepts on `listen_fd` (a listening socket the caller owns) and serves
  // until stop(); returns once every worker has finished its request. Call
  // once, from one thread.
  void run(int listen_fd);
  // Stops accepting, closes idle connections and makes run() return; a
  // worker finishes the request it has, then closes. Safe from any thread,
  // before or during run().
  void stop();

  // On a worker thread, inside ServeRequest: whether a read of the current
  // request failed because its deadline (request_timeout_s) passed.
  static bool request_read_timed_out();
  // On a worker thread, inside ServeRequest: the socket of the connection
  // being served (valid until ServeRequest returns); -1 elsewhere.
  static int current_socket();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r1
