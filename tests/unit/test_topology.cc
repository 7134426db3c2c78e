// Gossip topologies (gccl.h "Topologies", src/gossip/topology.h): the exact
// peers of every built-in kind for a few ranks of n = 8, 16, 32, written out
// by hand; the invariants of every kind for every n <= 64 and p <= 4; user
// weights; every error; and the property PushSum relies on: one-peer
// exponential mixing averages exactly in log2(n) steps.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gccl/gccl.h"
#include "gossip/topology.h"

namespace gccl {
namespace {

using Peers = std::vector<int>;

// Owns a topology handle for one test.
class Topo {
 public:
  Topo(gcclTopologyKind_t kind, int n, int p = 1) {
    EXPECT_EQ(gcclTopologyCreate(&h_, kind, n, p), gcclSuccess) << gcclGetLastError(nullptr);
  }
  Topo(int n, int nsteps, const std::vector<double>& w) {
    EXPECT_EQ(gcclTopologyCreateFromWeights(&h_, n, nsteps, w.data()), gcclSuccess)
        << gcclGetLastError(nullptr);
  }
  ~Topo() {
    if (h_ != nullptr) {
      EXPECT_EQ(gcclTopologyDestroy(h_), gcclSuccess);
    }
  }
  Topo(const Topo&) = delete;
  Topo& operator=(const Topo&) = delete;
  gcclTopology_t get() const { return h_; }

  int period() const {
    int p = -1;
    EXPECT_EQ(gcclTopologyPeriod(h_, &p), gcclSuccess);
    return p;
  }
  // Out-peers (or in-peers) of `rank` at `step` with weights; self weight
  // only for out-peers.
  Peers out(uint64_t step, int rank, std::vector<double>* w = nullptr, double* self = nullptr,
            int cap = 64) const {
    return query(true, step, rank, w, self, cap);
  }
  Peers in(uint64_t step, int rank, std::vector<double>* w = nullptr) const {
    return query(false, step, rank, w, nullptr, 64);
  }

