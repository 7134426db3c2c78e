// gcclCommGetPeerCounters on a one-rank communicator: the loopback's counts,
// every refused argument (with nothing written), and a caller's struct that
// is smaller than this header's (filled up to its size, not a byte beyond).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "gccl/gccl.h"

namespace {

class PeerCounters : public ::testing::Test {
 protected:
  void SetUp() override {
    gcclUniqueId id;
    ASSERT_EQ(gcclGetUniqueId(&id), gcclSuccess) << gcclGetLastError(nullptr);
    ASSERT_EQ(gcclCommInitRank(&comm_, 1, id, 0), gcclSuccess) << gcclGetLastError(nullptr);
  }
  void TearDown() override {
    if (comm_ != nullptr) {
      EXPECT_EQ(gcclCommDestroy(comm_), gcclSuccess);
    }
  }
  // One message of `bytes` from this rank to itself.
  void selfExchange(size_t bytes) {
    std::vector<uint8_t> out(bytes, 0x5a), in(bytes + 8, 0);
    ASSERT_EQ(gcclGroupStart(), gcclSuccess);
    ASSERT_EQ(gcclSend(out.data(), bytes, gcclUint8, 0, comm_, nullptr, nullptr), gcclSuccess);
    // A larger receive buffer: the count is what arrived.
    ASSERT_EQ(gcclRecv(in.data(), bytes + 8, gcclUint8, 0, comm_, nullptr, nullptr), gcclSuccess);
    ASSERT_EQ(gcclGroupEnd(), gcclSuccess) << gcclGetLastError(comm_);
  }
  // Expects `call` to fail with `code`, a last error containing `words`, and
  // the struct untouched.
  void expectRefused(int peer, gcclPeerCounters_t* counters, gcclComm_t comm, gcclResult_t code,
                     const char* words) {
    gcclPeerCounters_t before{};
    if (counters != nullptr) memcpy(&before, counters, sizeof(before));
    EXPECT_EQ(gcclCommGetPeerCounters(comm, peer, counters), code);
    std::string why = gcclGetLastError(nullptr);
    EXPECT_NE(why.find(words), std::string::npos) << why;
    if (counters != nullptr) {
      EXPECT_EQ(memcmp(&before, counters, sizeof(before)), 0);
    }
  }

  gcclComm_t comm_ = nullptr;
};

TEST_F(PeerCounters, ThisRanksOwnPeerGivesTheLoopbacksCounts) {
  gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
  ASSERT_EQ(gcclCommGetPeerCounters(comm_, 0, &c), gcclSuccess) << gcclGetLastError(nullptr);
  EXPECT_EQ(c.bytesSent, 0u);
  EXPECT_EQ(c.messagesSent, 0u);
  selfExchange(1000);
  selfExchange(0);  // a message without payload is still a message
  selfExchange(37);
  ASSERT_EQ(gcclCommGetPeerCounters(comm_, 0, &c), gcclSuccess) << gcclGetLastError(nullptr);
  EXPECT_EQ(c.bytesSent, 1037u);
  EXPECT_EQ(c.bytesReceived, 1037u);
  EXPECT_EQ(c.messagesSent, 3u);
  EXPECT_EQ(c.messagesReceived, 3u);
  EXPECT_EQ(c.size, sizeof(gcclPeerCounters_t));
  EXPECT_EQ(c.magic, GCCL_PEER_COUNTERS_MAGIC);
}

TEST_F(PeerCounters, BadArgumentsAreRefusedAndNothingIsWritten) {
  gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
  c.bytesSent = 11;
  c.messagesReceived = 12;
  expectRefused(0, &c, nullptr, gcclInvalidArgument, "comm is NULL");
  expectRefused(0, nullptr, comm_, gcclInvalidArgument, "counters is NULL");
  expectRefused(-1, &c, comm_, gcclInvalidArgument, "peer -1 is out of range");
  expectRefused(1, &c, comm_, gcclInvalidArgument, "peer 1 is out of range");
  gcclPeerCounters_t bad = c;
  bad.magic = GCCL_CONFIG_MAGIC;  // another struct's magic
  expectRefused(0, &bad, comm_, gcclInvalidArgument, "counters->magic");
  bad = c;
  bad.magic = 0;
  expectRefused(0, &bad, comm_, gcclInvalidArgument, "GCCL_PEER_COUNTERS_INITIALIZER");
  bad = c;
  bad.size = offsetof(gcclPeerCounters_t, bytesSent);  // not even one counter
  expectRefused(0, &bad, comm_, gcclInvalidArgument, "counters->size");
  bad.size = 0;
  expectRefused(0, &bad, comm_, gcclInvalidArgument, "counters->size");
  // The refusal is also the communicator's last error.
  EXPECT_NE(std::string(gcclGetLastError(comm_)).find("counters->size"), std::string::npos);

  gcclComm_t gone = comm_;
  ASSERT_EQ(gcclCommDestroy(comm_), gcclSuccess);
  comm_ = nullptr;
  expectRefused(0, &c, gone, gcclInvalidUsage, "is not valid");
}

TEST_F(PeerCounters, ASmallerStructIsFilledUpToItsSizeAndNoFurther) {
  selfExchange(300);
  selfExchange(5);
  // A struct as an older header declared it: up to bytesReceived, followed
  // by guard bytes that must survive.
  const size_t oldSize = offsetof(gcclPeerCounters_t, bytesReceived) + sizeof(uint64_t);
  const size_t guard = 64;
  alignas(gcclPeerCounters_t) unsigned char buf[sizeof(gcclPeerCounters_t) + 64];
  memset(buf, 0xa7, sizeof(buf));
  gcclPeerCounters_t head = GCCL_PEER_COUNTERS_INITIALIZER;
  head.size = oldSize;
  memcpy(buf, &head, offsetof(gcclPeerCounters_t, bytesSent));
  ASSERT_EQ(gcclCommGetPeerCounters(comm_, 0, reinterpret_cast<gcclPeerCounters_t*>(buf)),
            gcclSuccess)
      << gcclGetLastError(nullptr);
  uint64_t sent, received;
  memcpy(&sent, buf + offsetof(gcclPeerCounters_t, bytesSent), sizeof(sent));
  memcpy(&received, buf + offsetof(gcclPeerCounters_t, bytesReceived), sizeof(received));
  EXPECT_EQ(sent, 305u);
  EXPECT_EQ(received, 305u);
  for (size_t i = oldSize; i < oldSize + guard; ++i)
    ASSERT_EQ(buf[i], 0xa7) << "byte " << i << " past the caller's struct of " << oldSize
                            << " bytes was written";

  // Only bytesSent fits: bytesReceived's place is left alone.
  memset(buf, 0xa7, sizeof(buf));
  head.size = offsetof(gcclPeerCounters_t, bytesSent) + sizeof(uint64_t);
  memcpy(buf, &head, offsetof(gcclPeerCounters_t, bytesSent));
  ASSERT_EQ(gcclCommGetPeerCounters(comm_, 0, reinterpret_cast<gcclPeerCounters_t*>(buf)),
            gcclSuccess);
  memcpy(&sent, buf + offsetof(gcclPeerCounters_t, bytesSent), sizeof(sent));
  EXPECT_EQ(sent, 305u);
  for (size_t i = head.size; i < head.size + guard; ++i)
    ASSERT_EQ(buf[i], 0xa7) << "byte " << i << " was written";
}

}  // namespace
