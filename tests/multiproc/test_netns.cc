// Ranks as separate hosts: two network namespaces joined by a veth pair
// (addresses from 198.18.0.0/15, the benchmarking range, that exist only
// inside the namespaces). Checks interface selection by GCCL_SOCKET_IFNAME
// and the collectives over a real (virtual) link. Needs root and iproute2;
// skips, saying why, otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/multiproc.h"

namespace gccl::test {
namespace {

class TwoHosts : public testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    if (system("command -v ip >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "iproute2 (ip) is not installed";
    tag_ = std::to_string(getpid() % 100000);
    nsA_ = "gccl-a-" + tag_;
    nsB_ = "gccl-b-" + tag_;
    std::string vethA = "vga" + tag_, vethB = "vgb" + tag_;
    std::string script = "set -e; ip netns add " + nsA_ + "; ip netns add " + nsB_ +
                         "; ip link add " + vethA + " type veth peer name " + vethB +
                         "; ip link set " + vethA + " netns " + nsA_ + "; ip link set " + vethB +
                         " netns " + nsB_ + "; ip -n " + nsA_ + " addr add 198.18.0.1/24 dev " +
                         vethA + "; ip -n " + nsB_ + " addr add 198.18.0.2/24 dev " + vethB +
                         "; ip -n " + nsA_ + " link set " + vethA + " up; ip -n " + nsB_ +
                         " link set " + vethB + " up; ip -n " + nsA_ + " link set lo up; ip -n " +
                         nsB_ + " link set lo up";
    if (system(("(" + script + ") >/dev/null 2>&1").c_str()) != 0) {
      TearDown();
      GTEST_SKIP() << "could not create network namespaces and a veth pair here";
    }
    ready_ = true;
  }
  void TearDown() override {
    if (nsA_.empty()) return;
    std::string cmd =
        "ip netns del " + nsA_ + " 2>/dev/null; ip netns del " + nsB_ + " 2>/dev/null";
    (void)!system(cmd.c_str());
  }
  static bool enterNamespace(const std::string& name) {
    int fd = open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    return ok;
  }
  std::string tag_, nsA_, nsB_;
  bool ready_ = false;
};

TEST_F(TwoHosts, CollectivesRunAcrossAVethLinkOnTheSelectedInterface) {
  std::string nsA = nsA_, nsB = nsB_;
  std::string why;
  auto outcomes = runRanks(4, [nsA, nsB](int rank, int n, const gcclUniqueId&) {
    // Ranks 0 and 1 live on host A, ranks 2 and 3 on host B.
    RANK_CHECK(enterNamespace(rank < 2 ? nsA : nsB), "cannot enter the namespace");
    setenv("GCCL_SOCKET_IFNAME", "vg", 1);
    setenv("GCCL_COMM_ID", "198.18.0.1:29517", 1);
    setenv("GCCL_SECRET", "two-hosts", 1);
    gcclUniqueId id;
    RANK_OK(gcclGetUniqueId(&id));
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    std::vector<float> v(1 << 20, static_cast<float>(rank + 1));
    RANK_OK(
        gcclAllReduce(v.data(), v.data(), v.size(), gcclFloat32, gcclSum, comm, nullptr, nullptr));
    for (float x : v)
      RANK_CHECK(x == 10.0f, "AllReduce over veth gave %g", x);
    int token = rank == 3 ? 99 : 0;
    RANK_OK(gcclBroadcast(&token, &token, 1, gcclInt32, 3, comm, nullptr, nullptr));
    RANK_CHECK(token == 99, "Broadcast over veth gave %d", token);
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

TEST_F(TwoHosts, AnInterfaceSpecThatMatchesNothingIsAClearInitError) {
  std::string nsA = nsA_;
  std::string why;
  auto outcomes = runRanks(1, [nsA](int, int, const gcclUniqueId&) {
    RANK_CHECK(enterNamespace(nsA), "cannot enter the namespace");
    setenv("GCCL_SOCKET_IFNAME", "=eth9", 1);
    setenv("GCCL_COMM_ID", "198.18.0.1:29518", 1);
    gcclUniqueId id;
    RANK_OK(gcclGetUniqueId(&id));
    gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
    cfg.timeoutMs = 3000;
    gcclComm_t comm = nullptr;
    RANK_CHECK(gcclCommInitRankConfig(&comm, 1, id, 0, &cfg) != gcclSuccess, "init succeeded");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "eth9") != nullptr, "%s",
               gcclGetLastError(nullptr));
    return 0;
  });
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

}  // namespace
}  // namespace gccl::test