 private:
  Peers query(bool outward, uint64_t step, int rank, std::vector<double>* w, double* self,
              int cap) const {
    Peers peers(static_cast<size_t>(cap), -7);
    std::vector<double> weights(static_cast<size_t>(cap), -7);
    int np = -1;
    double s = -7;
    gcclResult_t r =
        outward ? gcclTopologyOutPeers(h_, step, rank, cap, &np, peers.data(), weights.data(), &s)
                : gcclTopologyInPeers(h_, step, rank, cap, &np, peers.data(), weights.data());
    EXPECT_EQ(r, gcclSuccess) << gcclGetLastError(nullptr);
    if (r != gcclSuccess) return {};
    peers.resize(static_cast<size_t>(np));
    weights.resize(static_cast<size_t>(np));
    if (w != nullptr) *w = weights;
    if (self != nullptr) *self = s;
    return peers;
  }
  gcclTopology_t h_ = nullptr;
};

// expected[rank][step] for steps 0, 1, ...; checks the listed ranks.
void expectOutPeers(const Topo& t, const std::map<int, std::vector<Peers>>& expected) {
  for (const auto& [rank, bySteps] : expected) {
    for (size_t s = 0; s < bySteps.size(); ++s)
      EXPECT_EQ(t.out(s, rank), bySteps[s]) << "rank " << rank << " step " << s;
  }
}

TEST(Topology, OnePeerExponentialN8) {
  Topo t(gcclTopoExponential, 8);
  EXPECT_EQ(t.period(), 3);
  expectOutPeers(t,
                 {{0, {{1}, {2}, {4}, {1}}}, {5, {{6}, {7}, {1}, {6}}}, {7, {{0}, {1}, {3}, {0}}}});
}

TEST(Topology, OnePeerExponentialN16) {
  Topo t(gcclTopoExponential, 16);
  EXPECT_EQ(t.period(), 4);
  expectOutPeers(t, {{0, {{1}, {2}, {4}, {8}, {1}}}, {13, {{14}, {15}, {1}, {5}, {14}}}});
}

TEST(Topology, OnePeerExponentialN32) {
  Topo t(gcclTopoExponential, 32);
  EXPECT_EQ(t.period(), 5);
  expectOutPeers(t, {{0, {{1}, {2}, {4}, {8}, {16}, {1}}},
                     {20, {{21}, {22}, {24}, {28}, {4}, {21}}},
                     {31, {{0}, {1}, {3}, {7}, {15}, {0}}}});
  // The full 64-bit step counts: (2^64 - 1) mod 5 = 0.
  EXPECT_EQ(t.out(UINT64_MAX, 0), Peers({1}));
  EXPECT_EQ(t.out(UINT64_MAX - 1, 0), Peers({16}));
}

TEST(Topology, TwoPeerExponential) {
  // Offsets j * 3^m, j = 1, 2; shown sorted by rank.
  Topo t8(gcclTopoExponential, 8, 2);
  EXPECT_EQ(t8.period(), 2);  // 3 < 8 <= 9
  expectOutPeers(t8, {{0, {{1, 2}, {3, 6}, {1, 2}}}, {7, {{0, 1}, {2, 5}, {0, 1}}}});
  Topo t16(gcclTopoExponential, 16, 2);
  EXPECT_EQ(t16.period(), 3);  // 9 < 16 <= 27; 2 * 9 = 18 = 2 mod 16
  expectOutPeers(t16,
                 {{0, {{1, 2}, {3, 6}, {2, 9}, {1, 2}}}, {15, {{0, 1}, {2, 5}, {1, 8}, {0, 1}}}});
  Topo t32(gcclTopoExponential, 32, 2);
  EXPECT_EQ(t32.period(), 4);  // 27 < 32 <= 81; 2 * 27 = 54 = 22 mod 32
  expectOutPeers(t32, {{0, {{1, 2}, {3, 6}, {9, 18}, {22, 27}, {1, 2}}},
                       {10, {{11, 12}, {13, 16}, {19, 28}, {0, 5}, {11, 12}}}});
}

TEST(Topology, ExponentialDropsSelfLoopsAndDuplicates) {
  // n = 8, p = 3, step 1: offsets 4, 8 = 0 and 12 = 4 leave only 4.
  Topo t(gcclTopoExponential, 8, 3);
  std::vector<double> w;
  double self = 0;
  EXPECT_EQ(t.out(1, 0, &w, &self), Peers({4}));
  EXPECT_EQ(w, std::vector<double>({0.5}));
  EXPECT_EQ(self, 0.5);
  EXPECT_EQ(t.out(0, 6, &w, &self), Peers({0, 1, 7}));  // step 0: offsets 1, 2, 3
  EXPECT_EQ(self, 0.25);
  // n = 6, p = 2, step 1: offsets 3 and 6 = 0.
  Topo t6(gcclTopoExponential, 6, 2);
  EXPECT_EQ(t6.out(1, 2, &w, &self), Peers({5}));
  EXPECT_EQ(self, 0.5);
}

TEST(Topology, StaticExponential) {
  Topo t8(gcclTopoStaticExponential, 8);
  EXPECT_EQ(t8.period(), 1);
  expectOutPeers(t8, {{0, {{1, 2, 4}, {1, 2, 4}}}, {6, {{0, 2, 7}}}});
  Topo t16(gcclTopoStaticExponential, 16);
  expectOutPeers(t16, {{0, {{1, 2, 4, 8}}}, {15, {{0, 1, 3, 7}}}});
  Topo t32(gcclTopoStaticExponential, 32);
  expectOutPeers(t32, {{0, {{1, 2, 4, 8, 16}}}, {17, {{1, 18, 19, 21, 25}}}});
  Topo t5(gcclTopoStaticExponential, 5);
  expectOutPeers(t5, {{4, {{0, 1, 3}}}});
}

TEST(Topology, BipartiteExponential) {
  // d = 2^(m+1) - 1: even ranks add it, odd ranks subtract it.
  Topo t8(gcclTopoBipartiteExponential, 8);
  EXPECT_EQ(t8.period(), 3);
  expectOutPeers(t8, {{0, {{1}, {3}, {7}, {1}}}, {1, {{0}, {6}, {2}, {0}}}, {6, {{7}, {1}, {5}}}});
  Topo t16(gcclTopoBipartiteExponential, 16);
  EXPECT_EQ(t16.period(), 4);
  expectOutPeers(t16, {{0, {{1}, {3}, {7}, {15}, {1}}}, {5, {{4}, {2}, {14}, {6}, {4}}}});
  Topo t32(gcclTopoBipartiteExponential, 32);
  EXPECT_EQ(t32.period(), 5);
  expectOutPeers(t32, {{0, {{1}, {3}, {7}, {15}, {31}}}, {31, {{30}, {28}, {24}, {16}, {0}}}});
  Topo t6(gcclTopoBipartiteExponential, 6);  // d = 7 = 1 mod 6 at m = 2
  expectOutPeers(t6, {{0, {{1}, {3}, {1}}}});
}

TEST(Topology, Ring) {
  Topo t8(gcclTopoRing, 8);
  EXPECT_EQ(t8.period(), 1);
  expectOutPeers(t8, {{0, {{1, 7}}}, {3, {{2, 4}}}});
  Topo t16(gcclTopoRing, 16);
  expectOutPeers(t16, {{0, {{1, 15}}}, {15, {{0, 14}}}});
  Topo t32(gcclTopoRing, 32);
  expectOutPeers(t32, {{31, {{0, 30}}}});
  Topo t2(gcclTopoRing, 2);  // i - 1 and i + 1 coincide
  std::vector<double> w;
  double self = 0;
  EXPECT_EQ(t2.out(0, 0, &w, &self), Peers({1}));
  EXPECT_EQ(self, 0.5);
  Topo t1(gcclTopoRing, 1);
  EXPECT_EQ(t1.out(0, 0, &w, &self), Peers());
  EXPECT_EQ(self, 1.0);
}

TEST(Topology, Torus) {
  Topo t8(gcclTopoTorus2D, 8);  // 2 x 4: up and down are the same rank
  expectOutPeers(t8, {{0, {{1, 3, 4}}}, {5, {{1, 4, 6}}}});
  Topo t16(gcclTopoTorus2D, 16);  // 4 x 4
  expectOutPeers(t16, {{0, {{1, 3, 4, 12}}}, {5, {{1, 4, 6, 9}}}});
  Topo t32(gcclTopoTorus2D, 32);  // 4 x 8
  expectOutPeers(t32, {{0, {{1, 7, 8, 24}}}, {31, {{7, 23, 24, 30}}}});
  Topo t12(gcclTopoTorus2D, 12);  // 3 x 4
  expectOutPeers(t12, {{0, {{1, 3, 4, 8}}}});
  Topo t7(gcclTopoTorus2D, 7);  // 1 x 7: a ring
  expectOutPeers(t7, {{0, {{1, 6}}}});
}

TEST(Topology, Complete) {
  Topo t(gcclTopoComplete, 8);
  std::vector<double> w;
  double self = 0;
  EXPECT_EQ(t.out(0, 3, &w, &self), Peers({0, 1, 2, 4, 5, 6, 7}));
  EXPECT_EQ(self, 1.0 / 8);
  EXPECT_EQ(w, std::vector<double>(7, 1.0 / 8));
  expectOutPeers(Topo(gcclTopoComplete, 16),
                 {{15, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}}}});
}

