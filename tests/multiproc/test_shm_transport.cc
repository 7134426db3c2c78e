// The shared-memory transport's data path between two forked processes
// (shm_pair.h): matching by tag in posting order, receives posted before and
// after arrival, sizes from 0 B to 64 MiB in both directions with and
// without single-copy reads, receives larger and smaller than the message,
// cancel, meta mismatches, and asynchronous traffic passing an ordinary
// message nobody has posted a receive for.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "multiproc/shm_pair.h"
#include "transports/tags.h"

namespace gccl::shm::test {
namespace {

void expectBothSucceeded(const std::vector<RankOutcome>& outcomes) {
  std::string why;
  EXPECT_TRUE(gccl::test::allSucceeded(outcomes, &why)) << why;
}

PairOptions withSingleCopy(bool on) {
  PairOptions opt;
  for (ShmTuning& t : opt.tuning)
    t.cma = on;
  return opt;
}

// Receives must wait (paused ring) until posted; many tags interleaved; each
// tag's messages arrive in order; every size class, single copy included.
TEST(ShmTransport, MatchesByTagInPostingOrderBeforeAndAfterArrival) {
  constexpr int kTags = 12, kPerTag = 20, kCount = kTags * kPerTag;
  const size_t sizes[] = {0, 8, 100, 5000, 70000, 300000};
  auto sizeOf = [&](int i) { return sizes[(i / kTags + i) % 6]; };
  auto tagOf = [](int i) { return static_cast<uint64_t>(1000 + i % kTags); };
  auto outcomes = runShmPair([&](PairRank& me) {
    std::vector<std::vector<uint8_t>> bufs(kCount);
    std::vector<Request> reqs(kCount);
    if (me.rank == 0) {
      for (int i = 0; i < kCount; ++i) {
        bufs[i].resize(sizeOf(i) + 1);
        fillRandom(bufs[i].data(), sizeOf(i), static_cast<uint64_t>(i));
        RANK_OK(me.conn->isend(bufs[i].data(), sizeOf(i), tagOf(i),
                               MessageMeta{tagOf(i), static_cast<uint64_t>(i / kTags)}, &reqs[i]));
      }
      RANK_OK(me.driveUntil(
          [&] {
            for (const Request& r : reqs)
              if (!r.done()) return false;
            return true;
          },
          20000));
      RANK_CHECK(me.conn->bytesSent() > 0, "no payload counted");
      RANK_OK(me.waitFlag(0));
      return 0;
    }
    auto post = [&](bool even) {
      for (int i = 0; i < kCount; ++i) {
        if ((tagOf(i) % 2 == 0) != even) continue;
        bufs[i].assign(300000 + 64, 0);
        gcclResult_t r =
            me.conn->irecv(bufs[i].data(), bufs[i].size(), tagOf(i),
                           MessageMeta{tagOf(i), static_cast<uint64_t>(i / kTags)}, &reqs[i]);
        if (r != gcclSuccess) return r;
      }
      return gcclSuccess;
    };
    RANK_OK(post(true));
    // Message 1 (tag 1001) has no receive: the ring stops there.
    std::vector<std::pair<uint64_t, MessageMeta>> paused;
    RANK_OK(me.driveUntil(
        [&] {
          paused.clear();
          me.conn->pausedFrames(&paused);
          return !paused.empty();
        },
        20000));
    RANK_CHECK(paused.size() == 1 && paused[0].first == 1001 && paused[0].second.info == 1001 &&
                   paused[0].second.count == 0,
               "paused on %zu frames, the first with tag %llu", paused.size(),
               static_cast<unsigned long long>(paused[0].first));
    RANK_CHECK(reqs[0].done() && reqs[2].pending(), "message 0 done %d, message 2 pending %d",
               reqs[0].done(), reqs[2].pending());
    RANK_OK(post(false));
    RANK_OK(me.driveUntil(
        [&] {
          for (const Request& r : reqs)
            if (r.pending()) return false;
          return true;
        },
        20000));
    std::vector<uint8_t> expect(300000);
    for (int i = 0; i < kCount; ++i) {
      RANK_CHECK(reqs[i].done(), "message %d failed", i);
      RANK_CHECK(reqs[i].bytes == sizeOf(i), "message %d: %zu bytes, sent %zu", i, reqs[i].bytes,
                 sizeOf(i));
      RANK_CHECK(reqs[i].peerMeta.info == tagOf(i), "message %d: meta %llu", i,
                 static_cast<unsigned long long>(reqs[i].peerMeta.info));
      fillRandom(expect.data(), sizeOf(i), static_cast<uint64_t>(i));
      RANK_CHECK(memcmp(expect.data(), bufs[i].data(), sizeOf(i)) == 0,
                 "message %d (tag %llu, %zu bytes) arrived with other bytes", i,
                 static_cast<unsigned long long>(tagOf(i)), sizeOf(i));
    }
    me.setFlag(0);
    return 0;
  });
  expectBothSucceeded(outcomes);
}

class ShmSizes : public testing::TestWithParam<bool> {};

// Both ranks send each size to the other at once; odd sizes go to receives
// larger than the message.
TEST_P(ShmSizes, EverySizeFromZeroTo64MiBArrivesIntactBothWays) {
  bool singleCopy = GetParam();
  const size_t sizes[] = {0,
                          1,
                          7,
                          63,
                          64,
                          65,
                          4095,
                          4096,
                          65535,
                          65536,
                          65537,
                          1u << 20,
                          (1u << 20) - 1,
                          1000,
                          (4u << 20) + 3,
                          64u << 20};
  auto outcomes = runShmPair(
      [&](PairRank& me) {
        RANK_CHECK(me.shm()->singleCopyToPeer() == singleCopy, "single copy to peer is %d",
                   me.shm()->singleCopyToPeer());
        uint64_t total = 0;
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
          size_t n = sizes[k], extra = k % 2 == 1 ? 100 : 0;
          std::vector<uint8_t> out(n + 1), in(n + extra + 1, 0xee), expect(n + 1);
          fillRandom(out.data(), n, 100 * static_cast<uint64_t>(me.rank) + k);
          fillRandom(expect.data(), n, 100 * static_cast<uint64_t>(1 - me.rank) + k);
          Request send, recv;
          RANK_OK(me.conn->irecv(in.data(), n + extra, k, MessageMeta{7, n}, &recv));
          RANK_OK(me.conn->isend(out.data(), n, k, MessageMeta{7, n}, &send));
          RANK_OK(me.driveUntil([&] { return !send.pending() && !recv.pending(); }, 20000));
          RANK_CHECK(send.done() && recv.done(), "size %zu: send %d receive %d", n,
                     static_cast<int>(send.state), static_cast<int>(recv.state));
          RANK_CHECK(recv.bytes == n, "size %zu arrived as %zu bytes", n, recv.bytes);
          RANK_CHECK(memcmp(in.data(), expect.data(), n) == 0, "size %zu arrived with other bytes",
                     n);
          RANK_CHECK(in[n + extra] == 0xee, "size %zu wrote past the receive", n);
          total += n;
        }
        RANK_CHECK(me.conn->bytesSent() == total && me.conn->bytesReceived() == total,
                   "counted %llu sent, %llu received, expected %llu",
                   static_cast<unsigned long long>(me.conn->bytesSent()),
                   static_cast<unsigned long long>(me.conn->bytesReceived()),
                   static_cast<unsigned long long>(total));
        RANK_CHECK(!me.conn->hasQueuedSends(), "sends still queued");
        return 0;
      },
      withSingleCopy(singleCopy));
  expectBothSucceeded(outcomes);
}
INSTANTIATE_TEST_SUITE_P(SingleCopy, ShmSizes, testing::Values(true, false),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "On" : "ForcedOff";
                         });

