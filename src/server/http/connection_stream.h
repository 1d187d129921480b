// One accepted connection of the ConnectionReactor, and the httplib::Stream a
// worker serves a request through. Internal to server/http: only the
// reactor includes it.
#pragma once

#include <httplib.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace r1 {

using ReactorClock = std::chrono::steady_clock;

// Open connections per client address, against a limit (0 = none).
class ClientCounts {
 public:
  explicit ClientCounts(int limit) : limit_(limit) {}
  // False (and nothing counted) when `addr` is at the limit.
  bool acquire(const std::string& addr);
  void release(const std::string& addr);

 private:
  const int limit_;
  std::mutex mu_;
  std::unordered_map<std::string, int> open_;
};

enum class ConnectionState {
  kHandshake,  // TLS handshake in progress
  kHead,       // reading a request (or idle between requests)
  kLinger,     // answered; reading and discarding until close
};

// Owned by exactly one thread at a time: the reactor while it waits for a
// request, a worker while it serves one. Closing (destruction) frees the
// TLS session and the socket, and releases its place in `counted`.
struct Connection {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string peer;
  int peer_port = 0;
  std::string local;
  int local_port = 0;
  ClientCounts* counted = nullptr;  // released on close when set

  ConnectionState state = ConnectionState::kHead;
  // Bytes received and not yet consumed: in[0, consumed) is done with.
  std::string in;
  size_t consumed = 0;
  int n_requests = 0;                   // served on this connection so far
  bool started = false;                 // the current request's first byte has arrived
  bool idle_wait = false;               // between requests: the deadline is the keep-alive one
  size_t head_end = 0;                  // one past the current head's blank line; 0 = not yet
  size_t head_scanned = 0;              // find_head_end's resume point
  size_t chunk_pos = 0;                 // body_framing's resume point
  ReactorClock::time_point deadline;    // head, body, idle or linger deadline (reactor)
  ReactorClock::time_point request_at;  // the current request's first byte (or the connect)
  uint32_t events = 0;                  // what epoll waits for now

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

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
ReadResult read_some(Connection& c);

// Writes what it can of `bytes` now (non-blocking, best effort): for the
// reactor's own small answers.
void write_now(Connection& c, const std::string& bytes);

// Waits until `fd` is ready for `events` or `deadline` passes; false on the
// deadline or an error.
bool wait_for(int fd, short events, ReactorClock::time_point deadline);

// The stream cpp-httplib reads a request from and writes its response to:
// first the connection's buffered bytes, then the socket, every read bounded
// by the request's deadline and every write by the write timeout. The socket
// is non-blocking throughout, so a TLS record trickled in byte by byte
// cannot block a read past the deadline.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(Connection& c, ReactorClock::time_point read_deadline,
                   ReactorClock::duration write_timeout);

  // Whether a read of the newest ConnectionStream made on this thread failed
  // because its deadline passed (a handler asks while the stream serves it).
  static bool read_timed_out();

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return c_.fd; }

 private:
  Connection& c_;
  ReactorClock::time_point read_deadline_;
  ReactorClock::duration write_timeout_;
};

}  // namespace r1
