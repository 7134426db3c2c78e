// Compressed gossip across processes: PushSum, neighbour averaging, overlap
// SGP and pairwise gossip with every codec the gossip calls take. Each keeps
// the sums over ranks of x (and of the push-sum weight) constant up to
// rounding, and brings the ranks to consensus down to the codec's noise
// floor; ranks configured differently, and lattices out of range, fail with
// errors that say so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/multiproc.h"
#include "common/run_ranks.h"

namespace gccl::test {
namespace {

constexpr int kRanks = 4;
constexpr size_t kCount = 600;

// The codecs under test, each with the model type it runs on.
struct Case {
  const char* name;
  gcclCodec_t codec;
  int bits;
  gcclRounding_t rounding;
  double latticeStep;
  gcclDataType_t type;
};

const Case kCases[] = {
    {"float16", gcclCodecFloat16, 8, gcclRoundNearest, 0, gcclFloat32},
    {"bfloat16", gcclCodecBfloat16, 8, gcclRoundNearest, 0, gcclFloat64},
    {"q8-nearest", gcclCodecQuantize, 8, gcclRoundNearest, 0, gcclFloat32},
    {"q4-stochastic", gcclCodecQuantize, 4, gcclRoundStochastic, 0, gcclFloat64},
    {"q2-nearest", gcclCodecQuantize, 2, gcclRoundNearest, 0, gcclFloat64},
    {"lattice8-nearest", gcclCodecLattice, 8, gcclRoundNearest, 0.5, gcclFloat64},
    {"lattice8-stochastic", gcclCodecLattice, 8, gcclRoundStochastic, 0.5, gcclFloat32},
};
constexpr int kCases_n = sizeof(kCases) / sizeof(kCases[0]);

gcclCodecConfig_t configFor(const Case& c) {
  gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
  cfg.codec = c.codec;
  cfg.bits = c.bits;
  cfg.bucket = 100;  // several buckets per slice, the last one partial
  cfg.rounding = c.rounding;
  cfg.latticeStep = c.latticeStep;
  cfg.seed = 99;
  return cfg;
}

// Rank r's starting model: 0..44, differing between ranks and elements.
double initial(int rank, size_t i) {
  return static_cast<double>((rank * 7 + static_cast<int>(i) * 3) % 11) * (1 + rank) +
         0.37 * std::sin(static_cast<double>(i));
}

// The floor consensus may stop at: a quantization step (the models' range
// over 2^b - 1), a lattice step, or the cast's spacing near the largest value.
double noiseFloor(const Case& c) {
  const double range = 45;
  switch (c.codec) {
    case gcclCodecFloat16:
      return std::ldexp(1.0, 5 - 10);  // spacing of float16 in [32, 64)
    case gcclCodecBfloat16:
      return std::ldexp(1.0, 5 - 7);
    case gcclCodecQuantize:
      return range / ((1 << c.bits) - 1);
    case gcclCodecLattice:
      return 2 * c.latticeStep;
    default:
      return 0;
  }
}

struct Board {
  double value[kCases_n][kRanks][kCount];
  double weight[kCases_n][kRanks];
};

// Sets the model of `rank` to its start in the case's type.
struct Model {
  std::vector<float> f32;
  std::vector<double> f64;
  gcclDataType_t type;
  explicit Model(gcclDataType_t t, int rank) : f32(kCount), f64(kCount), type(t) {
    for (size_t i = 0; i < kCount; ++i)
      f32[i] = static_cast<float>(f64[i] = initial(rank, i));
  }
  void* data() { return type == gcclFloat32 ? static_cast<void*>(f32.data()) : f64.data(); }
  double at(size_t i) const { return type == gcclFloat32 ? f32[i] : f64[i]; }
};

// Mass and consensus of every case from the board: the sums of x (and w)
// equal the starting ones up to rounding, and each rank's x / w is within
// the case's floor of the average.
void expectConservedAndAgreed(const Board& b, bool pushSum, const char* what) {
  for (int c = 0; c < kCases_n; ++c) {
    const Case& k = kCases[c];
    double tol = k.type == gcclFloat32 ? 2e-5 : 1e-10;
    if (pushSum) {
      double wsum = 0;
      for (int r = 0; r < kRanks; ++r)
        wsum += b.weight[c][r];
      EXPECT_NEAR(wsum, kRanks, 1e-12) << what << " " << k.name;
    }
    double worst = 0;
    for (size_t i = 0; i < kCount; ++i) {
      double before = 0, after = 0;
      for (int r = 0; r < kRanks; ++r) {
        before += initial(r, i);
        after += b.value[c][r][i];
      }
      ASSERT_NEAR(after, before, tol * std::max(1.0, std::fabs(before)))
          << what << " " << k.name << ": the sum of element " << i << " over ranks changed";
      for (int r = 0; r < kRanks; ++r) {
        double z = b.value[c][r][i] / (pushSum ? b.weight[c][r] : 1.0);
        worst = std::max(worst, std::fabs(z - before / kRanks));
      }
    }
    EXPECT_LE(worst, noiseFloor(k)) << what << " " << k.name << ": no consensus";
    printf("%s %-20s consensus distance %.3g (floor %.3g)\n", what, k.name, worst, noiseFloor(k));
  }
}

gcclGossipOptions_t optionsWith(const gcclCodecConfig_t* codec) {
  gcclGossipOptions_t o = GCCL_GOSSIP_OPTIONS_INITIALIZER;
  o.codec = codec;
  return o;
}

// Small slices, so that every tensor travels in several encoded pieces.
void smallSlices() {
  setenv("GCCL_CHUNK_BYTES", "1024", 1);
}

TEST(CompressedGossip, PushSumConservesMassAndReachesConsensusWithEveryCodec) {
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(kRanks, [board](int rank, int n, const gcclUniqueId& id) {
    smallSlices();
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    for (int c = 0; c < kCases_n; ++c) {
      gcclCodecConfig_t cfg = configFor(kCases[c]);
      gcclGossipOptions_t opts = optionsWith(&cfg);
      Model m(kCases[c].type, rank);
      double w = 1;
      for (uint64_t k = 0; k < 30; ++k)
        RANK_OK(
            gcclPushSumEx(m.data(), kCount, m.type, &w, topo, k, &opts, comm, nullptr, nullptr));
      for (size_t i = 0; i < kCount; ++i)
        board->value[c][rank][i] = m.at(i);
      board->weight[c][rank] = w;
    }
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  expectConservedAndAgreed(*board, true, "PushSum");
}

TEST(CompressedGossip, NeighborAverageConservesTheSumInPlaceAndOutOfPlace) {
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(kRanks, [board](int rank, int n, const gcclUniqueId& id) {
    smallSlices();
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoRing, n, 1));
    for (int c = 0; c < kCases_n; ++c) {
      gcclCodecConfig_t cfg = configFor(kCases[c]);
      gcclGossipOptions_t opts = optionsWith(&cfg);
      Model m(kCases[c].type, rank), other(kCases[c].type, rank);
      for (uint64_t k = 0; k < 40; ++k) {
        // Odd steps out of place (into `other`, then back), even steps in place.
        if (k % 2 == 0) {
          RANK_OK(gcclNeighborAverageEx(m.data(), m.data(), kCount, m.type, topo, k, &opts, comm,
                                        nullptr, nullptr));
        } else {
          RANK_OK(gcclNeighborAverageEx(m.data(), other.data(), kCount, m.type, topo, k, &opts,
                                        comm, nullptr, nullptr));
          std::swap(m.f32, other.f32);
          std::swap(m.f64, other.f64);
        }
      }
      for (size_t i = 0; i < kCount; ++i)
        board->value[c][rank][i] = m.at(i);
    }
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  expectConservedAndAgreed(*board, false, "NeighborAverage");
}

TEST(CompressedGossip, OverlapSgpConservesMassOnceDestroyed) {
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(kRanks, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    for (int c = 0; c < kCases_n; ++c) {
      gcclCodecConfig_t cfg = configFor(kCases[c]);
      gcclGossipOptions_t opts = optionsWith(&cfg);
      Model m(kCases[c].type, rank);
      double w = 1;
      gcclGossip_t g;
      RANK_OK(gcclGossipCreateEx(&g, m.data(), kCount, m.type, &w, topo, 1, &opts, comm));
      for (uint64_t k = 0; k < 40; ++k) {
        RANK_OK(gcclGossipStart(g, k));
        RANK_OK(gcclGossipFinish(g, k));
      }
      RANK_OK(gcclGossipDestroy(g));
      for (size_t i = 0; i < kCount; ++i)
        board->value[c][rank][i] = m.at(i);
      board->weight[c][rank] = w;
    }
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  expectConservedAndAgreed(*board, true, "OverlapSgp");
}

TEST(CompressedGossip, PairwiseExchangesConserveTheSumOfTheModels) {
  SharedArea area(sizeof(Board));
  auto* board = area.as<Board>();
  runAndExpect(kRanks, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoRing, n, 1));
    for (int c = 0; c < kCases_n; ++c) {
      gcclCodecConfig_t cfg = configFor(kCases[c]);
      gcclGossipOptions_t opts = optionsWith(&cfg);
      Model m(kCases[c].type, rank);
      gcclPairwise_t pw;
      RANK_OK(gcclPairwiseCreateEx(&pw, m.data(), kCount, m.type, topo, 11, &opts, comm));
      for (uint64_t k = 0; k < 150; ++k)
        RANK_OK(gcclPairwiseExchange(pw, k, nullptr));
      RANK_OK(gcclPairwiseDestroy(pw));
      for (size_t i = 0; i < kCount; ++i)
        board->value[c][rank][i] = m.at(i);
    }
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  expectConservedAndAgreed(*board, false, "Pairwise");
}

TEST(CompressedGossip, BadOptionsAreRefusedBeforeAnythingChanges) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint16_t half[8] = {};
    double w = 1;
    auto refused = [&](const gcclGossipOptions_t* o, void* buf, gcclDataType_t t,
                       const char* words) {
      gcclResult_t r = gcclPushSumEx(buf, 8, t, &w, topo, 0, o, comm, nullptr, nullptr);
      const char* why = gcclGetLastError(comm);
      if (r != gcclInvalidArgument || strstr(why, words) == nullptr) {
        fprintf(stderr, "expected a refusal naming '%s', got %s: %s\n", words,
                gcclGetErrorString(r), why);
        return false;
      }
      return true;
    };
    gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    gcclGossipOptions_t opts = optionsWith(&cfg);
    gcclGossipOptions_t badMagic = opts;
    badMagic.magic = 1;
    RANK_CHECK(refused(&badMagic, x, gcclFloat32, "GCCL_GOSSIP_OPTIONS_MAGIC"), "bad magic");
    gcclGossipOptions_t small = opts;
    small.size = 4;
    RANK_CHECK(refused(&small, x, gcclFloat32, "size"), "small options");
    cfg.magic = 7;
    RANK_CHECK(refused(&opts, x, gcclFloat32, "GCCL_CODEC_CONFIG_MAGIC"), "bad codec magic");
    cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    cfg.codec = gcclCodecTopK;
    RANK_CHECK(refused(&opts, x, gcclFloat32, "gradients"), "top-k gossip");
    cfg.codec = gcclCodecQuantize;
    cfg.bits = 3;
    RANK_CHECK(refused(&opts, x, gcclFloat32, "bits is 3"), "3 bits");
    cfg.bits = 8;
    cfg.bucket = 0;
    RANK_CHECK(refused(&opts, x, gcclFloat32, "bucket"), "empty bucket");
    cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    cfg.codec = gcclCodecLattice;
    RANK_CHECK(refused(&opts, x, gcclFloat32, "latticeStep"), "lattice without a step");
    cfg.codec = static_cast<gcclCodec_t>(42);
    RANK_CHECK(refused(&opts, x, gcclFloat32, "codec 42"), "unknown codec");
    cfg.codec = gcclCodecFloat16;
    RANK_CHECK(refused(&opts, half, gcclFloat16, "float"), "float16 cast of a float16 model");
    for (int i = 0; i < 8; ++i)
      RANK_CHECK(x[i] == i + 1, "a refused call changed x");
    RANK_CHECK(w == 1, "a refused call changed the weight");
    // The same refusals on the gossip objects.
    cfg.codec = gcclCodecTopK;
    gcclGossip_t g;
    RANK_CHECK(
        gcclGossipCreateEx(&g, x, 8, gcclFloat32, &w, topo, 1, &opts, comm) == gcclInvalidArgument,
        "top-k overlap SGP accepted");
    gcclTopology_t ring;
    RANK_OK(gcclTopologyCreate(&ring, gcclTopoRing, n, 1));
    gcclPairwise_t pw;
    RANK_CHECK(
        gcclPairwiseCreateEx(&pw, x, 8, gcclFloat32, ring, 1, &opts, comm) == gcclInvalidArgument,
        "top-k pairwise accepted");
    // NULL options and gcclCodecNone are the uncompressed calls; the
    // communicator still works.
    RANK_OK(gcclPushSumEx(x, 8, gcclFloat32, &w, topo, 0, nullptr, comm, nullptr, nullptr));
    cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    RANK_OK(gcclPushSumEx(x, 8, gcclFloat32, &w, topo, 1, &opts, comm, nullptr, nullptr));
    RANK_OK(gcclTopologyDestroy(ring));
    RANK_OK(gcclTopologyDestroy(topo));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

// Rank 0 quantizes, rank 1 casts: both are told the ranks differ.
TEST(CompressedGossip, RanksWithDifferentCodecsGetAnErrorNamingIt) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    std::vector<float> x(64, static_cast<float>(rank));
    double w = 1;
    gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    cfg.codec = rank == 0 ? gcclCodecQuantize : gcclCodecFloat16;
    gcclGossipOptions_t opts = optionsWith(&cfg);
    gcclResult_t r =
        gcclPushSumEx(x.data(), x.size(), gcclFloat32, &w, topo, 0, &opts, comm, nullptr, nullptr);
    const char* why = gcclGetLastError(comm);
    RANK_CHECK(r != gcclSuccess, "a step with different codecs succeeded");
    RANK_CHECK(strstr(why, "different codecs") != nullptr, "%s", why);
    gcclTopologyDestroy(topo);
    gcclCommDestroy(comm);
    return 0;
  });
}

// Two models 1000 apart on a lattice of step 0.01 with 8 bits (range about
// +-1.27): the receiver cannot place the codes and says which bucket.
TEST(CompressedGossip, ALatticeOutOfRangeIsAnErrorNotAWrongValue) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t topo;
    RANK_OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
    std::vector<double> x(64, rank == 0 ? 0.0 : 1000.0);
    double w = 1;
    gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    cfg.codec = gcclCodecLattice;
    cfg.latticeStep = 0.01;
    gcclGossipOptions_t opts = optionsWith(&cfg);
    gcclResult_t r =
        gcclPushSumEx(x.data(), x.size(), gcclFloat64, &w, topo, 0, &opts, comm, nullptr, nullptr);
    const char* why = gcclGetLastError(comm);
    RANK_CHECK(r != gcclSuccess, "an out-of-range lattice step succeeded");
    RANK_CHECK(strstr(why, "bucket") != nullptr, "%s", why);
    RANK_CHECK(strstr(why, "rank") != nullptr, "%s", why);
    for (double v : x)
      RANK_CHECK(v == (rank == 0 ? 0.0 : 1000.0), "the failed step changed x to %g", v);
    gcclTopologyDestroy(topo);
    gcclCommDestroy(comm);
    return 0;
  });
}