// A receive smaller than the message fails (the error names the peer and
// both sizes); the message is dropped and the connection goes on.
TEST(ShmTransport, ReceiveSmallerThanTheMessageFailsAndTheConnectionGoesOn) {
  auto outcomes = runShmPair([](PairRank& me) {
    const size_t sizes[] = {1000, 100000, 10};
    std::vector<uint8_t> data(100000);
    fillRandom(data.data(), data.size(), 5);
    if (me.rank == 0) {
      Request reqs[3];
      for (int i = 0; i < 3; ++i)
        RANK_OK(me.conn->isend(data.data(), sizes[i], 1 + i, MessageMeta{}, &reqs[i]));
      // The single-copy one completes too, once the receiver dropped it.
      RANK_OK(
          me.driveUntil([&] { return reqs[0].done() && reqs[1].done() && reqs[2].done(); }, 20000));
      RANK_OK(me.waitFlag(0));
      return 0;
    }
    const size_t capacity[] = {500, 50000};
    for (int i = 0; i < 2; ++i) {
      std::vector<uint8_t> buf(capacity[i]);
      Request req;
      gcclResult_t r = me.conn->irecv(buf.data(), buf.size(), 1 + i, MessageMeta{}, &req);
      if (r == gcclSuccess) r = me.waitFor(req);
      std::string text = r == gcclSuccess ? "" : (me.error.empty() ? threadLastError() : me.error);
      me.error.clear();
      RANK_CHECK(r == gcclInvalidUsage && req.failed() && req.bytes == sizes[i],
                 "receive of %zu bytes for %zu: %s, state %d, bytes %zu", capacity[i], sizes[i],
                 gcclGetErrorString(r), static_cast<int>(req.state), req.bytes);
      RANK_CHECK(text.find("rank 0") != std::string::npos &&
                     text.find(std::to_string(sizes[i])) != std::string::npos,
                 "the error does not name the peer and the size: %s", text.c_str());
    }
    uint8_t small[64];
    Request req;
    RANK_OK(me.conn->irecv(small, sizeof(small), 3, MessageMeta{}, &req));
    RANK_OK(me.waitFor(req));
    RANK_CHECK(req.done() && req.bytes == 10 && memcmp(small, data.data(), 10) == 0,
               "the message after the dropped ones: state %d, %zu bytes",
               static_cast<int>(req.state), req.bytes);
    me.setFlag(0);
    return 0;
  });
  expectBothSucceeded(outcomes);
}

