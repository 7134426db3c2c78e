// Launcher environments, read from fake environments so that the test does not
// depend on (or disturb) the process's own.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "base/check.h"
#include "core/launcher_env.h"

namespace gccl {
namespace {

using EnvMap = std::map<std::string, std::string>;

gcclResult_t readFrom(const EnvMap& env, LauncherEnv* out) {
  return readLauncherEnv(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      out);
}

bool errorMentions(const std::string& needle) {
  return std::string(threadLastError()).find(needle) != std::string::npos;
}

// Expects `code` and a message that names every string in `mentions`.
void expectError(const EnvMap& env, gcclResult_t code,
                 std::initializer_list<const char*> mentions) {
  clearThreadLastError();  // so that a stale message cannot pass for this one
  LauncherEnv out;
  out.launcher = "untouched";
  EXPECT_EQ(code, readFrom(env, &out));
  for (const char* m : mentions)
    EXPECT_TRUE(errorMentions(m)) << threadLastError();
  EXPECT_EQ(out.launcher, "untouched") << "output written on failure";
}

TEST(LauncherEnv, OpenMpi) {
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom({{"OMPI_COMM_WORLD_RANK", "3"},
                                   {"OMPI_COMM_WORLD_SIZE", "8"},
                                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                   {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                   {"OMPI_MCA_ess_base_jobid", "12345"}},
                                  &e))
      << threadLastError();
  EXPECT_EQ(e.launcher, "ompi");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.size, 8);
  EXPECT_EQ(e.localRank, 1);
  EXPECT_EQ(e.localSize, 2);
  EXPECT_EQ(e.jobId, "12345");
  EXPECT_EQ(e.masterAddr, "");
  EXPECT_EQ(e.masterPort, -1);
}

TEST(LauncherEnv, OpenMpiJobIdSources) {
  EnvMap base = {{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "1"}};
  LauncherEnv e;

  EnvMap pmix = base;
  pmix["PMIX_NAMESPACE"] = "prterun-host-4242@1";
  ASSERT_EQ(gcclSuccess, readFrom(pmix, &e)) << threadLastError();
  EXPECT_EQ(e.jobId, "prterun-host-4242@1");

  EnvMap orte = base;
  orte["OMPI_MCA_orte_ess_jobid"] = "777";
  ASSERT_EQ(gcclSuccess, readFrom(orte, &e)) << threadLastError();
  EXPECT_EQ(e.jobId, "777");

  EnvMap both = pmix;
  both["OMPI_MCA_ess_base_jobid"] = "999";
  ASSERT_EQ(gcclSuccess, readFrom(both, &e)) << threadLastError();
  EXPECT_EQ(e.jobId, "999");

  ASSERT_EQ(gcclSuccess, readFrom(base, &e)) << threadLastError();
  EXPECT_EQ(e.jobId, "");
  EXPECT_EQ(e.localRank, -1);  // not given
  EXPECT_EQ(e.localSize, -1);
}

TEST(LauncherEnv, Pmi) {
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom({{"PMI_RANK", "5"},
                                   {"PMI_SIZE", "6"},
                                   {"MPI_LOCALRANKID", "2"},
                                   {"MPI_LOCALNRANKS", "3"},
                                   {"PMI_JOBID", "job7"}},
                                  &e))
      << threadLastError();
  EXPECT_EQ(e.launcher, "pmi");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.size, 6);
  EXPECT_EQ(e.localRank, 2);
  EXPECT_EQ(e.localSize, 3);
  EXPECT_EQ(e.jobId, "job7");

  ASSERT_EQ(gcclSuccess, readFrom({{"PMI_RANK", "0"}, {"PMI_SIZE", "1"}}, &e));
  EXPECT_EQ(e.jobId, "");
}

TEST(LauncherEnv, Slurm) {
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom({{"SLURM_PROCID", "4"},
                                   {"SLURM_NTASKS", "16"},
                                   {"SLURM_LOCALID", "0"},
                                   {"SLURM_NTASKS_PER_NODE", "4"},
                                   {"SLURM_TASKS_PER_NODE", "4(x4)"},
                                   {"SLURM_JOB_ID", "81234"},
                                   {"SLURM_STEP_ID", "2"}},
                                  &e))
      << threadLastError();
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 4);
  EXPECT_EQ(e.size, 16);
  EXPECT_EQ(e.localRank, 0);
  EXPECT_EQ(e.localSize, 4);
  EXPECT_EQ(e.jobId, "81234.2");
}