// Local SGD: models are averaged exactly every K steps, compressed or not,
// or mixed with a neighbour-averaging step.
TEST(LocalSgd, AveragesEveryIntervalStepsExactlyCompressedOrByGossip) {
  struct AvgBoard {
    double exact[kRanks][kCount];
    double coded[kRanks][kCount];
    double gossip[kRanks][kCount];
  };
  SharedArea area(sizeof(AvgBoard));
  auto* board = area.as<AvgBoard>();
  runAndExpect(kRanks, [board](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    gcclTopology_t ring;
    RANK_OK(gcclTopologyCreate(&ring, gcclTopoRing, n, 1));
    std::vector<double> x(kCount);
    auto start = [&]() {
      for (size_t i = 0; i < kCount; ++i)
        x[i] = initial(rank, i);
    };
    gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
    cfg.codec = gcclCodecQuantize;
    gcclGossipOptions_t opts = optionsWith(&cfg);
    struct Run {
      gcclAverageMethod_t method;
      const gcclGossipOptions_t* options;
      double (*out)[kCount];
    } runs[] = {{gcclAverageAllReduce, nullptr, board->exact},
                {gcclAverageAllReduce, &opts, board->coded},
                {gcclAverageGossip, &opts, board->gossip}};
    for (const Run& run : runs) {
      start();
      gcclLocalSgd_t h;
      RANK_OK(gcclLocalSgdCreate(&h, x.data(), kCount, gcclFloat64, 3, run.method, ring,
                                 run.options, comm));
      for (uint64_t k = 0; k < 6; ++k) {
        int averaged = -1;
        RANK_OK(gcclLocalSgdStep(h, k, &averaged));
        RANK_CHECK(averaged == (k % 3 == 2 ? 1 : 0), "step %llu: averaged = %d",
                   static_cast<unsigned long long>(k), averaged);
      }
      RANK_OK(gcclLocalSgdDestroy(h));
      for (size_t i = 0; i < kCount; ++i)
        run.out[rank][i] = x[i];
    }
    gcclLocalSgd_t h;
    RANK_CHECK(gcclLocalSgdCreate(&h, x.data(), kCount, gcclFloat64, 0, gcclAverageAllReduce,
                                  nullptr, nullptr, comm) == gcclInvalidArgument,
               "interval 0 accepted");
    RANK_CHECK(strstr(gcclGetLastError(comm), "interval 0") != nullptr, "%s",
               gcclGetLastError(comm));
    RANK_CHECK(gcclLocalSgdCreate(&h, x.data(), kCount, gcclFloat64, 2, gcclAverageGossip, nullptr,
                                  nullptr, comm) == gcclInvalidArgument,
               "gossip without a topology accepted");
    RANK_CHECK(gcclLocalSgdCreate(&h, x.data(), kCount, gcclFloat64, 2,
                                  static_cast<gcclAverageMethod_t>(9), nullptr, nullptr,
                                  comm) == gcclInvalidArgument,
               "method 9 accepted");
    RANK_OK(gcclTopologyDestroy(ring));
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  const double scale = 45.0 / 255;  // one 8-bit step over the models' range
  for (size_t i = 0; i < kCount; ++i) {
    double sum = 0;
    for (int r = 0; r < kRanks; ++r)
      sum += initial(r, i);
    double gossipSum = 0;
    for (int r = 0; r < kRanks; ++r) {
      ASSERT_NEAR(board->exact[r][i], sum / kRanks, 1e-12) << "rank " << r << " element " << i;
      ASSERT_EQ(memcmp(&board->coded[r][i], &board->coded[0][i], sizeof(double)), 0)
          << "the compressed average differs between ranks 0 and " << r << " at element " << i;
      ASSERT_NEAR(board->coded[r][i], sum / kRanks, scale / 2 + 1e-9) << "element " << i;
      gossipSum += board->gossip[r][i];
    }
    ASSERT_NEAR(gossipSum, sum, 1e-9 * std::max(1.0, sum)) << "element " << i;
  }
}

}  // namespace
}  // namespace gccl::test
