// The transport conformance suite: every transport (tcp, shm, and those to
// come) passes the same tests, on two forked processes that set up a
// connection through the registry exactly as a communicator does (blobs
// exchanged through shared memory instead of the rendezvous) and drive it
// with a small poller of their own, as the engine would.
//
// Each test is instantiated once per transport; a transport that cannot run
// on this machine skips, saying why.
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/clock.h"
#include "common/multiproc.h"
#include "gtest/gtest.h"
#include "transports/registry.h"
#include "transports/tags.h"

namespace gccl::test {
namespace {

using transport::Connection;
using transport::MessageMeta;
using transport::Request;

constexpr size_t kMaxBlob = 8192;

// Where the two ranks leave their address blobs for each other.
struct BlobBoard {
  std::atomic<int> ready[2];
  uint32_t len[2];
  char blob[2][kMaxBlob];
};

// An epoll loop standing in for the engine: connections register their fds
// here, and drive() moves them until a condition holds or a deadline passes.
class TestPoller final : public transport::Poller {
 public:
  TestPoller() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~TestPoller() override { close(epfd_); }
  gcclResult_t watch(int fd, uint32_t events, void* owner) override {
    (void)owner;  // one connection per end: events go to it by fd
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      return setError(gcclSystemError, "epoll_ctl: %s", strerror(errno));
    return gcclSuccess;
  }
  void unwatch(int fd) override { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }
  const std::string& livenessReport() const override { return report_; }

  // Runs until done() or the deadline; the connection's error otherwise.
  gcclResult_t drive(Connection* c, const std::function<bool()>& done, int64_t waitMs) {
    int64_t deadline = nowMs() + waitMs;
    while (!done()) {
      if (nowMs() > deadline)
        return setError(gcclTimeout, "nothing finished in %lld ms", static_cast<long long>(waitMs));
      bool moved = false;
      if (c->needsPolling()) GCCL_CHECK(c->poll(&moved));
      if (moved || done()) continue;
      epoll_event evs[16];
      int n = epoll_wait(epfd_, evs, 16, c->needsPolling() && !c->armForSleep() ? 0 : 5);
      for (int i = 0; i < n; ++i)
        GCCL_CHECK(c->onEvents(evs[i].data.fd, evs[i].events));
    }
    return gcclSuccess;
  }

