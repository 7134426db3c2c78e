// Point-to-point calls, groups, non-blocking requests and the barrier.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/data.h"
#include "common/multiproc.h"
#include "common/run_ranks.h"

namespace gccl::test {
namespace {

uint8_t pattern(int from, int to, size_t i) {
  return static_cast<uint8_t>(from * 31 + to * 7 + i * 13);
}

TEST(SendRecv, RingExchangeInAGroupDoesNotDeadlock) {
  for (int n : {2, 3, 5}) {
    runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      int right = (rank + 1) % n, left = (rank - 1 + n) % n;
      for (size_t bytes : {size_t{0}, size_t{1}, size_t{1001}, size_t{5u << 20}}) {
        std::vector<uint8_t> out(bytes), in(bytes, 0);
        for (size_t i = 0; i < bytes; ++i)
          out[i] = pattern(rank, right, i);
        RANK_OK(gcclGroupStart());
        RANK_OK(gcclSend(out.data(), bytes, gcclUint8, right, comm, nullptr, nullptr));
        RANK_OK(gcclRecv(in.data(), bytes, gcclUint8, left, comm, nullptr, nullptr));
        RANK_OK(gcclGroupEnd());
        for (size_t i = 0; i < bytes; ++i)
          RANK_CHECK(in[i] == pattern(left, rank, i), "byte %zu of %zu from rank %d", i, bytes,
                     left);
      }
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
  }
}

TEST(SendRecv, ASendAndAReceiveOnOneBufferInAGroupExchangeTheOldContents) {
  for (int n : {2, 3}) {
    runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      int right = (rank + 1) % n, left = (rank - 1 + n) % n;
      const size_t bytes = 16u << 20;  // far more than a socket buffer
      std::vector<uint8_t> buf(bytes);
      for (size_t i = 0; i < bytes; ++i)
        buf[i] = pattern(rank, right, i);
      RANK_OK(gcclGroupStart());
      RANK_OK(gcclSend(buf.data(), bytes, gcclUint8, right, comm, nullptr, nullptr));
      RANK_OK(gcclRecv(buf.data(), bytes, gcclUint8, left, comm, nullptr, nullptr));
      RANK_OK(gcclGroupEnd());
      for (size_t i = 0; i < bytes; ++i)
        RANK_CHECK(buf[i] == pattern(left, rank, i), "byte %zu from rank %d", i, left);
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
  }
}

TEST(SendRecv, MessagesBetweenTwoRanksMatchInPostingOrder) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    const size_t sizes[] = {10, 300000, 0, 7};
    if (rank == 0) {
      std::vector<std::vector<int32_t>> msgs;
      for (size_t k = 0; k < 4; ++k)
        msgs.emplace_back(sizes[k], static_cast<int32_t>(k + 100));
      std::vector<gcclRequest_t> reqs(4);
      for (size_t k = 0; k < 4; ++k)
        RANK_OK(gcclSend(msgs[k].data(), sizes[k], gcclInt32, 1, comm, nullptr, &reqs[k]));
      for (auto r : reqs)
        RANK_OK(gcclWait(r));
    } else {
      for (size_t k = 0; k < 4; ++k) {
        std::vector<int32_t> in(sizes[k] + 5, -1);  // a larger receive buffer is allowed
        RANK_OK(gcclRecv(in.data(), in.size(), gcclInt32, 0, comm, nullptr, nullptr));
        for (size_t i = 0; i < sizes[k]; ++i)
          RANK_CHECK(in[i] == static_cast<int32_t>(k + 100), "message %zu element %zu", k, i);
        RANK_CHECK(in[sizes[k]] == -1, "message %zu overran its size", k);
      }
    }
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

TEST(SendRecv, SendLargerThanTheReceiveBufferIsAnErrorOnBothSides) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
    cfg.timeoutMs = 5000;
    gcclComm_t comm;
    RANK_OK(gcclCommInitRankConfig(&comm, n, id, rank, &cfg));
    std::vector<uint8_t> buf(1000, 1);
    gcclResult_t r = rank == 0 ? gcclSend(buf.data(), 1000, gcclUint8, 1, comm, nullptr, nullptr)
                               : gcclRecv(buf.data(), 10, gcclUint8, 0, comm, nullptr, nullptr);
    if (rank == 1) {
      RANK_CHECK(r == gcclInvalidUsage, "got %s", gcclGetErrorString(r));
      RANK_CHECK(strstr(gcclGetLastError(comm), "1000 bytes") != nullptr, "message: %s",
                 gcclGetLastError(comm));
      RANK_CHECK(buf[10] == 1, "bytes past the receive buffer were written");
    }
    if (rank == 0) {
      // The send itself may have left before the peer noticed; the next call sees the break.
      gcclResult_t async = gcclSuccess;
      for (int i = 0; i < 500 && async == gcclSuccess; ++i) {
        RANK_OK(gcclCommGetAsyncError(comm, &async));
        usleep(10000);
      }
      RANK_CHECK(async != gcclSuccess, "rank 0 never learned of the failed receive");
    }
    gcclCommAbort(comm);
    return 0;
  });
}