TEST(Topology, Periods) {
  struct Case {
    gcclTopologyKind_t kind;
    int n, p, period;
  };
  const Case cases[] = {
      {gcclTopoExponential, 1, 1, 1},
      {gcclTopoExponential, 2, 1, 1},
      {gcclTopoExponential, 3, 1, 2},
      {gcclTopoExponential, 9, 1, 4},
      {gcclTopoExponential, 17, 1, 5},
      {gcclTopoExponential, 64, 1, 6},
      {gcclTopoExponential, 65, 1, 7},
      {gcclTopoExponential, 9, 2, 2},
      {gcclTopoExponential, 10, 2, 3},
      {gcclTopoExponential, 28, 2, 4},
      {gcclTopoExponential, 5, 4, 1},
      {gcclTopoExponential, 26, 4, 3},
      {gcclTopoStaticExponential, 9, 1, 1},
      {gcclTopoBipartiteExponential, 2, 1, 1},
      {gcclTopoBipartiteExponential, 6, 1, 3},
      {gcclTopoBipartiteExponential, 10, 1, 4},
      {gcclTopoRing, 5, 1, 1},
      {gcclTopoTorus2D, 12, 1, 1},
      {gcclTopoComplete, 9, 1, 1},
  };
  for (const Case& c : cases) {
    Topo t(c.kind, c.n, c.p);
    EXPECT_EQ(t.period(), c.period) << "kind " << c.kind << " n " << c.n << " p " << c.p;
  }
}

