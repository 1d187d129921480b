#include "server/http/connection_reactor.h"

#include <httplib.h>
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
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "obs/log.h"
#include "server/http/request_framing.h"

namespace r1 {

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Bytes asked of the socket per read while a head or body is buffered.
constexpr size_t kReadChunk = 16 << 10;
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

// Waits until `fd` is ready for `events` or `deadline` passes; false on the
// deadline or an error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    // Rounded up: a wait that ends early would read as a passed deadline.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// An HTTP answer the reactor writes itself, without a worker.
std::string plain_response(int status, const char* reason, const std::string& message,
                           bool retry_after) {
  const std::string body = R"({"error":{"message":")" + message +
                           R"(","type":"invalid_request_error","param":null,"code":null}})";
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n";
  if (retry_after) out += "Retry-After: 1\r\n";
  return out + "\r\n" + body;
}

// Open connections per client address.
class ClientCounts {
 public:
  explicit ClientCounts(int limit) : limit_(limit) {}
  bool acquire(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    int& n = open_[addr];
    if (limit_ > 0 && n >= limit_) {
      if (n == 0) open_.erase(addr);
      return false;
    }
    ++n;
    return true;
  }
  void release(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(addr);
    if (it != open_.end() && --it->second <= 0) open_.erase(it);
  }

 private:
  const int limit_;
  std::mutex mu_;
  std::unordered_map<std::string, int> open_;
};

enum class ConnState {
  kHandshake,  // TLS handshake in progress
  kHead,       // reading a request head (or idle between requests)
  kLinger,     // answered by the reactor; reading and discarding until close
};

// One accepted connection. Owned by exactly one thread at a time: the
// reactor while it waits for a head, a worker while it serves a request.
struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string peer;
  int peer_port = 0;
  std::string local;
  int local_port = 0;
  ClientCounts* counted = nullptr;  // released on close when set

  ConnState state = ConnState::kHead;
  // Bytes received and not yet consumed: in[0, consumed) is done with.
  std::string in;
  size_t consumed = 0;
  int n_requests = 0;            // served on this connection so far
  bool started = false;          // the current request's first byte has arrived
  bool idle_wait = false;        // between requests: the deadline is the keep-alive one
  size_t head_end = 0;           // one past the current head's blank line; 0 = not yet
  size_t head_scanned = 0;       // find_head_end's resume point
  size_t chunk_pos = 0;          // body_framing's resume point
  Clock::time_point deadline;    // head, idle or linger deadline (reactor)
  Clock::time_point request_at;  // the current request's first byte (or the connect)
  uint32_t events = 0;           // what epoll waits for now

  ~Conn() {
    if (ssl != nullptr) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
    if (counted != nullptr) counted->release(peer);
  }

  size_t buffered() const { return in.size() - consumed; }
  void compact() {
    in.erase(0, consumed);
    consumed = 0;
  }
  // Forgets the framing of the request just served (after compact()).
  void next_request() {
    head_end = 0;
    head_scanned = 0;
    chunk_pos = 0;
  }
};

// Result of one non-blocking read into a connection's buffer.
enum class ReadResult { kData, kWouldBlock, kWantWrite, kClosed };

ReadResult read_some(Conn& c) {
  char buf[kReadChunk];
  for (;;) {
    ssize_t n = 0;
    if (c.ssl != nullptr) {
      ERR_clear_error();  // SSL_get_error reads the thread's queue
      const int r = SSL_read(c.ssl, buf, sizeof(buf));
      if (r > 0) {
        n = r;
      } else {
        const int err = SSL_get_error(c.ssl, r);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) return ReadResult::kWouldBlock;
        if (err == SSL_ERROR_WANT_WRITE) return ReadResult::kWantWrite;
        return ReadResult::kClosed;
      }
    } else {
      n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadResult::kWouldBlock;
      if (n <= 0) return ReadResult::kClosed;
    }
    c.in.append(buf, static_cast<size_t>(n));
    return ReadResult::kData;
  }
}