 private:
  int epfd_;
  std::string report_ = "conformance";
};

// One end of a connected pair.
struct End {
  TestPoller poller;
  std::unique_ptr<transport::Registry> registry;
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<std::unique_ptr<transport::Listener>> listeners;
  Connection* conn = nullptr;
};

// Sets up this rank's end with `transportName` only. An empty *skip with an
// error is a failure; a transport that cannot run here fills *skip instead.
gcclResult_t connectEnd(const std::string& transportName, int rank, BlobBoard* board, End* end,
                        std::string* skip) {
  transport::RegistryOptions ro;
  ro.ctx.rank = rank;
  ro.ctx.nranks = 2;
  ro.ctx.commHash = 0x5eed5eed5eed5eedull;
  for (size_t i = 0; i < sizeof(ro.ctx.secret); ++i)
    ro.ctx.secret[i] = static_cast<uint8_t>(i * 7 + 1);
  ro.ctx.poller = &end->poller;
  ro.preference = transportName;
  ro.tcp.ifname = "lo";
  end->registry = std::make_unique<transport::Registry>(ro);
  std::string blob;
  gcclResult_t r = end->registry->open(&blob);
  if (r != gcclSuccess && strstr(threadLastError(), "cannot run here") != nullptr) {
    *skip = threadLastError();
    board->len[rank] = 0;
    board->ready[rank].store(2);
    return r;
  }
  GCCL_CHECK(r);
  GCCL_REQUIRE(blob.size() <= kMaxBlob, gcclInternalError, "blob of %zu bytes", blob.size());
  memcpy(board->blob[rank], blob.data(), blob.size());
  board->len[rank] = static_cast<uint32_t>(blob.size());
  board->ready[rank].store(1);
  int peer = 1 - rank;
  int64_t until = nowMs() + 30000;
  while (board->ready[peer].load() == 0 && nowMs() < until)
    usleep(1000);
  GCCL_REQUIRE(board->ready[peer].load() == 1, gcclTimeout, "the peer published no blob");
  std::vector<std::string> blobs(2);
  for (int i = 0; i < 2; ++i)
    blobs[static_cast<size_t>(i)].assign(board->blob[i], board->len[i]);
  GCCL_CHECK(end->registry->connect(blobs, nowMs() + 30000, &end->conns, &end->listeners));
  end->conn = end->conns[static_cast<size_t>(peer)].get();
  GCCL_REQUIRE(end->conn != nullptr, gcclInternalError, "no connection to the peer");
  GCCL_REQUIRE(end->registry->chosen()[static_cast<size_t>(peer)] == transportName,
               gcclInternalError, "the registry chose %s, not %s",
               end->registry->chosen()[static_cast<size_t>(peer)].c_str(), transportName.c_str());
  return end->conn->start();
}

std::vector<uint8_t> pattern(size_t bytes, uint64_t seed) {
  std::vector<uint8_t> v(bytes);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t x = rng();
    memcpy(v.data() + i, &x, std::min<size_t>(8, bytes - i));
  }
  return v;
}

MessageMeta meta(uint64_t info) {
  return MessageMeta{info, 42};
}

using Body = std::function<int(int rank, End& end)>;

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  // Runs `body` on both ranks of a fresh pair; skips when the transport
  // cannot run here.
  // With `rank0Dies`, rank 0 must end by SIGKILL (its own) and rank 1 succeed.
  void runPair(const Body& body, bool rank0Dies = false) {
    SharedArea area(sizeof(BlobBoard) + 4096);
    auto* board = new (area.data()) BlobBoard();
    auto* skipText = static_cast<char*>(area.data()) + sizeof(BlobBoard);
    std::string name = GetParam();
    auto outcomes = runRanksWithControl(
        2,
        [&](int rank, int, const gcclUniqueId&) -> int {
          End end;
          std::string skip;
          gcclResult_t r = connectEnd(name, rank, board, &end, &skip);
          if (!skip.empty()) {
            snprintf(skipText, 4000, "%s", skip.c_str());
            return 77;
          }
          RANK_CHECK(r == gcclSuccess, "connecting over %s: %s", name.c_str(), threadLastError());
          return body(rank, end);
        },
        nullptr, 120);
    if (outcomes[0].exitCode == 77 || outcomes[1].exitCode == 77) GTEST_SKIP() << skipText;
    if (rank0Dies) {
      EXPECT_EQ(outcomes[0].signal, SIGKILL);
      outcomes.erase(outcomes.begin());
    }
    std::string why;
    EXPECT_TRUE(allSucceeded(outcomes, &why)) << why;
  }
};

#define DRIVE(end, cond, ms)                                                                    \
  RANK_CHECK((end).poller.drive((end).conn, [&] { return (cond); }, (ms)) == gcclSuccess, "%s", \
             threadLastError())

// The end of every test: each side waits for the other's token, so all data
// has arrived on both, then says goodbye, so the peer's close is no error.
int goodbye(End& e, uint64_t seq = 999) {
  Request s, q;
  uint8_t out = 1, in = 0;
  RANK_OK(e.conn->isend(&out, 1, transport::p2pTag(seq), meta(2), &s));
  RANK_OK(e.conn->irecv(&in, 1, transport::p2pTag(seq), meta(2), &q));
  DRIVE(e, !s.pending() && !q.pending(), 30000);
  RANK_CHECK(s.done() && q.done() && in == 1, "the closing exchange failed");
  e.conn->sendCloseNotice();
  DRIVE(e, e.conn->peerClosed(), 10000);
  return 0;
}

