// Who drives the progress loop, and the benchmark-only emulated latency.
//
// Caller-driven progress (GCCL_CALLER_PROGRESS) hands the loop between the
// progress thread and blocked callers; these tests mix the ways a call can
// wait (blocking, gcclWait on requests one after another, requests left to
// the progress thread while the caller sleeps, groups) with both settings
// and check every result. GCCL_BENCH_DELAY_US must hold every data frame at
// least that long and deliver it intact.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/multiproc.h"

namespace gccl::test {
namespace {

int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void expectAllSucceeded(const std::vector<RankOutcome>& outcomes) {
  std::string why;
  EXPECT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// Every rank holds rank + 1 + i at element i; the sum over ranks is known.
bool sumIsExact(const std::vector<float>& v, int n) {
  for (size_t i = 0; i < v.size(); ++i) {
    float want = static_cast<float>(n * (n + 1) / 2 + n * static_cast<int>(i % 1000));
    if (v[i] != want) return false;
  }
  return true;
}

std::vector<float> input(int rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i)
    v[i] = static_cast<float>(rank + 1 + static_cast<int>(i % 1000));
  return v;
}

class ProgressModes : public testing::TestWithParam<const char*> {};

TEST_P(ProgressModes, EveryWayOfWaitingGetsItsResult) {
  std::string mode = GetParam();
  expectAllSucceeded(runRanks(3, [mode](int rank, int n, const gcclUniqueId& id) {
    setenv("GCCL_CALLER_PROGRESS", mode.c_str(), 1);
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    // Blocking calls back to back, small and large (the lease path).
    for (size_t count : {size_t{1}, size_t{1000}, size_t{1} << 20}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<float> v = input(rank, count);
        RANK_OK(
            gcclAllReduce(v.data(), v.data(), count, gcclFloat32, gcclSum, comm, nullptr, nullptr));
        RANK_CHECK(sumIsExact(v, n), "blocking AllReduce of %zu went wrong", count);
      }
    }
    // Many requests, then gcclWait on each in turn.
    std::vector<std::vector<float>> bufs;
    std::vector<gcclRequest_t> reqs(16);
    for (int k = 0; k < 16; ++k)
      bufs.push_back(input(rank, 4096 + static_cast<size_t>(k)));
    for (int k = 0; k < 16; ++k)
      RANK_OK(gcclAllReduce(bufs[k].data(), bufs[k].data(), bufs[k].size(), gcclFloat32, gcclSum,
                            comm, nullptr, &reqs[k]));
    for (int k = 0; k < 16; ++k) {
      RANK_OK(gcclWait(reqs[k]));
      RANK_CHECK(sumIsExact(bufs[k], n), "request %d went wrong", k);
    }
    // A request that the progress thread must finish alone: the caller
    // sleeps (past any lease) and only tests.
    std::vector<float> big = input(rank, size_t{1} << 20);
    gcclRequest_t req;
    RANK_OK(gcclAllReduce(big.data(), big.data(), big.size(), gcclFloat32, gcclSum, comm, nullptr,
                          &req));
    int done = 0;
    for (int i = 0; i < 6000 && !done; ++i) {
      usleep(10000);
      RANK_OK(gcclTest(req, &done));
    }
    RANK_CHECK(done == 1, "the progress thread did not finish a request on its own in 60 s");
    RANK_CHECK(sumIsExact(big, n), "the request finished by the progress thread went wrong");
    // A group of sends and receives around the ring, blocking.
    std::vector<float> out = input(rank, 100000), in(100000, -1.0f);
    RANK_OK(gcclGroupStart());
    RANK_OK(gcclSend(out.data(), out.size(), gcclFloat32, (rank + 1) % n, comm, nullptr, nullptr));
    RANK_OK(
        gcclRecv(in.data(), in.size(), gcclFloat32, (rank + n - 1) % n, comm, nullptr, nullptr));
    RANK_OK(gcclGroupEnd());
    RANK_CHECK(in == input((rank + n - 1) % n, 100000), "the ring exchange went wrong");
    // A blocking call from a second thread while the first waits on a request.
    std::vector<float> a = input(rank, 50000), b = input(rank, 70000);
    gcclRequest_t ra;
    RANK_OK(gcclAllReduce(a.data(), a.data(), a.size(), gcclFloat32, gcclSum, comm, nullptr, &ra));
    gcclResult_t rb = gcclInternalError;
    std::thread other([&] {
      rb =
          gcclAllReduce(b.data(), b.data(), b.size(), gcclFloat32, gcclSum, comm, nullptr, nullptr);
    });
    gcclResult_t rw = gcclWait(ra);
    other.join();
    RANK_CHECK(rw == gcclSuccess && rb == gcclSuccess, "two waiting threads: %s / %s",
               gcclGetErrorString(rw), gcclGetErrorString(rb));
    RANK_CHECK(sumIsExact(a, n) && sumIsExact(b, n), "two waiting threads got wrong sums");
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  }));
}

INSTANTIATE_TEST_SUITE_P(CallerProgress, ProgressModes, testing::Values("1", "0"),
                         [](const testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param[0] == '1' ? "CallerDrives" : "ThreadOnly");
                         });