// Writes what it can of `bytes` now (non-blocking): the reactor's own
// answers are small and best effort.
void write_now(Conn& c, const std::string& bytes) {
  if (c.ssl != nullptr) {
    ERR_clear_error();
    if (SSL_write(c.ssl, bytes.data(), static_cast<int>(bytes.size())) <= 0) ERR_clear_error();
    return;
  }
  (void)::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

thread_local bool t_read_timed_out = false;
thread_local int t_socket = -1;

// The stream cpp-httplib reads a request from and writes its response to:
// first the connection's buffered bytes, then the socket, every read bounded
// by the request's deadline and every write by the write timeout. The socket
// is non-blocking throughout, so a TLS record trickled in byte by byte
// cannot block a read past the deadline.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& c, Clock::time_point read_deadline, Clock::duration write_timeout)
      : c_(c), read_deadline_(read_deadline), write_timeout_(write_timeout) {}

  bool is_readable() const override {
    if (c_.buffered() > 0) return true;
    if (c_.ssl != nullptr && SSL_pending(c_.ssl) > 0) return true;
    return wait_for(c_.fd, POLLIN, read_deadline_);
  }

  bool is_writable() const override {
    if (!wait_for(c_.fd, POLLOUT, Clock::now() + write_timeout_)) return false;
    // Writable, but has the peer closed? A read of 0 bytes says so; bytes
    // waiting (a pipelined request) or none at all say it is still there.
    pollfd p{c_.fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    char byte = 0;
    return ::recv(c_.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    while (c_.buffered() == 0) {
      c_.compact();
      switch (read_some(c_)) {
        case ReadResult::kData:
          break;
        case ReadResult::kClosed:
          return 0;
        case ReadResult::kWouldBlock:
        case ReadResult::kWantWrite: {
          // Bytes already here are read whatever the time; a body trickled
          // in, which never waits long, still ends at the deadline.
          if (Clock::now() >= read_deadline_) {
            t_read_timed_out = true;
            return -1;
          }
          const short want =
              c_.ssl != nullptr && SSL_want_write(c_.ssl) ? short{POLLOUT} : short{POLLIN};
          if (!wait_for(c_.fd, want, read_deadline_)) {
            t_read_timed_out = Clock::now() >= read_deadline_;
            return -1;
          }
          break;
        }
      }
    }
    const size_t n = std::min(size, c_.buffered());
    std::memcpy(ptr, c_.in.data() + c_.consumed, n);
    c_.consumed += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size = std::min<size_t>(size, 1u << 30);
    const Clock::time_point deadline = Clock::now() + write_timeout_;
    for (;;) {
      short want = POLLOUT;
      if (c_.ssl != nullptr) {
        ERR_clear_error();
        const int r = SSL_write(c_.ssl, ptr, static_cast<int>(size));
        if (r > 0) return r;
        const int err = SSL_get_error(c_.ssl, r);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) {
          want = POLLIN;
        } else if (err != SSL_ERROR_WANT_WRITE) {
          return -1;
        }
      } else {
        const ssize_t n = ::send(c_.fd, ptr, size, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      }
      if (!wait_for(c_.fd, want, deadline)) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.peer;
    port = c_.peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local;
    port = c_.local_port;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  Conn& c_;
  Clock::time_point read_deadline_;
  Clock::duration write_timeout_;
};

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
  std::unordered_map<Conn*, std::unique_ptr<Conn>> idle;
  size_t idle_bytes = 0;
  int listen_fd = -1;
  bool accept_paused = false;  // out of descriptors: the listener is off epoll
  Clock::time_point accept_resume;
  Clock::time_point fd_warned;

  std::mutex mu;  // guards the members below
  std::condition_variable work_cv;
  std::deque<std::unique_ptr<Conn>> ready;      // a whole request buffered; for a worker
  std::vector<std::unique_ptr<Conn>> returned;  // from workers, for the reactor
  Counts counts;

  Impl(const ConnectionLimits& l, SSL_CTX* t, ServeRequest s, ReadsBody r)
      : limits(l),
        tls(t),
        serve(std::move(s)),
        reads_body(std::move(r)),
        per_client(l.max_per_client) {}

  // Whether the request whose head starts at c.consumed will read a body.
  bool wants_body(const Conn& c) const {
    if (!reads_body) return true;
    const std::string_view head(c.in.data() + c.consumed, c.head_end - c.consumed);
    const std::string_view line = head.substr(0, head.find("\r\n"));
    const size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return false;  // malformed: refused unread
    const size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return false;
    return reads_body(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1));
  }

  void count(uint64_t Counts::*field) {
    std::lock_guard<std::mutex> lock(mu);
    ++(counts.*field);
  }

  // ---- reactor thread ----
  void watch(Conn* c, uint32_t events) {
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
  void adopt(std::unique_ptr<Conn> c) {
    idle_bytes += c->in.size();
    Conn* raw = c.get();
    idle.emplace(raw, std::move(c));
  }
  std::unique_ptr<Conn> release(Conn* c) {
    if (c->events != 0) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, nullptr);
    c->events = 0;
    auto it = idle.find(c);
    std::unique_ptr<Conn> owned = std::move(it->second);
    idle.erase(it);
    idle_bytes -= owned->in.size();
    return owned;
  }
  void close_idle(Conn* c) { release(c); }
  // Stops reading requests: half-closes, then reads and discards until the
  // client closes or kLingerTime passes, so a client still sending reads
  // the answer it was given instead of a reset.
  void linger(Conn* c) {
    if (c->ssl != nullptr) {
      ERR_clear_error();
      SSL_shutdown(c->ssl);
      ERR_clear_error();
    }
    ::shutdown(c->fd, SHUT_WR);
    idle_bytes -= c->in.size();
    c->in.clear();
    c->consumed = 0;
    c->state = ConnState::kLinger;
    c->deadline = Clock::now() + kLingerTime;
    watch(c, EPOLLIN | EPOLLRDHUP);
  }
  void answer_and_close(Conn* c, const std::string& response) {
    write_now(*c, response);
    linger(c);
  }

  void accept_all();
  void on_event(Conn* c, uint32_t events);
  void read_request(Conn* c);
  void dispatch(Conn* c);
  void adopt_returned();
  void sweep();
  void pause_accepting();

  // ---- workers ----
  void work();
  void serve_connection(std::unique_ptr<Conn> c);
  void give_back(std::unique_ptr<Conn> c) {
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
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->peer = address_of(sa, &c->peer_port);
    count(&Counts::accepted);
    if (!per_client.acquire(c->peer)) {
      count(&Counts::refused_per_client);
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
      c->state = ConnState::kHandshake;
    }
    Conn* raw = c.get();
    adopt(std::move(c));
    watch(raw, EPOLLIN | EPOLLRDHUP);
    // A client may have sent its request with the connect.
    on_event(raw, EPOLLIN);
  }
}

void ConnectionReactor::Impl::on_event(Conn* c, uint32_t events) {
  switch (c->state) {
    case ConnState::kLinger: {
      char buf[4096];
      ssize_t n = 0;
      while ((n = ::recv(c->fd, buf, sizeof(buf), 0)) > 0) {
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) close_idle(c);
      return;
    }
    case ConnState::kHandshake: {
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
      c->state = ConnState::kHead;
      watch(c, EPOLLIN | EPOLLRDHUP);
      read_request(c);  // the first request may have come with the handshake's last flight
      return;
    }
    case ConnState::kHead:
      if ((events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        read_request(c);
      }
      return;
  }
}

void ConnectionReactor::Impl::read_request(Conn* c) {
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
        count(&Counts::heads_too_large);
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

void ConnectionReactor::Impl::dispatch(Conn* c) {
  std::unique_ptr<Conn> owned = release(c);
  {
    std::lock_guard<std::mutex> lock(mu);
    ready.push_back(std::move(owned));
  }
  work_cv.notify_one();
}

void ConnectionReactor::Impl::adopt_returned() {
  uint64_t ignored = 0;
  (void)::read(wake_fd, &ignored, sizeof(ignored));
  std::vector<std::unique_ptr<Conn>> back;
  {
    std::lock_guard<std::mutex> lock(mu);
    back.swap(returned);
  }
  for (auto& c : back) {
    Conn* raw = c.get();
    adopt(std::move(c));
    if (raw->state == ConnState::kLinger) {
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
  std::vector<Conn*> expired;
  for (const auto& [raw, c] : idle) {
    if (now >= c->deadline) expired.push_back(raw);
  }
  for (Conn* c : expired) {
    if (c->state == ConnState::kHead && c->head_end != 0) {
      count(&Counts::head_timeouts);
      answer_and_close(c, plain_response(408, "Request Timeout",
                                         "the request body did not arrive within " +
                                             std::to_string(limits.request_timeout_s) +
                                             " s of the request's start",
                                         false));
    } else if (c->state == ConnState::kHead && c->started) {
      count(&Counts::head_timeouts);
      answer_and_close(c, plain_response(408, "Request Timeout",
                                         "the request head did not arrive within " +
                                             std::to_string(limits.header_timeout_s) + " s",
                                         false));
    } else {
      if (c->state == ConnState::kHead && c->idle_wait) {
        count(&Counts::idle_closed);
      } else if (c->state != ConnState::kLinger) {
        count(&Counts::head_timeouts);  // connected, and no request or no handshake
      }
      close_idle(c);
    }
  }
}

void ConnectionReactor::Impl::work() {
  for (;;) {
    std::unique_ptr<Conn> c;
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

void ConnectionReactor::Impl::serve_connection(std::unique_ptr<Conn> c) {
  ConnStream stream(*c, c->request_at + seconds(limits.request_timeout_s),
                    seconds(limits.write_timeout_s));
  t_read_timed_out = false;
  t_socket = c->fd;
  bool closed = false;
  ++c->n_requests;
  const bool last = stopping.load() || c->n_requests >= kMaxRequestsPerConnection;
  const bool ok = serve(stream, last, closed, c->ssl);
  t_read_timed_out = false;
  t_socket = -1;
  if (stopping.load()) return;  // closes the connection
  c->compact();
  c->next_request();
  if (!ok || closed || last) {
    // The answer may have left part of a body unread: linger (reactor) so
    // the client reads the answer rather than a reset.
    c->state = ConnState::kLinger;
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
  // anything else a Conn.
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
        auto* c = static_cast<Conn*>(tag);
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
  return t_read_timed_out;
}

ConnectionReactor::Counts ConnectionReactor::counts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counts;
}

}  // namespace r1
