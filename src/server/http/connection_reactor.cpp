#include "server/http/connection_reactor.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <vector>

#include "obs/log.h"
#include "server/http/connection_stream.h"
#include "server/http/request_framing.h"

namespace r1 {

namespace {

using Clock = ReactorClock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// How long a connection answered and closed by the reactor (408, 429, 431)
// keeps being read and discarded, so the client sees the answer instead of
// a reset from unread bytes.
constexpr auto kLingerTime = std::chrono::seconds(2);
// Requests one connection may carry before it is closed (nginx's
// keepalive_requests default): bounds what one connection's state can
// accumulate.
constexpr int kMaxRequestsPerConnection = 1000;
// Request bytes the reactor holds in all, across connections waiting for
// the rest of a body; past it a request with a whole head goes to a worker
// as it is and its body is read there (bounded by the workers).
constexpr size_t kReactorBufferBudget = size_t{256} << 20;
// How often deadlines are checked: their resolution.
constexpr int kSweepMs = 100;

std::string address_of(const sockaddr_storage& sa, int* port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
    *port = ntohs(in.sin_port);
  } else if (sa.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
    *port = ntohs(in6.sin6_port);
  }
  return text;
}

// An HTTP answer the reactor writes itself, without a worker.
std::string plain_response(int status, const char* reason, const std::string& message,
                           bool retry_after) {
  const std::string body = nlohmann::json({{"error",
                                            {{"message", message},
                                             {"type", "invalid_request_error"},
                                             {"param", nullptr},
                                             {"code", nullptr}}}})
                               .dump();
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n";
  if (retry_after) out += "Retry-After: 1\r\n";
  return out + "\r\n" + body;
}

thread_local int t_socket = -1;

}  // namespace

struct ConnectionReactor::Impl {
  ConnectionLimits limits;
  SSL_CTX* tls = nullptr;
  ServeRequest serve;
  ReadsBody reads_body;
  ClientCounts per_client;

  std::atomic<bool> stopping{false};
  int epoll_fd = -1;
  int wake_fd = -1;  // eventfd: connections given back, or stop

  // Reactor thread only: the connections it owns, by their epoll tag, and
  // the bytes their buffers hold.
  std::unordered_map<Connection*, std::unique_ptr<Connection>> idle;
  size_t idle_bytes = 0;
  int listen_fd = -1;
  bool accept_paused = false;  // out of descriptors: the listener is off epoll
  Clock::time_point accept_resume;
  Clock::time_point fd_warned;

  std::mutex mu;  // guards the members below
  std::condition_variable work_cv;
  std::deque<std::unique_ptr<Connection>> ready;      // a whole request buffered; for a worker
  std::vector<std::unique_ptr<Connection>> returned;  // from workers, for the reactor

  Impl(const ConnectionLimits& l, SSL_CTX* t, ServeRequest s, ReadsBody r)
      : limits(l),
        tls(t),
        serve(std::move(s)),
        reads_body(std::move(r)),
        per_client(l.max_per_client) {}

  // Whether the request whose head starts at c.consumed will read a body.
  bool wants_body(const Connection& c) const {
    if (!reads_body) return true;
    const std::string_view head(c.in.data() + c.consumed, c.head_end - c.consumed);
    const std::string_view line = head.substr(0, head.find("\r\n"));
    const size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return false;  // malformed: refused unread
    const size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return false;
    return reads_body(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1));
  }

  // ---- reactor thread ----
  void watch(Connection* c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    if (c->events == 0) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
    } else if (c->events != events) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->events = events;
  }
  void adopt(std::unique_ptr<Connection> c) {
    idle_bytes += c->in.size();
    Connection* raw = c.get();
    idle.emplace(raw, std::move(c));
  }
  std::unique_ptr<Connection> release(Connection* c) {
    if (c->events != 0) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, nullptr);
    c->events = 0;
    auto it = idle.find(c);
    std::unique_ptr<Connection> owned = std::move(it->second);
    idle.erase(it);
    idle_bytes -= owned->in.size();
    return owned;
  }
  void close_idle(Connection* c) { release(c); }
  // Stops reading requests: half-closes, then reads and discards until the
  // client closes or kLingerTime passes, so a client still sending reads
  // the answer it was given instead of a reset.
  void linger(Connection* c) {
    if (c->ssl != nullptr) {
      ERR_clear_error();
      SSL_shutdown(c->ssl);
      ERR_clear_error();
    }
    ::shutdown(c->fd, SHUT_WR);
    idle_bytes -= c->in.size();
    c->in.clear();
    c->consumed = 0;
    c->state = ConnectionState::kLinger;
    c->deadline = Clock::now() + kLingerTime;
    watch(c, EPOLLIN | EPOLLRDHUP);
  }
  void answer_and_close(Connection* c, const std::string& response) {
    write_now(*c, response);
    linger(c);
  }

  void accept_all();
  void on_event(Connection* c, uint32_t events);
  void read_request(Connection* c);
  void dispatch(Connection* c);
  void adopt_returned();
  void sweep();
  void pause_accepting();

  // ---- workers ----
  void work();
  void serve_connection(std::unique_ptr<Connection> c);
  void give_back(std::unique_ptr<Connection> c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      returned.push_back(std::move(c));
    }
    const uint64_t one = 1;
    (void)::write(wake_fd, &one, sizeof(one));
  }
};