// The graph of every step, checked from the outside for each configuration.
void checkInvariants(gcclTopologyKind_t kind, int n, int p) {
  SCOPED_TRACE("kind " + std::to_string(kind) + " n " + std::to_string(n) + " p " +
               std::to_string(p));
  Topo t(kind, n, p);
  const int period = t.period();
  ASSERT_GE(period, 1);
  if (kind == gcclTopoExponential && n > 1) {
    int64_t below = 1;  // (p+1)^(period-1) < n <= (p+1)^period
    for (int k = 1; k < period; ++k)
      below *= p + 1;
    EXPECT_LT(below, n);
    EXPECT_GE(below * (p + 1), n);
  }
  const bool undirected =
      kind == gcclTopoRing || kind == gcclTopoTorus2D || kind == gcclTopoComplete;
  std::vector<std::vector<bool>> reach(static_cast<size_t>(n), std::vector<bool>(n, false));
  for (int s = 0; s <= period; ++s) {  // one step past the period: it repeats
    std::vector<std::vector<double>> a(static_cast<size_t>(n), std::vector<double>(n, 0.0));
    size_t degree = SIZE_MAX;
    for (int i = 0; i < n; ++i) {
      std::vector<double> w;
      double self = 0;
      Peers out = t.out(s, i, &w, &self);
      if (s == period) {
        EXPECT_EQ(out, t.out(0, i));
      }
      if (degree == SIZE_MAX) degree = out.size();
      EXPECT_EQ(out.size(), degree) << "regular, step " << s << " rank " << i;
      EXPECT_EQ(self, 1.0 / static_cast<double>(out.size() + 1));
      a[i][i] = self;
      for (size_t k = 0; k < out.size(); ++k) {
        ASSERT_TRUE(out[k] >= 0 && out[k] < n);
        EXPECT_NE(out[k], i) << "self-loop";
        if (k > 0) {
          EXPECT_LT(out[k - 1], out[k]) << "ascending, no duplicates";
        }
        EXPECT_EQ(w[k], self) << "uniform";
        a[out[k]][i] = w[k];
        reach[i][out[k]] = true;
      }
    }
    for (int j = 0; j < n; ++j) {
      std::vector<double> w;
      Peers in = t.in(s, j, &w);
      Peers expected;
      for (int i = 0; i < n; ++i)
        if (i != j && a[j][i] != 0) expected.push_back(i);
      EXPECT_EQ(in, expected) << "in-peers are the transpose, step " << s << " rank " << j;
      for (size_t k = 0; k < in.size() && k < expected.size(); ++k)
        EXPECT_EQ(w[k], a[j][in[k]]);
      if (undirected || kind == gcclTopoBipartiteExponential) {
        EXPECT_EQ(in, t.out(s, j));
      }
      double col = 0, row = 0;
      for (int i = 0; i < n; ++i)
        col += a[i][j], row += a[j][i];
      EXPECT_NEAR(col, 1.0, 1e-12) << "column " << j << " step " << s;
      EXPECT_NEAR(row, 1.0, 1e-12) << "row " << j << " step " << s;  // all built-ins are regular
      if (undirected) {
        for (int i = 0; i < n; ++i)
          EXPECT_EQ(a[i][j], a[j][i]) << "symmetric";
      }
    }
  }
  EXPECT_EQ(gcclTopologyValidate(t.get(), gcclMixColumnStochastic), gcclSuccess);
  EXPECT_EQ(gcclTopologyValidate(t.get(), gcclMixDoublyStochastic), gcclSuccess)
      << gcclGetLastError(nullptr);
  // Over one period every rank reaches every other (what consensus needs).
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (reach[i][k] && reach[k][j]) reach[i][j] = true;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      if (i != j) {
        EXPECT_TRUE(reach[i][j]) << i << " cannot reach " << j;
      }
}

