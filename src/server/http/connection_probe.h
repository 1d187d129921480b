// Tells a handler that answers with one whole body (not a stream) whether its
// client is still connected, so a long generation is cancelled when the
// client gives up. cpp-httplib hands handlers no socket, so the probe finds
// the accepted socket by its peer address (unique among this process's
// sockets: the client's own address and ephemeral port) and peeks at it: a
// read of 0 bytes means the peer closed its side.
#pragma once

#include <string>

namespace r1 {

class ConnectionProbe {
 public:
  ConnectionProbe(std::string peer_addr, int peer_port)
      : peer_addr_(std::move(peer_addr)), peer_port_(peer_port) {}

  // False once the peer has closed or reset the connection. True when the
  // socket cannot be found (nothing is cancelled on a guess). Call from the
  // connection's worker thread; costs one recv() after the first call, which
  // scans /proc/self/fd once.
  bool connected();

 private:
  std::string peer_addr_;
  int peer_port_ = 0;
  int fd_ = -1;
  bool searched_ = false;
};

}  // namespace r1
