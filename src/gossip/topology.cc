#include "gossip/topology.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "base/check.h"

namespace gccl {

namespace {

// The smallest M with base^M >= n; integer loops because a floating-point
// log rounds the wrong way at exact powers (the SGP reference's bug).
int ceilLog(int64_t n, int64_t base) {
  int m = 0;
  // pow < n <= INT_MAX before each multiplication and base <= INT_MAX, so
  // the product fits in 64 bits.
  for (int64_t pow = 1; pow < n; pow *= base)
    ++m;
  return m;
}

// Sorted, distinct, non-zero residues mod n: the peers of a circulant graph
// without self-loops or duplicates.
std::vector<int> normalizeOffsets(std::vector<int64_t> raw, int n) {
  std::vector<int> out;
  for (int64_t o : raw) {
    int r = static_cast<int>(((o % n) + n) % n);
    if (r != 0) out.push_back(r);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

const char* kindName(gcclTopologyKind_t kind) {
  switch (kind) {
    case gcclTopoExponential:
      return "gcclTopoExponential";
    case gcclTopoStaticExponential:
      return "gcclTopoStaticExponential";
    case gcclTopoBipartiteExponential:
      return "gcclTopoBipartiteExponential";
    case gcclTopoRing:
      return "gcclTopoRing";
    case gcclTopoTorus2D:
      return "gcclTopoTorus2D";
    case gcclTopoComplete:
      return "gcclTopoComplete";
    case gcclTopoUser:
      return "gcclTopoUser";
    default:
      return "?";
  }
}

void setUniformWeights(std::vector<PeerWeight>* list) {
  double w = 1.0 / static_cast<double>(list->size() + 1);
  for (PeerWeight& e : *list)
    e.weight = w;
}

}  // namespace

gcclResult_t checkTopologyKind(int kind, const char* call) {
  GCCL_REQUIRE(kind != gcclTopoUser, gcclInvalidArgument,
               "%s: kind gcclTopoUser is made by gcclTopologyCreateFromWeights", call);
  GCCL_REQUIRE(kind >= 0 && kind <= gcclTopoComplete, gcclInvalidArgument,
               "%s: kind %d is not a gccl topology kind (0..%d)", call, kind,
               static_cast<int>(gcclTopoComplete));
  return gcclSuccess;
}

gcclResult_t checkMixing(int mixing, const char* call) {
  GCCL_REQUIRE(mixing == gcclMixColumnStochastic || mixing == gcclMixDoublyStochastic,
               gcclInvalidArgument,
               "%s: mixing %d is not gcclMixColumnStochastic (0) or gcclMixDoublyStochastic (1)",
               call, mixing);
  return gcclSuccess;
}

Topology::Topology(gcclTopologyKind_t kind, int nranks, int peersPerStep)
    : kind_(kind), n_(nranks), p_(peersPerStep) {}

gcclResult_t Topology::create(gcclTopologyKind_t kind, int nranks, int peersPerStep,
                              const char* call, std::unique_ptr<Topology>* out) {
  GCCL_CHECK(checkTopologyKind(static_cast<int>(kind), call));
  GCCL_REQUIRE(nranks >= 1, gcclInvalidArgument, "%s: nranks %d must be at least 1", call, nranks);
  if (kind == gcclTopoExponential) {
    int maxP = std::max(1, nranks - 1);
    GCCL_REQUIRE(peersPerStep >= 1 && peersPerStep <= maxP, gcclInvalidArgument,
                 "%s: peersPerStep %d must be in 1..%d for gcclTopoExponential with nranks %d",
                 call, peersPerStep, maxP, nranks);
  } else {
    GCCL_REQUIRE(peersPerStep == 1, gcclInvalidArgument,
                 "%s: peersPerStep %d must be 1 for %s (only gcclTopoExponential takes several "
                 "peers per step)",
                 call, peersPerStep, kindName(kind));
  }
  GCCL_REQUIRE(kind != gcclTopoBipartiteExponential || nranks % 2 == 0, gcclInvalidArgument,
               "%s: nranks %d is odd; gcclTopoBipartiteExponential pairs even and odd ranks and "
               "needs an even nranks",
               call, nranks);

  std::unique_ptr<Topology> t(new Topology(kind, nranks, peersPerStep));
  const int n = nranks;
  auto addCirculant = [&](const std::vector<int64_t>& raw) {
    t->outOffsets_.push_back(normalizeOffsets(raw, n));
    std::vector<int64_t> neg;
    for (int o : t->outOffsets_.back())
      neg.push_back(n - o);
    t->inOffsets_.push_back(normalizeOffsets(neg, n));
  };
  switch (kind) {
    case gcclTopoExponential: {
      const int64_t base = static_cast<int64_t>(peersPerStep) + 1;
      t->period_ = std::max(1, ceilLog(n, base));
      // (p+1)^m < n for m < M, so j * (p+1)^m < n^2 fits in 64 bits.
      int64_t pow = 1;
      for (int m = 0; m < t->period_; ++m, pow *= base) {
        std::vector<int64_t> raw;
        for (int64_t j = 1; j <= peersPerStep; ++j)
          raw.push_back(j * pow);
        addCirculant(raw);
      }
      break;
    }
    case gcclTopoStaticExponential: {
      std::vector<int64_t> raw;
      for (int64_t pow = 1; pow < n; pow *= 2)
        raw.push_back(pow);
      addCirculant(raw);
      break;
    }
    case gcclTopoBipartiteExponential:
      t->period_ = std::max(1, ceilLog(n, 2));
      // 2^(m+1) - 1 < 2n for m < ceil(log2 n): no overflow.
      for (int m = 0; m < t->period_; ++m)
        t->shifts_.push_back(static_cast<int>(((int64_t{2} << m) - 1) % n));
      break;
    case gcclTopoRing:
      addCirculant({1, -1});
      break;
    case gcclTopoTorus2D:
      for (int r = 1; static_cast<int64_t>(r) * r <= n; ++r)
        if (n % r == 0) t->rows_ = r;
      t->cols_ = n / t->rows_;
      break;
    default:  // complete: enumerated on lookup, no offsets stored
      break;
  }
  *out = std::move(t);
  return gcclSuccess;
}

gcclResult_t Topology::fromWeights(int nranks, int nsteps, const double* weights, const char* call,
                                   std::unique_ptr<Topology>* out) {
  GCCL_REQUIRE(nranks >= 1, gcclInvalidArgument, "%s: nranks %d must be at least 1", call, nranks);
  GCCL_REQUIRE(nsteps >= 1, gcclInvalidArgument, "%s: nsteps %d must be at least 1", call, nsteps);
  GCCL_REQUIRE(weights != nullptr, gcclInvalidArgument, "%s: weights is NULL", call);
  const size_t n = static_cast<size_t>(nranks);
  GCCL_REQUIRE(n * n <= SIZE_MAX / sizeof(double) / static_cast<size_t>(nsteps),
               gcclInvalidArgument,
               "%s: nsteps %d x nranks %d x nranks %d doubles do not fit in memory", call, nsteps,
               nranks, nranks);
  for (size_t s = 0; s < static_cast<size_t>(nsteps); ++s) {
    for (size_t j = 0; j < n; ++j) {
      for (size_t i = 0; i < n; ++i) {
        const size_t at = (s * n + j) * n + i;
        GCCL_REQUIRE(std::isfinite(weights[at]) && weights[at] >= 0, gcclInvalidArgument,
                     "%s: weights[%zu] = %g (step %zu, from rank %zu to rank %zu) must be finite "
                     "and >= 0",
                     call, at, weights[at], s, i, j);
      }
    }
  }

  std::unique_ptr<Topology> t(new Topology(gcclTopoUser, nranks, 1));
  t->explicit_ = true;
  t->period_ = nsteps;
  t->steps_.resize(static_cast<size_t>(nsteps));
  for (int s = 0; s < nsteps; ++s) {
    ExplicitStep& st = t->steps_[static_cast<size_t>(s)];
    const double* a = weights + static_cast<size_t>(s) * n * n;
    st.self.resize(n);
    st.out.start.assign(n + 1, 0);
    for (size_t i = 0; i < n; ++i) {
      st.self[i] = a[i * n + i];
      for (size_t j = 0; j < n; ++j) {
        if (j != i && a[j * n + i] != 0)
          st.out.edges.push_back({static_cast<int>(j), a[j * n + i]});
      }
      st.out.start[i + 1] = st.out.edges.size();
    }
    transpose(nranks, &st);
  }
  GCCL_CHECK(t->validate(gcclMixColumnStochastic, call));
  *out = std::move(t);
  return gcclSuccess;
}

gcclResult_t Topology::fromLists(int nranks,
                                 const std::vector<std::vector<std::vector<PeerWeight>>>& outLists,
                                 const std::vector<std::vector<double>>& self, const char* call,
                                 std::unique_ptr<Topology>* out) {
  GCCL_REQUIRE(nranks >= 1, gcclInvalidArgument, "%s: nranks %d must be at least 1", call, nranks);
  GCCL_REQUIRE(!outLists.empty() && outLists.size() == self.size() && outLists.size() <= INT32_MAX,
               gcclInvalidArgument, "%s: %zu steps of out-lists but %zu of self weights", call,
               outLists.size(), self.size());
  const size_t n = static_cast<size_t>(nranks);
  std::unique_ptr<Topology> t(new Topology(gcclTopoUser, nranks, 1));
  t->explicit_ = true;
  t->period_ = static_cast<int>(outLists.size());
  t->steps_.resize(outLists.size());
  for (size_t s = 0; s < outLists.size(); ++s) {
    GCCL_REQUIRE(outLists[s].size() == n && self[s].size() == n, gcclInvalidArgument,
                 "%s: step %zu has %zu out-lists and %zu self weights for nranks %d", call, s,
                 outLists[s].size(), self[s].size(), nranks);
    ExplicitStep& st = t->steps_[s];
    st.self = self[s];
    st.out.start.assign(n + 1, 0);
    for (size_t i = 0; i < n; ++i) {
      for (const PeerWeight& e : outLists[s][i]) {
        GCCL_REQUIRE(e.peer >= 0 && e.peer < nranks, gcclInvalidArgument,
                     "%s: step %zu, rank %zu: out-peer %d is not a rank (0..%d)", call, s, i,
                     e.peer, nranks - 1);
        st.out.edges.push_back(e);
      }
      st.out.start[i + 1] = st.out.edges.size();
    }
    transpose(nranks, &st);
  }
  *out = std::move(t);
  return gcclSuccess;
}

// In-lists come out sorted by sender because senders are visited in order.
void Topology::transpose(int nranks, ExplicitStep* st) {
  const size_t n = static_cast<size_t>(nranks);
  std::vector<size_t> count(n + 1, 0);
  for (const PeerWeight& e : st->out.edges)
    ++count[static_cast<size_t>(e.peer) + 1];
  for (size_t j = 0; j < n; ++j)
    count[j + 1] += count[j];
  st->in.start = count;
  st->in.edges.resize(st->out.edges.size());
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = st->out.start[i]; k < st->out.start[i + 1]; ++k) {
      const PeerWeight& e = st->out.edges[k];
      st->in.edges[count[static_cast<size_t>(e.peer)]++] = {static_cast<int>(i), e.weight};
    }
  }
}

// rank + o (mod n) for sorted offsets o, emitted in ascending rank order: the
// offsets that wrap past n - 1 land below rank and come first. Written so that
// no intermediate exceeds n (n may be close to INT_MAX).
void Topology::circulant(const std::vector<int>& offsets, int rank,
                         std::vector<PeerWeight>* out) const {
  auto wrap = std::lower_bound(offsets.begin(), offsets.end(), n_ - rank);
  for (auto it = wrap; it != offsets.end(); ++it)
    out->push_back({*it - (n_ - rank), 0});
  for (auto it = offsets.begin(); it != wrap; ++it)
    out->push_back({rank + *it, 0});
}

void Topology::torus(int rank, std::vector<PeerWeight>* out) const {
  // 64-bit: c + cols - 1 overflows an int when nranks is a prime near INT_MAX.
  const int64_t rows = rows_, cols = cols_, r = rank / cols, c = rank % cols;
  int64_t cand[4] = {((r + rows - 1) % rows) * cols + c, ((r + 1) % rows) * cols + c,
                     r * cols + (c + cols - 1) % cols, r * cols + (c + 1) % cols};
  std::sort(cand, cand + 4);
  for (int k = 0; k < 4; ++k) {
    if (cand[k] != rank && (k == 0 || cand[k] != cand[k - 1]))
      out->push_back({static_cast<int>(cand[k]), 0});
  }
}

void Topology::outPeers(uint64_t step, int rank, std::vector<PeerWeight>* out, double* self) const {
  out->clear();
  int s = scheduleStep(step);
  if (explicit_) {
    const ExplicitStep& st = steps_[static_cast<size_t>(s)];
    size_t r = static_cast<size_t>(rank);
    out->assign(st.out.edges.begin() + static_cast<std::ptrdiff_t>(st.out.start[r]),
                st.out.edges.begin() + static_cast<std::ptrdiff_t>(st.out.start[r + 1]));
    *self = st.self[r];
    return;
  }
  switch (kind_) {
    case gcclTopoBipartiteExponential: {
      const int64_t d = shifts_[static_cast<size_t>(s)], n = n_;
      out->push_back({static_cast<int>(rank % 2 == 0 ? (rank + d) % n : (rank - d + n) % n), 0});
      break;
    }
    case gcclTopoTorus2D:
      torus(rank, out);
      break;
    case gcclTopoComplete:
      for (int j = 0; j < n_; ++j) {
        if (j != rank) out->push_back({j, 0});
      }
      break;
    default:
      circulant(outOffsets_[static_cast<size_t>(s)], rank, out);
      break;
  }
  setUniformWeights(out);
  *self = 1.0 / static_cast<double>(out->size() + 1);
}

void Topology::inPeers(uint64_t step, int rank, std::vector<PeerWeight>* in) const {
  int s = scheduleStep(step);
  if (explicit_) {
    const ExplicitStep& st = steps_[static_cast<size_t>(s)];
    size_t r = static_cast<size_t>(rank);
    in->assign(st.in.edges.begin() + static_cast<std::ptrdiff_t>(st.in.start[r]),
               st.in.edges.begin() + static_cast<std::ptrdiff_t>(st.in.start[r + 1]));
    return;
  }
  if (kind_ == gcclTopoExponential || kind_ == gcclTopoStaticExponential || kind_ == gcclTopoRing) {
    in->clear();
    circulant(inOffsets_[static_cast<size_t>(s)], rank, in);
    // Every rank of a circulant graph has the same degree, so the sender's
    // uniform weight equals this rank's.
    setUniformWeights(in);
    return;
  }
  // Bipartite steps are matchings (even i and i + d pair up both ways);
  // torus and complete graphs are undirected: in-peers are the out-peers,
  // and the graphs are regular, so the weights agree too.
  double self;
  outPeers(step, rank, in, &self);
}

gcclResult_t Topology::validate(gcclMixing_t mixing, const char* call) {
  const int mix = static_cast<int>(mixing);
  GCCL_CHECK(checkMixing(mix, call));
  if (validated_[mix].load(std::memory_order_acquire)) return gcclSuccess;
  const bool rows = mixing == gcclMixDoublyStochastic;
  std::vector<PeerWeight> list;
  std::vector<double> selfWeights(static_cast<size_t>(n_));
  // seen[j] == stamp: j already appeared in the current list.
  std::vector<int64_t> seen(static_cast<size_t>(n_), -1);
  int64_t stamp = 0;
  for (int s = 0; s < period_; ++s) {
    const uint64_t step = static_cast<uint64_t>(s);
    for (int i = 0; i < n_; ++i, ++stamp) {
      double self;
      outPeers(step, i, &list, &self);
      selfWeights[static_cast<size_t>(i)] = self;
      GCCL_REQUIRE(std::isfinite(self) && self >= 0, gcclInvalidArgument,
                   "%s: step %d, rank %d: self weight %g must be finite and >= 0", call, s, i,
                   self);
      double sum = self;
      for (const PeerWeight& e : list) {
        GCCL_REQUIRE(e.peer != i, gcclInvalidArgument,
                     "%s: step %d, rank %d: a self-loop (rank %d lists itself as an out-peer)",
                     call, s, i, i);
        GCCL_REQUIRE(seen[static_cast<size_t>(e.peer)] != stamp, gcclInvalidArgument,
                     "%s: step %d, rank %d: out-peer %d appears more than once", call, s, i,
                     e.peer);
        seen[static_cast<size_t>(e.peer)] = stamp;
        GCCL_REQUIRE(std::isfinite(e.weight) && e.weight >= 0, gcclInvalidArgument,
                     "%s: step %d, rank %d: weight %g to out-peer %d must be finite and >= 0", call,
                     s, i, e.weight, e.peer);
        sum += e.weight;
      }
      GCCL_REQUIRE(std::fabs(sum - 1.0) <= kTolerance, gcclInvalidArgument,
                   "%s: step %d, rank %d: column sum (self weight plus out-weights) is %.17g, not "
                   "1 within %g: the weights are not column-stochastic",
                   call, s, i, sum, kTolerance);
    }
    if (!rows) continue;
    for (int j = 0; j < n_; ++j) {
      inPeers(step, j, &list);
      double sum = selfWeights[static_cast<size_t>(j)];
      for (const PeerWeight& e : list)
        sum += e.weight;
      GCCL_REQUIRE(std::fabs(sum - 1.0) <= kTolerance, gcclInvalidArgument,
                   "%s: step %d, rank %d: row sum (self weight plus in-weights) is %.17g, not 1 "
                   "within %g: the weights are not doubly stochastic",
                   call, s, j, sum, kTolerance);
    }
  }
  validated_[mix].store(true, std::memory_order_release);
  // Doubly stochastic includes column-stochastic.
  if (rows) validated_[gcclMixColumnStochastic].store(true, std::memory_order_release);
  return gcclSuccess;
}

uint32_t Topology::fingerprint(uint64_t step) const {
  size_t s = static_cast<size_t>(scheduleStep(step));
  std::lock_guard<std::mutex> lock(fingerprintMutex_);
  if (fingerprints_.size() != static_cast<size_t>(period_)) fingerprints_.assign(period_, 0);
  if (fingerprints_[s] != 0) return static_cast<uint32_t>(fingerprints_[s]);
  // FNV-1a over (rank, self weight, then each out-peer and its weight).
  uint64_t h = 0xcbf29ce484222325ull;
  auto add = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  auto bits = [](double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof(u));  // the weight's bits for the hash, not tensor data
    return u;
  };
  std::vector<PeerWeight> out;
  double self = 0;
  add(static_cast<uint64_t>(n_));
  for (int r = 0; r < n_; ++r) {
    outPeers(s, r, &out, &self);
    add(static_cast<uint64_t>(r));
    add(bits(self));
    for (const PeerWeight& pw : out) {
      add(static_cast<uint64_t>(pw.peer));
      add(bits(pw.weight));
    }
  }
  uint32_t fp = static_cast<uint32_t>(h ^ (h >> 32));
  fingerprints_[s] = (uint64_t{1} << 32) | fp;
  return fp;
}