TEST(Topology, InvariantsForEveryKindUpTo64Ranks) {
  for (int n = 1; n <= 64; ++n) {
    for (int p = 1; p <= 4 && (p < n || p == 1); ++p)
      checkInvariants(gcclTopoExponential, n, p);
    checkInvariants(gcclTopoStaticExponential, n, 1);
    if (n % 2 == 0) checkInvariants(gcclTopoBipartiteExponential, n, 1);
    checkInvariants(gcclTopoRing, n, 1);
    checkInvariants(gcclTopoTorus2D, n, 1);
    checkInvariants(gcclTopoComplete, n, 1);
    if (HasFailure()) return;
  }
}

TEST(Topology, OnePeerExponentialMixingAveragesExactlyInLog2NSteps) {
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> dist(-100.0, 100.0);
  for (int n = 2, log2n = 1; n <= 64; n *= 2, ++log2n) {
    for (uint64_t start : {uint64_t{0}, uint64_t{5}}) {
      Topo t(gcclTopoExponential, n);
      std::vector<double> x(static_cast<size_t>(n)), w(static_cast<size_t>(n), 1.0);
      double mean = 0;
      for (double& v : x)
        mean += (v = dist(rng));
      mean /= n;
      for (uint64_t k = start; k < start + static_cast<uint64_t>(log2n); ++k) {
        std::vector<double> nx(x.size(), 0.0), nw(w.size(), 0.0);
        for (int i = 0; i < n; ++i) {
          std::vector<double> a;
          double self = 0;
          Peers out = t.out(k, i, &a, &self);
          nx[i] += self * x[i], nw[i] += self * w[i];
          for (size_t e = 0; e < out.size(); ++e)
            nx[out[e]] += a[e] * x[i], nw[out[e]] += a[e] * w[i];
        }
        x.swap(nx), w.swap(nw);
      }
      for (int i = 0; i < n; ++i) {
        EXPECT_NEAR(x[i] / w[i], mean, 1e-12) << "n " << n << " rank " << i;
        EXPECT_NEAR(w[i], 1.0, 1e-12);
      }
    }
  }
}

TEST(Topology, UserWeightsRoundTrip) {
  // Step 0: a directed 3-cycle keeping 1/4; step 1: rank 0 sends to both others.
  std::vector<double> w = {
      0.25, 0, 0.75, 0.75, 0.25, 0, 0,    0.75, 0.25,  // step 0, row j = receiver
      0.5,  0, 0,    0.25, 1,    0, 0.25, 0,    1,     // step 1
  };
  Topo t(3, 2, w);
  w.assign(w.size(), 0.0);  // the topology holds its own copy
  EXPECT_EQ(t.period(), 2);
  std::vector<double> ws;
  double self = 0;
  EXPECT_EQ(t.out(0, 0, &ws, &self), Peers({1}));
  EXPECT_EQ(ws, std::vector<double>({0.75}));
  EXPECT_EQ(self, 0.25);
  EXPECT_EQ(t.out(0, 2, &ws), Peers({0}));
  EXPECT_EQ(t.in(0, 0, &ws), Peers({2}));
  EXPECT_EQ(ws, std::vector<double>({0.75}));
  EXPECT_EQ(t.out(3, 0, &ws, &self), Peers({1, 2}));  // step 3 uses matrix 1
  EXPECT_EQ(ws, std::vector<double>({0.25, 0.25}));
  EXPECT_EQ(self, 0.5);
  EXPECT_EQ(t.out(1, 1, &ws, &self), Peers());
  EXPECT_EQ(self, 1.0);
  EXPECT_EQ(t.in(1, 2, &ws), Peers({0}));
  EXPECT_EQ(ws, std::vector<double>({0.25}));
  EXPECT_EQ(gcclTopologyValidate(t.get(), gcclMixColumnStochastic), gcclSuccess);
  // Step 0 is doubly stochastic, step 1 is not: rank 0 keeps 0.5 and receives nothing.
  EXPECT_EQ(gcclTopologyValidate(t.get(), gcclMixDoublyStochastic), gcclInvalidArgument);
  EXPECT_STREQ(gcclGetLastError(nullptr),
               "gcclTopologyValidate: step 1, rank 0: row sum (self weight plus in-weights) is "
               "0.5, not 1 within 1e-09: the weights are not doubly stochastic");
}