// A tag names one message at a time (the engine never reuses one while it is
// in flight): receives posted in any order get their own messages.
TEST_P(Conformance, ReceivesPostedInAnyOrderGetTheMessageOfTheirTag) {
  runPair([](int rank, End& e) {
    constexpr int kMessages = 60;
    std::vector<std::vector<uint8_t>> data(kMessages);
    std::vector<Request> reqs(kMessages);
    for (int i = 0; i < kMessages; ++i)
      data[static_cast<size_t>(i)] = pattern(100 + static_cast<size_t>(i) * 13, i);
    if (rank == 0) {
      for (int i = 0; i < kMessages; ++i)
        RANK_OK(e.conn->isend(data[static_cast<size_t>(i)].data(),
                              data[static_cast<size_t>(i)].size(),
                              transport::collectiveTag(1, static_cast<uint64_t>(i)), meta(1),
                              &reqs[static_cast<size_t>(i)]));
    } else {
      // Last message first, and a few after the traffic has moved.
      std::vector<std::vector<uint8_t>> got(kMessages);
      for (int i = kMessages - 1; i >= 0; --i) {
        got[static_cast<size_t>(i)].assign(data[static_cast<size_t>(i)].size() + 16, 0);
        RANK_OK(e.conn->irecv(got[static_cast<size_t>(i)].data(),
                              got[static_cast<size_t>(i)].size(),
                              transport::collectiveTag(1, static_cast<uint64_t>(i)), meta(1),
                              &reqs[static_cast<size_t>(i)]));
        if (i == kMessages / 2) usleep(20 * 1000);
      }
      DRIVE(e, std::all_of(reqs.begin(), reqs.end(), [](const Request& r) { return !r.pending(); }),
            30000);
      for (int i = 0; i < kMessages; ++i) {
        const Request& r = reqs[static_cast<size_t>(i)];
        RANK_CHECK(r.done() && r.bytes == data[static_cast<size_t>(i)].size(),
                   "message %d: state %d, %zu bytes", i, static_cast<int>(r.state), r.bytes);
        RANK_CHECK(memcmp(got[static_cast<size_t>(i)].data(), data[static_cast<size_t>(i)].data(),
                          r.bytes) == 0,
                   "message %d went to the wrong receive or arrived damaged", i);
      }
    }
    DRIVE(e, std::all_of(reqs.begin(), reqs.end(), [](const Request& r) { return !r.pending(); }),
          30000);
    return goodbye(e);
  });
}

TEST_P(Conformance, SizesFromZeroToSixtyFourMebibytesArriveIntactBothWays) {
  runPair([](int rank, End& e) {
    const size_t sizes[] = {0, 1, 7, 64, 4095, 4096, 65535, 65536, 1 << 20, 4 << 20, 64 << 20};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
      size_t n = sizes[k];
      std::vector<uint8_t> out = pattern(n, 1000 + k * 2 + static_cast<size_t>(rank));
      std::vector<uint8_t> want = pattern(n, 1000 + k * 2 + static_cast<size_t>(1 - rank));
      std::vector<uint8_t> in(n + 1, 0xee);
      Request s, r;
      uint64_t tag = transport::collectiveTag(2, k);
      RANK_OK(e.conn->irecv(in.data(), n, tag, meta(3), &r));
      RANK_OK(e.conn->isend(out.data(), n, tag, meta(3), &s));
      DRIVE(e, !s.pending() && !r.pending(), 60000);
      RANK_CHECK(s.done() && r.done() && r.bytes == n, "%zu bytes: send %d, receive %d (%zu)", n,
                 static_cast<int>(s.state), static_cast<int>(r.state), r.bytes);
      RANK_CHECK((n == 0 || memcmp(in.data(), want.data(), n) == 0) && in[n] == 0xee,
                 "%zu bytes arrived damaged or overran the buffer", n);
    }
    return goodbye(e);
  });
}

