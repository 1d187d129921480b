#include "server/http/connection_probe.h"

#include <sys/socket.h>

#include <cerrno>

namespace r1 {

bool ConnectionProbe::connected() const {
  if (fd_ < 0) return true;
  char byte = 0;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;  // a pipelined request waiting: still there
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

}  // namespace r1