TEST(LauncherEnv, SlurmLocalSizeFromTasksPerNode) {
  EnvMap base = {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "11"}, {"SLURM_LOCALID", "0"}};
  LauncherEnv e;

  EnvMap first = base;
  first["SLURM_TASKS_PER_NODE"] = "4(x2),3";
  ASSERT_EQ(gcclSuccess, readFrom(first, &e)) << threadLastError();
  EXPECT_EQ(e.localSize, 4);

  // A per-node count that is not a plain integer falls back to the list.
  EnvMap notPlain = first;
  notPlain["SLURM_NTASKS_PER_NODE"] = "4(x2)";
  ASSERT_EQ(gcclSuccess, readFrom(notPlain, &e)) << threadLastError();
  EXPECT_EQ(e.localSize, 4);

  // With the node id, the node's own entry: node 2 is the one with 3 tasks.
  EnvMap third = first;
  third["SLURM_NODEID"] = "2";
  ASSERT_EQ(gcclSuccess, readFrom(third, &e)) << threadLastError();
  EXPECT_EQ(e.localSize, 3);
  third["SLURM_NODEID"] = "1";
  ASSERT_EQ(gcclSuccess, readFrom(third, &e)) << threadLastError();
  EXPECT_EQ(e.localSize, 4);

  // Neither variable: the local size is unknown, not an error.
  ASSERT_EQ(gcclSuccess, readFrom(base, &e)) << threadLastError();
  EXPECT_EQ(e.localSize, -1);
  EXPECT_EQ(e.jobId, "");
}

TEST(LauncherEnv, SlurmJobIdWithoutStepAndOldSpellings) {
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess,
            readFrom({{"SLURM_PROCID", "1"}, {"SLURM_NPROCS", "2"}, {"SLURM_JOBID", "55"}}, &e))
      << threadLastError();
  EXPECT_EQ(e.size, 2);
  EXPECT_EQ(e.jobId, "55");
}

TEST(LauncherEnv, Torchrun) {
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom({{"RANK", "7"},
                                   {"WORLD_SIZE", "8"},
                                   {"LOCAL_RANK", "3"},
                                   {"LOCAL_WORLD_SIZE", "4"},
                                   {"TORCHELASTIC_RUN_ID", "abc-123"},
                                   {"MASTER_ADDR", "node01"},
                                   {"MASTER_PORT", "29500"}},
                                  &e))
      << threadLastError();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 7);
  EXPECT_EQ(e.size, 8);
  EXPECT_EQ(e.localRank, 3);
  EXPECT_EQ(e.localSize, 4);
  EXPECT_EQ(e.jobId, "abc-123");
  EXPECT_EQ(e.masterAddr, "node01");
  EXPECT_EQ(e.masterPort, 29500);
}

TEST(LauncherEnv, MasterAddrWithOtherLaunchers) {
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom({{"OMPI_COMM_WORLD_RANK", "0"},
                                   {"OMPI_COMM_WORLD_SIZE", "2"},
                                   {"MASTER_ADDR", "10.0.0.1"},
                                   {"MASTER_PORT", "1"}},
                                  &e))
      << threadLastError();
  EXPECT_EQ(e.masterAddr, "10.0.0.1");
  EXPECT_EQ(e.masterPort, 1);
  ASSERT_EQ(gcclSuccess,
            readFrom({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "65535"}}, &e));
  EXPECT_EQ(e.masterPort, 65535);
}

TEST(LauncherEnv, Precedence) {
  EnvMap all = {{"OMPI_COMM_WORLD_RANK", "1"},
                {"OMPI_COMM_WORLD_SIZE", "10"},
                {"PMI_RANK", "2"},
                {"PMI_SIZE", "20"},
                {"SLURM_PROCID", "3"},
                {"SLURM_NTASKS", "30"},
                {"RANK", "4"},
                {"WORLD_SIZE", "40"}};
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom(all, &e)) << threadLastError();
  EXPECT_EQ(e.launcher, "ompi");
  EXPECT_EQ(e.rank, 1);

  all.erase("OMPI_COMM_WORLD_RANK");
  ASSERT_EQ(gcclSuccess, readFrom(all, &e)) << threadLastError();
  EXPECT_EQ(e.launcher, "pmi");
  EXPECT_EQ(e.size, 20);

  all.erase("PMI_RANK");
  ASSERT_EQ(gcclSuccess, readFrom(all, &e)) << threadLastError();
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 3);

  all.erase("SLURM_PROCID");
  ASSERT_EQ(gcclSuccess, readFrom(all, &e)) << threadLastError();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 4);
  EXPECT_EQ(e.size, 40);
}

TEST(LauncherEnv, TorchrunStartedBySrunOrMpirunUsesTheWorkersRank) {
  EnvMap env = {{"SLURM_PROCID", "0"},         {"SLURM_NTASKS", "2"}, {"OMPI_COMM_WORLD_RANK", "0"},
                {"OMPI_COMM_WORLD_SIZE", "2"}, {"RANK", "5"},         {"WORLD_SIZE", "8"},
                {"TORCHELASTIC_RUN_ID", "job"}};
  LauncherEnv e;
  ASSERT_EQ(gcclSuccess, readFrom(env, &e)) << threadLastError();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.size, 8);
}

TEST(LauncherEnv, EmptyCountsAsUnset) {
  LauncherEnv e;
  ASSERT_EQ(
      gcclSuccess,
      readFrom(
          {{"OMPI_COMM_WORLD_RANK", ""}, {"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", ""}},
          &e))
      << threadLastError();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.masterPort, -1);
}