// Expects `r` to be gcclInvalidArgument (or `code`) with a reason containing `needle`.
void expectError(gcclResult_t r, const std::string& needle,
                 gcclResult_t code = gcclInvalidArgument) {
  EXPECT_EQ(r, code);
  std::string reason = gcclGetLastError(nullptr);
  EXPECT_NE(reason.find(needle), std::string::npos) << "reason: " << reason;
}

TEST(Topology, CreateErrorsNameTheArgument) {
  gcclTopology_t t = nullptr;
  expectError(gcclTopologyCreate(nullptr, gcclTopoRing, 4, 1), "gcclTopologyCreate: topo is NULL");
  expectError(gcclTopologyCreate(&t, gcclTopoRing, 0, 1), "nranks 0 must be at least 1");
  expectError(gcclTopologyCreate(&t, static_cast<gcclTopologyKind_t>(9), 4, 1),
              "kind 9 is not a gccl topology kind");
  expectError(gcclTopologyCreate(&t, static_cast<gcclTopologyKind_t>(INT_MIN), 4, 1),
              "kind -2147483648 is not a gccl topology kind");
  expectError(gcclTopologyCreate(&t, gcclTopoUser, 4, 1), "gcclTopologyCreateFromWeights");
  expectError(gcclTopologyCreate(&t, gcclTopoExponential, 8, 0), "peersPerStep 0 must be in 1..7");
  expectError(gcclTopologyCreate(&t, gcclTopoExponential, 8, 8), "peersPerStep 8 must be in 1..7");
  expectError(gcclTopologyCreate(&t, gcclTopoRing, 8, 2),
              "peersPerStep 2 must be 1 for gcclTopoRing");
  expectError(gcclTopologyCreate(&t, gcclTopoBipartiteExponential, 7, 1), "nranks 7 is odd");
  EXPECT_EQ(t, nullptr) << "outputs are written only on success";

  const double nan = std::nan(""), one[4] = {1, 0, 0, 1};
  expectError(gcclTopologyCreateFromWeights(nullptr, 2, 1, one), "topo is NULL");
  expectError(gcclTopologyCreateFromWeights(&t, 2, 1, nullptr), "weights is NULL");
  expectError(gcclTopologyCreateFromWeights(&t, 2, 0, one), "nsteps 0 must be at least 1");
  expectError(gcclTopologyCreateFromWeights(&t, -1, 1, one), "nranks -1 must be at least 1");
  const double withNan[4] = {1, 0, 0, nan}, negative[4] = {1.5, 0, -0.5, 1};
  expectError(gcclTopologyCreateFromWeights(&t, 2, 1, withNan),
              "weights[3] = nan (step 0, from rank 1 to rank 1) must be finite and >= 0");
  expectError(gcclTopologyCreateFromWeights(&t, 2, 1, negative),
              "weights[2] = -0.5 (step 0, from rank 0 to rank 1) must be finite and >= 0");
  const double leaky[8] = {1, 0, 0, 1, 0.5, 0, 0.4, 1};
  expectError(gcclTopologyCreateFromWeights(&t, 2, 2, leaky),
              "gcclTopologyCreateFromWeights: step 1, rank 0: column sum (self weight plus "
              "out-weights) is 0.90000000000000002, not 1 within 1e-09");
  EXPECT_EQ(t, nullptr);
}