TEST(ShmTransport, CancelWithdrawsAPendingReceive) {
  auto outcomes = runShmPair([](PairRank& me) {
    if (me.rank == 0) {
      RANK_OK(me.waitFlag(1));
      uint8_t msg[64];
      fillRandom(msg, sizeof(msg), 9);
      Request req;
      RANK_OK(me.conn->isend(msg, sizeof(msg), 7, MessageMeta{}, &req));
      RANK_OK(me.waitFor(req));
      RANK_OK(me.waitFlag(2));
      return 0;
    }
    std::vector<uint8_t> first(100, 0), second(100, 0), expect(64);
    fillRandom(expect.data(), expect.size(), 9);
    Request a, b;
    RANK_OK(me.conn->irecv(first.data(), first.size(), 7, MessageMeta{}, &a));
    me.conn->cancel(&a);
    RANK_CHECK(a.failed(), "a cancelled receive is state %d", static_cast<int>(a.state));
    RANK_OK(me.conn->irecv(second.data(), second.size(), 7, MessageMeta{}, &b));
    me.setFlag(1);
    RANK_OK(me.waitFor(b));
    RANK_CHECK(b.done() && b.bytes == 64 && memcmp(second.data(), expect.data(), 64) == 0,
               "the second receive: state %d, %zu bytes", static_cast<int>(b.state), b.bytes);
    RANK_CHECK(first == std::vector<uint8_t>(100, 0), "the cancelled buffer was written");
    me.setFlag(2);
    return 0;
  });
  expectBothSucceeded(outcomes);
}

// Meta that differs fails the receive (metaMismatch, peerMeta) without
// breaking the connection; kMetaAny accepts any.
TEST(ShmTransport, MetaMismatchFailsTheReceiveAndAnyMetaMatches) {
  auto outcomes = runShmPair([](PairRank& me) {
    if (me.rank == 0) {
      uint8_t msg[16] = {1, 2, 3};
      std::vector<uint8_t> big(200000, 4);
      Request r1, r2, r3;
      RANK_OK(me.conn->isend(msg, sizeof(msg), 5, MessageMeta{1, 2}, &r1));
      RANK_OK(me.conn->isend(big.data(), big.size(), 6, MessageMeta{3, 4}, &r2));
      RANK_OK(me.conn->isend(msg, sizeof(msg), 7, MessageMeta{9, 9}, &r3));
      RANK_OK(me.driveUntil([&] { return r1.done() && r2.done() && r3.done(); }, 20000));
      RANK_OK(me.waitFlag(0));
      return 0;
    }
    std::vector<uint8_t> buf(200000);
    Request a, b, c;
    RANK_OK(me.conn->irecv(buf.data(), buf.size(), 5, MessageMeta{1, 3}, &a));
    RANK_OK(me.conn->irecv(buf.data(), buf.size(), 6, MessageMeta{3, 5}, &b));
    RANK_OK(me.driveUntil([&] { return !a.pending() && !b.pending(); }, 20000));
    for (Request* r : {&a, &b})
      RANK_CHECK(r->failed() && r->metaMismatch, "a mismatched receive: state %d, mismatch %d",
                 static_cast<int>(r->state), r->metaMismatch);
    RANK_CHECK(a.peerMeta.info == 1 && a.peerMeta.count == 2 && b.peerMeta.info == 3 &&
                   b.peerMeta.count == 4,
               "peerMeta is not the sender's");
    RANK_OK(me.conn->irecv(buf.data(), buf.size(), 7, MessageMeta{transport::kMetaAny, 0}, &c));
    RANK_OK(me.waitFor(c));
    RANK_CHECK(c.done() && c.bytes == 16 && c.peerMeta.info == 9 && buf[0] == 1,
               "kMetaAny receive: state %d", static_cast<int>(c.state));
    me.setFlag(0);
    return 0;
  });
  expectBothSucceeded(outcomes);
}

