// Rejoin (fault-tolerant mode): a rank killed mid-run is restarted as a new
// process, rejoins the running communicator (gcclCommRejoin), takes the
// current model from a survivor (gcclGossipJoin) and trains on with them.
// The group's mass is what the survivors held (the joiner's share comes out
// of its donor's), every rank ends in consensus on it, and once the joiner
// is in, exact collectives work again.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/clock.h"
#include "common/fault_tolerant.h"
#include "common/multiproc.h"
#include "gossip/join.h"

namespace gccl::test {
namespace {

constexpr int kRanks = 4;
constexpr size_t kCount = 2048;
constexpr int kVictim = 2;

struct Shared {
  std::atomic<int> idReady;
  gcclUniqueId id;
  std::atomic<int> steps[kRanks];  // steps each rank completed
  std::atomic<int> seenFailed;     // survivors that saw the victim fail
  std::atomic<int> massTaken;      // survivors that recorded their mass
  std::atomic<int> target;         // the step every rank stops at (set by the joiner)
  std::atomic<int> done[kRanks];
  std::atomic<int> joinerExit;
  double massX[kRanks][kCount];  // each survivor's x and w at the step after the failure
  double massW[kRanks];
  double finalX[kRanks][kCount];
  double finalW[kRanks];
  double allReduced[kRanks];
  char error[256];
};

float initial(int rank, size_t e) {
  return static_cast<float>((rank + 1) * (1 + static_cast<int>(e % 5)));
}

// After its steps, a rank records its state, waits for the others, checks
// that an exact collective works again (every rank is in), and leaves.
int finish(Shared* sh, int rank, gcclComm_t comm, gcclGossip_t g, gcclTopology_t topo,
           const std::vector<float>& x, double w) {
  if (g != nullptr) RANK_OK(gcclGossipDestroy(g));
  for (size_t e = 0; e < kCount; ++e)
    sh->finalX[rank][e] = x[e];
  sh->finalW[rank] = w;
  float one = 1;
  RANK_OK(gcclAllReduce(&one, &one, 1, gcclFloat32, gcclSum, comm, nullptr, nullptr));
  sh->allReduced[rank] = one;
  int count = -1;
  RANK_OK(gcclCommGetFailedRanks(comm, nullptr, 0, &count));
  RANK_CHECK(count == 0, "rank %d still lists %d failed rank(s) after the rejoin", rank, count);
  sh->done[rank] = 1;
  int64_t until = nowMs() + 30000;
  for (int r = 0; r < kRanks; ++r)
    while (sh->done[r].load() == 0 && nowMs() < until)
      usleep(1000);
  RANK_OK(gcclTopologyDestroy(topo));
  RANK_OK(gcclCommDestroy(comm));
  return 0;
}

// The restarted process: rejoin, take the model, train to the target.
int joiner(Shared* sh, bool overlap) {
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  cfg.timeoutMs = 4000;
  gcclComm_t comm;
  RANK_OK(gcclCommRejoin(&comm, kRanks, sh->id, kVictim, &cfg));
  gcclTopology_t topo;
  RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, kRanks, 1));
  std::vector<float> x(kCount, -1.0f);
  double w = 0;
  uint64_t step = 0;
  RANK_OK(gcclGossipJoin(x.data(), kCount, gcclFloat32, &w, &step, comm, nullptr, nullptr));
  RANK_CHECK(w > 0 && std::isfinite(w), "the joiner's weight is %g", w);
  for (size_t e = 0; e < kCount; ++e)
    RANK_CHECK(x[e] >= 0, "element %zu of the joined model was not written", e);
  sh->target = static_cast<int>(step) + 40;
  gcclGossip_t g = nullptr;
  if (overlap) RANK_OK(gcclGossipCreate(&g, x.data(), kCount, gcclFloat32, &w, topo, 0, comm));
  for (; step < static_cast<uint64_t>(sh->target.load()); ++step)
    RANK_OK(pushSumStep(overlap, g, x.data(), kCount, &w, topo, step, comm));
  return finish(sh, kVictim, comm, g, topo, x, w);
}

