// The receive path of a TCP connection (transports/tcp/tcp_connection.h)
// against frames written by hand on the far ends of local socket pairs: a
// message striped over two sockets lands whole, and frames of one message
// that add up to more than the message are refused before the receive
// completes (found by tests/fuzz/fuzz_tcp_recv: a frame on a second socket
// kept writing into the buffer after the message had completed).
#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "transports/tcp/frame.h"
#include "transports/tcp/tcp_connection.h"

namespace gccl::tcp {
namespace {

constexpr uint64_t kHash = 0x0123456789abcdefull;
constexpr uint64_t kTag = 42;
constexpr size_t kSockets = 4;  // control, asynchronous, two data sockets

// The test calls onEvents() itself; interest changes need not go anywhere.
class NullPoller final : public transport::Poller {
 public:
  gcclResult_t watch(int, uint32_t, void*) override { return gcclSuccess; }
  void unwatch(int) override {}
};

class TcpConnectionRecv : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int> local;
    for (size_t i = 0; i < kSockets; ++i) {
      int sv[2];
      ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
      local.push_back(sv[0]);
      remote_.push_back(sv[1]);
    }
    local_ = local;
    conn_.reset(new TcpConnection(1, kHash, local, TcpTuning(), &poller_));
    ASSERT_EQ(conn_->start(), gcclSuccess);
  }
  void TearDown() override {
    conn_.reset();
    for (int fd : remote_)
      close(fd);
  }

  // The peer writes one data frame on socket `s` with `payloadBytes` of its
  // payload (fewer than `length` leaves the frame unfinished).
  void peerWrites(size_t s, uint64_t total, uint64_t offset, uint64_t length, size_t payloadBytes) {
    FrameHeader h;
    h.commHash = kHash;
    h.tag = kTag;
    h.totalBytes = total;
    h.offset = offset;
    h.length = length;
    std::vector<uint8_t> bytes(kFrameHeaderBytes);
    encodeFrameHeader(h, bytes.data());
    for (size_t i = 0; i < payloadBytes; ++i)
      bytes.push_back(static_cast<uint8_t>(offset + i));
    ASSERT_EQ(write(remote_[s], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  gcclResult_t deliver(size_t s) {
    clearThreadLastError();
    return conn_->onEvents(local_[s], EPOLLIN);
  }

  NullPoller poller_;
  std::vector<int> local_, remote_;
  std::unique_ptr<TcpConnection> conn_;
};

TEST_F(TcpConnectionRecv, MessageStripedOverTwoSocketsLandsWhole) {
  std::vector<uint8_t> buf(200);
  transport::Request req;
  ASSERT_EQ(conn_->irecv(buf.data(), buf.size(), kTag, {transport::kMetaAny, 0}, &req),
            gcclSuccess);
  peerWrites(2, 200, 0, 100, 100);
  peerWrites(3, 200, 100, 100, 100);
  ASSERT_EQ(deliver(2), gcclSuccess) << threadLastError();
  EXPECT_TRUE(req.pending());
  ASSERT_EQ(deliver(3), gcclSuccess) << threadLastError();
  ASSERT_TRUE(req.done());
  EXPECT_EQ(req.bytes, 200u);
  for (size_t i = 0; i < buf.size(); ++i)
    ASSERT_EQ(buf[i], static_cast<uint8_t>(i)) << "byte " << i;
}

TEST_F(TcpConnectionRecv, OverlappingFrameOnAnotherSocketIsRefusedBeforeCompletion) {
  std::vector<uint8_t> buf(200);
  transport::Request req;
  ASSERT_EQ(conn_->irecv(buf.data(), buf.size(), kTag, {transport::kMetaAny, 0}, &req),
            gcclSuccess);
  // Socket 2 starts the whole message; socket 3 then sends all of it again.
  peerWrites(2, 200, 0, 200, 36);
  ASSERT_EQ(deliver(2), gcclSuccess) << threadLastError();
  peerWrites(3, 200, 0, 200, 200);
  EXPECT_EQ(deliver(3), gcclInternalError);
  EXPECT_NE(std::string(threadLastError()).find("carry more than its 200 bytes"), std::string::npos)
      << threadLastError();
  // Had the message completed here, socket 2's frame would still be writing into buf.
  EXPECT_FALSE(req.done());
}

TEST_F(TcpConnectionRecv, FramesAddingUpToMoreThanTheMessageAreRefused) {
  std::vector<uint8_t> buf(200);
  transport::Request req;
  ASSERT_EQ(conn_->irecv(buf.data(), buf.size(), kTag, {transport::kMetaAny, 0}, &req),
            gcclSuccess);
  // 150 + 150 bytes for a 200-byte message: it could never complete.
  peerWrites(2, 200, 0, 150, 150);
  peerWrites(2, 200, 50, 150, 150);
  EXPECT_EQ(deliver(2), gcclInternalError);
  EXPECT_FALSE(req.done());
}

}  // namespace
}  // namespace gccl::tcp