void ConnectionReactor::Impl::pause_accepting() {
  // The listener is level-triggered: left on epoll it would wake the loop
  // at once, again and again. Connections wait in the backlog meanwhile.
  ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
  accept_paused = true;
  const Clock::time_point now = Clock::now();
  accept_resume = now + std::chrono::milliseconds(kSweepMs);
  if (now - fd_warned > std::chrono::seconds(10)) {
    fd_warned = now;
    log_warning("accept: out of file descriptors (raise the open-files limit); " +
                std::to_string(idle.size()) + " connections wait for a request");
  }
}

void ConnectionReactor::Impl::accept_all() {
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof(sa);
    const int fd =
        ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pause_accepting();
      }
      return;
    }
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->peer = address_of(sa, &c->peer_port);
    if (!per_client.acquire(c->peer)) {
      if (tls == nullptr) {
        // What the client sent with the connect is read first, so the
        // close after the answer is a FIN, not a reset that could discard
        // the answer. No lingering: a client reconnecting in a loop must
        // not pile up descriptors.
        char buf[4096];
        while (::recv(fd, buf, sizeof(buf), 0) > 0) {
        }
        write_now(*c, plain_response(429, "Too Many Requests",
                                     "too many open connections from this address", true));
      }
      continue;  // closed here; with TLS no HTTP answer is possible before a handshake
    }
    c->counted = &per_client;
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) {
      c->local = address_of(local, &c->local_port);
    }
    const Clock::time_point now = Clock::now();
    c->request_at = now;
    c->deadline = now + seconds(limits.header_timeout_s);
    if (tls != nullptr) {
      c->ssl = SSL_new(tls);
      if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) {
        ERR_clear_error();
        continue;
      }
      SSL_set_accept_state(c->ssl);
      c->state = ConnectionState::kHandshake;
    }
    Connection* raw = c.get();
    adopt(std::move(c));
    watch(raw, EPOLLIN | EPOLLRDHUP);
    // A client may have sent its request with the connect.
    on_event(raw, EPOLLIN);
  }
}

void ConnectionReactor::Impl::on_event(Connection* c, uint32_t events) {
  switch (c->state) {
    case ConnectionState::kLinger: {
      char buf[4096];
      ssize_t n = 0;
      while ((n = ::recv(c->fd, buf, sizeof(buf), 0)) > 0) {
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) close_idle(c);
      return;
    }
    case ConnectionState::kHandshake: {
      ERR_clear_error();
      const int r = SSL_accept(c->ssl);
      if (r != 1) {
        const int err = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) {
          watch(c, EPOLLIN | EPOLLRDHUP);
        } else if (err == SSL_ERROR_WANT_WRITE) {
          watch(c, EPOLLOUT | EPOLLRDHUP);
        } else {
          close_idle(c);  // a failed handshake (plain HTTP on the TLS port, a bad certificate)
        }
        return;
      }
      c->state = ConnectionState::kHead;
      watch(c, EPOLLIN | EPOLLRDHUP);
      read_request(c);  // the first request may have come with the handshake's last flight
      return;
    }
    case ConnectionState::kHead:
      if ((events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        read_request(c);
      }
      return;
  }
}