TEST(EmulatedLatency, EveryDataFrameIsHeldAtLeastTheDelayAndArrivesIntact) {
  constexpr int64_t kDelayUs = 20000;
  expectAllSucceeded(runRanks(2, [](int rank, int n, const gcclUniqueId& id) {
    setenv("GCCL_BENCH_DELAY_US", std::to_string(kDelayUs).c_str(), 1);
    setenv("GCCL_TRANSPORT", "tcp", 1);  // the emulated latency is the TCP transport's
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    int peer = 1 - rank;
    // Ping-pong of 8 bytes: each round trip crosses the wire twice.
    uint64_t token = 0;
    RANK_OK(gcclBarrier(comm, nullptr, nullptr));
    int64_t t0 = nowUs();
    constexpr int kRounds = 5;
    for (int r = 0; r < kRounds; ++r) {
      if (rank == 0) {
        token = 1000 + static_cast<uint64_t>(r);
        RANK_OK(gcclSend(&token, 1, gcclUint64, peer, comm, nullptr, nullptr));
        RANK_OK(gcclRecv(&token, 1, gcclUint64, peer, comm, nullptr, nullptr));
        RANK_CHECK(token == 2000 + static_cast<uint64_t>(r), "round %d came back as %llu", r,
                   static_cast<unsigned long long>(token));
      } else {
        RANK_OK(gcclRecv(&token, 1, gcclUint64, peer, comm, nullptr, nullptr));
        RANK_CHECK(token == 1000 + static_cast<uint64_t>(r), "round %d arrived as %llu", r,
                   static_cast<unsigned long long>(token));
        token += 1000;
        RANK_OK(gcclSend(&token, 1, gcclUint64, peer, comm, nullptr, nullptr));
      }
    }
    int64_t elapsed = nowUs() - t0;
    if (rank == 0)
      RANK_CHECK(elapsed >= 2 * kRounds * kDelayUs, "%d round trips took %lld us, less than %lld",
                 kRounds, static_cast<long long>(elapsed),
                 static_cast<long long>(2 * kRounds * kDelayUs));
    // A large striped message and a collective arrive intact.
    std::vector<float> v = input(rank, size_t{1} << 21);
    RANK_OK(
        gcclAllReduce(v.data(), v.data(), v.size(), gcclFloat32, gcclSum, comm, nullptr, nullptr));
    RANK_CHECK(sumIsExact(v, n), "AllReduce under emulated latency went wrong");
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  }));
}

// perf/netem/netem.sh: ranks as hosts in namespaces on shaped links, with the
// emulated latency; sgp_bench checks its own results and exits non-zero on a
// wrong one.
TEST(EmulatedNetwork, NetemScriptRunsRanksAsShapedHosts) {
  if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  if (system("command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "iproute2 (ip, tc) is not installed";
  const char* bin = getenv("GCCL_TEST_BINARY_DIR");
  ASSERT_NE(bin, nullptr) << "GCCL_TEST_BINARY_DIR is not set (run through ctest)";
  if (access((std::string(bin) + "/perf/sgp_bench").c_str(), X_OK) != 0)
    GTEST_SKIP() << "perf/sgp_bench is not built in this configuration (GCCL_BUILD_PERF=OFF)";
  // Namespaced hosts reach each other over TCP only, whatever the suite forces.
  std::string cmd = "GCCL_TRANSPORT=tcp " + std::string(GCCL_SOURCE_DIR) +
                    "/perf/netem/netem.sh -n 3 --rate 200mbit " +
                    "--delay-us 2000 --timeout 120 -- " + bin +
                    "/perf/sgp_bench -b 256k -c 5 -i 3 -w 1 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr)
    out += buf;
  int status = pclose(p);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
    GTEST_SKIP() << "this machine cannot build the emulated network: " << out;
  ASSERT_EQ(status, 0) << out;
  for (const char* m : {"allreduce", "pushsum", "osgp"})
    EXPECT_NE(out.find(std::string("  ") + m), std::string::npos) << out;
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
}

}  // namespace
}  // namespace gccl::test
