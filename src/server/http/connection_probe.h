// Tells a handler that answers with one whole body (not a stream) whether its
// client is still connected, so a long generation is cancelled when the
// client gives up. It peeks at the connection's socket: a read of 0 bytes
// (or a reset) means the peer closed its side; bytes waiting (a pipelined
// request) or none at all mean it is still there.
#pragma once

namespace r1 {

class ConnectionProbe {
 public:
  // `fd`: the connection's socket, owned by the connection and open for as
  // long as the probe is used (the request's handler, on its worker); -1
  // when there is none, which counts as connected (nothing is cancelled on
  // a guess).
  explicit ConnectionProbe(int fd) : fd_(fd) {}

  // False once the peer has closed or reset the connection. One recv().
  bool connected() const;

 private:
  int fd_ = -1;
};

}  // namespace r1