void ConnectionReactor::Impl::read_request(Connection* c) {
  for (;;) {
    // Empty lines before a request line are ignored (RFC 9112 §2.2), so a
    // CRLF a client adds after a body does not start a request.
    while (c->buffered() > 0 && c->head_end == 0 &&
           (c->in[c->consumed] == '\r' || c->in[c->consumed] == '\n')) {
      ++c->consumed;
    }
    if (!c->started && c->buffered() > 0) {
      c->started = true;
      if (c->idle_wait) {
        // Between requests the keep-alive deadline ran; from the first
        // byte on, the head has header_timeout_s. (A new connection's head
        // counts from the connect.)
        c->idle_wait = false;
        c->request_at = Clock::now();
        c->deadline = c->request_at + seconds(limits.header_timeout_s);
      }
    }
    if (c->head_end == 0 && c->started) {
      c->head_end = find_head_end(c->in, c->consumed, &c->head_scanned);
      if (c->head_end != 0) {
        // The head is whole; the body has what is left of the request's
        // own deadline.
        c->deadline = c->request_at + seconds(limits.request_timeout_s);
      } else if (c->buffered() > limits.max_head_bytes) {
        answer_and_close(c, plain_response(431, "Request Header Fields Too Large",
                                           "the request head is larger than " +
                                               std::to_string(limits.max_head_bytes) + " bytes",
                                           false));
        return;
      }
    }
    if (c->head_end != 0 && (idle_bytes > kReactorBufferBudget || !wants_body(*c) ||
                             body_framing(c->in, c->consumed, c->head_end, limits.max_body_bytes,
                                          &c->chunk_pos) == BodyFraming::kReady)) {
      dispatch(c);
      return;
    }
    const size_t before = c->in.size();
    const ReadResult r = read_some(*c);
    idle_bytes += c->in.size() - before;
    if (r == ReadResult::kClosed) {
      close_idle(c);
      return;
    }
    if (r == ReadResult::kWantWrite) {
      watch(c, EPOLLOUT | EPOLLRDHUP);
      return;
    }
    if (r == ReadResult::kWouldBlock) {
      watch(c, EPOLLIN | EPOLLRDHUP);
      return;
    }
  }
}

void ConnectionReactor::Impl::dispatch(Connection* c) {
  std::unique_ptr<Connection> owned = release(c);
  {
    std::lock_guard<std::mutex> lock(mu);
    ready.push_back(std::move(owned));
  }
  work_cv.notify_one();
}

void ConnectionReactor::Impl::adopt_returned() {
  uint64_t ignored = 0;
  (void)::read(wake_fd, &ignored, sizeof(ignored));
  std::vector<std::unique_ptr<Connection>> back;
  {
    std::lock_guard<std::mutex> lock(mu);
    back.swap(returned);
  }
  for (auto& c : back) {
    Connection* raw = c.get();
    adopt(std::move(c));
    if (raw->state == ConnectionState::kLinger) {
      linger(raw);
      continue;
    }
    watch(raw, EPOLLIN | EPOLLRDHUP);
    // TLS may hold decrypted bytes no socket event will announce; a plain
    // socket may have the next request buffered already.
    read_request(raw);
  }
}

void ConnectionReactor::Impl::sweep() {
  const Clock::time_point now = Clock::now();
  if (accept_paused && now >= accept_resume) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
    accept_paused = false;
  }
  std::vector<Connection*> expired;
  for (const auto& [raw, c] : idle) {
    if (now >= c->deadline) expired.push_back(raw);
  }
  for (Connection* c : expired) {
    if (c->state == ConnectionState::kHead && c->head_end != 0) {
      answer_and_close(c, plain_response(408, "Request Timeout",
                                         "the request body did not arrive within " +
                                             std::to_string(limits.request_timeout_s) +
                                             " s of the request's start",
                                         false));
    } else if (c->state == ConnectionState::kHead && c->started) {
      answer_and_close(c, plain_response(408, "Request Timeout",
                                         "the request head did not arrive within " +
                                             std::to_string(limits.header_timeout_s) + " s",
                                         false));
    } else {
      close_idle(c);  // idle, silent since the connect, mid-handshake or done lingering
    }
  }
}

void ConnectionReactor::Impl::work() {
  for (;;) {
    std::unique_ptr<Connection> c;
    {
      std::unique_lock<std::mutex> lock(mu);
      work_cv.wait(lock, [&] { return stopping.load() || !ready.empty(); });
      if (stopping.load()) return;  // queued connections close with the queue
      c = std::move(ready.front());
      ready.pop_front();
    }
    serve_connection(std::move(c));
  }
}

