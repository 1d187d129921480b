#include "server/http/connection_stream.h"

#include <openssl/err.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server/http/connection_probe.h"

namespace r1 {

namespace {

// Bytes asked of the socket per read.
constexpr size_t kReadChunk = 16 << 10;

thread_local bool t_read_timed_out = false;

}  // namespace

bool ClientCounts::acquire(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  int& n = open_[addr];
  if (limit_ > 0 && n >= limit_) {
    if (n == 0) open_.erase(addr);
    return false;
  }
  ++n;
  return true;
}

void ClientCounts::release(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(addr);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

Connection::~Connection() {
  if (ssl != nullptr) SSL_free(ssl);
  if (fd >= 0) ::close(fd);
  if (counted != nullptr) counted->release(peer);
}

ReadResult read_some(Connection& c) {
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

void write_now(Connection& c, const std::string& bytes) {
  if (c.ssl != nullptr) {
    ERR_clear_error();
    if (SSL_write(c.ssl, bytes.data(), static_cast<int>(bytes.size())) <= 0) ERR_clear_error();
    return;
  }
  (void)::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool wait_for(int fd, short events, ReactorClock::time_point deadline) {
  for (;;) {
    // Rounded up: a wait that ends early would read as a passed deadline.
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - ReactorClock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

ConnectionStream::ConnectionStream(Connection& c, ReactorClock::time_point read_deadline,
                                   ReactorClock::duration write_timeout)
    : c_(c), read_deadline_(read_deadline), write_timeout_(write_timeout) {
  t_read_timed_out = false;
}

bool ConnectionStream::read_timed_out() {
  return t_read_timed_out;
}

bool ConnectionStream::is_readable() const {
  if (c_.buffered() > 0) return true;
  if (c_.ssl != nullptr && SSL_pending(c_.ssl) > 0) return true;
  return wait_for(c_.fd, POLLIN, read_deadline_);
}

bool ConnectionStream::is_writable() const {
  return wait_for(c_.fd, POLLOUT, ReactorClock::now() + write_timeout_) &&
         ConnectionProbe(c_.fd).connected();  // writable, but has the peer closed?
}

ssize_t ConnectionStream::read(char* ptr, size_t size) {
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
        if (ReactorClock::now() >= read_deadline_) {
          t_read_timed_out = true;
          return -1;
        }
        const short want =
            c_.ssl != nullptr && SSL_want_write(c_.ssl) ? short{POLLOUT} : short{POLLIN};
        if (!wait_for(c_.fd, want, read_deadline_)) {
          t_read_timed_out = ReactorClock::now() >= read_deadline_;
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

ssize_t ConnectionStream::write(const char* ptr, size_t size) {
  size = std::min<size_t>(size, 1u << 30);
  const ReactorClock::time_point deadline = ReactorClock::now() + write_timeout_;
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

void ConnectionStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  ip = c_.peer;
  port = c_.peer_port;
}

void ConnectionStream::get_local_ip_and_port(std::string& ip, int& port) const {
  ip = c_.local;
  port = c_.local_port;
}

}  // namespace r1
