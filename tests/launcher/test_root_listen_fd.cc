// GCCL_ROOT_LISTEN_FD: rank 0 serves the rendezvous on a listening socket a
// launcher bound for it (gcclrun does), and refuses, naming the variable, any
// fd that is not such a socket for the rendezvous address.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/bootstrap.h"
#include "base/check.h"
#include "transports/tcp/socket.h"

namespace gccl {
namespace {

// A TCP socket on 127.0.0.1 with an ephemeral port; *port receives it.
int loopbackSocket(int type, bool listening, int* port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      (listening && listen(fd, 8) != 0) ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

UniqueIdFields fieldsFor(int port) {
  gcclUniqueId id;
  EXPECT_EQ(uniqueIdFromAddress("127.0.0.1:" + std::to_string(port), "test", &id), gcclSuccess);
  UniqueIdFields f;
  EXPECT_EQ(decodeUniqueId(id, &f), gcclSuccess);
  return f;
}

class RootListenFdTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("GCCL_ROOT_LISTEN_FD");
    for (int fd : open_)
      close(fd);
  }
  int keep(int fd) {
    if (fd >= 0) open_.push_back(fd);
    return fd;
  }
  // startRootAt with the variable set to `value`, for a rendezvous on
  // 127.0.0.1:`port`: expects a usage error naming the variable and `why`.
  void expectRefused(const std::string& value, int port, const char* why) {
    setenv("GCCL_ROOT_LISTEN_FD", value.c_str(), 1);
    clearThreadLastError();
    EXPECT_EQ(startRootAt(fieldsFor(port), 1000), gcclInvalidUsage) << value;
    std::string msg = threadLastError();
    EXPECT_NE(msg.find("GCCL_ROOT_LISTEN_FD"), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
  }
  // A rendezvous port that nothing holds, for cases where the fd is refused
  // before the address matters: were the variable ignored, startRootAt would
  // bind it and succeed.
  int freePort() {
    int port = 0;
    int fd = loopbackSocket(SOCK_STREAM, false, &port);
    close(fd);
    return port;
  }
  std::vector<int> open_;
};

TEST_F(RootListenFdTest, RefusesWhatIsNotANumber) {
  expectRefused("three", freePort(), "not a file descriptor number");
  expectRefused("-1", freePort(), "not a file descriptor number");
}

TEST_F(RootListenFdTest, RefusesAClosedFd) {
  int fd = dup(0);
  ASSERT_GE(fd, 0);
  close(fd);
  expectRefused(std::to_string(fd), freePort(), "not an open file descriptor");
}

TEST_F(RootListenFdTest, RefusesWhatIsNotASocket) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  keep(p[0]);
  keep(p[1]);
  expectRefused(std::to_string(p[0]), freePort(), "not a socket");
}

TEST_F(RootListenFdTest, RefusesADatagramSocket) {
  int port = 0;
  int fd = keep(loopbackSocket(SOCK_DGRAM, false, &port));
  ASSERT_GE(fd, 0);
  expectRefused(std::to_string(fd), freePort(), "not a stream");
}

TEST_F(RootListenFdTest, RefusesASocketThatIsNotListening) {
  int port = 0;
  int fd = keep(loopbackSocket(SOCK_STREAM, false, &port));
  ASSERT_GE(fd, 0);
  expectRefused(std::to_string(fd), port, "not listening");
  // Refused, not taken: the fd is still the caller's.
  EXPECT_GE(fcntl(fd, F_GETFD), 0);
}

TEST_F(RootListenFdTest, RefusesAnotherAddressFamily) {
  int fd = keep(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_GE(fd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;  // autobind: an abstract name chosen by the kernel
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  expectRefused(std::to_string(fd), freePort(), "address family");
}

TEST_F(RootListenFdTest, RefusesASocketOnAnotherPort) {
  int port = 0;
  int fd = keep(loopbackSocket(SOCK_STREAM, true, &port));
  ASSERT_GE(fd, 0);
  expectRefused(std::to_string(fd), freePort(), "not on the rendezvous address");
}

// Last in this file: once a process has taken the inherited socket it never
// looks at the variable again, which the end of this test checks.
TEST_F(RootListenFdTest, ServesTheRendezvousOnTheInheritedSocketOnce) {
  int port = 0;
  int fd = loopbackSocket(SOCK_STREAM, true, &port);  // the root closes it when done
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fcntl(fd, F_SETFD, 0), 0);  // as inherited across exec
  setenv("GCCL_ROOT_LISTEN_FD", std::to_string(fd).c_str(), 1);
  UniqueIdFields f = fieldsFor(port);
  // Binding the address again would fail while fd listens on it, so success
  // means the root serves on fd.
  ASSERT_EQ(startRootAt(f, 10000), gcclSuccess) << threadLastError();
  EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  std::vector<std::string> table;
  std::string me = "this rank's address blob";
  ASSERT_EQ(bootstrapExchange(f, 0, 1, me, nowMs() + 10000, &table), gcclSuccess)
      << threadLastError();
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0], me);
  waitForLocalRoots(10000);

  // A second rendezvous in this process binds its own address, whatever the
  // variable says: its number may name an unrelated file by now.
  setenv("GCCL_ROOT_LISTEN_FD", "three", 1);
  int second = freePort();
  UniqueIdFields g = fieldsFor(second);
  ASSERT_EQ(startRootAt(g, 10000), gcclSuccess) << threadLastError();
  ASSERT_EQ(bootstrapExchange(g, 0, 1, me, nowMs() + 10000, &table), gcclSuccess)
      << threadLastError();
  waitForLocalRoots(10000);
}

}  // namespace
}  // namespace gccl
