// Gossip collectives across processes: PushSum (exact average on one-peer
// exponential graphs, geometric consensus otherwise, conserved mass) and
// neighbour averaging (against W x computed here).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>
#include <unistd.h>

#include "common/multiproc.h"

namespace gccl::test {
namespace {

void runAndExpect(int n, const RankFn& fn) {
  std::string why;
  auto outcomes = runRanks(n, fn, 240);
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// Rank r's starting vector: small integers, so that halving them a few times is exact.
double initial(int rank, size_t i) {
  return static_cast<double>((rank * 7 + static_cast<int>(i) * 3) % 11);
}

double average(int n, size_t i) {
  double s = 0;
  for (int r = 0; r < n; ++r)
    s += initial(r, i);
  return s / n;
}

struct Board {
  double value[8][64];
  double weight[8];
  double rate[8];
};

TEST(PushSum, OnePeerExponentialGivesTheExactAverageAfterLog2NSteps) {
  for (int n : {2, 4, 8}) {
    runAndExpect(n, [](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      gcclTopology_t topo;
      RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
      for (gcclDataType_t t : {gcclFloat64, gcclFloat32}) {
        const size_t count = 1000;
        std::vector<double> x64(count);
        std::vector<float> x32(count);
        for (size_t i = 0; i < count; ++i)
          x64[i] = x32[i] = static_cast<float>(initial(rank, i));
        void* x =
            t == gcclFloat64 ? static_cast<void*>(x64.data()) : static_cast<void*>(x32.data());
        double w = 1.0;
        int steps = 0;
        while ((1 << steps) < n)
          ++steps;
        for (int k = 0; k < steps; ++k)
          RANK_OK(
              gcclPushSum(x, count, t, &w, topo, static_cast<uint64_t>(k), comm, nullptr, nullptr));
        RANK_CHECK(w == 1.0, "weight %g after %d steps", w, steps);
        for (size_t i = 0; i < count; ++i) {
          double got = t == gcclFloat64 ? x64[i] : x32[i];
          RANK_CHECK(got == average(n, i), "n=%d element %zu: %.17g, average %.17g", n, i, got,
                     average(n, i));
        }
      }
      RANK_OK(gcclTopologyDestroy(topo));
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
  }
}

// Consensus distance: max over elements of |z_i - mean| across ranks, gathered here.
TEST(PushSum, ConsensusErrorFallsGeometricallyWhenNIsNotAPowerOfTwo) {
  for (int n : {3, 5, 6, 7}) {
    for (int p : {1, 2}) {
      if (p >= n) continue;
      SharedArea area(sizeof(Board));
      auto* board = area.as<Board>();
      runAndExpect(n, [board, p](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(gcclCommInitRank(&comm, n, id, rank));
        gcclTopology_t topo;
        RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, p));
        const size_t count = 64;
        std::vector<double> x(count), z(count);
        for (size_t i = 0; i < count; ++i)
          x[i] = initial(rank, i);
        double w = 1.0;
        // The distance to the true average, measured every step through an AllReduce(max).
        std::vector<double> err;
        for (int k = 0; k < 40; ++k) {
          RANK_OK(gcclPushSum(x.data(), count, gcclFloat64, &w, topo, static_cast<uint64_t>(k),
                              comm, nullptr, nullptr));
          RANK_OK(gcclPushSumDebias(x.data(), z.data(), count, gcclFloat64, w));
          double e = 0;
          for (size_t i = 0; i < count; ++i)
            e = std::max(e, std::fabs(z[i] - average(n, i)));
          RANK_OK(gcclAllReduce(&e, &e, 1, gcclFloat64, gcclMax, comm, nullptr, nullptr));
          err.push_back(e);
        }
        // Rate per step while the error is above rounding. Some graphs (n = 3,
        // or p + 1 >= n) reach the exact average in finitely many steps: rate 0.
        int last = 0;
        while (last + 1 < static_cast<int>(err.size()) && err[last + 1] > 1e-13)
          ++last;
        double rate = last >= 1 ? std::pow(err[last] / err[0], 1.0 / last) : 0.0;
        board->rate[rank] = rate;
        RANK_CHECK(rate < 0.9, "n=%d p=%d: consensus error falls by only %.3f per step", n, p,
                   rate);
        RANK_CHECK(err.back() < 1e-6 * std::max(1.0, err[0]), "n=%d p=%d: error %g after 40 steps",
                   n, p, err.back());
        RANK_OK(gcclTopologyDestroy(topo));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      });
      printf("[ measured ] n=%d p=%d: consensus error falls by a factor %.3f per step\n", n, p,
             board->rate[0]);
    }
  }
}

TEST(PushSum, WeightsAndNumeratorsAreConservedOverAThousandSteps) {
  const int n = 5;
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(n, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 2));
    const size_t count = 16;
    std::vector<double> x(count);
    for (size_t i = 0; i < count; ++i)
      x[i] = initial(rank, i) * (1 + rank);
    double w = 1.0;
    for (int k = 0; k < 1000; ++k)
      RANK_OK(gcclPushSum(x.data(), count, gcclFloat64, &w, topo, static_cast<uint64_t>(k), comm,
                          nullptr, nullptr));
    for (size_t i = 0; i < count; ++i)
      board->value[rank][i] = x[i];
    board->weight[rank] = w;
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  double wsum = 0;
  for (int r = 0; r < n; ++r)
    wsum += board->weight[r];
  EXPECT_NEAR(wsum, n, 1e-9);
  for (size_t i = 0; i < 16; ++i) {
    double before = 0, after = 0;
    for (int r = 0; r < n; ++r) {
      before += initial(r, i) * (1 + r);
      after += board->value[r][i];
    }
    EXPECT_NEAR(after, before, 1e-9 * std::max(1.0, before)) << "element " << i;
  }
}

TEST(PushSum, ARequestLetsTheCallerComputeWhileTheStepRuns) {
  runAndExpect(4, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    std::vector<float> x(300000);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(initial(rank, i));
    double w = 1.0;
    for (uint64_t k = 0; k < 2; ++k) {
      gcclRequest_t req;
      RANK_OK(gcclPushSum(x.data(), x.size(), gcclFloat32, &w, topo, k, comm, nullptr, &req));
      RANK_OK(gcclWait(req));
    }
    for (size_t i = 0; i < x.size(); ++i)
      RANK_CHECK(x[i] == static_cast<float>(average(n, i)), "element %zu: %g vs %g", i, x[i],
                 average(n, i));
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

TEST(OverlapSgp, WithNoStalenessItIsPushSum) {
  runAndExpect(4, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    std::vector<float> x(1000);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(initial(rank, i));
    double w = 1;
    gcclGossip_t g;
    RANK_OK(gcclGossipCreate(&g, x.data(), x.size(), gcclFloat32, &w, topo, 0, comm));
    for (uint64_t k = 0; k < 2; ++k) {
      RANK_OK(gcclGossipStart(g, k));
      RANK_OK(gcclGossipFinish(g, k));
    }
    RANK_OK(gcclGossipDestroy(g));
    RANK_CHECK(w == 1.0, "weight %g", w);
    for (size_t i = 0; i < x.size(); ++i)
      RANK_CHECK(x[i] == static_cast<float>(average(n, i)), "element %zu: %g vs %g", i, x[i],
                 average(n, i));
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

// Ranks 1 and 3 "compute" for a random 0-3 ms each step; with staleness 2 the
// others do not wait for them every step, yet nothing is lost.
TEST(OverlapSgp, MassIsConservedAndConsensusReachedDespiteSlowRanks) {
  const int n = 4;
  const size_t count = 64;
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(n, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    std::vector<double> x(count);
    for (size_t i = 0; i < count; ++i)
      x[i] = initial(rank, i) * (1 + rank);
    double w = 1;
    gcclGossip_t g;
    RANK_OK(gcclGossipCreate(&g, x.data(), count, gcclFloat64, &w, topo, 2, comm));
    std::mt19937 rng(1234 + rank);
    for (uint64_t k = 0; k < 150; ++k) {
      RANK_OK(gcclGossipStart(g, k));
      if (rank % 2 == 1) usleep(rng() % 3000);
      RANK_OK(gcclGossipFinish(g, k));
    }
    RANK_OK(gcclGossipDestroy(g));
    for (size_t i = 0; i < count; ++i)
      board->value[rank][i] = x[i];
    board->weight[rank] = w;
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  double wsum = 0;
  for (int r = 0; r < n; ++r)
    wsum += board->weight[r];
  EXPECT_NEAR(wsum, n, 1e-9);
  for (size_t i = 0; i < count; ++i) {
    double before = 0, after = 0;
    for (int r = 0; r < n; ++r) {
      before += initial(r, i) * (1 + r);
      after += board->value[r][i];
    }
    EXPECT_NEAR(after, before, 1e-9 * std::max(1.0, before)) << "element " << i;
    for (int r = 0; r < n; ++r)
      EXPECT_NEAR(board->value[r][i] / board->weight[r], before / n, 1e-6)
          << "rank " << r << " element " << i << " has not reached consensus";
  }
}

// Rank 1 "computes" (sleeps, no gccl call) while rank 0 averages with it five
// times: rank 1's progress thread serves every exchange, and both hold the
// pairwise averages.
TEST(PairwiseGossip, ThePartnerServesWhileItComputesAndBothHoldThePairwiseAverage) {
  struct Shared {
    std::atomic<int> exchanges;
    double exchangeMs[8];
  };
  SharedArea area(sizeof(Shared));
  auto* sh = area.as<Shared>();
  runAndExpect(2, [sh](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoComplete, n, 1));
    const size_t count = 100000;
    std::vector<double> x(count);
    for (size_t i = 0; i < count; ++i)
      x[i] = rank == 0 ? 1.0 * i : 1000.0;
    gcclPairwise_t pw;
    RANK_OK(gcclPairwiseCreate(&pw, x.data(), count, gcclFloat64, topo, 42, comm));
    if (rank == 0) {
      // Rank 1 starts its "compute" now and stays silent for 1.5 s.
      std::vector<double> mine = x, theirs(count, 1000.0);
      for (int k = 0; k < 5; ++k) {
        auto t0 = std::chrono::steady_clock::now();
        int partner = -1;
        RANK_OK(gcclPairwiseExchange(pw, static_cast<uint64_t>(k), &partner));
        sh->exchangeMs[k] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        RANK_CHECK(partner == 1, "partner %d", partner);
        for (size_t i = 0; i < count; ++i) {
          double avg = (mine[i] + theirs[i]) / 2;
          mine[i] = theirs[i] = avg;
          RANK_CHECK(x[i] == avg, "exchange %d element %zu: %g vs %g", k, i, x[i], avg);
        }
        sh->exchanges = k + 1;
      }
    } else {
      usleep(1500000);
      RANK_CHECK(sh->exchanges == 5, "only %d exchanges were served during the compute",
                 sh->exchanges.load());
      // Both ends hold the same model: rank 0's final x, which is checked against the averages.
      RANK_OK(gcclPairwiseLock(pw));
      std::vector<double> expect(count);
      for (size_t i = 0; i < count; ++i) {
        double a = 1.0 * i, b = 1000.0;
        for (int k = 0; k < 5; ++k)
          a = b = (a + b) / 2;
        expect[i] = a;
      }
      bool same = x == expect;
      RANK_OK(gcclPairwiseUnlock(pw));
      RANK_CHECK(same, "rank 1's model is not the pairwise average");
    }
    RANK_OK(gcclPairwiseDestroy(pw));
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  for (int k = 0; k < 5; ++k)
    printf("[ measured ] exchange %d with a computing partner took %.1f ms\n", k,
           sh->exchangeMs[k]);
}

TEST(PairwiseGossip, ConcurrentExchangesConserveTheSumAndReachConsensus) {
  const int n = 4;
  const size_t count = 32;
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(n, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoRing, n, 1));
    std::vector<double> x(count);
    for (size_t i = 0; i < count; ++i)
      x[i] = initial(rank, i) * (1 + rank);
    gcclPairwise_t pw;
    RANK_OK(gcclPairwiseCreate(&pw, x.data(), count, gcclFloat64, topo, 7, comm));
    for (uint64_t k = 0; k < 200; ++k)
      RANK_OK(gcclPairwiseExchange(pw, k, nullptr));
    RANK_OK(gcclPairwiseDestroy(pw));
    for (size_t i = 0; i < count; ++i)
      board->value[rank][i] = x[i];
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  for (size_t i = 0; i < count; ++i) {
    double before = 0, after = 0;
    for (int r = 0; r < n; ++r) {
      before += initial(r, i) * (1 + r);
      after += board->value[r][i];
    }
    EXPECT_NEAR(after, before, 1e-9 * std::max(1.0, before)) << "element " << i;
    for (int r = 0; r < n; ++r)
      EXPECT_NEAR(board->value[r][i], before / n, 1e-6) << "rank " << r << " element " << i;
  }
}

// D-PSGD: x_i <- sum_j W_ij x_j, with W written down here for the ring (1/3 to
// each neighbour and the self) and the complete graph (1/n everywhere).
TEST(NeighborAverage, MatchesWTimesXOnTheRingAndTheCompleteGraph) {
  for (gcclTopologyKind_t kind : {gcclTopoRing, gcclTopoComplete}) {
    const int n = 5;
    runAndExpect(n, [kind](int rank, int n, const gcclUniqueId& id) {
      gcclComm_t comm;
      RANK_OK(gcclCommInitRank(&comm, n, id, rank));
      gcclTopology_t topo;
      RANK_OK(gcclTopologyCreate(&topo, kind, n, 1));
      const size_t count = 5000;
      std::vector<double> x(count), y(count);
      for (size_t i = 0; i < count; ++i)
        x[i] = initial(rank, i) + 0.25 * rank;
      for (int inPlace = 0; inPlace < 2; ++inPlace) {
        double* out = inPlace ? x.data() : y.data();
        std::vector<double> before = x;
        // Out of place blocking; in place through a request.
        if (inPlace) {
          gcclRequest_t req;
          RANK_OK(
              gcclNeighborAverage(x.data(), out, count, gcclFloat64, topo, 0, comm, nullptr, &req));
          RANK_OK(gcclWait(req));
        } else {
          RANK_OK(gcclNeighborAverage(x.data(), out, count, gcclFloat64, topo, 0, comm, nullptr,
                                      nullptr));
        }
        for (size_t i = 0; i < count; ++i) {
          double want = 0;
          if (kind == gcclTopoRing) {
            for (int d : {-1, 0, 1}) {
              int j = (rank + d + n) % n;
              want += (initial(j, i) + 0.25 * j) / 3.0;
            }
          } else {
            for (int j = 0; j < n; ++j)
              want += (initial(j, i) + 0.25 * j) / n;
          }
          RANK_CHECK(std::fabs(out[i] - want) < 1e-12, "element %zu: %.17g vs %.17g", i, out[i],
                     want);
        }
        if (!inPlace) RANK_CHECK(x == before, "out-of-place NeighborAverage changed sendbuff");
        if (inPlace) break;
        // Second round in place from the original values.
      }
      RANK_OK(gcclTopologyDestroy(topo));
      RANK_OK(gcclCommDestroy(comm));
      return 0;
    });
  }
}

TEST(GossipBadInput, WrongTypesWeightsAndTopologiesAreRejected) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo, wrongSize;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    RANK_OK(gcclTopologyCreate(&wrongSize, gcclTopoRing, 3, 1));
    int32_t ints[4] = {1, 2, 3, 4};
    double x[4] = {1, 2, 3, 4};
    double w = 1;
    RANK_CHECK(
        gcclPushSum(ints, 4, gcclInt32, &w, topo, 0, comm, nullptr, nullptr) == gcclInvalidArgument,
        "integer PushSum accepted");
    RANK_CHECK(strstr(gcclGetLastError(comm), "floating") != nullptr, "%s", gcclGetLastError(comm));
    double bad = -1;
    RANK_CHECK(gcclPushSum(x, 4, gcclFloat64, &bad, topo, 0, comm, nullptr, nullptr) ==
                   gcclInvalidArgument,
               "negative weight accepted");
    RANK_CHECK(gcclPushSum(x, 4, gcclFloat64, &w, wrongSize, 0, comm, nullptr, nullptr) ==
                   gcclInvalidArgument,
               "a 3-rank topology accepted on 2 ranks");
    RANK_CHECK(strstr(gcclGetLastError(comm), "3 ranks") != nullptr, "%s", gcclGetLastError(comm));
    RANK_CHECK(gcclPushSum(x, 4, gcclFloat64, &w, nullptr, 0, comm, nullptr, nullptr) ==
                   gcclInvalidArgument,
               "NULL topology accepted");
    // A column-stochastic but not doubly stochastic graph: rank 0 keeps 1/4, gives 3/4 away.
    const double weights[4] = {0.25, 0.5, 0.75, 0.5};  // W[j][i] row-major: a_00, a_01, a_10, a_11
    gcclTopology_t lopsided;
    RANK_OK(gcclTopologyCreateFromWeights(&lopsided, 2, 1, weights));
    RANK_CHECK(gcclNeighborAverage(x, x, 4, gcclFloat64, lopsided, 0, comm, nullptr, nullptr) ==
                   gcclInvalidArgument,
               "a non-doubly-stochastic topology accepted for neighbour averaging");
    for (int i = 0; i < 4; ++i)
      RANK_CHECK(x[i] == i + 1, "a rejected call changed x");
    // The communicator still works.
    RANK_OK(gcclPushSum(x, 4, gcclFloat64, &w, topo, 0, comm, nullptr, nullptr));
    RANK_OK(gcclTopologyDestroy(lopsided));
    RANK_OK(gcclTopologyDestroy(wrongSize));
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

}  // namespace
}  // namespace gccl::test