// A message larger than its receive has nowhere to go: the receive fails, or
// the whole connection does (as TCP's, which cannot skip the extra bytes),
// with an error naming both sizes; never a silent truncation.
TEST_P(Conformance, AReceiveLargerThanTheMessageGetsItsSizeAndASmallerOneFails) {
  runPair([](int rank, End& e) {
    std::vector<uint8_t> a = pattern(1000, 5), b = pattern(3000, 6);
    Request s1, s2, r1, r2;
    if (rank == 0) {
      RANK_OK(e.conn->isend(a.data(), a.size(), transport::collectiveTag(3, 0), meta(4), &s1));
      RANK_OK(e.conn->isend(b.data(), b.size(), transport::collectiveTag(3, 1), meta(4), &s2));
      // Wait until the peer has judged both (its token, or its going away).
      uint8_t token;
      RANK_OK(e.conn->irecv(&token, 1, transport::p2pTag(1), meta(5), &r1));
      (void)e.poller.drive(
          e.conn, [&] { return !r1.pending(); }, 30000);
      return 0;
    }
    std::vector<uint8_t> big(5000, 0), small(2000, 0);
    RANK_OK(e.conn->irecv(big.data(), big.size(), transport::collectiveTag(3, 0), meta(4), &r1));
    DRIVE(e, !r1.pending(), 30000);
    RANK_CHECK(r1.done() && r1.bytes == a.size() && memcmp(big.data(), a.data(), a.size()) == 0,
               "the larger receive: state %d, %zu bytes", static_cast<int>(r1.state), r1.bytes);
    // The error may come when the receive is posted (the message is already
    // here) or when the message arrives.
    gcclResult_t res =
        e.conn->irecv(small.data(), small.size(), transport::collectiveTag(3, 1), meta(4), &r2);
    if (res == gcclSuccess)
      res = e.poller.drive(
          e.conn, [&] { return !r2.pending(); }, 30000);
    RANK_CHECK(res != gcclSuccess && res != gcclTimeout ? true : r2.failed(),
               "the smaller receive: %s, state %d", gcclGetErrorString(res),
               static_cast<int>(r2.state));
    RANK_CHECK(!r2.done(), "a 3000-byte message completed a 2000-byte receive");
    if (res != gcclSuccess)
      RANK_CHECK(strstr(threadLastError(), "3000") && strstr(threadLastError(), "2000"),
                 "the error does not name both sizes: %s", threadLastError());
    return 0;
  });
}

TEST_P(Conformance, ASenderWithAnotherSignatureFailsTheReceiveAsAMismatch) {
  runPair([](int rank, End& e) {
    std::vector<uint8_t> a = pattern(64, 7), in(64);
    Request s, r;
    if (rank == 0) {
      RANK_OK(e.conn->isend(a.data(), a.size(), transport::collectiveTag(4, 0), meta(10), &s));
      DRIVE(e, !s.pending(), 30000);
      RANK_OK(e.conn->irecv(in.data(), 1, transport::p2pTag(1), meta(5), &r));
      DRIVE(e, !r.pending(), 30000);
      return goodbye(e);
    }
    RANK_OK(e.conn->irecv(in.data(), in.size(), transport::collectiveTag(4, 0), meta(11), &r));
    DRIVE(e, !r.pending(), 30000);
    RANK_CHECK(r.failed() && r.metaMismatch && r.peerMeta.info == 10,
               "state %d, mismatch %d, peer info %llu", static_cast<int>(r.state), r.metaMismatch,
               static_cast<unsigned long long>(r.peerMeta.info));
    RANK_OK(e.conn->isend(a.data(), 1, transport::p2pTag(1), meta(5), &s));
    DRIVE(e, !s.pending(), 30000);
    return goodbye(e);
  });
}

TEST_P(Conformance, ACancelledReceiveTakesNothingAndTheNextOneGetsTheMessage) {
  runPair([](int rank, End& e) {
    std::vector<uint8_t> a = pattern(500, 8), first(500, 0), second(500, 0);
    Request s, r1, r2, go;
    uint64_t tag = transport::collectiveTag(5, 0);
    uint8_t token = 0;
    if (rank == 1) {
      RANK_OK(e.conn->irecv(first.data(), first.size(), tag, meta(6), &r1));
      e.conn->cancel(&r1);
      RANK_CHECK(!r1.done(), "a cancelled receive completed");
      RANK_OK(e.conn->irecv(second.data(), second.size(), tag, meta(6), &r2));
      RANK_OK(e.conn->isend(&token, 1, transport::p2pTag(2), meta(5), &go));
      DRIVE(e, !r2.pending() && !go.pending(), 30000);
      RANK_CHECK(r2.done() && memcmp(second.data(), a.data(), a.size()) == 0,
                 "the receive after the cancelled one: state %d", static_cast<int>(r2.state));
      RANK_CHECK(std::all_of(first.begin(), first.end(), [](uint8_t x) { return x == 0; }),
                 "the cancelled receive's buffer was written");
      return goodbye(e);
    }
    // Send only once the peer has cancelled and posted again.
    RANK_OK(e.conn->irecv(&token, 1, transport::p2pTag(2), meta(5), &go));
    DRIVE(e, !go.pending(), 30000);
    RANK_OK(e.conn->isend(a.data(), a.size(), tag, meta(6), &s));
    DRIVE(e, !s.pending(), 30000);
    return goodbye(e);
  });
}

