// Chaos trials for fault-tolerant mode: 4 to 6 ranks gossip (PushSum or
// overlap SGP with staleness 1 on the one-peer exponential graph, neighbour
// averaging or pairwise gossip on a ring) while the
// parent SIGKILLs or SIGSTOPs up to half of them less one at random moments,
// and, in the PushSum, overlap and averaging trials, restarts some of the
// killed ones (none when rank 0 is among the victims: its process serves the
// rendezvous a restarted rank needs): the new process rejoins (gcclCommRejoin), takes the model
// from a survivor (gcclGossipJoin) and gossips on with them.
// Every trial must end, within a bounded time, with every survivor and
// rejoined rank done, every rank that stayed failed named, all of them in
// consensus, and their weights accounting for no more mass than there was.
//
// GCCL_CHAOS_TRIALS (default 20) and GCCL_CHAOS_SEED (default 1) choose the
// trials; scripts/chaos.sh runs hundreds with a random seed. The test prints
// a table: trials, kills, stops, rejoins, hangs, the worst time from a
// failure to a survivor's first step completed after it learned of the
// failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"
#include "common/multiproc.h"

namespace gccl::test {
namespace {

constexpr int kMaxRanks = 6;
constexpr size_t kCount = 256;
constexpr int kExtraSteps = 40;  // after every survivor knows of every failure

struct Trial {
  int n = 4;
  enum Algo { kPushSum, kOverlap, kNeighbour, kPairwise } algo = kPushSum;
  bool pushSum = true;  // PushSum or overlap SGP (weights), not neighbour averaging
  std::vector<int> victims;
  std::vector<bool> stop;     // SIGSTOP (else SIGKILL)
  std::vector<int> atMs;      // after the start of the steps
  std::vector<bool> restart;  // killed, then restarted (rejoins)
  int restartAfterMs = 0;     // after the last victim was hurt
  int restarts() const {
    return static_cast<int>(std::count(restart.begin(), restart.end(), true));
  }
};

struct Shared {
  gcclUniqueId id;                       // written by rank 0 before it starts
  std::atomic<int> rejoined[kMaxRanks];  // a restarted rank took the model (its next step + 1)
  std::atomic<int64_t> restartMs[kMaxRanks], rejoinedMs[kMaxRanks];
  std::atomic<int> started[kMaxRanks];
  std::atomic<int> allHurt;
  std::atomic<int64_t> knewAt[kMaxRanks];       // step at which a survivor knew every failure (+1)
  std::atomic<int64_t> recoveredMs[kMaxRanks];  // first step done after learning of a failure
  std::atomic<int> done[kMaxRanks];
  int64_t hurtMs[kMaxRanks];
  double z[kMaxRanks][kCount];
  double w[kMaxRanks];
  char error[kMaxRanks][256];
};

bool isVictim(const Trial& t, int r) {
  return std::find(t.victims.begin(), t.victims.end(), r) != t.victims.end();
}

bool isRestarted(const Trial& t, int r) {
  for (size_t v = 0; v < t.victims.size(); ++v)
    if (t.victims[v] == r && t.restart[v]) return true;
  return false;
}

// Ranks that end the trial: the survivors and the restarted ones.
bool finishes(const Trial& t, int r) {
  return !isVictim(t, r) || isRestarted(t, r);
}

int failedCount(gcclComm_t comm) {
  int count = 0;
  if (gcclCommGetFailedRanks(comm, nullptr, 0, &count) != gcclSuccess) return -1;
  return count;
}

// `rejoin`: a restarted process of a killed rank.
int runRank(const Trial& t, Shared* sh, int rank, const gcclUniqueId& id, bool rejoin) {
  gcclComm_t comm;
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  cfg.timeoutMs = 3000;  // a stopped rank is found after 1.5 s
  cfg.faultTolerant = 1;
  if (rank == 0 && !rejoin) sh->id = id;
  if (rejoin)
    RANK_OK(gcclCommRejoin(&comm, t.n, id, rank, &cfg));
  else
    RANK_OK(gcclCommInitRankConfig(&comm, t.n, id, rank, &cfg));
  gcclTopology_t topo;
  RANK_OK(gcclTopologyCreate(&topo, t.pushSum ? gcclTopoExponential : gcclTopoRing, t.n, 1));
  std::vector<float> x(kCount);
  for (size_t e = 0; e < kCount; ++e)
    x[e] = static_cast<float>((rank + 1) * (1 + static_cast<int>(e % 5)));
  double w = 1.0;
  uint64_t first = 0;
  if (rejoin) {
    RANK_OK(gcclGossipJoin(x.data(), kCount, gcclFloat32, t.pushSum ? &w : nullptr, &first, comm,
                           nullptr, nullptr));
    sh->rejoinedMs[rank] = nowMs();
    sh->rejoined[rank] = static_cast<int>(first) + 1;
  }
  gcclGossip_t g = nullptr;
  if (t.algo == Trial::kOverlap)
    RANK_OK(gcclGossipCreate(&g, x.data(), kCount, gcclFloat32, &w, topo, 1, comm));
  gcclPairwise_t pw = nullptr;
  if (t.algo == Trial::kPairwise)
    RANK_OK(gcclPairwiseCreate(&pw, x.data(), kCount, gcclFloat32, topo, 11, comm));
  // Random pairs average more slowly than a whole graph per step.
  const int64_t extra = t.algo == Trial::kPairwise ? 10 * kExtraSteps : kExtraSteps;
  sh->started[rank] = 1;
  // Failures this rank ends up knowing of: the victims that stay failed.
  const int expected = static_cast<int>(t.victims.size()) - t.restarts();
  int known = 0;
  int64_t target = -1;
  int64_t deadline = nowMs() + 60000;
  for (uint64_t step = first;; ++step) {
    RANK_CHECK(nowMs() < deadline, "no end after 60 s (step %llu, knows %d of %d failures)",
               static_cast<unsigned long long>(step), known, expected);
    gcclResult_t r = gcclSuccess;
    if (t.algo == Trial::kPushSum) {
      r = gcclPushSum(x.data(), kCount, gcclFloat32, &w, topo, step, comm, nullptr, nullptr);
    } else if (t.algo == Trial::kPairwise) {
      int partner = -1;
      r = gcclPairwiseExchange(pw, step, &partner);
    } else if (t.algo == Trial::kNeighbour) {
      r = gcclNeighborAverage(x.data(), x.data(), kCount, gcclFloat32, topo, step, comm, nullptr,
                              nullptr);
    } else {
      r = gcclGossipStart(g, step);
      if (r == gcclSuccess) r = gcclGossipFinish(g, step);
    }
    RANK_CHECK(r == gcclSuccess, "step %llu: %s: %s", static_cast<unsigned long long>(step),
               gcclGetErrorString(r), gcclGetLastError(comm));
    int now = failedCount(comm);
    if (now > 0 && sh->recoveredMs[rank].load() == 0 && !rejoin) sh->recoveredMs[rank] = nowMs();
    known = now;
    RANK_CHECK(known <= static_cast<int>(t.victims.size()), "%d ranks failed, %zu were hurt", known,
               t.victims.size());
    // Every restarted rank is back (and every survivor has taken it in).
    bool allBack = true;
    for (int q = 0; q < t.n; ++q)
      allBack = allBack && (!isRestarted(t, q) || sh->rejoined[q].load() != 0);
    if (known == expected && allBack && sh->allHurt.load() && sh->knewAt[rank].load() == 0)
      sh->knewAt[rank] = static_cast<int64_t>(step) + 1;
    if (target < 0) {
      // Every survivor runs up to the same step: kExtraSteps past the last
      // one at which a survivor learned of every failure.
      int64_t last = 0;
      bool all = true;
      for (int q = 0; q < t.n; ++q) {
        if (!finishes(t, q)) continue;
        int64_t k = sh->knewAt[q].load();
        all = all && k != 0;
        last = std::max(last, k);
      }
      if (all) target = last + extra;
    }
    if (target >= 0 && static_cast<int64_t>(step) + 1 >= target) break;
  }
  if (g != nullptr) RANK_OK(gcclGossipDestroy(g));  // folds in what is still in flight
  if (pw != nullptr) RANK_OK(gcclPairwiseDestroy(pw));
  gcclFailedRank_t failed[kMaxRanks];
  int count = 0;
  RANK_OK(gcclCommGetFailedRanks(comm, failed, kMaxRanks, &count));
  for (int i = 0; i < count; ++i)
    RANK_CHECK(isVictim(t, failed[i].rank) && !isRestarted(t, failed[i].rank),
               "rank %d, which %s, is listed failed: %s", failed[i].rank,
               isVictim(t, failed[i].rank) ? "rejoined" : "was not hurt", failed[i].reason);
  for (size_t e = 0; e < kCount; ++e)
    sh->z[rank][e] = t.pushSum ? x[e] / w : x[e];
  sh->w[rank] = w;
  sh->done[rank] = 1;
  int64_t until = nowMs() + 30000;
  for (int q = 0; q < t.n; ++q)
    while (finishes(t, q) && sh->done[q].load() == 0 && nowMs() < until)
      usleep(1000);
  RANK_OK(gcclTopologyDestroy(topo));
  RANK_OK(gcclCommDestroy(comm));
  return 0;
}

struct Tally {
  int trials = 0, kills = 0, stops = 0, rejoins = 0, hangs = 0, failures = 0;
  int64_t worstRecoveryMs = 0;
  // Trials with one victim: from the failure to the last survivor's first
  // step completed after it learned of it, by kind of failure.
  std::vector<int64_t> afterKill, afterStop;
  // From a restart (the new process forked) to it holding the group's model.
  std::vector<int64_t> toRejoin;
};

std::string medianAndWorst(std::vector<int64_t> v) {
  if (v.empty()) return "none";
  std::sort(v.begin(), v.end());
  return "median " + std::to_string(v[v.size() / 2]) + " ms, worst " + std::to_string(v.back()) +
         " ms (" + std::to_string(v.size()) + " trials)";
}

int envInt(const char* name, int fallback) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' ? atoi(v) : fallback;
}

TEST(Chaos, GossipSurvivesRandomKillsAndStops) {
  const int trials = envInt("GCCL_CHAOS_TRIALS", 20);
  const unsigned seed = static_cast<unsigned>(envInt("GCCL_CHAOS_SEED", 1));
  const int only = envInt("GCCL_CHAOS_ONLY", -1);
  std::mt19937 rng(seed);
  Tally tally;
  for (int i = 0; i < trials; ++i) {
    Trial t;
    t.n = 4 + static_cast<int>(rng() % 3);
    t.algo = static_cast<Trial::Algo>(rng() % 4);
    t.pushSum = t.algo == Trial::kPushSum || t.algo == Trial::kOverlap;
    int maxVictims = t.n / 2 - 1;
    int nv = 1 + static_cast<int>(rng() % static_cast<unsigned>(maxVictims));
    std::vector<int> ranks(static_cast<size_t>(t.n));
    for (int r = 0; r < t.n; ++r)
      ranks[static_cast<size_t>(r)] = r;
    std::shuffle(ranks.begin(), ranks.end(), rng);
    for (int v = 0; v < nv; ++v) {
      t.victims.push_back(ranks[static_cast<size_t>(v)]);
      t.stop.push_back(rng() % 3 == 0);
      t.atMs.push_back(static_cast<int>(rng() % 300));
      // Half the killed ranks come back, but never rank 0 (its process
      // serves the rendezvous) and not in pairwise trials.
      t.restart.push_back(!t.stop.back() && t.victims.back() != 0 && t.algo != Trial::kPairwise &&
                          rng() % 2 == 0);
    }
    t.restartAfterMs = static_cast<int>(rng() % 500);
    // A restarted rank finds the others through the rendezvous, which rank
    // 0's process serves: with rank 0 dead, nobody can come back.
    if (isVictim(t, 0)) std::fill(t.restart.begin(), t.restart.end(), false);
    // GCCL_CHAOS_ONLY=i runs trial i alone (the trials before it are drawn,
    // not run), to reproduce one.
    if (only >= 0 && i != only) continue;
    SharedArea area(sizeof(Shared));
    auto* sh = new (area.data()) Shared();
    SCOPED_TRACE("trial " + std::to_string(i) + " (seed " + std::to_string(seed) +
                 "): " + std::to_string(t.n) + " ranks, " +
                 (t.algo == Trial::kPushSum    ? "PushSum"
                  : t.algo == Trial::kOverlap  ? "overlap SGP"
                  : t.algo == Trial::kPairwise ? "pairwise gossip"
                                               : "NeighborAverage"));
    std::vector<int> restartStatus(static_cast<size_t>(t.n), 0);
    auto outcomes = runRanksWithControl(
        t.n,
        [&t, sh](int rank, int, const gcclUniqueId& id) { return runRank(t, sh, rank, id, false); },
        [&t, sh, &restartStatus](const std::vector<int>& pids) {
          int64_t until = nowMs() + 60000;
          for (int r = 0; r < t.n; ++r)
            while (sh->started[r].load() == 0 && nowMs() < until)
              usleep(1000);
          int64_t t0 = nowMs();
          std::vector<size_t> order(t.victims.size());
          for (size_t v = 0; v < order.size(); ++v)
            order[v] = v;
          std::sort(order.begin(), order.end(),
                    [&t](size_t a, size_t b) { return t.atMs[a] < t.atMs[b]; });
          for (size_t v : order) {
            int64_t at = t0 + t.atMs[v];
            while (nowMs() < at)
              usleep(1000);
            int victim = t.victims[v];
            sh->hurtMs[victim] = nowMs();
            kill(pids[static_cast<size_t>(victim)], t.stop[v] ? SIGSTOP : SIGKILL);
          }
          // The launcher restarts some of the killed ones: new processes.
          int64_t restartAt = nowMs() + t.restartAfterMs;
          while (nowMs() < restartAt)
            usleep(1000);
          std::vector<pid_t> restarted(static_cast<size_t>(t.n), 0);
          for (size_t v = 0; v < t.victims.size(); ++v) {
            if (!t.restart[v]) continue;
            int victim = t.victims[v];
            waitpid(pids[static_cast<size_t>(victim)], nullptr, 0);
            fflush(stdout);
            fflush(stderr);
            sh->restartMs[victim] = nowMs();
            pid_t pid = fork();
            if (pid == 0) {
              int code = runRank(t, sh, victim, sh->id, true);
              fflush(stdout);
              fflush(stderr);
              _exit(code);
            }
            restarted[static_cast<size_t>(victim)] = pid;
          }
          sh->allHurt = 1;
          // Stopped victims are killed once the survivors are done.
          until = nowMs() + 90000;
          for (int r = 0; r < t.n; ++r)
            while (finishes(t, r) && sh->done[r].load() == 0 && nowMs() < until)
              usleep(1000);
          for (int r = 0; r < t.n; ++r) {
            pid_t pid = restarted[static_cast<size_t>(r)];
            if (pid == 0) continue;
            int status = 0;
            while (waitpid(pid, &status, WNOHANG) == 0 && nowMs() < until)
              usleep(1000);
            if (waitpid(pid, &status, WNOHANG) == 0) {
              kill(pid, SIGKILL);
              waitpid(pid, &status, 0);
              restartStatus[static_cast<size_t>(r)] = -1;  // hung
              continue;
            }
            restartStatus[static_cast<size_t>(r)] =
                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          }
          for (size_t v = 0; v < t.victims.size(); ++v) {
            if (t.restart[v]) continue;  // reaped above
            kill(pids[static_cast<size_t>(t.victims[v])], SIGKILL);
            kill(pids[static_cast<size_t>(t.victims[v])], SIGCONT);
          }
        },
        150);
    ++tally.trials;
    int64_t firstHurt = INT64_MAX;
    for (size_t v = 0; v < t.victims.size(); ++v) {
      ++(t.stop[v] ? tally.stops : tally.kills);
      if (t.restart[v]) ++tally.rejoins;
      firstHurt = std::min(firstHurt, sh->hurtMs[t.victims[v]]);
    }
    bool ok = true;
    double totalW = 0;
    int64_t lastRecovered = 0;
    std::vector<int> survivors;
    for (int r = 0; r < t.n; ++r) {
      if (!finishes(t, r)) continue;
      survivors.push_back(r);
      if (isRestarted(t, r)) {
        int st = restartStatus[static_cast<size_t>(r)];
        if (st == 0) tally.toRejoin.push_back(sh->rejoinedMs[r] - sh->restartMs[r]);
        if (st == -1) ++tally.hangs;
        EXPECT_EQ(st, 0) << "restarted rank " << r << ": exit " << st;
        ok = ok && st == 0;
        totalW += sh->w[r];
        continue;
      }
      const RankOutcome& o = outcomes[static_cast<size_t>(r)];
      if (o.timedOut) ++tally.hangs;
      EXPECT_TRUE(o.signal == 0 && o.exitCode == 0)
          << "survivor " << r << ": exit " << o.exitCode << ", signal " << o.signal;
      ok = ok && o.signal == 0 && o.exitCode == 0;
      totalW += sh->w[r];
      if (sh->recoveredMs[r].load() != 0) {
        tally.worstRecoveryMs = std::max(tally.worstRecoveryMs, sh->recoveredMs[r] - firstHurt);
        lastRecovered = std::max(lastRecovered, sh->recoveredMs[r].load());
      }
    }
    if (t.victims.size() == 1 && lastRecovered != 0)
      (t.stop[0] ? tally.afterStop : tally.afterKill).push_back(lastRecovered - firstHurt);
    if (!ok) {
      ++tally.failures;
      continue;
    }
    // No survivor holds mass that was not there; they agree.
    if (t.pushSum) {
      EXPECT_LE(totalW, t.n + 1e-9);
    }
    EXPECT_GT(totalW, 0.0);
    double worst = 0;
    for (size_t e = 0; e < kCount; ++e) {
      double lo = 1e300, hi = -1e300;
      for (int r : survivors) {
        lo = std::min(lo, sh->z[r][e]);
        hi = std::max(hi, sh->z[r][e]);
      }
      worst = std::max(worst, (hi - lo) / std::fabs(hi));
      // A convex combination of the initial values.
      EXPECT_GE(lo, 1.0 - 1e-3);
      EXPECT_LE(hi, 5.0 * t.n + 1e-3);
    }
    EXPECT_LT(worst, 1e-3) << "the survivors (and rejoined ranks) did not reach consensus";
  }
  printf(
      "chaos: %d trials (seed %u), %d kills, %d stops, %d rejoins, %d hangs, %d failed trials, "
      "worst time from a failure to a survivor's first step after it knew: %lld ms\n",
      tally.trials, seed, tally.kills, tally.stops, tally.rejoins, tally.hangs, tally.failures,
      static_cast<long long>(tally.worstRecoveryMs));
  printf("chaos: one rank killed: every survivor stepping again after %s\n",
         medianAndWorst(tally.afterKill).c_str());
  printf("chaos: one rank stopped (timeout 3000 ms): every survivor stepping again after %s\n",
         medianAndWorst(tally.afterStop).c_str());
  printf("chaos: a killed rank restarted: holding the group's model after %s\n",
         medianAndWorst(tally.toRejoin).c_str());
}

}  // namespace
}  // namespace gccl::test