void ConnectionReactor::Impl::serve_connection(std::unique_ptr<Connection> c) {
  ConnectionStream stream(*c, c->request_at + seconds(limits.request_timeout_s),
                          seconds(limits.write_timeout_s));
  t_socket = c->fd;
  bool closed = false;
  ++c->n_requests;
  const bool last = stopping.load() || c->n_requests >= kMaxRequestsPerConnection;
  const bool ok = serve(stream, last, closed, c->ssl);
  t_socket = -1;
  if (stopping.load()) return;  // closes the connection
  c->compact();
  c->next_request();
  if (!ok || closed || last) {
    // The answer may have left part of a body unread: linger (reactor) so
    // the client reads the answer rather than a reset.
    c->state = ConnectionState::kLinger;
  } else {
    const Clock::time_point now = Clock::now();
    c->started = false;
    c->idle_wait = true;
    c->request_at = now;
    c->deadline = now + seconds(limits.keep_alive_timeout_s);
  }
  give_back(std::move(c));
}

ConnectionReactor::ConnectionReactor(const ConnectionLimits& limits, ssl_ctx_st* tls,
                                     ServeRequest serve, ReadsBody reads_body)
    : impl_(std::make_unique<Impl>(limits, tls, std::move(serve), std::move(reads_body))) {
  impl_->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

ConnectionReactor::~ConnectionReactor() {
  stop();
  if (impl_->epoll_fd >= 0) ::close(impl_->epoll_fd);
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

void ConnectionReactor::run(int listen_fd) {
  Impl& m = *impl_;
  if (m.epoll_fd < 0 || m.wake_fd < 0) {
    log_error("the connection reactor could not start: epoll or eventfd failed");
    return;
  }
  m.listen_fd = listen_fd;
  ::fcntl(listen_fd, F_SETFL, ::fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  // epoll tags: nullptr is the listening socket, &m the wake-up eventfd,
  // anything else a Connection.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  ::epoll_ctl(m.epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  ev.data.ptr = &m;
  ::epoll_ctl(m.epoll_fd, EPOLL_CTL_ADD, m.wake_fd, &ev);

  std::vector<std::thread> workers;
  const int n_workers = std::max(1, m.limits.n_workers);
  workers.reserve(static_cast<size_t>(n_workers));
  for (int i = 0; i < n_workers; ++i) workers.emplace_back([&m] { m.work(); });

  std::vector<epoll_event> events(256);
  Clock::time_point last_sweep = Clock::now();
  while (!m.stopping.load()) {
    const int n =
        ::epoll_wait(m.epoll_fd, events.data(), static_cast<int>(events.size()), kSweepMs);
    for (int i = 0; i < n && !m.stopping.load(); ++i) {
      void* tag = events[static_cast<size_t>(i)].data.ptr;
      if (tag == nullptr) {
        m.accept_all();
      } else if (tag == &m) {
        m.adopt_returned();
      } else {
        auto* c = static_cast<Connection*>(tag);
        // A connection closed earlier in this batch is no longer idle.
        if (m.idle.count(c) != 0) m.on_event(c, events[static_cast<size_t>(i)].events);
      }
    }
    if (Clock::now() - last_sweep >= std::chrono::milliseconds(kSweepMs)) {
      m.sweep();
      last_sweep = Clock::now();
    }
  }
  if (!m.accept_paused) ::epoll_ctl(m.epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
  m.work_cv.notify_all();
  for (std::thread& t : workers) t.join();
  for (auto& [raw, c] : m.idle) {
    if (c->events != 0) ::epoll_ctl(m.epoll_fd, EPOLL_CTL_DEL, c->fd, nullptr);
  }
  m.idle.clear();
  m.idle_bytes = 0;
  std::lock_guard<std::mutex> lock(m.mu);
  m.ready.clear();
  m.returned.clear();
}

void ConnectionReactor::stop() {
  {
    // Under the lock, so a worker between its check and its wait sees it.
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping.store(true);
  }
  impl_->work_cv.notify_all();
  const uint64_t one = 1;
  if (impl_->wake_fd >= 0) (void)::write(impl_->wake_fd, &one, sizeof(one));
}

int ConnectionReactor::max_requests_per_connection() {
  return kMaxRequestsPerConnection;
}

int ConnectionReactor::current_socket() {
  return t_socket;
}

bool ConnectionReactor::request_read_timed_out() {
  return ConnectionStream::read_timed_out();
}

}  // namespace r1