TEST_P(Conformance, RandomInterleavingsInBothDirectionsDeliverEverything) {
  runPair([](int rank, End& e) {
    // The same seed on both ranks: each knows what the other sends.
    std::mt19937 plan(20261201);
    constexpr int kMessages = 120;
    struct Msg {
      int from;
      uint64_t tag;
      size_t bytes;
    };
    std::vector<Msg> msgs;
    for (int i = 0; i < kMessages; ++i) {
      size_t bytes = plan() % 4 == 0 ? 100000 + plan() % 300000 : plan() % 3000;
      msgs.push_back({static_cast<int>(plan() % 2),
                      transport::collectiveTag(6, static_cast<uint64_t>(i)), bytes});
    }
    std::mt19937 order(static_cast<unsigned>(rank) * 977 + 3);
    std::vector<std::vector<uint8_t>> out(kMessages), in(kMessages);
    std::vector<Request> reqs(kMessages);
    std::vector<int> idx(kMessages);
    for (int i = 0; i < kMessages; ++i)
      idx[static_cast<size_t>(i)] = i;
    std::shuffle(idx.begin(), idx.end(), order);
    for (size_t k = 0; k < idx.size(); ++k) {
      int i = idx[k];
      const Msg& m = msgs[static_cast<size_t>(i)];
      if (m.from == rank) {
        out[static_cast<size_t>(i)] = pattern(m.bytes, static_cast<uint64_t>(i));
        RANK_OK(e.conn->isend(out[static_cast<size_t>(i)].data(), m.bytes, m.tag, meta(7),
                              &reqs[static_cast<size_t>(i)]));
      } else {
        in[static_cast<size_t>(i)].assign(m.bytes, 0);
        RANK_OK(e.conn->irecv(in[static_cast<size_t>(i)].data(), m.bytes, m.tag, meta(7),
                              &reqs[static_cast<size_t>(i)]));
      }
      // Sometimes let traffic move between posts.
      if (order() % 3 == 0) {
        bool moved;
        if (e.conn->needsPolling()) RANK_OK(e.conn->poll(&moved));
      }
    }
    DRIVE(e, std::all_of(reqs.begin(), reqs.end(), [](const Request& r) { return !r.pending(); }),
          60000);
    for (int i = 0; i < kMessages; ++i) {
      const Msg& m = msgs[static_cast<size_t>(i)];
      RANK_CHECK(reqs[static_cast<size_t>(i)].done(), "message %d failed", i);
      if (m.from != rank)
        RANK_CHECK(in[static_cast<size_t>(i)] == pattern(m.bytes, static_cast<uint64_t>(i)),
                   "message %d (%zu bytes) arrived damaged", i, m.bytes);
    }
    return goodbye(e);
  });
}