// A full ring of ordinary traffic with no receive posted does not hold up
// asynchronous traffic (its own ring), and sends that do not fit stay queued.
TEST(ShmTransport, AsynchronousTrafficPassesAnUnmatchedMessage) {
  auto outcomes = runShmPair(
      [](PairRank& me) {
        constexpr size_t kBig = 3 << 20;
        const uint64_t asyncTag = transport::kAsyncTagBit | 42;
        if (me.rank == 0) {
          std::vector<uint8_t> big(kBig), small(100);
          fillRandom(big.data(), kBig, 1);
          fillRandom(small.data(), small.size(), 2);
          Request bigReq, smallReq;
          RANK_OK(me.conn->isend(big.data(), kBig, 50, MessageMeta{8, kBig}, &bigReq));
          RANK_CHECK(me.conn->hasQueuedSends(), "3 MiB fit into a 1 MiB ring");
          RANK_OK(me.conn->isend(small.data(), small.size(), asyncTag, MessageMeta{}, &smallReq));
          RANK_OK(me.waitFor(smallReq));
          RANK_CHECK(smallReq.done() && bigReq.pending(), "async %d, ordinary %d",
                     static_cast<int>(smallReq.state), static_cast<int>(bigReq.state));
          RANK_OK(me.waitFor(bigReq));
          RANK_CHECK(bigReq.done() && !me.conn->hasQueuedSends(), "the ordinary send: %d",
                     static_cast<int>(bigReq.state));
          RANK_OK(me.waitFlag(0));
          return 0;
        }
        std::vector<uint8_t> big(kBig), small(100), expect(kBig);
        Request smallReq, bigReq;
        RANK_OK(me.conn->irecv(small.data(), small.size(), asyncTag, MessageMeta{}, &smallReq));
        RANK_OK(me.waitFor(smallReq, 10000));
        fillRandom(expect.data(), 100, 2);
        RANK_CHECK(smallReq.done() && memcmp(small.data(), expect.data(), 100) == 0,
                   "the asynchronous message: state %d", static_cast<int>(smallReq.state));
        std::vector<std::pair<uint64_t, MessageMeta>> paused;
        me.conn->pausedFrames(&paused);
        RANK_CHECK(paused.size() == 1 && paused[0].first == 50 && paused[0].second.info == 8 &&
                       paused[0].second.count == kBig,
                   "%zu paused frames", paused.size());
        RANK_OK(me.conn->irecv(big.data(), kBig, 50, MessageMeta{8, kBig}, &bigReq));
        RANK_OK(me.waitFor(bigReq));
        fillRandom(expect.data(), kBig, 1);
        RANK_CHECK(bigReq.done() && memcmp(big.data(), expect.data(), kBig) == 0,
                   "the ordinary message: state %d", static_cast<int>(bigReq.state));
        me.setFlag(0);
        return 0;
      },
      withSingleCopy(false));
  expectBothSucceeded(outcomes);
}