TEST(Topology, QueryErrorsNameTheArgument) {
  Topo t(gcclTopoStaticExponential, 8);  // 3 out-peers per rank
  int np = -1, peers[8] = {-1};
  double w[8] = {-1}, self = -1;
  gcclTopology_t h = t.get();
  expectError(gcclTopologyOutPeers(nullptr, 0, 0, 8, &np, peers, w, &self), "topo is NULL");
  expectError(gcclTopologyOutPeers(h, 0, 8, 8, &np, peers, w, &self), "rank 8 is not in 0..7");
  expectError(gcclTopologyInPeers(h, 0, -1, 8, &np, peers, w), "rank -1 is not in 0..7");
  expectError(gcclTopologyOutPeers(h, 0, 0, 8, nullptr, peers, w, &self), "npeers is NULL");
  expectError(gcclTopologyOutPeers(h, 0, 0, 8, &np, nullptr, w, &self), "peers is NULL");
  expectError(gcclTopologyOutPeers(h, 0, 0, 8, &np, peers, nullptr, &self), "weights is NULL");
  expectError(gcclTopologyOutPeers(h, 0, 0, 8, &np, peers, w, nullptr), "selfWeight is NULL");
  expectError(gcclTopologyOutPeers(h, 0, 0, -1, &np, peers, w, &self), "maxPeers -1 is negative");
  expectError(gcclTopologyOutPeers(h, 9, 2, 2, &np, peers, w, &self),
              "gcclTopologyOutPeers: rank 2 has 3 out-peers at step 9, more than maxPeers 2");
  expectError(gcclTopologyInPeers(h, 0, 2, 0, &np, nullptr, nullptr),
              "rank 2 has 3 in-peers at step 0, more than maxPeers 0");
  EXPECT_TRUE(np == -1 && peers[0] == -1 && w[0] == -1 && self == -1) << "outputs untouched";
  expectError(gcclTopologyPeriod(h, nullptr), "nsteps is NULL");
  expectError(gcclTopologyValidate(h, static_cast<gcclMixing_t>(2)), "mixing 2 is not");
  expectError(gcclTopologyValidate(h, static_cast<gcclMixing_t>(-5)), "mixing -5 is not");

  // A rank without peers needs no arrays.
  Topo single(gcclTopoComplete, 1);
  EXPECT_EQ(gcclTopologyOutPeers(single.get(), 0, 0, 0, &np, nullptr, nullptr, &self), gcclSuccess);
  EXPECT_TRUE(np == 0 && self == 1.0);

  gcclTopology_t doomed = nullptr;
  ASSERT_EQ(gcclTopologyCreate(&doomed, gcclTopoRing, 4, 1), gcclSuccess);
  ASSERT_EQ(gcclTopologyDestroy(doomed), gcclSuccess);
  expectError(gcclTopologyDestroy(doomed), "is not valid (destroyed or never created)",
              gcclInvalidUsage);
  expectError(gcclTopologyPeriod(doomed, &np), "gcclTopologyPeriod: topology", gcclInvalidUsage);
  expectError(gcclTopologyDestroy(nullptr), "gcclTopologyDestroy: topo is NULL");
}

TEST(Topology, LargeRankCountsStayInIntegerRange) {
  const int n = INT32_MAX;  // built-in lookups must not form i + offset >= 2^31
  Topo ring(gcclTopoRing, n);
  EXPECT_EQ(ring.out(0, n - 1), Peers({0, n - 2}));
  Topo exp(gcclTopoExponential, n);
  EXPECT_EQ(exp.period(), 31);
  EXPECT_EQ(exp.out(30, n - 1), Peers({(1 << 30) - 1}));
  EXPECT_EQ(exp.in(30, 5), Peers({5 - (1 << 30) + n}));
  Topo bip(gcclTopoBipartiteExponential, n - 1);
  EXPECT_EQ(bip.out(30, n - 3), Peers({static_cast<int>((int64_t{n} - 3 + INT32_MAX) % (n - 1))}));
  Topo torus(gcclTopoTorus2D, n);  // prime: 1 x n
  EXPECT_EQ(torus.out(0, n - 1), Peers({0, n - 2}));
}

TEST(Topology, HandlesAreThreadSafe) {
  Topo shared(gcclTopoExponential, 32, 2);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int iter = 0; iter < 200; ++iter) {
        gcclTopology_t mine = nullptr;
        int np = 0, peers[4];
        double w[4], self = 0;
        if (gcclTopologyCreate(&mine, gcclTopoRing, 8 + k, 1) != gcclSuccess ||
            gcclTopologyOutPeers(shared.get(), static_cast<uint64_t>(iter), k, 4, &np, peers, w,
                                 &self) != gcclSuccess ||
            np != 2 || gcclTopologyValidate(shared.get(), gcclMixDoublyStochastic) != gcclSuccess ||
            gcclTopologyDestroy(mine) != gcclSuccess)
          ++failures[static_cast<size_t>(k)];
      }
    });
  }
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// Graphs the built-ins and user weights cannot express, described as raw
// lists, so that every validation reason shows up.
gcclResult_t validateLists(int n, const std::vector<std::vector<std::vector<PeerWeight>>>& out,
                           const std::vector<std::vector<double>>& self, gcclMixing_t mixing) {
  std::unique_ptr<Topology> t;
  gcclResult_t r = Topology::fromLists(n, out, self, "test", &t);
  if (r != gcclSuccess) return r;
  return t->validate(mixing, "test");
}

