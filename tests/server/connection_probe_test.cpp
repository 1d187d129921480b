// ConnectionProbe over real loopback TCP: it reports the peer's close and
// reset, not unread bytes; no socket is "connected" (nothing is cancelled on
// a guess).
#include "server/http/connection_probe.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace r1 {
namespace {

struct Loopback {
  int listener = -1, client = -1, accepted = -1;
  int client_port = 0;

  Loopback() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(listener, 1), 0);
    EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    accepted = accept(listener, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
    sockaddr_in local{};
    len = sizeof local;
    EXPECT_EQ(getsockname(client, reinterpret_cast<sockaddr*>(&local), &len), 0);
    client_port = ntohs(local.sin_port);
  }
  ~Loopback() {
    for (int fd : {listener, client, accepted}) {
      if (fd >= 0) close(fd);
    }
  }
};

TEST(ConnectionProbeTest, SeesThePeerClose) {
  Loopback l;
  ConnectionProbe probe(l.accepted);
  EXPECT_TRUE(probe.connected());
  EXPECT_TRUE(probe.connected());
  close(l.client);
  l.client = -1;
  EXPECT_FALSE(probe.connected());
}

TEST(ConnectionProbeTest, UnreadRequestBytesAreNotAClose) {
  Loopback l;
  ConnectionProbe probe(l.accepted);
  ASSERT_EQ(write(l.client, "GET / HTTP/1.1\r\n", 16), 16);
  EXPECT_TRUE(probe.connected());
  char buf[16];
  EXPECT_EQ(read(l.accepted, buf, sizeof buf), 16);  // the peek left them in place
}

TEST(ConnectionProbeTest, SeesAReset) {
  Loopback l;
  ConnectionProbe probe(l.accepted);
  linger hard{1, 0};  // close with RST
  ASSERT_EQ(setsockopt(l.client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
  close(l.client);
  l.client = -1;
  EXPECT_FALSE(probe.connected());
}

TEST(ConnectionProbeTest, NoSocketCountsAsConnected) {
  EXPECT_TRUE(ConnectionProbe(-1).connected());
}

}  // namespace
}  // namespace r1
