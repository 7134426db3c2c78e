// Rendezvous from the launchers' environments: torchrun, SLURM, Open MPI
// (file rendezvous on one host) and GCCL_COMM_ID; and a shared secret that
// does not match.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/multiproc.h"
#include "common/run_ranks.h"

namespace gccl::test {
namespace {

int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Every rank sums rank+1 and checks n(n+1)/2.
int sumCheck(gcclComm_t comm, int rank, int n) {
  int count = 0, me = -1;
  RANK_OK(gcclCommCount(comm, &count));
  RANK_OK(gcclCommUserRank(comm, &me));
  RANK_CHECK(count == n && me == rank, "comm says rank %d of %d, launcher said %d of %d", me, count,
             rank, n);
  int64_t v = rank + 1;
  RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt64, gcclSum, comm, nullptr, nullptr));
  RANK_CHECK(v == static_cast<int64_t>(n) * (n + 1) / 2, "sum %lld", static_cast<long long>(v));
  RANK_OK(gcclCommDestroy(comm));
  return 0;
}

TEST(LauncherEnv, TorchrunVariablesRendezvousAtMasterPortPlusOffset) {
  int port = freeLoopbackPort();
  runAndExpect(3, [port](int rank, int n, const gcclUniqueId&) {
    setenv("RANK", std::to_string(rank).c_str(), 1);
    setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
    setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", std::to_string(port - 1).c_str(), 1);
    setenv("GCCL_SECRET", "torchrun-test", 1);
    gcclComm_t comm;
    RANK_OK(gcclCommInitFromEnv(&comm, nullptr));
    return sumCheck(comm, rank, n);
  });
}

TEST(LauncherEnv, SlurmVariablesWithGcclCommId) {
  int port = freeLoopbackPort();
  runAndExpect(4, [port](int rank, int n, const gcclUniqueId&) {
    setenv("SLURM_PROCID", std::to_string(rank).c_str(), 1);
    setenv("SLURM_NTASKS", std::to_string(n).c_str(), 1);
    setenv("SLURM_LOCALID", std::to_string(rank).c_str(), 1);
    setenv("SLURM_JOB_ID", "4242", 1);
    setenv("SLURM_STEP_ID", "0", 1);
    setenv("GCCL_COMM_ID", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
    gcclComm_t comm;
    RANK_OK(gcclCommInitFromEnv(&comm, nullptr));
    return sumCheck(comm, rank, n);
  });
}

TEST(LauncherEnv, OpenMpiVariablesOnOneHostUseTheFileRendezvous) {
  std::string job = "test-" + std::to_string(getpid());
  runAndExpect(4, [job](int rank, int n, const gcclUniqueId&) {
    setenv("OMPI_COMM_WORLD_RANK", std::to_string(rank).c_str(), 1);
    setenv("OMPI_COMM_WORLD_SIZE", std::to_string(n).c_str(), 1);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(rank).c_str(), 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(n).c_str(), 1);
    setenv("OMPI_MCA_ess_base_jobid", job.c_str(), 1);
    unsetenv("GCCL_COMM_ID");
    unsetenv("MASTER_ADDR");
    gcclComm_t comm;
    RANK_OK(gcclCommInitFromEnv(&comm, nullptr));
    return sumCheck(comm, rank, n);
  });
}

TEST(LauncherEnv, NoLauncherIsAClearError) {
  runAndExpect(1, [](int, int, const gcclUniqueId&) {
    for (const char* v : {"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"})
      unsetenv(v);
    gcclComm_t comm = nullptr;
    RANK_CHECK(gcclCommInitFromEnv(&comm, nullptr) != gcclSuccess,
               "init without a launcher worked");
    RANK_CHECK(strlen(gcclGetLastError(nullptr)) > 0, "no reason given");
    return 0;
  });
}

TEST(CommId, GetUniqueIdWithGcclCommIdIsTheSameOnEveryRank) {
  int port = freeLoopbackPort();
  runAndExpect(3, [port](int rank, int n, const gcclUniqueId&) {
    setenv("GCCL_COMM_ID", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
    setenv("GCCL_SECRET", "shared", 1);
    gcclUniqueId id;
    RANK_OK(gcclGetUniqueId(&id));
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    return sumCheck(comm, rank, n);
  });
}

TEST(CommId, ARankWithTheWrongSecretCannotJoin) {
  int port = freeLoopbackPort();
  runAndExpect(2, [port](int rank, int n, const gcclUniqueId&) {
    setenv("GCCL_COMM_ID", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
    setenv("GCCL_SECRET", rank == 0 ? "right" : "wrong", 1);
    gcclUniqueId id;
    RANK_OK(gcclGetUniqueId(&id));
    gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
    cfg.timeoutMs = 2000;
    gcclComm_t comm = nullptr;
    gcclResult_t r = gcclCommInitRankConfig(&comm, n, id, rank, &cfg);
    RANK_CHECK(r != gcclSuccess, "rank %d joined despite the secret mismatch", rank);
    if (rank == 1)
      RANK_CHECK(strstr(gcclGetLastError(nullptr), "secret") != nullptr, "%s",
                 gcclGetLastError(nullptr));
    return 0;
  });
}

}  // namespace
}  // namespace gccl::test