// `fast`: the restart comes at once, before the survivors noticed the death.
void killAndRejoin(bool overlap, bool fast) {
  const int before = 5;
  SharedArea area(sizeof(Shared));
  auto* sh = new (area.data()) Shared();
  sh->target = -1;
  int joinerStatus = -1;
  auto outcomes = runRanksWithControl(
      kRanks,
      [sh, overlap, fast](int rank, int n, const gcclUniqueId& id) {
        if (rank == 0) {
          sh->id = id;
          sh->idReady = 1;
        }
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
        sh->steps[rank] = before;
        if (rank == kVictim) {
          pause();  // the parent kills it here
          return 1;
        }
        if (!fast) {
          // Wait until this rank sees the victim failed, and every survivor
          // does, then take one step without it and record the mass.
          int64_t until = nowMs() + 20000;
          for (;;) {
            gcclFailedRank_t f[kRanks];
            int count = 0;
            RANK_OK(gcclCommGetFailedRanks(comm, f, kRanks, &count));
            if (count > 0) break;
            RANK_CHECK(nowMs() < until, "rank %d never saw rank %d fail", rank, kVictim);
            usleep(1000);
          }
          sh->seenFailed.fetch_add(1);
          while (sh->seenFailed.load() < kRanks - 1 && nowMs() < until)
            usleep(1000);
          RANK_OK(pushSumStep(overlap, g, x.data(), kCount, &w, topo, step++, comm));
          for (size_t e = 0; e < kCount; ++e)
            sh->massX[rank][e] = x[e];
          sh->massW[rank] = w;
          sh->massTaken.fetch_add(1);
          // Hold until the parent restarts the victim.
          while (sh->massTaken.load() < kRanks && nowMs() < until)
            usleep(1000);
        }
        // Train on; the joiner comes in on the way and sets the target.
        int64_t until = nowMs() + 60000;
        while (sh->target.load() < 0 || step < static_cast<uint64_t>(sh->target.load())) {
          RANK_CHECK(nowMs() < until, "rank %d: no target after 60 s (step %llu)", rank,
                     static_cast<unsigned long long>(step));
          RANK_OK(pushSumStep(overlap, g, x.data(), kCount, &w, topo, step, comm));
          ++step;
        }
        return finish(sh, rank, comm, g, topo, x, w);
      },
      [sh, overlap, fast, &joinerStatus](const std::vector<int>& pids) {
        int64_t until = nowMs() + 60000;
        for (int r = 0; r < kRanks; ++r)
          while (sh->steps[r].load() < before && nowMs() < until)
            usleep(1000);
        // Fast: the old process is stopped, so its connections stay open
        // and the survivors cannot have noticed anything when the new one
        // comes (a stopped rank is found only after half the timeout).
        kill(pids[kVictim], fast ? SIGSTOP : SIGKILL);
        if (!fast) waitpid(pids[kVictim], nullptr, 0);
        if (!fast) {
          while (sh->massTaken.load() < kRanks - 1 && nowMs() < until)
            usleep(1000);
          sh->massTaken.fetch_add(1);  // lets the survivors go on
        }
        // The launcher restarts the rank: a new process.
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
          int code = joiner(sh, overlap);
          fflush(stdout);
          fflush(stderr);
          _exit(code);
        }
        int status = 0;
        while (waitpid(pid, &status, WNOHANG) == 0 && nowMs() < until + 60000)
          usleep(2000);
        if (waitpid(pid, &status, WNOHANG) == 0) {
          kill(pid, SIGKILL);
          waitpid(pid, &status, 0);
        }
        joinerStatus = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (fast) {
          kill(pids[kVictim], SIGKILL);
          kill(pids[kVictim], SIGCONT);
        }
      },
      180);
  ASSERT_EQ(joinerStatus, 0) << "the restarted rank failed";
  for (int r = 0; r < kRanks; ++r) {
    if (r != kVictim) {
      ASSERT_EQ(outcomes[static_cast<size_t>(r)].exitCode, 0) << "rank " << r;
    }
  }
  // Every rank, the joiner included, is in the exact collective.
  for (int r = 0; r < kRanks; ++r)
    EXPECT_EQ(sh->allReduced[r], static_cast<double>(kRanks)) << "rank " << r;
  // Mass: the group holds what the survivors held after the failure (the
  // joiner's share came out of its donor's).
  double w = 0;
  for (int r = 0; r < kRanks; ++r)
    w += sh->finalW[r];
  double worstMass = 0, worstSpread = 0;
  double massW = 0;
  if (!fast) {
    for (int r = 0; r < kRanks; ++r)
      if (r != kVictim) massW += sh->massW[r];
    EXPECT_NEAR(w, massW, 1e-9) << "the push-sum weights are not conserved across the join";
  }
  for (size_t e = 0; e < kCount; ++e) {
    double sum = 0, mass = 0;
    for (int r = 0; r < kRanks; ++r) {
      sum += sh->finalX[r][e];
      if (!fast && r != kVictim) mass += sh->massX[r][e];
    }
    if (!fast) worstMass = std::max(worstMass, std::fabs(sum - mass) / mass);
    double z = sum / w;  // the group's average
    for (int r = 0; r < kRanks; ++r)
      worstSpread = std::max(worstSpread, std::fabs(sh->finalX[r][e] / sh->finalW[r] - z) / z);
  }
  EXPECT_LT(worstMass, 1e-5) << "the sum of x changed across the join";
  EXPECT_LT(worstSpread, 1e-4) << "the ranks, the joiner included, did not reach consensus";
}