TEST(Topology, ValidationReasonsNameStepRankAndSum) {
  const std::vector<double> halves = {0.5, 0.5, 0.5};
  const std::vector<std::vector<PeerWeight>> cycle = {{{1, 0.5}}, {{2, 0.5}}, {{0, 0.5}}};
  EXPECT_EQ(validateLists(3, {cycle, cycle}, {halves, halves}, gcclMixDoublyStochastic),
            gcclSuccess);
  expectError(validateLists(3, {cycle, {{{0, 0.5}}, {{2, 0.5}}, {{0, 0.5}}}}, {halves, halves},
                            gcclMixColumnStochastic),
              "test: step 1, rank 0: a self-loop");
  expectError(validateLists(3, {{{{1, 0.25}, {1, 0.25}}, {{2, 0.5}}, {{0, 0.5}}}}, {halves},
                            gcclMixColumnStochastic),
              "test: step 0, rank 0: out-peer 1 appears more than once");
  expectError(validateLists(3, {{{{1, 1.5}}, {{2, 0.5}}, {{0, 0.5}}}}, {{-0.5, 0.5, 0.5}},
                            gcclMixColumnStochastic),
              "test: step 0, rank 0: self weight -0.5 must be finite and >= 0");
  expectError(validateLists(3, {{{{1, -0.5}, {2, 1}}, {{2, 0.5}}, {{0, 0.5}}}}, {halves},
                            gcclMixColumnStochastic),
              "test: step 0, rank 0: weight -0.5 to out-peer 1 must be finite and >= 0");
  expectError(validateLists(3, {cycle, {{{1, 0.5}}, {{2, 0.25}}, {{0, 0.5}}}}, {halves, halves},
                            gcclMixColumnStochastic),
              "test: step 1, rank 1: column sum (self weight plus out-weights) is 0.75, not 1");
  // Column-stochastic but rank 1 receives from both others: row sum 1.5.
  const std::vector<std::vector<PeerWeight>> star = {{{1, 0.5}}, {{0, 0.5}}, {{1, 0.5}}};
  EXPECT_EQ(validateLists(3, {star}, {halves}, gcclMixColumnStochastic), gcclSuccess);
  expectError(validateLists(3, {star}, {halves}, gcclMixDoublyStochastic),
              "test: step 0, rank 1: row sum (self weight plus in-weights) is 1.5, not 1");
  expectError(
      validateLists(3, {{{{3, 0.5}}, {{2, 0.5}}, {{0, 0.5}}}}, {halves}, gcclMixColumnStochastic),
      "test: step 0, rank 0: out-peer 3 is not a rank (0..2)");
}

TEST(Topology, RemembersSuccessfulValidation) {
  std::unique_ptr<Topology> t;
  ASSERT_EQ(Topology::create(gcclTopoExponential, 12, 2, "test", &t), gcclSuccess);
  EXPECT_FALSE(t->validated(gcclMixColumnStochastic));
  EXPECT_FALSE(t->validated(gcclMixDoublyStochastic));
  EXPECT_EQ(t->validate(gcclMixDoublyStochastic, "test"), gcclSuccess);
  EXPECT_TRUE(t->validated(gcclMixDoublyStochastic));
  EXPECT_TRUE(t->validated(gcclMixColumnStochastic)) << "doubly implies column";

  // A failed check is not remembered as a success (and is reported again).
  std::unique_ptr<Topology> star;
  ASSERT_EQ(Topology::fromLists(3, {{{{1, 0.5}}, {{0, 0.5}}, {{1, 0.5}}}}, {{0.5, 0.5, 0.5}},
                                "test", &star),
            gcclSuccess);
  EXPECT_EQ(star->validate(gcclMixDoublyStochastic, "test"), gcclInvalidArgument);
  EXPECT_EQ(star->validate(gcclMixDoublyStochastic, "test"), gcclInvalidArgument);
  EXPECT_FALSE(star->validated(gcclMixDoublyStochastic));
  EXPECT_EQ(star->validate(gcclMixColumnStochastic, "test"), gcclSuccess);
  EXPECT_TRUE(star->validated(gcclMixColumnStochastic));
}

}  // namespace
}  // namespace gccl
