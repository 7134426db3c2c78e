// gcclCommGetPeerCounters across ranks: every rank sends every other rank a
// known set of messages (and itself one), then runs an AllReduce; the
// counters must show exactly the point-to-point traffic, at least the bytes
// any AllReduce must move, and what one rank sent to another must be what
// that one received from it. Registered once more per transport
// (Suite.<transport>.test_peer_traffic, GCCL_TRANSPORT forced).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "common/multiproc.h"
#include "common/run_ranks.h"

namespace gccl::test {
namespace {

// The messages from rank `from` to rank `to`: an empty one, a small one and
// one larger than a socket buffer or a ring slot, all of sizes that differ by
// direction, so that a counter that mixes up peers or directions is caught.
constexpr int kMessages = 3;
size_t messageBytes(int from, int to, int k) {
  static const size_t base[kMessages] = {0, 1000, 300000};
  return k == 0 ? 0 : base[k] + 17 * static_cast<size_t>(from) + 5 * static_cast<size_t>(to);
}
size_t selfBytes(int rank) {
  return 123 + static_cast<size_t>(rank);
}

struct Counts {
  uint64_t bytesSent, bytesReceived, messagesSent, messagesReceived;
};

int readAll(gcclComm_t comm, int n, std::vector<Counts>* out) {
  out->resize(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) {
    gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
    RANK_OK(gcclCommGetPeerCounters(comm, p, &c));
    (*out)[static_cast<size_t>(p)] = {c.bytesSent, c.bytesReceived, c.messagesSent,
                                      c.messagesReceived};
  }
  return 0;
}

int exchangePattern(gcclComm_t comm, int rank, int n) {
  std::vector<std::vector<uint8_t>> outs, ins;
  RANK_OK(gcclGroupStart());
  for (int p = 0; p < n; ++p) {
    if (p == rank) continue;
    for (int k = 0; k < kMessages; ++k) {
      outs.emplace_back(messageBytes(rank, p, k), static_cast<uint8_t>(rank));
      ins.emplace_back(messageBytes(p, rank, k));
      RANK_OK(
          gcclSend(outs.back().data(), outs.back().size(), gcclUint8, p, comm, nullptr, nullptr));
      RANK_OK(gcclRecv(ins.back().data(), ins.back().size(), gcclUint8, p, comm, nullptr, nullptr));
    }
  }
  std::vector<uint8_t> selfOut(selfBytes(rank), 1), selfIn(selfBytes(rank));
  RANK_OK(gcclSend(selfOut.data(), selfOut.size(), gcclUint8, rank, comm, nullptr, nullptr));
  RANK_OK(gcclRecv(selfIn.data(), selfIn.size(), gcclUint8, rank, comm, nullptr, nullptr));
  RANK_OK(gcclGroupEnd());
  return 0;
}

TEST(PeerTraffic, CountersShowExactlyThePointToPointTrafficAndPairsAgree) {
  for (int n : {2, 3}) {
    runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      std::vector<Counts> start;
      if (readAll(comm, n, &start) != 0) return 1;
      for (int p = 0; p < n; ++p) {
        const Counts& c = start[static_cast<size_t>(p)];
        RANK_CHECK(c.bytesSent == 0 && c.bytesReceived == 0 && c.messagesSent == 0 &&
                       c.messagesReceived == 0,
                   "peer %d counts traffic before any call", p);
      }

      // Another thread reads the counters all along: each only grows.
      std::atomic<bool> stop{false};
      std::atomic<int> readerFailures{0};
      std::thread reader([&] {
        std::vector<gcclPeerCounters_t> last(static_cast<size_t>(n));
        while (!stop.load()) {
          for (int p = 0; p < n; ++p) {
            gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
            if (gcclCommGetPeerCounters(comm, p, &c) != gcclSuccess) {
              readerFailures.fetch_add(1);
              continue;
            }
            gcclPeerCounters_t& l = last[static_cast<size_t>(p)];
            if (c.bytesSent < l.bytesSent || c.bytesReceived < l.bytesReceived ||
                c.messagesSent < l.messagesSent || c.messagesReceived < l.messagesReceived)
              readerFailures.fetch_add(1);
            l = c;
          }
          std::this_thread::yield();
        }
      });

      if (exchangePattern(comm, rank, n) != 0) return 1;
      std::vector<Counts> p2p;
      if (readAll(comm, n, &p2p) != 0) return 1;
      for (int p = 0; p < n; ++p) {
        const Counts& c = p2p[static_cast<size_t>(p)];
        if (p == rank) {
          // The loopback: one message, each way the same.
          RANK_CHECK(c.bytesSent == selfBytes(rank) && c.bytesReceived == selfBytes(rank) &&
                         c.messagesSent == 1 && c.messagesReceived == 1,
                     "self: sent %llu B in %llu, received %llu B in %llu",
                     (unsigned long long)c.bytesSent, (unsigned long long)c.messagesSent,
                     (unsigned long long)c.bytesReceived, (unsigned long long)c.messagesReceived);
          continue;
        }
        uint64_t toPeer = 0, fromPeer = 0;
        for (int k = 0; k < kMessages; ++k) {
          toPeer += messageBytes(rank, p, k);
          fromPeer += messageBytes(p, rank, k);
        }
        RANK_CHECK(c.bytesSent == toPeer && c.messagesSent == kMessages,
                   "to peer %d: %llu B in %llu messages, expected %llu B in %d", p,
                   (unsigned long long)c.bytesSent, (unsigned long long)c.messagesSent,
                   (unsigned long long)toPeer, kMessages);
        RANK_CHECK(c.bytesReceived == fromPeer && c.messagesReceived == kMessages,
                   "from peer %d: %llu B in %llu messages, expected %llu B in %d", p,
                   (unsigned long long)c.bytesReceived, (unsigned long long)c.messagesReceived,
                   (unsigned long long)fromPeer, kMessages);
      }

      // An AllReduce of S bytes. Which peers it talks to and in how many
      // messages depends on the algorithm (a ring talks to two neighbours
      // only, in chunks; recursive doubling to log2(n) partners), so only
      // this rank's totals over its peers are bounded: every element of the
      // result combines the other ranks' inputs, and data travels
      // uncompressed, so at least S bytes must arrive here; every element of
      // this rank's input is needed elsewhere, so at least S bytes must
      // leave. Each direction takes at least one message.
      const size_t count = 1 << 16;
      const uint64_t S = count * sizeof(float);
      std::vector<float> x(count, static_cast<float>(rank + 1));
      RANK_OK(
          gcclAllReduce(x.data(), x.data(), count, gcclFloat32, gcclSum, comm, nullptr, nullptr));
      RANK_CHECK(x[count - 1] == static_cast<float>(n * (n + 1) / 2), "AllReduce result %f",
                 x[count - 1]);
      std::vector<Counts> after;
      if (readAll(comm, n, &after) != 0) return 1;
      uint64_t sentBytes = 0, receivedBytes = 0, sentMessages = 0, receivedMessages = 0;
      for (int p = 0; p < n; ++p) {
        if (p == rank) continue;
        const Counts& a = after[static_cast<size_t>(p)];
        const Counts& b = p2p[static_cast<size_t>(p)];
        sentBytes += a.bytesSent - b.bytesSent;
        receivedBytes += a.bytesReceived - b.bytesReceived;
        sentMessages += a.messagesSent - b.messagesSent;
        receivedMessages += a.messagesReceived - b.messagesReceived;
      }
      RANK_CHECK(sentBytes >= S && receivedBytes >= S,
                 "AllReduce of %llu B: sent %llu B, received %llu B", (unsigned long long)S,
                 (unsigned long long)sentBytes, (unsigned long long)receivedBytes);
      RANK_CHECK(sentMessages > 0 && receivedMessages > 0,
                 "AllReduce: %llu messages sent, %llu received", (unsigned long long)sentMessages,
                 (unsigned long long)receivedMessages);

      stop.store(true);
      reader.join();
      RANK_CHECK(readerFailures.load() == 0,
                 "%d reads from another thread failed or went backwards", readerFailures.load());

      // Everyone's counters (read before this AllGather moved anything):
      // what rank i sent to rank j is what j received from i.
      std::vector<uint64_t> mine(static_cast<size_t>(n) * 4), all(mine.size() * n);
      for (int p = 0; p < n; ++p) {
        const Counts& a = after[static_cast<size_t>(p)];
        uint64_t* m = &mine[static_cast<size_t>(p) * 4];
        m[0] = a.bytesSent;
        m[1] = a.bytesReceived;
        m[2] = a.messagesSent;
        m[3] = a.messagesReceived;
      }
      RANK_OK(
          gcclAllGather(mine.data(), all.data(), mine.size(), gcclUint64, comm, nullptr, nullptr));
      auto at = [&](int i, int j, int field) {
        return all[(static_cast<size_t>(i) * n + static_cast<size_t>(j)) * 4 + field];
      };
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          if (i == j) continue;
          RANK_CHECK(at(i, j, 0) == at(j, i, 1), "rank %d sent rank %d %llu B; it received %llu", i,
                     j, (unsigned long long)at(i, j, 0), (unsigned long long)at(j, i, 1));
          RANK_CHECK(at(i, j, 2) == at(j, i, 3),
                     "rank %d sent rank %d %llu messages; it received %llu", i, j,
                     (unsigned long long)at(i, j, 2), (unsigned long long)at(j, i, 3));
        }
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
  }
}

TEST(PeerTraffic, CountersStayReadableAfterAPeerDied) {
  // Rank 0 says when it has read its counters; rank 1 then exits.
  SharedArea shared(sizeof(std::atomic<int>));
  auto* counted = new (shared.data()) std::atomic<int>(0);
  runAndExpect(2, [counted](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    if (exchangePattern(comm, rank, n) != 0) return 1;
    if (rank == 1) {
      while (counted->load() == 0)
        usleep(1000);
      _exit(0);  // gone without a goodbye
    }
    std::vector<Counts> before;
    if (readAll(comm, n, &before) != 0) return 1;
    counted->store(1);
    int dummy = 0;
    gcclResult_t r = gcclRecv(&dummy, 1, gcclInt32, 1, comm, nullptr, nullptr);
    RANK_CHECK(r != gcclSuccess, "a receive from a dead peer succeeded");
    gcclResult_t async = gcclSuccess;
    RANK_OK(gcclCommGetAsyncError(comm, &async));
    RANK_CHECK(async != gcclSuccess, "the communicator is not broken");
    std::vector<Counts> broken;
    if (readAll(comm, n, &broken) != 0) return 1;
    for (int p = 0; p < n; ++p)
      RANK_CHECK(memcmp(&broken[static_cast<size_t>(p)], &before[static_cast<size_t>(p)],
                        sizeof(Counts)) == 0 &&
                     broken[static_cast<size_t>(p)].messagesSent > 0,
                 "peer %d: the counters changed or were lost when the communicator broke", p);
    gcclCommAbort(comm);
    return 0;
  });
}

}  // namespace
}  // namespace gccl::test