TEST_P(Conformance, AsynchronousTrafficPassesAMessageNobodyReceivesYet) {
  runPair([](int rank, End& e) {
    std::vector<uint8_t> blocked = pattern(200000, 11), async = pattern(300, 12);
    Request s1, s2, r1, r2;
    uint64_t asyncTag = transport::kAsyncTagBit | 5;
    if (rank == 0) {
      RANK_OK(e.conn->isend(blocked.data(), blocked.size(), transport::collectiveTag(7, 0), meta(8),
                            &s1));
      RANK_OK(e.conn->isend(async.data(), async.size(), asyncTag, meta(8), &s2));
      DRIVE(e, !s2.pending(), 30000);
      // The peer takes the blocked message last.
      DRIVE(e, !s1.pending(), 30000);
      return goodbye(e);
    }
    std::vector<uint8_t> a(300), b(200000);
    RANK_OK(e.conn->irecv(a.data(), a.size(), asyncTag, meta(8), &r2));
    DRIVE(e, !r2.pending(), 30000);
    RANK_CHECK(r2.done() && a == async, "the asynchronous message: state %d",
               static_cast<int>(r2.state));
    RANK_OK(e.conn->irecv(b.data(), b.size(), transport::collectiveTag(7, 0), meta(8), &r1));
    DRIVE(e, !r1.pending(), 30000);
    RANK_CHECK(r1.done() && b == blocked, "the ordinary message: state %d",
               static_cast<int>(r1.state));
    return goodbye(e);
  });
}

TEST_P(Conformance, LivenessIsAnsweredWhileDataWaitsForAReceive) {
  runPair([](int rank, End& e) {
    std::vector<uint8_t> data = pattern(100000, 13);
    Request s, r;
    if (rank == 0) {
      // Rank 1 never posts this receive until it has had its answer.
      RANK_OK(e.conn->isend(data.data(), data.size(), transport::collectiveTag(8, 0), meta(9), &s));
      RANK_OK(e.conn->irecv(nullptr, 0, transport::p2pTag(3), meta(5), &r));
      DRIVE(e, !r.pending(), 30000);
      DRIVE(e, !s.pending(), 30000);
      return goodbye(e);
    }
    int64_t t0 = nowMs();
    usleep(50 * 1000);  // the data is waiting on this side
    RANK_OK(e.conn->sendPing());
    DRIVE(e, e.conn->lastPongMs() >= t0, 10000);
    RANK_CHECK(e.conn->peerLivenessReport() == "conformance", "the answer carried \"%s\"",
               e.conn->peerLivenessReport().c_str());
    RANK_OK(e.conn->isend(nullptr, 0, transport::p2pTag(3), meta(5), &s));
    std::vector<uint8_t> in(data.size());
    RANK_OK(e.conn->irecv(in.data(), in.size(), transport::collectiveTag(8, 0), meta(9), &r));
    DRIVE(e, !r.pending() && !s.pending(), 30000);
    RANK_CHECK(in == data, "the waiting data arrived damaged");
    return goodbye(e);
  });
}

TEST_P(Conformance, RegisteredRegionsCarryTransfersAndRefuseWhatLiesOutside) {
  runPair([](int rank, End& e) {
    std::vector<uint8_t> out = pattern(1 << 20, 21 + static_cast<uint64_t>(rank));
    std::vector<uint8_t> in(1 << 20, 0);
    transport::MemoryRegion ro, ri, dev;
    RANK_OK(e.conn->registerMemory(out.data(), out.size(), transport::MemoryType::kHost, &ro));
    RANK_OK(e.conn->registerMemory(in.data(), in.size(), transport::MemoryType::kHost, &ri));
    // Device memory needs a transport that can reach it; the refusal names it.
    gcclResult_t r = e.conn->registerMemory(in.data(), 64, transport::MemoryType::kCuda, &dev);
    if (r != gcclSuccess)
      RANK_CHECK(strstr(threadLastError(), "CUDA") != nullptr, "refusal: %s", threadLastError());
    else
      e.conn->deregisterMemory(&dev);
    Request bad;
    RANK_CHECK(e.conn->isendRegion(ro, out.size() - 10, 11, transport::collectiveTag(10, 9),
                                   meta(1), &bad) == gcclInvalidArgument,
               "a send past the region's end was taken");
    // Both halves of each region, from offsets.
    Request s[2], q[2];
    size_t half = out.size() / 2;
    for (int k = 0; k < 2; ++k) {
      RANK_OK(
          e.conn->irecvRegion(ri, k * half, half, transport::collectiveTag(10, k), meta(1), &q[k]));
      RANK_OK(
          e.conn->isendRegion(ro, k * half, half, transport::collectiveTag(10, k), meta(1), &s[k]));
    }
    DRIVE(e, !s[0].pending() && !s[1].pending() && !q[0].pending() && !q[1].pending(), 30000);
    RANK_CHECK(in == pattern(1 << 20, 21 + static_cast<uint64_t>(1 - rank)),
               "the regions' transfers arrived damaged");
    e.conn->deregisterMemory(&ro);
    e.conn->deregisterMemory(&ri);
    return goodbye(e);
  });
}

