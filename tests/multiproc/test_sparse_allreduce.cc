// Sparse AllReduce across processes: against a dense reference computed
// here, at densities from 0.001 to 0.5 on 1 to 8 ranks (both the sparse
// exchange and the dense fallback), the same bits on every rank, sparse
// output, the top-k gradient-compression call, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/multiproc.h"
#include "common/run_ranks.h"

namespace gccl::test {
namespace {

constexpr size_t kCount = 4000;
constexpr int kMaxRanks = 8;

// Rank r's sparse tensor at `density`: ascending distinct indices, values
// small integers (so that sums are exact in any order) or, with `fractional`,
// arbitrary floats.
void makeSparse(int rank, double density, bool fractional, std::vector<uint32_t>* idx,
                std::vector<float>* val) {
  std::mt19937_64 rng(static_cast<uint64_t>(rank) * 1000003 + static_cast<uint64_t>(density * 1e6));
  std::uniform_real_distribution<double> u(0, 1);
  idx->clear();
  val->clear();
  for (size_t i = 0; i < kCount; ++i) {
    if (u(rng) >= density) continue;
    idx->push_back(static_cast<uint32_t>(i));
    double v = fractional ? (u(rng) - 0.5) * 3.7 : std::floor(u(rng) * 19) - 9;
    val->push_back(static_cast<float>(v));
  }
}

struct Board {
  float dense[kMaxRanks][kCount];
  uint32_t sparseIdx[kMaxRanks][kCount];
  float sparseVal[kMaxRanks][kCount];
  size_t sparseNnz[kMaxRanks];
};

TEST(SparseAllReduce, MatchesTheDenseSumAtEveryDensityOnOneToEightRanks) {
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  for (int n : {1, 2, 3, 4, 8}) {
    for (double density : {0.001, 0.01, 0.1, 0.5}) {
      runAndExpect(n, [board, density](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(gcclCommInitRank(&comm, n, id, rank));
        std::vector<uint32_t> idx;
        std::vector<float> val;
        makeSparse(rank, density, false, &idx, &val);
        RANK_OK(gcclSparseAllReduce(idx.data(), val.data(), idx.size(), kCount, gcclFloat32,
                                    gcclSum, board->dense[rank], comm, nullptr));
        RANK_OK(gcclSparseAllReduceToSparse(idx.data(), val.data(), idx.size(), kCount, gcclFloat32,
                                            gcclSum, board->sparseIdx[rank], board->sparseVal[rank],
                                            kCount, &board->sparseNnz[rank], comm, nullptr));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      });
      std::vector<float> ref(kCount, 0.0f);
      for (int r = 0; r < n; ++r) {
        std::vector<uint32_t> idx;
        std::vector<float> val;
        makeSparse(r, density, false, &idx, &val);
        for (size_t k = 0; k < idx.size(); ++k)
          ref[idx[k]] += val[k];
      }
      for (int r = 0; r < n; ++r) {
        size_t expectNnz = 0;
        for (size_t i = 0; i < kCount; ++i) {
          ASSERT_EQ(board->dense[r][i], ref[i])
              << n << " ranks, density " << density << ", rank " << r << ", element " << i;
          if (ref[i] == 0) continue;
          ASSERT_LT(expectNnz, board->sparseNnz[r]);
          ASSERT_EQ(board->sparseIdx[r][expectNnz], i) << "rank " << r;
          ASSERT_EQ(board->sparseVal[r][expectNnz], ref[i]) << "rank " << r << " element " << i;
          ++expectNnz;
        }
        ASSERT_EQ(board->sparseNnz[r], expectNnz) << n << " ranks, density " << density;
      }
    }
  }
}

// Arbitrary floats, where the order of additions shows in the bits: every
// rank still holds the same bits, on both paths, and the average is the sum
// over the rank count.
TEST(SparseAllReduce, EveryRankHoldsTheSameBitsAndTheAverageIsTheSumOverN) {
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  const int n = 4;
  for (double density : {0.01, 0.5}) {
    runAndExpect(n, [board, density](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      std::vector<uint32_t> idx;
      std::vector<float> val;
      makeSparse(rank, density, true, &idx, &val);
      RANK_OK(gcclSparseAllReduce(idx.data(), val.data(), idx.size(), kCount, gcclFloat32, gcclSum,
                                  board->dense[rank], comm, nullptr));
      RANK_OK(gcclSparseAllReduce(idx.data(), val.data(), idx.size(), kCount, gcclFloat32, gcclAvg,
                                  board->sparseVal[rank], comm, nullptr));
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
    for (int r = 1; r < n; ++r) {
      EXPECT_EQ(memcmp(board->dense[r], board->dense[0], sizeof(board->dense[0])), 0)
          << "density " << density << ": rank " << r << "'s sum differs from rank 0's";
      EXPECT_EQ(memcmp(board->sparseVal[r], board->sparseVal[0], sizeof(board->sparseVal[0])), 0)
          << "density " << density << ": rank " << r << "'s average differs from rank 0's";
    }
    for (size_t i = 0; i < kCount; ++i)
      ASSERT_EQ(board->sparseVal[0][i], board->dense[0][i] / n) << "element " << i;
  }
}

// Top-k with error feedback and the sparse sum in one call: what each rank
// sent plus its new residual is its gradient plus its old residual, the
// result is the sum of what the ranks sent, and the call moves more than ten
// times fewer bytes than a dense AllReduce of the same gradient.
TEST(SparseAllReduce, TopKAllReduceSumsTheSelectionsAndKeepsTheRest) {
  struct TopKBoard {
    float sent[4][kCount];
    float result[4][kCount];
    uint64_t sparseBytes[4], denseBytes[4];
  };
  SharedArea area(sizeof(TopKBoard));
  auto* board = area.as<TopKBoard>();
  const int n = 4;
  runAndExpect(n, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    std::mt19937 rng(77 + rank);
    std::normal_distribution<float> g(0, 1);
    std::vector<float> grad(kCount), residual(kCount), old(kCount), out(kCount);
    for (auto& v : residual)
      v = g(rng) * 0.1f;
    old = residual;
    for (auto& v : grad)
      v = g(rng);
    gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    cfg.codec = gcclCodecTopK;
    cfg.topkFraction = 0.01;
    auto sentBytes = [&]() {
      uint64_t total = 0;
      for (int p = 0; p < n; ++p) {
        gcclPeerCounters_t c = GCCL_PEER_COUNTERS_INITIALIZER;
        if (p != rank && gcclCommGetPeerCounters(comm, p, &c) == gcclSuccess) total += c.bytesSent;
      }
      return total;
    };
    uint64_t before = sentBytes();
    size_t sent = 0;
    RANK_OK(gcclTopKAllReduce(grad.data(), residual.data(), kCount, &cfg, gcclSum, out.data(),
                              &sent, comm, nullptr));
    board->sparseBytes[rank] = sentBytes() - before;
    RANK_CHECK(sent == 40, "sent %zu entries, expected 1%% of %zu", sent, kCount);
    for (size_t i = 0; i < kCount; ++i) {
      float s = (grad[i] + old[i]) - residual[i];
      // Exact: an entry is either sent whole (residual 0) or kept whole.
      RANK_CHECK(residual[i] == 0 || s == 0, "element %zu split between sent and kept", i);
      board->sent[rank][i] = residual[i] == 0 ? grad[i] + old[i] : 0.0f;
      board->result[rank][i] = out[i];
    }
    before = sentBytes();
    RANK_OK(gcclAllReduce(grad.data(), out.data(), kCount, gcclFloat32, gcclSum, comm, nullptr,
                          nullptr));
    board->denseBytes[rank] = sentBytes() - before;
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  for (size_t i = 0; i < kCount; ++i) {
    float sum = 0;
    for (int r = 0; r < n; ++r)
      if (board->sent[r][i] != 0) sum += board->sent[r][i];
    for (int r = 0; r < n; ++r)
      ASSERT_EQ(board->result[r][i], sum) << "rank " << r << " element " << i;
  }
  for (int r = 0; r < n; ++r)
    EXPECT_LT(board->sparseBytes[r] * 10, board->denseBytes[r])
        << "rank " << r << ": " << board->sparseBytes[r] << " bytes sparse vs "
        << board->denseBytes[r] << " dense";
}

TEST(SparseAllReduce, BadInputIsRefusedNamingWhatIsWrong) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    float v[3] = {1, 2, 3};
    float out[16] = {};
    auto refused = [&](const uint32_t* idx, size_t nnz, size_t count, gcclDataType_t t,
                       gcclRedOp_t op, const char* words) {
      gcclResult_t r = gcclSparseAllReduce(idx, v, nnz, count, t, op, out, comm, nullptr);
      const char* why = gcclGetLastError(comm);
      if (r != gcclInvalidArgument || strstr(why, words) == nullptr) {
        fprintf(stderr, "expected a refusal naming '%s', got %s: %s\n", words,
                gcclGetErrorString(r), why);
        return false;
      }
      return true;
    };
    const uint32_t unsorted[3] = {4, 2, 7}, dup[3] = {1, 5, 5}, outOfRange[3] = {1, 2, 16},
                   good[3] = {1, 5, 9};
    RANK_CHECK(refused(unsorted, 3, 16, gcclFloat32, gcclSum, "indices[1] = 2 follows"),
               "unsorted");
    RANK_CHECK(refused(dup, 3, 16, gcclFloat32, gcclSum, "indices[2] = 5 follows"), "duplicate");
    RANK_CHECK(refused(outOfRange, 3, 16, gcclFloat32, gcclSum, "out of range"), "range");
    RANK_CHECK(refused(good, 3, 2, gcclFloat32, gcclSum, "nnz 3 exceeds count 2"), "nnz > count");
    RANK_CHECK(refused(good, 3, 16, gcclFloat32, gcclMax, "reduction"), "max");
    RANK_CHECK(refused(nullptr, 3, 16, gcclFloat32, gcclSum, "indices is NULL"), "null indices");
    RANK_CHECK(refused(good, 3, (size_t{1} << 32) + 1, gcclFloat32, gcclSum, "2^32"), "count");
    for (float o : out)
      RANK_CHECK(o == 0, "a refused call wrote the output");
    // Too small a sparse output: every rank is told the need, nothing is lost.
    uint32_t oi[2];
    float ov[2];
    size_t need = 0;
    gcclResult_t r = gcclSparseAllReduceToSparse(good, v, 3, 16, gcclFloat32, gcclSum, oi, ov, 2,
                                                 &need, comm, nullptr);
    RANK_CHECK(r == gcclInvalidArgument && need == 3, "capacity 2 for 3 entries: %s, need %zu",
               gcclGetErrorString(r), need);
    RANK_CHECK(strstr(gcclGetLastError(comm), "room for 2") != nullptr, "%s",
               gcclGetLastError(comm));
    // Top-k needs a top-k configuration and float32 data.
    gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    float grad[16] = {}, res[16] = {};
    RANK_CHECK(gcclTopKAllReduce(grad, res, 16, &cfg, gcclSum, out, nullptr, comm, nullptr) ==
                   gcclInvalidArgument,
               "a non-top-k codec accepted");
    RANK_CHECK(strstr(gcclGetLastError(comm), "gcclCodecTopK") != nullptr, "%s",
               gcclGetLastError(comm));
    cfg.codec = gcclCodecTopK;
    RANK_CHECK(gcclTopKAllReduce(grad, grad, 16, &cfg, gcclSum, out, nullptr, comm, nullptr) ==
                   gcclInvalidArgument,
               "a residual that is the gradient accepted");
    RANK_CHECK(strstr(gcclGetLastError(comm), "residual overlaps grad") != nullptr, "%s",
               gcclGetLastError(comm));
    // The communicator still works.
    RANK_OK(gcclSparseAllReduce(good, v, 3, 16, gcclFloat32, gcclSum, out, comm, nullptr));
    RANK_CHECK(out[5] == 2.0f * n, "out[5] = %g", out[5]);
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

}  // namespace
}  // namespace gccl::test