TEST(LauncherEnvErrors, NoneFound) {
  expectError({}, gcclInvalidUsage, {"OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "RANK"});
  expectError({{"WORLD_SIZE", "4"}}, gcclInvalidUsage, {"RANK"});
}

TEST(LauncherEnvErrors, SizeMissing) {
  expectError({{"OMPI_COMM_WORLD_RANK", "0"}}, gcclInvalidUsage, {"OMPI_COMM_WORLD_SIZE"});
  expectError({{"RANK", "0"}}, gcclInvalidUsage, {"WORLD_SIZE"});
}

TEST(LauncherEnvErrors, NonInteger) {
  expectError({{"RANK", "zero"}, {"WORLD_SIZE", "4"}}, gcclInvalidArgument, {"RANK", "zero"});
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "4x"}}, gcclInvalidArgument, {"WORLD_SIZE", "4x"});
  expectError({{"RANK", " 1"}, {"WORLD_SIZE", "4"}}, gcclInvalidArgument, {"RANK", " 1"});
  expectError({{"RANK", "1"}, {"WORLD_SIZE", "99999999999"}}, gcclInvalidArgument,
              {"WORLD_SIZE", "99999999999"});
  expectError({{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}, {"MPI_LOCALRANKID", "a"}}, gcclInvalidArgument,
              {"MPI_LOCALRANKID", "\"a\""});
  expectError({{"OMPI_COMM_WORLD_RANK", "0"},
               {"OMPI_COMM_WORLD_SIZE", "2"},
               {"OMPI_COMM_WORLD_LOCAL_SIZE", "2.0"}},
              gcclInvalidArgument, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2.0"});
  expectError({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_TASKS_PER_NODE", "x2"}},
              gcclInvalidArgument, {"SLURM_TASKS_PER_NODE", "x2"});
}

TEST(LauncherEnvErrors, SizeBelowOne) {
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "0"}}, gcclInvalidArgument, {"WORLD_SIZE", "\"0\""});
  expectError({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "-3"}}, gcclInvalidArgument,
              {"SLURM_NTASKS", "-3"});
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "0"}},
              gcclInvalidArgument, {"LOCAL_WORLD_SIZE", "\"0\""});
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "-1"}}, gcclInvalidArgument,
              {"LOCAL_WORLD_SIZE", "\"-1\""});
  expectError({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NTASKS_PER_NODE", "-1"}},
              gcclInvalidArgument, {"SLURM_NTASKS_PER_NODE", "\"-1\""});
}

TEST(LauncherEnvErrors, RankOutOfRange) {
  expectError({{"RANK", "4"}, {"WORLD_SIZE", "4"}}, gcclInvalidArgument,
              {"RANK", "\"4\"", "WORLD_SIZE"});
  expectError({{"PMI_RANK", "-1"}, {"PMI_SIZE", "4"}}, gcclInvalidArgument, {"PMI_RANK", "-1"});
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}},
              gcclInvalidArgument, {"LOCAL_RANK", "\"2\"", "LOCAL_WORLD_SIZE"});
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "-1"}}, gcclInvalidArgument,
              {"LOCAL_RANK", "-1"});
  expectError({{"SLURM_PROCID", "0"},
               {"SLURM_NTASKS", "4"},
               {"SLURM_LOCALID", "3"},
               {"SLURM_TASKS_PER_NODE", "2(x2)"}},
              gcclInvalidArgument, {"SLURM_LOCALID", "SLURM_TASKS_PER_NODE", "2(x2)"});
}

TEST(LauncherEnvErrors, MasterPort) {
  for (const char* bad : {"0", "65536", "-1", "http", "29500 ", "1e3"}) {
    expectError({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", bad}}, gcclInvalidArgument,
                {"MASTER_PORT", bad});
  }
}

TEST(LauncherEnvErrors, NullArguments) {
  LauncherEnv e;
  EXPECT_EQ(gcclInvalidArgument, readFrom({{"RANK", "0"}, {"WORLD_SIZE", "1"}}, nullptr));
  EXPECT_EQ(gcclInvalidArgument, readLauncherEnv(std::function<const char*(const char*)>(), &e));
}

TEST(LauncherEnv, ProcessEnvironment) {
  // The getenv overload, with variables of the lowest-precedence launcher; any
  // launcher the test itself runs under would take precedence, so only check
  // the outcome when none is present.
  const char* outer[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};
  for (const char* v : outer) {
    if (getenv(v) != nullptr && *getenv(v) != '\0') GTEST_SKIP() << "running under " << v;
  }
  const char* names[] = {"RANK", "WORLD_SIZE", "MASTER_PORT"};
  std::map<std::string, std::string> saved;
  for (const char* n : names) {
    if (const char* v = getenv(n)) saved[n] = v;
  }
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "3", 1);
  setenv("MASTER_PORT", "4000", 1);
  LauncherEnv e;
  gcclResult_t r = readLauncherEnv(&e);
  for (const char* n : names) {
    auto it = saved.find(n);
    if (it == saved.end()) {
      unsetenv(n);
    } else {
      setenv(n, it->second.c_str(), 1);
    }
  }
  ASSERT_EQ(gcclSuccess, r) << threadLastError();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.size, 3);
  EXPECT_EQ(e.masterPort, 4000);
}

}  // namespace
}  // namespace gccl