bool Topology::validated(gcclMixing_t mixing) const {
  int mix = static_cast<int>(mixing);
  if (mix != gcclMixColumnStochastic && mix != gcclMixDoublyStochastic) return false;
  return validated_[mix].load(std::memory_order_acquire);
}

gcclResult_t Topology::restrictedTo(const std::vector<uint8_t>& alive,
                                    std::shared_ptr<Topology>* out) const {
  std::lock_guard<std::mutex> lock(restrictedMutex_);
  for (const auto& [flags, topo] : restricted_)
    if (flags == alive) {
      *out = topo;
      return gcclSuccess;
    }
  const char* call = "re-forming the topology over the survivors";
  const size_t n = static_cast<size_t>(n_);
  GCCL_REQUIRE(alive.size() == n, gcclInternalError, "%s: %zu flags for %d ranks", call,
               alive.size(), n_);
  std::vector<int> members;
  for (size_t r = 0; r < n; ++r)
    if (alive[r]) members.push_back(static_cast<int>(r));
  GCCL_REQUIRE(!members.empty(), gcclInternalError, "%s: no rank is alive", call);
  const int m = static_cast<int>(members.size());
  std::vector<std::vector<std::vector<PeerWeight>>> outLists;
  std::vector<std::vector<double>> self;
  std::vector<PeerWeight> list;
  if (!explicit_) {
    // The same kind for m ranks (bipartite pairs need an even count: an odd
    // one gets the one-peer exponential graph instead).
    gcclTopologyKind_t kind = kind_;
    int p = std::min(p_, std::max(1, m - 1));
    if (kind == gcclTopoBipartiteExponential && m % 2 != 0) kind = gcclTopoExponential;
    if (kind != gcclTopoExponential) p = 1;
    std::unique_ptr<Topology> sub;
    GCCL_CHECK(create(kind, m, p, call, &sub));
    outLists.resize(static_cast<size_t>(sub->period()));
    self.resize(outLists.size());
    for (size_t s = 0; s < outLists.size(); ++s) {
      outLists[s].assign(n, {});
      self[s].assign(n, 1.0);
      for (int i = 0; i < m; ++i) {
        double a = 1;
        sub->outPeers(s, i, &list, &a);
        size_t r = static_cast<size_t>(members[static_cast<size_t>(i)]);
        self[s][r] = a;
        for (const PeerWeight& e : list)
          outLists[s][r].push_back({members[static_cast<size_t>(e.peer)], e.weight});
      }
    }
  } else {
    outLists.resize(static_cast<size_t>(period_));
    self.resize(outLists.size());
    for (size_t s = 0; s < outLists.size(); ++s) {
      const ExplicitStep& st = steps_[s];
      outLists[s].assign(n, {});
      self[s].assign(n, 1.0);
      for (int r : members) {
        size_t i = static_cast<size_t>(r);
        double keep = st.self[i];
        for (size_t k = st.out.start[i]; k < st.out.start[i + 1]; ++k) {
          const PeerWeight& e = st.out.edges[k];
          if (alive[static_cast<size_t>(e.peer)])
            outLists[s][i].push_back(e);
          else
            keep += e.weight;  // what it gave to the failed stays with it
        }
        self[s][i] = keep;
      }
      if (!validated(gcclMixDoublyStochastic)) continue;
      // Rows too: alternately scale rows and columns of the survivors'
      // matrix (Sinkhorn) until both sum to 1.
      std::vector<double> dense(static_cast<size_t>(m) * static_cast<size_t>(m), 0.0);
      std::vector<int> index(n, -1);
      for (int i = 0; i < m; ++i)
        index[static_cast<size_t>(members[static_cast<size_t>(i)])] = i;
      // dense[row * m + col] = a_{row,col}: what col gives to row.
      for (int j = 0; j < m; ++j) {
        size_t r = static_cast<size_t>(members[static_cast<size_t>(j)]);
        dense[static_cast<size_t>(j) * m + j] = self[s][r];
        for (const PeerWeight& e : outLists[s][r])
          dense[static_cast<size_t>(index[static_cast<size_t>(e.peer)]) * m + j] += e.weight;
      }
      for (int iter = 0; iter < 10000; ++iter) {
        double worst = 0;
        for (int i = 0; i < m; ++i) {
          double sum = 0;
          for (int j = 0; j < m; ++j)
            sum += dense[static_cast<size_t>(i) * m + j];
          worst = std::max(worst, std::fabs(sum - 1));
          for (int j = 0; j < m && sum > 0; ++j)
            dense[static_cast<size_t>(i) * m + j] /= sum;
        }
        for (int j = 0; j < m; ++j) {
          double sum = 0;
          for (int i = 0; i < m; ++i)
            sum += dense[static_cast<size_t>(i) * m + j];
          worst = std::max(worst, std::fabs(sum - 1));
          for (int i = 0; i < m && sum > 0; ++i)
            dense[static_cast<size_t>(i) * m + j] /= sum;
        }
        if (worst < kTolerance / 10) break;
      }
      for (int j = 0; j < m; ++j) {
        size_t r = static_cast<size_t>(members[static_cast<size_t>(j)]);
        self[s][r] = dense[static_cast<size_t>(j) * m + j];
        for (PeerWeight& e : outLists[s][r])
          e.weight = dense[static_cast<size_t>(index[static_cast<size_t>(e.peer)]) * m + j];
      }
    }
  }
  std::unique_ptr<Topology> t;
  GCCL_CHECK(fromLists(n_, outLists, self, call, &t));
  std::shared_ptr<Topology> shared(std::move(t));
  restricted_.emplace_back(alive, shared);
  *out = shared;
  return gcclSuccess;
}

}  // namespace gccl