// A side that closes right after its last send, with bytes of the peer's
// it never read, still delivers everything it sent: closing must not reset
// the connection and throw away what the peer has not read yet.
TEST_P(Conformance, WhatWasSentBeforeTheGoodbyeArrivesThoughTheCloserLeftBytesUnread) {
  runPair([](int rank, End& e) {
    static std::vector<uint8_t> data = pattern(256 * 1024, 14), unwanted = pattern(64 * 1024, 15);
    Request s, r;
    if (rank == 0) {
      // The unwanted message is never received on this side.
      RANK_OK(
          e.conn->isend(data.data(), data.size(), transport::collectiveTag(10, 0), meta(6), &s));
      DRIVE(e, !s.pending(), 30000);
      RANK_CHECK(s.done(), "the send failed: %s", threadLastError());
      usleep(20 * 1000);  // the unwanted message is here by now
      e.conn->sendCloseNotice();
      Connection* one = e.conn;
      transport::settleBeforeClose(&one, 1, nowMs() + 5000);
      return 0;  // the connection closes as the end goes
    }
    // Not waited for: a transport may complete a send only once the peer
    // takes it, and this one never is (the request outlives the connection).
    static Request unwantedSend;
    RANK_OK(e.conn->isend(unwanted.data(), unwanted.size(), transport::collectiveTag(11, 0),
                          meta(6), &unwantedSend));
    bool moved = false;
    if (e.conn->needsPolling()) RANK_OK(e.conn->poll(&moved));
    usleep(200 * 1000);  // rank 0 has closed (or waits for this side) by now
    std::vector<uint8_t> in(data.size());
    RANK_OK(e.conn->irecv(in.data(), in.size(), transport::collectiveTag(10, 0), meta(6), &r));
    DRIVE(e, !r.pending(), 30000);
    RANK_CHECK(r.done() && in == data, "the data sent before the goodbye: state %d, %s",
               static_cast<int>(r.state), threadLastError());
    DRIVE(e, e.conn->peerClosed(), 10000);
    return 0;
  });
}

TEST_P(Conformance, APeersDeathIsAnErrorNamingItNeverAHang) {
  runPair(
      [](int rank, End& e) {
        if (rank == 0) {
          uint8_t token;
          Request r;
          RANK_OK(e.conn->irecv(&token, 1, transport::p2pTag(4), meta(5), &r));
          DRIVE(e, !r.pending(), 30000);
          raise(SIGKILL);  // mid-communicator, without a goodbye
          return 1;
        }
        std::vector<uint8_t> in(1000);
        Request s, r;
        uint8_t token = 1;
        RANK_OK(e.conn->irecv(in.data(), in.size(), transport::collectiveTag(9, 0), meta(5), &r));
        RANK_OK(e.conn->isend(&token, 1, transport::p2pTag(4), meta(5), &s));
        int64_t t0 = nowMs();
        gcclResult_t res = e.poller.drive(
            e.conn, [&] { return r.failed(); }, 20000);
        RANK_CHECK(res != gcclSuccess || r.failed(), "the receive from a dead peer did not fail");
        RANK_CHECK(res != gcclTimeout, "no error within 20 s of the peer's death");
        RANK_CHECK(strstr(threadLastError(), "rank 0") != nullptr,
                   "the error does not name rank 0: %s", threadLastError());
        RANK_CHECK(nowMs() - t0 < 10000, "the death was noticed after %lld ms",
                   static_cast<long long>(nowMs() - t0));
        return 0;
      },
      /*rank0Dies=*/true);
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance,
                         ::testing::ValuesIn(transport::knownTransports().begin(),
                                             transport::knownTransports().end()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace gccl::test
