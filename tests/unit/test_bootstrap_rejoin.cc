// Rejoining through the rendezvous root (src/core/bootstrap.h): ranks that
// join asking the root to keep serving leave it answering restarted ranks
// with the current table and their incarnation; bad requests are refused by
// name; a stopped root, or one never asked to keep serving, refuses the
// connection and the restarted rank is told why.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "base/check.h"
#include "base/clock.h"
#include "core/bootstrap.h"
#include "transports/tcp/socket.h"

namespace gccl {
namespace {

constexpr int kRanks = 4;

std::string blobOf(int rank, const char* what) {
  return std::string(what) + " blob of rank " + std::to_string(rank);
}

// A root served by this process, as a test parent makes one.
UniqueIdFields makeRoot() {
  gcclUniqueId id;
  EXPECT_EQ(createUniqueId(30000, &id), gcclSuccess) << threadLastError();
  UniqueIdFields f;
  EXPECT_EQ(decodeUniqueId(id, &f), gcclSuccess) << threadLastError();
  return f;
}

// Every rank joins from a thread of its own, as separate processes would.
void rendezvous(const UniqueIdFields& f, bool keepServing) {
  std::vector<std::thread> ranks;
  std::vector<gcclResult_t> results(kRanks, gcclInternalError);
  std::vector<std::vector<std::string>> tables(kRanks);
  for (int r = 0; r < kRanks; ++r)
    ranks.emplace_back([&, r] {
      results[r] = bootstrapExchange(f, r, kRanks, blobOf(r, "first"), nowMs() + 20000, &tables[r],
                                     keepServing);
    });
  for (auto& t : ranks)
    t.join();
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_EQ(results[r], gcclSuccess) << "rank " << r;
    ASSERT_EQ(tables[r].size(), static_cast<size_t>(kRanks));
    for (int q = 0; q < kRanks; ++q)
      EXPECT_EQ(tables[r][q], blobOf(q, "first"));
  }
}

TEST(BootstrapRejoin, RestartedRankGetsTheTableAndItsIncarnation) {
  UniqueIdFields f = makeRoot();
  ASSERT_NO_FATAL_FAILURE(rendezvous(f, true));

  std::vector<std::string> table;
  uint32_t incarnation = 0;
  ASSERT_EQ(
      bootstrapRejoin(f, 1, kRanks, blobOf(1, "second"), nowMs() + 10000, &table, &incarnation),
      gcclSuccess)
      << threadLastError();
  EXPECT_EQ(incarnation, 1u);
  ASSERT_EQ(table.size(), static_cast<size_t>(kRanks));
  for (int q = 0; q < kRanks; ++q)
    EXPECT_EQ(table[q], q == 1 ? blobOf(1, "second") : blobOf(q, "first"));

  // Restarted again: the next incarnation, the newest blob.
  ASSERT_EQ(
      bootstrapRejoin(f, 1, kRanks, blobOf(1, "third"), nowMs() + 10000, &table, &incarnation),
      gcclSuccess)
      << threadLastError();
  EXPECT_EQ(incarnation, 2u);
  EXPECT_EQ(table[1], blobOf(1, "third"));
  // Another rank's count is its own, and it sees rank 1's latest blob.
  ASSERT_EQ(
      bootstrapRejoin(f, 3, kRanks, blobOf(3, "second"), nowMs() + 10000, &table, &incarnation),
      gcclSuccess)
      << threadLastError();
  EXPECT_EQ(incarnation, 1u);
  EXPECT_EQ(table[1], blobOf(1, "third"));
  EXPECT_EQ(table[3], blobOf(3, "second"));

  stopRejoinService(f);
}

TEST(BootstrapRejoin, ConcurrentRejoinsAreAllAnswered) {
  UniqueIdFields f = makeRoot();
  ASSERT_NO_FATAL_FAILURE(rendezvous(f, true));
  std::vector<std::thread> ranks;
  std::vector<gcclResult_t> results(kRanks, gcclInternalError);
  std::vector<uint32_t> incarnations(kRanks, 0);
  for (int r = 0; r < kRanks; ++r)
    ranks.emplace_back([&, r] {
      std::vector<std::string> table;
      results[r] = bootstrapRejoin(f, r, kRanks, blobOf(r, "second"), nowMs() + 10000, &table,
                                   &incarnations[r]);
      if (results[r] == gcclSuccess && table[r] != blobOf(r, "second"))
        results[r] = gcclInternalError;
    });
  for (auto& t : ranks)
    t.join();
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(results[r], gcclSuccess) << "rank " << r;
    EXPECT_EQ(incarnations[r], 1u) << "rank " << r;
  }
  stopRejoinService(f);
}