TEST(Rejoin, AKilledRankRestartsTakesTheModelAndTrainsOnWithTheMassKept) {
  killAndRejoin(false, false);
}

TEST(Rejoin, OverlapSgpTakesARestartedRankBack) {
  killAndRejoin(true, false);
}

// The new process arrives while the old one (stopped) still counts as
// alive: its connection is proof enough, and the old incarnation is failed
// first.
TEST(Rejoin, ARestartFasterThanTheFailureDetectionReplacesTheOldProcess) {
  killAndRejoin(false, true);
}

TEST(Rejoin, JoinHeaderRoundTripsAndRejectsGarbage) {
  JoinHeader h;
  h.layout = JoinLayout::kOverlap;
  h.pushSum = true;
  h.type = gcclBfloat16;
  h.count = 123456789;
  h.step = 77;
  h.weight = 0.3125;
  h.coefficient = 0.125;
  uint8_t bytes[kJoinHeaderBytes];
  encodeJoinHeader(h, bytes);
  JoinHeader back;
  ASSERT_TRUE(decodeJoinHeader(bytes, sizeof(bytes), &back));
  EXPECT_EQ(back.layout, h.layout);
  EXPECT_EQ(back.pushSum, h.pushSum);
  EXPECT_EQ(back.coded, h.coded);
  EXPECT_EQ(back.type, h.type);
  EXPECT_EQ(back.count, h.count);
  EXPECT_EQ(back.step, h.step);
  EXPECT_EQ(back.weight, h.weight);
  EXPECT_EQ(back.coefficient, h.coefficient);
  EXPECT_FALSE(decodeJoinHeader(bytes, sizeof(bytes) - 1, &back));
  uint8_t bad[kJoinHeaderBytes];
  memcpy(bad, bytes, sizeof(bad));
  bad[0] ^= 1;
  EXPECT_FALSE(decodeJoinHeader(bad, sizeof(bad), &back));
  memcpy(bad, bytes, sizeof(bad));
  bad[4] = 9;  // no such layout
  EXPECT_FALSE(decodeJoinHeader(bad, sizeof(bad), &back));
}

// Misuse: a join on a rank that did not rejoin, a rejoin that turns fault
// tolerance off.
TEST(Rejoin, MisuseGetsNamedErrors) {
  auto outcomes = runRanks(
      2,
      [](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initTolerant(&comm, n, id, rank, 4000));
        std::vector<float> x(16);
        double w = 1;
        uint64_t step = 0;
        gcclResult_t r =
            gcclGossipJoin(x.data(), x.size(), gcclFloat32, &w, &step, comm, nullptr, nullptr);
        RANK_CHECK(r == gcclInvalidUsage, "a join on an original rank returned %s",
                   gcclGetErrorString(r));
        RANK_CHECK(strstr(gcclGetLastError(comm), "does not join") != nullptr,
                   "unexpected error: %s", gcclGetLastError(comm));
        r = gcclGossipJoin(x.data(), x.size(), gcclFloat32, &w, nullptr, comm, nullptr, nullptr);
        RANK_CHECK(r == gcclInvalidArgument, "a NULL nextStep returned %s", gcclGetErrorString(r));
        gcclConfig_t off = GCCL_CONFIG_INITIALIZER;
        off.faultTolerant = 0;
        gcclComm_t other = nullptr;
        r = gcclCommRejoin(&other, n, id, rank, &off);
        RANK_CHECK(r == gcclInvalidArgument, "a rejoin without fault tolerance returned %s",
                   gcclGetErrorString(r));
        RANK_CHECK(strstr(gcclGetLastError(nullptr), "faultTolerant") != nullptr,
                   "unexpected error: %s", gcclGetLastError(nullptr));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      60);
  std::string why;
  EXPECT_TRUE(allSucceeded(outcomes, &why)) << why;
}

}  // namespace
}  // namespace gccl::test