TEST(SendRecv, ARankCanSendToItselfInAGroup) {
  runAndExpect(1, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    std::vector<double> out(777, 3.25), in(777, 0);
    RANK_OK(gcclGroupStart());
    RANK_OK(gcclRecv(in.data(), in.size(), gcclFloat64, 0, comm, nullptr, nullptr));
    RANK_OK(gcclSend(out.data(), out.size(), gcclFloat64, 0, comm, nullptr, nullptr));
    RANK_OK(gcclGroupEnd());
    RANK_CHECK(in == out, "self message differs");
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

TEST(SendRecv, AllToAllThroughOneGroup) {
  runAndExpect(4, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    const size_t block = 4099;
    std::vector<uint8_t> out(block * static_cast<size_t>(n)), in(out.size(), 0);
    for (int p = 0; p < n; ++p)
      for (size_t i = 0; i < block; ++i)
        out[static_cast<size_t>(p) * block + i] = pattern(rank, p, i);
    RANK_OK(gcclGroupStart());
    for (int p = 0; p < n; ++p) {
      RANK_OK(gcclSend(out.data() + static_cast<size_t>(p) * block, block, gcclUint8, p, comm,
                       nullptr, nullptr));
      RANK_OK(gcclRecv(in.data() + static_cast<size_t>(p) * block, block, gcclUint8, p, comm,
                       nullptr, nullptr));
    }
    RANK_OK(gcclGroupEnd());
    for (int p = 0; p < n; ++p)
      for (size_t i = 0; i < block; ++i)
        RANK_CHECK(in[static_cast<size_t>(p) * block + i] == pattern(p, rank, i),
                   "from %d byte %zu", p, i);
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

TEST(Requests, NonBlockingCollectivesCompleteInOrderThroughTestAndWait) {
  runAndExpect(3, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    const int k = 6;
    std::vector<std::vector<float>> bufs;
    std::vector<gcclRequest_t> reqs(k);
    for (int j = 0; j < k; ++j) {
      size_t count = j % 2 ? 1000 : 200000;  // both algorithms
      bufs.emplace_back(count);
      fillRank(gcclFloat32, gcclSum, bufs.back().data(), count, rank + j);
    }
    for (int j = 0; j < k; ++j)
      RANK_OK(gcclAllReduce(bufs[j].data(), bufs[j].data(), bufs[j].size(), gcclFloat32, gcclSum,
                            comm, nullptr, &reqs[j]));
    // Poll the first one with gcclTest, wait for the rest.
    int done = 0;
    for (int spin = 0; !done && spin < 100000; ++spin) {
      RANK_OK(gcclTest(reqs[0], &done));
      if (!done) usleep(100);
    }
    RANK_CHECK(done, "gcclTest never reported completion");
    for (int j = 1; j < k; ++j)
      RANK_OK(gcclWait(reqs[j]));
    for (int j = 0; j < k; ++j)
      for (size_t i = 0; i < bufs[j].size(); ++i) {
        double want = 0;
        for (int r = 0; r < n; ++r)
          want += testValue(gcclFloat32, gcclSum, r + j, i);
        RANK_CHECK(bufs[j][i] == want, "request %d element %zu: %g vs %g", j, i, bufs[j][i], want);
      }
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

struct Arrivals {
  std::atomic<int> arrived[8];
};

TEST(Barrier, NoRankLeavesBeforeEveryRankHasArrived) {
  for (int n : {1, 2, 3, 5, 8}) {
    SharedArea area(sizeof(Arrivals));
    auto* a = area.as<Arrivals>();
    runAndExpect(n, [a](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      for (int round = 1; round <= 3; ++round) {
        // Late arrivals: the last rank comes 50 ms after the others.
        if (rank == n - 1) usleep(50000);
        a->arrived[rank].store(round);
        RANK_OK(gcclBarrier(comm, nullptr, nullptr));
        for (int r = 0; r < n; ++r)
          RANK_CHECK(a->arrived[r].load() >= round, "round %d: left before rank %d arrived", round,
                     r);
      }
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
  }
}

}  // namespace
}  // namespace gccl::test
