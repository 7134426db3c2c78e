// Fault-tolerant mode (gcclConfig_t.faultTolerant): gossip goes on among the
// survivors of a killed or stopped rank, with the mass the survivors hold
// accounted for, consensus among them, the failed rank named, and exact
// collectives failing clearly instead of hanging.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/clock.h"
#include "common/fault_tolerant.h"
#include "common/multiproc.h"
#include "core/membership.h"
#include "gossip/topology.h"

namespace gccl::test {
namespace {

constexpr int kRanks = 4;
constexpr size_t kCount = 4096;

struct Shared {
  std::atomic<int> steps[kRanks];  // gossip steps each rank completed
  std::atomic<int> victimGone;     // set by the parent once the victim is dead or stopped
  std::atomic<int> done[kRanks];
  double victimX[kCount];
  double victimW;
  double finalX[kRanks][kCount];
  double finalW[kRanks];
  char reason[kRanks][256];
};

float initial(int rank, size_t e) {
  return static_cast<float>((rank + 1) * (1 + static_cast<int>(e % 7)));
}

void runAndExpectPair(const RankFn& fn) {
  std::string why;
  auto outcomes = runRanks(2, fn, 60);
  EXPECT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// Waits (bounded) until this rank lists `victim` among the failed.
bool waitUntilFailed(gcclComm_t comm, int victim, char* reason, int64_t ms) {
  int64_t until = nowMs() + ms;
  while (nowMs() < until) {
    gcclFailedRank_t f[kRanks];
    int count = 0;
    if (gcclCommGetFailedRanks(comm, f, kRanks, &count) != gcclSuccess) return false;
    for (int i = 0; i < count && i < kRanks; ++i)
      if (f[i].rank == victim) {
        snprintf(reason, 256, "%s", f[i].reason);
        return true;
      }
    usleep(2000);
  }
  return false;
}

// PushSum on the one-peer exponential graph; after `before` steps the
// parent kills `victim` (every rank has finished that step, so nothing of
// the victim's is in flight); the survivors wait until they see it failed,
// then take `after` more steps. What the survivors hold at the end must be
// the total less what the victim held when it died, and they must agree.
void pushSumWithoutAKilledRank(int victim, bool overlap = false) {
  const int before = 5, after = 60;
  SharedArea area(sizeof(Shared));
  auto* sh = new (area.data()) Shared();
  auto outcomes = runRanksWithControl(
      kRanks,
      [sh, victim, overlap](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initTolerant(&comm, n, id, rank, 4000));
        gcclTopology_t topo;
        RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
        std::vector<float> x(kCount);
        for (size_t e = 0; e < kCount; ++e)
          x[e] = initial(rank, e);
        double w = 1.0;
        gcclGossip_t g = nullptr;
        if (overlap)
          RANK_OK(gcclGossipCreate(&g, x.data(), kCount, gcclFloat32, &w, topo, 0, comm));
        uint64_t step = 0;
        for (; step < static_cast<uint64_t>(before); ++step)
          RANK_OK(pushSumStep(overlap, g, x.data(), kCount, &w, topo, step, comm));
        if (rank == victim) {
          for (size_t e = 0; e < kCount; ++e)
            sh->victimX[e] = x[e];
          sh->victimW = w;
        }
        sh->steps[rank] = before;
        if (rank == victim) {
          pause();  // the parent kills it here
          return 1;
        }
        int64_t until = nowMs() + 30000;
        while (sh->victimGone.load() == 0 && nowMs() < until)
          usleep(1000);
        RANK_CHECK(waitUntilFailed(comm, victim, sh->reason[rank], 10000),
                   "rank %d was not reported failed within 10 s", victim);
        for (int i = 0; i < after; ++i, ++step)
          RANK_OK(pushSumStep(overlap, g, x.data(), kCount, &w, topo, step, comm));
        // Exact collectives refuse, naming the failed rank; gossip still works after.
        float one = 1;
        gcclResult_t r = gcclAllReduce(&one, &one, 1, gcclFloat32, gcclSum, comm, nullptr, nullptr);
        RANK_CHECK(r == gcclRemoteError, "AllReduce without rank %d returned %s", victim,
                   gcclGetErrorString(r));
        std::string err = gcclGetLastError(comm);
        RANK_CHECK(err.find("ranks " + std::to_string(victim) + " failed") != std::string::npos,
                   "the AllReduce error does not name rank %d: %s", victim, err.c_str());
        RANK_OK(pushSumStep(overlap, g, x.data(), kCount, &w, topo, step, comm));
        ++step;
        if (overlap) RANK_OK(gcclGossipDestroy(g));
        for (size_t e = 0; e < kCount; ++e)
          sh->finalX[rank][e] = x[e];
        sh->finalW[rank] = w;
        // Every survivor took all its steps before any leaves.
        sh->done[rank] = 1;
        until = nowMs() + 30000;
        for (int r2 = 0; r2 < n; ++r2)
          while (r2 != victim && sh->done[r2].load() == 0 && nowMs() < until)
            usleep(1000);
        RANK_OK(gcclTopologyDestroy(topo));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [sh, victim](const std::vector<int>& pids) {
        int64_t until = nowMs() + 60000;
        for (int r = 0; r < kRanks; ++r)
          while (sh->steps[r].load() < 5 && nowMs() < until)
            usleep(1000);
        kill(pids[static_cast<size_t>(victim)], SIGKILL);
        sh->victimGone = 1;
      },
      120);
  ASSERT_EQ(outcomes[static_cast<size_t>(victim)].signal, SIGKILL);
  for (int r = 0; r < kRanks; ++r) {
    if (r == victim) continue;
    ASSERT_EQ(outcomes[static_cast<size_t>(r)].exitCode, 0) << "rank " << r;
    EXPECT_NE(std::string(sh->reason[r]), "") << "rank " << r << " gave no reason";
  }
  // Mass: the survivors hold the total less what the victim held.
  double wSum = 0;
  for (int r = 0; r < kRanks; ++r)
    if (r != victim) wSum += sh->finalW[r];
  EXPECT_NEAR(wSum, kRanks - sh->victimW, 1e-9);
  double worstMass = 0, worstSpread = 0;
  for (size_t e = 0; e < kCount; ++e) {
    double total = 0, sum = 0;
    for (int r = 0; r < kRanks; ++r) {
      total += initial(r, e);
      if (r != victim) sum += sh->finalX[r][e];
    }
    double expect = total - sh->victimX[e];
    worstMass = std::max(worstMass, std::fabs(sum - expect) / expect);
    // Consensus on the survivors' own average.
    double z = expect / (kRanks - sh->victimW);
    for (int r = 0; r < kRanks; ++r)
      if (r != victim)
        worstSpread = std::max(worstSpread, std::fabs(sh->finalX[r][e] / sh->finalW[r] - z) / z);
  }
  EXPECT_LT(worstMass, 1e-5) << "the survivors' sum of x is not the total less the victim's";
  EXPECT_LT(worstSpread, 1e-4) << "the survivors did not reach consensus on their average";
}

TEST(FaultTolerant, PushSumGoesOnWithoutAKilledRankAndKeepsTheSurvivorsMass) {
  pushSumWithoutAKilledRank(2);
}

// Rank 0 runs the survivors' agreement first: its death hands that to rank 1.
TEST(FaultTolerant, PushSumGoesOnWithoutTheKilledCoordinator) {
  pushSumWithoutAKilledRank(0);
}

TEST(FaultTolerant, OverlapSgpGoesOnWithoutAKilledRankAndKeepsTheSurvivorsMass) {
  pushSumWithoutAKilledRank(3, true);
}

// Neighbour averaging on a ring; the parent stops a rank mid-run. The
// survivors notice (no liveness answer within half the timeout), agree, and
// finish their steps on the ring re-formed over them, in consensus.
TEST(FaultTolerant, NeighbourAveragingGoesOnWithoutAStoppedRank) {
  if (stoppedRanksCutOffOthers())
    GTEST_SKIP() << "UCX shared memory: a stopped sender blocks the receivers' FIFO for every peer";
  const int victim = 1, total = 80, stopAt = 10;
  SharedArea area(sizeof(Shared));
  auto* sh = new (area.data()) Shared();
  int64_t stoppedAt = 0;
  auto outcomes = runRanksWithControl(
      kRanks,
      [sh](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initTolerant(&comm, n, id, rank, 2000));
        gcclTopology_t topo;
        RANK_OK(gcclTopologyCreate(&topo, gcclTopoRing, n, 1));
        std::vector<float> x(kCount);
        for (size_t e = 0; e < kCount; ++e)
          x[e] = initial(rank, e);
        for (int step = 0; step < total; ++step) {
          RANK_OK(gcclNeighborAverage(x.data(), x.data(), kCount, gcclFloat32, topo,
                                      static_cast<uint64_t>(step), comm, nullptr, nullptr));
          sh->steps[rank] = step + 1;
        }
        RANK_CHECK(waitUntilFailed(comm, 1, sh->reason[rank], 1000),
                   "rank 1 is not listed as failed");
        for (size_t e = 0; e < kCount; ++e)
          sh->finalX[rank][e] = x[e];
        sh->done[rank] = 1;
        int64_t until = nowMs() + 30000;
        for (int r2 = 0; r2 < n; ++r2)
          while (r2 != 1 && sh->done[r2].load() == 0 && nowMs() < until)
            usleep(1000);
        RANK_OK(gcclTopologyDestroy(topo));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [sh, &stoppedAt](const std::vector<int>& pids) {
        int64_t until = nowMs() + 60000;
        while (sh->steps[victim].load() < stopAt && nowMs() < until)
          usleep(200);
        kill(pids[victim], SIGSTOP);
        stoppedAt = nowMs();
        until = nowMs() + 60000;
        for (int r = 0; r < kRanks; ++r)
          while (r != victim && sh->done[r].load() == 0 && nowMs() < until)
            usleep(1000);
        kill(pids[victim], SIGKILL);
        kill(pids[victim], SIGCONT);
      },
      120);
  EXPECT_EQ(outcomes[victim].signal, SIGKILL);
  double worstSpread = 0;
  for (int r = 0; r < kRanks; ++r) {
    if (r == victim) continue;
    ASSERT_EQ(outcomes[static_cast<size_t>(r)].exitCode, 0) << "rank " << r;
    EXPECT_NE(std::string(sh->reason[r]), "") << "rank " << r << " gave no reason";
  }
  for (size_t e = 0; e < kCount; ++e) {
    double lo = 1e300, hi = -1e300;
    for (int r = 0; r < kRanks; ++r)
      if (r != victim) {
        lo = std::min(lo, sh->finalX[r][e]);
        hi = std::max(hi, sh->finalX[r][e]);
      }
    worstSpread = std::max(worstSpread, (hi - lo) / std::fabs(hi));
  }
  EXPECT_LT(worstSpread, 1e-4) << "the survivors did not reach consensus";
}

// Pairwise gossip on a ring: after a rank is killed (every exchange finished,
// so nothing of it is in flight), the survivors pick partners among their
// live neighbours, keep their sum (the total less the victim's), reach
// consensus, and destroy the object in a barrier of the survivors.
TEST(FaultTolerant, PairwiseGossipGoesOnWithoutAKilledRank) {
  const int victim = 2, before = 20, after = 300;
  SharedArea area(sizeof(Shared));
  auto* sh = new (area.data()) Shared();
  auto outcomes = runRanksWithControl(
      kRanks,
      [sh](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initTolerant(&comm, n, id, rank, 4000));
        gcclTopology_t ring;
        RANK_OK(gcclTopologyCreate(&ring, gcclTopoRing, n, 1));
        std::vector<float> x(kCount);
        for (size_t e = 0; e < kCount; ++e)
          x[e] = initial(rank, e);
        gcclPairwise_t pw;
        RANK_OK(gcclPairwiseCreate(&pw, x.data(), kCount, gcclFloat32, ring, 7, comm));
        int partner = 0;
        uint64_t step = 0;
        for (; step < static_cast<uint64_t>(before); ++step)
          RANK_OK(gcclPairwiseExchange(pw, step, &partner));
        // Every rank's own exchanges are done; the services may still answer.
        sh->steps[rank] = before;
        int64_t until = nowMs() + 30000;
        for (int r = 0; r < n; ++r)
          while (sh->steps[r].load() < before && nowMs() < until)
            usleep(1000);
        usleep(100 * 1000);
        if (rank == victim) {
          RANK_OK(gcclPairwiseLock(pw));  // nothing changes the model from here on
          for (size_t e = 0; e < kCount; ++e)
            sh->victimX[e] = x[e];
          sh->done[rank] = 1;
          pause();
          return 1;
        }
        while (sh->victimGone.load() == 0 && nowMs() < until)
          usleep(1000);
        RANK_CHECK(waitUntilFailed(comm, victim, sh->reason[rank], 10000), "rank %d not reported",
                   victim);
        for (int i = 0; i < after; ++i, ++step) {
          RANK_OK(gcclPairwiseExchange(pw, step, &partner));
          RANK_CHECK(partner != victim, "exchanged with the failed rank %d", victim);
        }
        RANK_OK(gcclPairwiseDestroy(pw));  // folds nothing more in: the survivors meet
        for (size_t e = 0; e < kCount; ++e)
          sh->finalX[rank][e] = x[e];
        RANK_OK(gcclTopologyDestroy(ring));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [sh](const std::vector<int>& pids) {
        int64_t until = nowMs() + 60000;
        while (sh->done[victim].load() == 0 && nowMs() < until)
          usleep(1000);
        kill(pids[victim], SIGKILL);
        sh->victimGone = 1;
      },
      120);
  EXPECT_EQ(outcomes[victim].signal, SIGKILL);
  for (int r = 0; r < kRanks; ++r) {
    if (r == victim) continue;
    ASSERT_EQ(outcomes[static_cast<size_t>(r)].exitCode, 0) << "rank " << r;
  }
  double worstMass = 0, worstSpread = 0;
  for (size_t e = 0; e < kCount; ++e) {
    double total = 0, sum = 0, lo = 1e300, hi = -1e300;
    for (int r = 0; r < kRanks; ++r) {
      total += initial(r, e);
      if (r == victim) continue;
      sum += sh->finalX[r][e];
      lo = std::min(lo, sh->finalX[r][e]);
      hi = std::max(hi, sh->finalX[r][e]);
    }
    double expect = total - sh->victimX[e];
    worstMass = std::max(worstMass, std::fabs(sum - expect) / expect);
    worstSpread = std::max(worstSpread, (hi - lo) / hi);
  }
  EXPECT_LT(worstMass, 1e-5) << "the survivors' sum is not the total less the victim's";
  EXPECT_LT(worstSpread, 1e-3) << "the survivors did not reach consensus";
}

// After a rank is killed, the survivors shrink: a communicator of three, in
// the old order, on which exact collectives work again; the old one still
// gossips. Bad arguments and a communicator without fault-tolerant mode are
// refused by name.
TEST(FaultTolerant, SurvivorsShrinkToACommunicatorWhereAllReduceWorksAgain) {
  const int victim = 1;
  SharedArea area(sizeof(Shared));
  auto* sh = new (area.data()) Shared();
  auto outcomes = runRanksWithControl(
      kRanks,
      [sh](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initTolerant(&comm, n, id, rank, 4000));
        RANK_CHECK(gcclCommShrink(comm, nullptr, nullptr) == gcclInvalidArgument,
                   "a NULL newcomm was accepted");
        int count = -1;
        RANK_CHECK(gcclCommGetFailedRanks(comm, nullptr, 1, &count) == gcclInvalidArgument,
                   "a NULL list with capacity 1 was accepted");
        RANK_CHECK(gcclCommGetFailedRanks(comm, nullptr, -1, &count) == gcclInvalidArgument,
                   "a negative capacity was accepted");
        RANK_OK(gcclCommGetFailedRanks(comm, nullptr, 0, &count));
        RANK_CHECK(count == 0, "%d failed ranks before any failed", count);
        float v = static_cast<float>(rank);
        RANK_OK(gcclAllReduce(&v, &v, 1, gcclFloat32, gcclSum, comm, nullptr, nullptr));
        sh->steps[rank] = 1;
        if (rank == 1) {
          pause();
          return 1;
        }
        int64_t until = nowMs() + 30000;
        while (sh->victimGone.load() == 0 && nowMs() < until)
          usleep(1000);
        RANK_CHECK(waitUntilFailed(comm, 1, sh->reason[rank], 10000), "rank 1 not reported");
        gcclComm_t small = nullptr;
        RANK_OK(gcclCommShrink(comm, nullptr, &small));
        int size = 0, me = -1;
        RANK_OK(gcclCommCount(small, &size));
        RANK_OK(gcclCommUserRank(small, &me));
        RANK_CHECK(size == 3 && me == (rank < 1 ? rank : rank - 1), "rank %d became %d of %d", rank,
                   me, size);
        float x = static_cast<float>(rank);
        RANK_OK(gcclAllReduce(&x, &x, 1, gcclFloat32, gcclSum, small, nullptr, nullptr));
        RANK_CHECK(x == 0 + 2 + 3, "AllReduce over the survivors gave %g", x);
        // The old communicator still gossips.
        gcclTopology_t topo;
        RANK_OK(gcclTopologyCreate(&topo, gcclTopoRing, n, 1));
        std::vector<float> y(16, static_cast<float>(rank));
        RANK_OK(gcclNeighborAverage(y.data(), y.data(), y.size(), gcclFloat32, topo, 0, comm,
                                    nullptr, nullptr));
        RANK_OK(gcclTopologyDestroy(topo));
        sh->done[rank] = 1;
        until = nowMs() + 30000;
        for (int r2 = 0; r2 < n; ++r2)
          while (r2 != 1 && sh->done[r2].load() == 0 && nowMs() < until)
            usleep(1000);
        RANK_OK(gcclCommDestroy(small));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [sh](const std::vector<int>& pids) {
        int64_t until = nowMs() + 60000;
        for (int r = 0; r < kRanks; ++r)
          while (sh->steps[r].load() < 1 && nowMs() < until)
            usleep(1000);
        kill(pids[victim], SIGKILL);
        sh->victimGone = 1;
      },
      120);
  EXPECT_EQ(outcomes[victim].signal, SIGKILL);
  for (int r = 0; r < kRanks; ++r)
    if (r != victim) {
      EXPECT_EQ(outcomes[static_cast<size_t>(r)].exitCode, 0) << "rank " << r;
    }
}

TEST(FaultTolerant, ShrinkWithoutFaultTolerantModeIsRefused) {
  runAndExpectPair([](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclComm_t small = nullptr;
    RANK_CHECK(gcclCommShrink(comm, nullptr, &small) == gcclInvalidUsage,
               "shrink without fault-tolerant mode was not refused");
    RANK_CHECK(strstr(gcclGetLastError(comm), "fault-tolerant") != nullptr,
               "the error does not say why: %s", gcclGetLastError(comm));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

// ---- the pieces, without processes ------------------------------------------------

TEST(Membership, MessagesRoundTripAndMalformedOnesAreRefused) {
  Membership::Message m;
  m.type = Membership::Type::kAck;
  m.round = (7ull << 16) | 3;
  m.value = 12345;
  m.ranks = {0, 1, 0, 0, 1, 0, 0, 0, 0, 1};
  m.incs = {0, 3, 0, 0, 1, 0, 0, 0, 0, 70000};
  // Six views: only the latest kWireViews travel.
  for (uint64_t e = 1; e <= 6; ++e) {
    Membership::View v;
    v.epoch = e;
    v.switchSeq = 40 + e;
    v.alive = {1, 0, 1, 1, 0, 1, 1, 1, 1, 0};
    v.joined = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    v.incs = {0, 0, 0, static_cast<uint32_t>(e), 0, 0, 0, 0, 0, 0};
    m.history.push_back(v);
  }
  std::vector<uint8_t> bytes = Membership::encode(m, 10);
  ASSERT_LE(bytes.size(), Membership::maxBytes(10));
  Membership::Message back;
  ASSERT_TRUE(Membership::decode(bytes.data(), bytes.size(), 10, &back));
  EXPECT_EQ(back.type, m.type);
  EXPECT_EQ(back.round, m.round);
  EXPECT_EQ(back.value, m.value);
  EXPECT_EQ(back.ranks, m.ranks);
  EXPECT_EQ(back.incs, m.incs);
  ASSERT_EQ(back.history.size(), Membership::kWireViews);
  for (size_t i = 0; i < back.history.size(); ++i) {
    const Membership::View& v = back.history[i];
    const Membership::View& sent = m.history[m.history.size() - Membership::kWireViews + i];
    EXPECT_EQ(v.epoch, sent.epoch);
    EXPECT_EQ(v.switchSeq, sent.switchSeq);
    EXPECT_EQ(v.alive, sent.alive);
    EXPECT_EQ(v.joined, sent.joined);
    EXPECT_EQ(v.incs, sent.incs);
    // The graph of the view's first step leaves the joiner out.
    EXPECT_EQ(v.mixing[3], 0);
    EXPECT_EQ(v.mixing[0], 1);
  }
  // Another job size, a cut message, a bad type, a bad magic.
  EXPECT_FALSE(Membership::decode(bytes.data(), bytes.size(), 11, &back));
  EXPECT_FALSE(Membership::decode(bytes.data(), bytes.size() - 1, 10, &back));
  std::vector<uint8_t> bad = bytes;
  bad[4] = 9;
  EXPECT_FALSE(Membership::decode(bad.data(), bad.size(), 10, &back));
  bad = bytes;
  bad[0] ^= 1;
  EXPECT_FALSE(Membership::decode(bad.data(), bad.size(), 10, &back));
  // A joiner that is not alive, epochs that skip.
  Membership::Message wrong = m;
  wrong.history.back().joined[1] = 1;
  bad = Membership::encode(wrong, 10);
  EXPECT_FALSE(Membership::decode(bad.data(), bad.size(), 10, &back));
  wrong = m;
  wrong.history.back().epoch = 9;
  bad = Membership::encode(wrong, 10);
  EXPECT_FALSE(Membership::decode(bad.data(), bad.size(), 10, &back));
}

// The re-formed graphs: a built-in kind is that kind over the survivors; an
// explicit graph keeps each column summing to 1 (and rows, when it was
// doubly stochastic).
TEST(Membership, TopologiesAreReformedOverTheSurvivors) {
  std::unique_ptr<Topology> ring;
  ASSERT_EQ(Topology::create(gcclTopoRing, 6, 1, "test", &ring), gcclSuccess);
  std::vector<uint8_t> alive = {1, 1, 0, 1, 0, 1};
  std::shared_ptr<Topology> sub;
  ASSERT_EQ(ring->restrictedTo(alive, &sub), gcclSuccess);
  // Survivors 0, 1, 3, 5 form a ring of 4: 0-1-3-5-0.
  std::vector<PeerWeight> out;
  double self = 0;
  sub->outPeers(0, 3, &out, &self);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE((out[0].peer == 1 && out[1].peer == 5) || (out[0].peer == 5 && out[1].peer == 1));
  sub->outPeers(0, 2, &out, &self);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(self, 1.0);
  EXPECT_EQ(sub->validate(gcclMixDoublyStochastic, "test"), gcclSuccess)
      << gcclGetLastError(nullptr);
  // The same flags give the same graph object.
  std::shared_ptr<Topology> again;
  ASSERT_EQ(ring->restrictedTo(alive, &again), gcclSuccess);
  EXPECT_EQ(again.get(), sub.get());

  // An explicit doubly stochastic graph of 4 (not symmetric).
  const int n = 4;
  double w[n * n] = {0};
  auto at = [&](int to, int from) -> double& { return w[to * n + from]; };
  for (int i = 0; i < n; ++i) {
    at(i, i) = 0.5;
    at((i + 1) % n, i) = 0.3;
    at((i + 2) % n, i) = 0.2;
  }
  std::unique_ptr<Topology> user;
  ASSERT_EQ(Topology::fromWeights(n, 1, w, "test", &user), gcclSuccess);
  ASSERT_EQ(user->validate(gcclMixDoublyStochastic, "test"), gcclSuccess);
  std::shared_ptr<Topology> userSub;
  ASSERT_EQ(user->restrictedTo({1, 1, 0, 1}, &userSub), gcclSuccess);
  EXPECT_EQ(userSub->validate(gcclMixDoublyStochastic, "test"), gcclSuccess)
      << gcclGetLastError(nullptr);
  // Column-stochastic only: what went to the failed stays with the sender.
  double c[n * n] = {0};
  for (int i = 0; i < n; ++i) {
    c[i * n + i] = 0.6;
    c[((i + 1) % n) * n + i] = 0.4;
  }
  c[0 * n + 0] = 0.2;  // rank 0 gives 0.8 to rank 1
  c[1 * n + 0] = 0.8;
  std::unique_ptr<Topology> col;
  ASSERT_EQ(Topology::fromWeights(n, 1, c, "test", &col), gcclSuccess);
  std::shared_ptr<Topology> colSub;
  ASSERT_EQ(col->restrictedTo({1, 0, 1, 1}, &colSub), gcclSuccess);
  EXPECT_EQ(colSub->validate(gcclMixColumnStochastic, "test"), gcclSuccess);
  colSub->outPeers(0, 0, &out, &self);
  EXPECT_TRUE(out.empty());
  EXPECT_DOUBLE_EQ(self, 1.0);  // 0.2 of its own and the 0.8 rank 1 would have had
}

}  // namespace
}  // namespace gccl::test