TEST(BootstrapRejoin, BadRequestsAreRefusedByName) {
  UniqueIdFields f = makeRoot();
  ASSERT_NO_FATAL_FAILURE(rendezvous(f, true));
  std::vector<std::string> table;
  uint32_t incarnation = 0;
  EXPECT_EQ(bootstrapRejoin(f, 9, kRanks, "x", nowMs() + 10000, &table, &incarnation),
            gcclInvalidUsage);
  EXPECT_NE(std::string(threadLastError()).find("rank 9 is out of range for 4 ranks"),
            std::string::npos)
      << threadLastError();
  EXPECT_EQ(bootstrapRejoin(f, 1, 5, "x", nowMs() + 10000, &table, &incarnation), gcclInvalidUsage);
  EXPECT_NE(std::string(threadLastError()).find("the communicator has 4 ranks, not 5"),
            std::string::npos)
      << threadLastError();
  // A refused request changes nothing: the next good one is the first.
  ASSERT_EQ(
      bootstrapRejoin(f, 1, kRanks, blobOf(1, "second"), nowMs() + 10000, &table, &incarnation),
      gcclSuccess)
      << threadLastError();
  EXPECT_EQ(incarnation, 1u);
  stopRejoinService(f);
}

// A rank that authenticates and then says nothing holds nobody up, and is
// closed once its time is over.
TEST(BootstrapRejoin, StuckClientDoesNotHoldOthersUp) {
  UniqueIdFields f = makeRoot();
  ASSERT_NO_FATAL_FAILURE(rendezvous(f, true));
  int stuck = -1;
  ASSERT_EQ(tcp::startConnect(f.root, &stuck), gcclSuccess) << threadLastError();
  tcp::HelloInfo hello;
  hello.purpose = tcp::Purpose::kBootstrap;
  hello.fromRank = 2;
  ASSERT_EQ(tcp::clientHandshake(stuck, credentialsOf(f), hello, nowMs() + 5000), gcclSuccess)
      << threadLastError();
  std::vector<std::string> table;
  uint32_t incarnation = 0;
  int64_t start = nowMs();
  ASSERT_EQ(bootstrapRejoin(f, 1, kRanks, blobOf(1, "second"), start + 10000, &table, &incarnation),
            gcclSuccess)
      << threadLastError();
  EXPECT_LT(nowMs() - start, 1000) << "the rejoin waited behind a silent connection";
  EXPECT_EQ(incarnation, 1u);
  // The root closes the silent one after a few seconds: its end reads EOF.
  pollfd p{stuck, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 6000), 1);
  char c;
  EXPECT_EQ(recv(stuck, &c, 1, MSG_DONTWAIT), 0);
  close(stuck);
  stopRejoinService(f);
}

TEST(BootstrapRejoin, StoppedRootIsGone) {
  UniqueIdFields f = makeRoot();
  ASSERT_NO_FATAL_FAILURE(rendezvous(f, true));
  stopRejoinService(f);
  std::vector<std::string> table;
  uint32_t incarnation = 0;
  int64_t start = nowMs();
  EXPECT_NE(bootstrapRejoin(f, 1, kRanks, "x", start + 5000, &table, &incarnation), gcclSuccess);
  EXPECT_LT(nowMs() - start, 5500);
  std::string why = threadLastError();
  EXPECT_NE(why.find("cannot rejoin: the rendezvous root at " + f.root.toString() + " is gone"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("must be alive for a rank to rejoin"), std::string::npos) << why;
}

TEST(BootstrapRejoin, RootNotAskedToKeepServingRefuses) {
  UniqueIdFields f = makeRoot();
  ASSERT_NO_FATAL_FAILURE(rendezvous(f, false));
  std::vector<std::string> table;
  uint32_t incarnation = 0;
  int64_t start = nowMs();
  EXPECT_NE(bootstrapRejoin(f, 1, kRanks, "x", start + 5000, &table, &incarnation), gcclSuccess);
  EXPECT_LT(nowMs() - start, 5500);
  std::string why = threadLastError();
  EXPECT_NE(why.find("is gone"), std::string::npos) << why;
  EXPECT_NE(why.find("kept serving"), std::string::npos) << why;
}

// A rendezvous where only some rank asks to keep serving keeps serving: the
// root cannot know which rank the core asked, and they all ask alike.
TEST(BootstrapRejoin, OneRankAskingIsEnough) {
  UniqueIdFields f = makeRoot();
  std::vector<std::thread> ranks;
  std::vector<gcclResult_t> results(kRanks, gcclInternalError);
  for (int r = 0; r < kRanks; ++r)
    ranks.emplace_back([&, r] {
      std::vector<std::string> table;
      results[r] =
          bootstrapExchange(f, r, kRanks, blobOf(r, "first"), nowMs() + 20000, &table, r == 2);
    });
  for (auto& t : ranks)
    t.join();
  for (int r = 0; r < kRanks; ++r)
    ASSERT_EQ(results[r], gcclSuccess) << "rank " << r;
  std::vector<std::string> table;
  uint32_t incarnation = 0;
  EXPECT_EQ(bootstrapRejoin(f, 0, kRanks, "y", nowMs() + 10000, &table, &incarnation), gcclSuccess)
      << threadLastError();
  EXPECT_EQ(incarnation, 1u);
  stopRejoinService(f);
}

}  // namespace
}  // namespace gccl
