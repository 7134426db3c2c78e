// Exact collectives across processes on loopback: every data type and
// reduction, 1-8 ranks, sizes 0, 1, odd and 64 MiB, in place and out of
// place; results checked against an independent reference and compared bit
// for bit across ranks.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <vector>

#include "common/data.h"
#include "common/multiproc.h"

namespace gccl::test {
namespace {

const gcclDataType_t kAllTypes[] = {gcclInt8,    gcclUint8,   gcclInt32,   gcclUint32,
                                    gcclInt64,   gcclUint64,  gcclFloat16, gcclFloat32,
                                    gcclFloat64, gcclBfloat16};
const gcclRedOp_t kAllOps[] = {gcclSum, gcclProd, gcclMax, gcclMin, gcclAvg};

// Slot [case][rank] of result hashes, filled by the children.
constexpr int kMaxCases = 4096;
constexpr int kMaxRanks = 8;

struct Hashes {
  uint64_t h[kMaxCases][kMaxRanks];
  int cases;
};

int checkElements(gcclDataType_t t, gcclRedOp_t op, int n, const void* buf, size_t count,
                  size_t offset, const char* what) {
  for (size_t i = 0; i < count; ++i) {
    double want = expectedReduction(t, op, n, offset + i);
    double got = loadValue(t, buf, i);
    RANK_CHECK(std::fabs(got - want) <= tolerance(t, op, want),
               "%s %s/%s n=%d element %zu: got %g want %g", what, typeName(t), opName(op), n,
               offset + i, got, want);
  }
  return 0;
}

gcclComm_t initComm(int rank, int n, const gcclUniqueId& id) {
  gcclComm_t comm = nullptr;
  if (gcclCommInitRank(&comm, n, id, rank) != gcclSuccess) {
    fprintf(stderr, "rank %d: init failed: %s\n", rank, gcclGetLastError(nullptr));
    return nullptr;
  }
  return comm;
}

void expectSameOnEveryRank(const Hashes* hs, int n) {
  for (int c = 0; c < hs->cases; ++c)
    for (int r = 1; r < n; ++r)
      ASSERT_EQ(hs->h[c][r], hs->h[c][0])
          << "case " << c << ": rank " << r << " differs from rank 0";
}

void runAndExpect(int n, const RankFn& fn, int timeoutSec = 240) {
  std::string why;
  auto outcomes = runRanks(n, fn, timeoutSec);
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// ---- AllReduce -------------------------------------------------------------

int allReduceEveryTypeAndOp(int rank, int n, const gcclUniqueId& id, Hashes* hs,
                            const std::vector<size_t>& counts) {
  gcclComm_t comm = initComm(rank, n, id);
  RANK_CHECK(comm != nullptr, "init");
  int c = 0;
  for (gcclDataType_t t : kAllTypes)
    for (gcclRedOp_t op : kAllOps)
      for (size_t count : counts)
        for (int inPlace = 0; inPlace < 2; ++inPlace) {
          size_t bytes = count * kernels::typeSize(t);
          std::vector<uint8_t> send(bytes + 8), recv(bytes + 8, 0xAB);
          fillRank(t, op, send.data(), count, rank);
          void* out = inPlace ? send.data() : recv.data();
          RANK_OK(gcclAllReduce(send.data(), out, count, t, op, comm, nullptr, nullptr));
          if (checkElements(t, op, n, out, count, 0, "AllReduce")) return 1;
          if (!inPlace) RANK_CHECK(recv[bytes] == 0xAB, "AllReduce wrote past recvbuff");
          hs->h[c++][rank] = hashBytes(out, bytes);
        }
  hs->cases = c;
  RANK_OK(gcclCommDestroy(comm));
  return 0;
}

class AllReduceRanks : public testing::TestWithParam<int> {};

TEST_P(AllReduceRanks, EveryTypeAndReductionIsExactAndBitIdenticalOnEveryRank) {
  int n = GetParam();
  SharedArea area(sizeof(Hashes));
  auto* hs = area.as<Hashes>();
  runAndExpect(n, [hs](int r, int n, const gcclUniqueId& id) {
    return allReduceEveryTypeAndOp(r, n, id, hs, {0, 1, 1001});
  });
  expectSameOnEveryRank(hs, n);
}

TEST_P(AllReduceRanks, RingAlgorithmHandlesOddSizesAndEmptyChunks) {
  int n = GetParam();
  SharedArea area(sizeof(Hashes));
  auto* hs = area.as<Hashes>();
  runAndExpect(n, [hs](int r, int n, const gcclUniqueId& id) {
    setenv("GCCL_ALGO_ALLREDUCE", "ring", 1);
    setenv("GCCL_CHUNK_BYTES", "4096", 1);  // many slices even for small messages
    return allReduceEveryTypeAndOp(r, n, id, hs, {1, 3, 1001, 70001});
  });
  expectSameOnEveryRank(hs, n);
}

INSTANTIATE_TEST_SUITE_P(Ranks, AllReduceRanks, testing::Values(1, 2, 3, 4, 5, 8));

int largeAllReduce(int rank, int n, const gcclUniqueId& id, size_t count, bool inPlace,
                   Hashes* hs) {
  gcclComm_t comm = initComm(rank, n, id);
  RANK_CHECK(comm != nullptr, "init");
  std::vector<float> send(count), recv(inPlace ? 0 : count);
  fillRank(gcclFloat32, gcclSum, send.data(), count, rank);
  float* out = inPlace ? send.data() : recv.data();
  RANK_OK(gcclAllReduce(send.data(), out, count, gcclFloat32, gcclSum, comm, nullptr, nullptr));
  if (checkElements(gcclFloat32, gcclSum, n, out, count, 0, "large AllReduce")) return 1;
  hs->h[0][rank] = hashBytes(out, count * sizeof(float));
  hs->cases = 1;
  RANK_OK(gcclCommDestroy(comm));
  return 0;
}

TEST(AllReduceLarge, SixtyFourMebibytesOutOfPlaceOnFourRanks) {
  SharedArea area(sizeof(Hashes));
  auto* hs = area.as<Hashes>();
  runAndExpect(4, [hs](int r, int n, const gcclUniqueId& id) {
    return largeAllReduce(r, n, id, (64u << 20) / sizeof(float) + 7, false, hs);
  });
  expectSameOnEveryRank(hs, 4);
}

TEST(AllReduceLarge, SixtyFourMebibytesInPlaceOnThreeRanks) {
  SharedArea area(sizeof(Hashes));
  auto* hs = area.as<Hashes>();
  runAndExpect(3, [hs](int r, int n, const gcclUniqueId& id) {
    return largeAllReduce(r, n, id, (64u << 20) / sizeof(float), true, hs);
  });
  expectSameOnEveryRank(hs, 3);
}

// ---- Broadcast and Reduce ----------------------------------------------------

class RootedRanks : public testing::TestWithParam<int> {};

TEST_P(RootedRanks, BroadcastFromEveryRootDeliversTheRootsData) {
  int n = GetParam();
  runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm = initComm(rank, n, id);
    RANK_CHECK(comm != nullptr, "init");
    for (int root = 0; root < n; ++root)
      for (size_t count : {size_t{0}, size_t{1}, size_t{1001}, size_t{300001}})
        for (gcclDataType_t t : {gcclInt8, gcclFloat16, gcclFloat64, gcclUint32})
          for (int inPlace = 0; inPlace < 2; ++inPlace) {
            size_t bytes = count * kernels::typeSize(t);
            std::vector<uint8_t> send(bytes), recv(bytes + 1, 0xCD);
            fillRank(t, gcclSum, send.data(), count, rank);
            const void* in = inPlace ? recv.data() : send.data();
            if (inPlace && rank == root && bytes > 0) memcpy(recv.data(), send.data(), bytes);
            RANK_OK(gcclBroadcast(in, recv.data(), count, t, root, comm, nullptr, nullptr));
            for (size_t i = 0; i < count; ++i)
              RANK_CHECK(loadValue(t, recv.data(), i) == testValue(t, gcclSum, root, i),
                         "root %d count %zu element %zu", root, count, i);
            RANK_CHECK(recv[bytes] == 0xCD, "Broadcast wrote past recvbuff");
          }
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

TEST_P(RootedRanks, ReduceToEveryRootGivesTheExactReduction) {
  int n = GetParam();
  runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm = initComm(rank, n, id);
    RANK_CHECK(comm != nullptr, "init");
    for (int root = 0; root < n; ++root)
      for (size_t count : {size_t{0}, size_t{1}, size_t{1001}, size_t{300001}})
        for (gcclDataType_t t : {gcclInt32, gcclBfloat16, gcclFloat32, gcclUint64})
          for (gcclRedOp_t op : kAllOps)
            for (int inPlace = 0; inPlace < 2; ++inPlace) {
              size_t bytes = count * kernels::typeSize(t);
              std::vector<uint8_t> send(bytes), recv(bytes, 0);
              fillRank(t, op, send.data(), count, rank);
              void* out = inPlace ? send.data() : recv.data();
              RANK_OK(gcclReduce(send.data(), rank == root ? out : nullptr, count, t, op, root,
                                 comm, nullptr, nullptr));
              if (rank == root && checkElements(t, op, n, out, count, 0, "Reduce")) return 1;
            }
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

INSTANTIATE_TEST_SUITE_P(Ranks, RootedRanks, testing::Values(1, 2, 3, 4, 5, 8));

// ---- AllGather and ReduceScatter ---------------------------------------------

class GatherScatterRanks : public testing::TestWithParam<int> {};

TEST_P(GatherScatterRanks, AllGatherPlacesEveryRanksBlockInRankOrder) {
  int n = GetParam();
  SharedArea area(sizeof(Hashes));
  auto* hs = area.as<Hashes>();
  runAndExpect(n, [hs](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm = initComm(rank, n, id);
    RANK_CHECK(comm != nullptr, "init");
    int c = 0;
    for (size_t count : {size_t{0}, size_t{1}, size_t{1001}, size_t{200003}})
      for (gcclDataType_t t : kAllTypes)
        for (int inPlace = 0; inPlace < 2; ++inPlace) {
          size_t bytes = count * kernels::typeSize(t);
          std::vector<uint8_t> send(bytes), recv(bytes * static_cast<size_t>(n) + 1, 0xEE);
          fillRank(t, gcclSum, send.data(), count, rank);
          const void* in = send.data();
          if (inPlace) {
            if (bytes > 0)
              memcpy(recv.data() + static_cast<size_t>(rank) * bytes, send.data(), bytes);
            in = recv.data() + static_cast<size_t>(rank) * bytes;
          }
          RANK_OK(gcclAllGather(in, recv.data(), count, t, comm, nullptr, nullptr));
          for (int r = 0; r < n; ++r)
            for (size_t i = 0; i < count; ++i)
              RANK_CHECK(loadValue(t, recv.data() + static_cast<size_t>(r) * bytes, i) ==
                             testValue(t, gcclSum, r, i),
                         "block %d element %zu (%s, count %zu)", r, i, typeName(t), count);
          RANK_CHECK(recv[bytes * static_cast<size_t>(n)] == 0xEE, "AllGather wrote past recvbuff");
          hs->h[c++][rank] = hashBytes(recv.data(), bytes * static_cast<size_t>(n));
        }
    hs->cases = c;
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  expectSameOnEveryRank(hs, n);
}

TEST_P(GatherScatterRanks, ReduceScatterGivesEachRankItsReducedBlock) {
  int n = GetParam();
  runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm = initComm(rank, n, id);
    RANK_CHECK(comm != nullptr, "init");
    for (size_t count : {size_t{0}, size_t{1}, size_t{1001}, size_t{200003}})
      for (gcclDataType_t t : kAllTypes)
        for (gcclRedOp_t op : kAllOps)
          for (int inPlace = 0; inPlace < 2; ++inPlace) {
            if (count == 200003 && op != gcclSum && op != gcclAvg) continue;
            size_t bytes = count * kernels::typeSize(t);
            std::vector<uint8_t> send(bytes * static_cast<size_t>(n)), recv(bytes + 1, 0x77);
            fillRank(t, op, send.data(), count * static_cast<size_t>(n), rank);
            void* out = inPlace ? send.data() + static_cast<size_t>(rank) * bytes : recv.data();
            RANK_OK(gcclReduceScatter(send.data(), out, count, t, op, comm, nullptr, nullptr));
            if (checkElements(t, op, n, out, count, static_cast<size_t>(rank) * count,
                              "ReduceScatter"))
              return 1;
            RANK_CHECK(recv[bytes] == 0x77, "ReduceScatter wrote past recvbuff");
          }
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

INSTANTIATE_TEST_SUITE_P(Ranks, GatherScatterRanks, testing::Values(1, 2, 3, 4, 5, 8));

}  // namespace
}  // namespace gccl::test