// A ring line is read as a record when its first word carries the stamp
// that position expects (shm_connection.h, "Publication"). Payload bytes
// from the lap before may say exactly that: here every payload line that
// will lie where a later message's record goes, one lap on, is made into a
// perfect forgery of that record (an inline message of 8 bytes with the
// right tag and meta). The receiver must still wait for the real one. The
// layout below is the record's wire format: stamp, tag, meta info, meta
// count, total, length, then 16 inline bytes.
TEST(ShmTransport, PayloadForgingTheNextLapsRecordIsNotReadAsOne) {
  PairOptions opt = withSingleCopy(false);
  for (ShmTuning& t : opt.tuning)
    t.ringBytes = 64 << 10;
  auto outcomes = runShmPair(
      [](PairRank& me) {
        constexpr uint64_t kCap = 64 << 10, kLine = 64, kMessages = 40;
        constexpr size_t kBytes = 16000;  // at most a quarter of the ring: one piece
        constexpr uint64_t kStride = kLine + (kBytes + kLine - 1) / kLine * kLine;
        const MessageMeta meta{7, kBytes};
        auto payload = [&](uint64_t m, std::vector<uint8_t>* out, int* forged) {
          out->assign(kBytes, 0);
          fillRandom(out->data(), kBytes, 1000 + m);
          uint64_t start = m * kStride + kLine;  // the stream position of the payload
          for (uint64_t at = 0; at + kLine <= kBytes; at += kLine) {
            uint64_t ahead = start + at + kCap;  // this line's position one lap on
            if (ahead % kStride != 0) continue;
            uint64_t victim = ahead / kStride;
            uint64_t words[8] = {(ahead / kLine + 1) << 8 | 3, victim, meta.info, meta.count, 8, 8,
                                 0xabababababababab,           0};
            memcpy(out->data() + at, words, sizeof(words));
            ++*forged;
          }
        };
        int forged = 0;
        for (uint64_t m = 0; m < kMessages; ++m) {
          std::vector<uint8_t> data;
          payload(m, &data, &forged);
          Request req, ack;
          uint8_t one = 1;
          if (me.rank == 0) {
            // One message at a time (the ring is empty when each is
            // written), so that the stream positions are the ones above.
            RANK_OK(me.conn->irecv(&one, 1, 1000 + m, MessageMeta{}, &ack));
            RANK_OK(me.conn->isend(data.data(), kBytes, m, meta, &req));
            RANK_OK(me.driveUntil([&] { return !req.pending() && !ack.pending(); }, 20000));
            RANK_CHECK(req.done() && ack.done(), "message %llu: send %d, ack %d",
                       static_cast<unsigned long long>(m), static_cast<int>(req.state),
                       static_cast<int>(ack.state));
            continue;
          }
          std::vector<uint8_t> in(kBytes, 0);
          RANK_OK(me.conn->irecv(in.data(), kBytes, m, meta, &req));
          RANK_OK(me.driveUntil([&] { return !req.pending(); }, 20000));
          RANK_CHECK(req.done() && req.bytes == kBytes && in == data,
                     "message %llu: state %d, %zu bytes, %s", static_cast<unsigned long long>(m),
                     static_cast<int>(req.state), req.bytes, in == data ? "intact" : "other bytes");
          RANK_OK(me.conn->isend(&one, 1, 1000 + m, MessageMeta{}, &ack));
          RANK_OK(me.driveUntil([&] { return !ack.pending(); }, 20000));
        }
        RANK_CHECK(forged >= 5, "only %d forged records: the test proves nothing", forged);
        return 0;
      },
      opt);
  expectBothSucceeded(outcomes);
}

class ShmWake : public testing::TestWithParam<bool> {};

// Both sides sleep whenever nothing moves, for up to 10 s at a time: a lost
// doorbell (data published, acks, ring space freed) would cost 10 s.
TEST_P(ShmWake, SleepingSidesAreWokenForEveryStep) {
  bool singleCopy = GetParam();
  PairOptions opt = withSingleCopy(singleCopy);
  if (!singleCopy)
    for (ShmTuning& t : opt.tuning)
      t.ringBytes = t.asyncRingBytes = 64 << 10;  // 300 KB waits for room 5 times
  auto outcomes = runShmPair(
      [](PairRank& me) {
        const size_t sizes[] = {8, 1000, 70000, 300000};
        std::vector<uint8_t> out(300000), in(300000);
        int64_t start = nowMsForTest();
        for (int i = 0; i < 400; ++i) {
          size_t n = sizes[i % 4];
          uint64_t tag = transport::collectiveTag(static_cast<uint64_t>(i), 0);
          Request s, r;
          if (me.rank == 0) {
            RANK_OK(me.conn->irecv(in.data(), n, tag, MessageMeta{}, &r));
            RANK_OK(me.conn->isend(out.data(), n, tag, MessageMeta{}, &s));
            RANK_OK(me.driveUntil([&] { return s.done() && r.done(); }, 30000, 10000));
          } else {
            RANK_OK(me.conn->irecv(in.data(), n, tag, MessageMeta{}, &r));
            RANK_OK(me.driveUntil([&] { return r.done(); }, 30000, 10000));
            RANK_OK(me.conn->isend(out.data(), n, tag, MessageMeta{}, &s));
            RANK_OK(me.driveUntil([&] { return s.done(); }, 30000, 10000));
          }
        }
        int64_t took = nowMsForTest() - start;
        RANK_CHECK(took < 8000, "400 round trips took %lld ms: a wake-up was lost",
                   static_cast<long long>(took));
        me.setFlag(me.rank);
        RANK_OK(me.waitFlag(1 - me.rank));
        return 0;
      },
      opt);
  expectBothSucceeded(outcomes);
}
INSTANTIATE_TEST_SUITE_P(SingleCopy, ShmWake, testing::Values(true, false),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "On" : "ForcedOffSmallRing";
                         });

}  // namespace
}  // namespace gccl::shm::test
