#include "core/launcher_env.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>

#include "base/check.h"
#include "base/log.h"

namespace gccl {

namespace {

struct LauncherVars {
  const char* name;
  const char* rank;
  const char* size;
  const char* sizeAlias;  // an older spelling some versions still set
  const char* localRank;
  const char* localSize;
};

// In order of precedence: the first whose rank variable is set wins. Launchers
// can nest (see reportNestedLaunchers), so several may be present at once.
const LauncherVars kLaunchers[] = {
    {"ompi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", nullptr, "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
    {"pmi", "PMI_RANK", "PMI_SIZE", nullptr, "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_NPROCS", "SLURM_LOCALID", nullptr},
    {"torchrun", "RANK", "WORLD_SIZE", nullptr, "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
};

class Env {
 public:
  explicit Env(const std::function<const char*(const char*)>& fn) : fn_(fn) {}
  // Empty counts as unset: launchers and shells sometimes export NAME="".
  const char* get(const char* name) const {
    if (name == nullptr) return nullptr;
    const char* v = fn_(name);
    return (v != nullptr && *v != '\0') ? v : nullptr;
  }
  const char* firstOf(std::initializer_list<const char*> names, const char** which) const {
    for (const char* n : names) {
      if (const char* v = get(n)) {
        if (which != nullptr) *which = n;
        return v;
      }
    }
    return nullptr;
  }

 private:
  const std::function<const char*(const char*)>& fn_;
};

bool parseIntStrict(const char* text, int* out) {
  // strtol alone would accept leading spaces, '+' and trailing junk.
  if (!((text[0] >= '0' && text[0] <= '9') || text[0] == '-')) return false;
  errno = 0;
  char* end = nullptr;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX) return false;
  *out = static_cast<int>(v);
  return true;
}

gcclResult_t readInt(const char* name, const char* value, int* out) {
  GCCL_REQUIRE(parseIntStrict(value, out), gcclInvalidArgument,
               "launcher variable %s=\"%s\" is not an integer", name, value);
  return gcclSuccess;
}

// Leaves *out unchanged when the variable is unset.
gcclResult_t readOptionalInt(const Env& env, const char* name, int* out) {
  if (const char* v = env.get(name)) GCCL_CHECK(readInt(name, v, out));
  return gcclSuccess;
}

// SLURM_TASKS_PER_NODE lists tasks per node in node order, compressed as
// "count(xrepeat)": "4(x2),3" means 4, 4, 3. Returns the count of node
// `nodeIndex`, or of the first node when nodeIndex < 0.
bool slurmTasksOnNode(const char* text, long nodeIndex, int* out) {
  const char* p = text;
  long node = 0;
  for (;;) {
    if (!(*p >= '0' && *p <= '9')) return false;
    char* end = nullptr;
    long count = strtol(p, &end, 10);
    if (count > INT_MAX) return false;
    p = end;
    long repeat = 1;
    if (p[0] == '(' && p[1] == 'x') {
      if (!(p[2] >= '0' && p[2] <= '9')) return false;
      repeat = strtol(p + 2, &end, 10);
      if (*end != ')' || repeat < 1 || repeat > INT_MAX) return false;
      p = end + 1;
    }
    if (nodeIndex < node + repeat) {
      *out = static_cast<int>(count);
      return true;
    }
    node += repeat;
    if (*p != ',') return false;
    ++p;
  }
}

// *varName receives the variable the size came from, for error messages.
gcclResult_t readSlurmLocalSize(const Env& env, int* out, const char** varName) {
  const char* perNode = env.get("SLURM_NTASKS_PER_NODE");
  int v = 0;
  if (perNode != nullptr && parseIntStrict(perNode, &v)) {
    *out = v;
    *varName = "SLURM_NTASKS_PER_NODE";
    return gcclSuccess;
  }
  const char* tasks = env.get("SLURM_TASKS_PER_NODE");
  if (tasks == nullptr) return gcclSuccess;  // unknown; stays -1
  *varName = "SLURM_TASKS_PER_NODE";
  int nodeId = -1;
  GCCL_CHECK(readOptionalInt(env, "SLURM_NODEID", &nodeId));
  // The first node's count is right for the common uniform layout; this node's
  // own entry, when SLURM_NODEID finds one, is right for uneven ones too.
  if (!slurmTasksOnNode(tasks, nodeId, &v)) {
    GCCL_REQUIRE(slurmTasksOnNode(tasks, -1, &v), gcclInvalidArgument,
                 "launcher variable SLURM_TASKS_PER_NODE=\"%s\" is not a list like \"4(x2),3\"",
                 tasks);
  }
  *out = v;
  return gcclSuccess;
}

std::string readJobId(const Env& env, const std::string& launcher) {
  if (launcher == "ompi") {
    const char* v = env.firstOf(
        {"OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE", "OMPI_MCA_orte_ess_jobid"}, nullptr);
    return v != nullptr ? v : "";
  }
  if (launcher == "pmi") {
    const char* v = env.get("PMI_JOBID");
    return v != nullptr ? v : "";
  }
  if (launcher == "slurm") {
    const char* job = env.firstOf({"SLURM_JOB_ID", "SLURM_JOBID"}, nullptr);
    if (job == nullptr) return "";
    const char* step = env.firstOf({"SLURM_STEP_ID", "SLURM_STEPID"}, nullptr);
    return step != nullptr ? std::string(job) + "." + step : std::string(job);
  }
  const char* v = env.get("TORCHELASTIC_RUN_ID");
  return v != nullptr ? v : "";
}

// Launchers nest: mpirun inside an sbatch allocation sees SLURM_PROCID of the
// batch step, which is expected and harmless. torchrun, though, always starts
// the workers itself, so RANK/WORLD_SIZE that disagree with the launcher that
// won usually mean torchrun under srun or mpirun, where precedence picks the
// wrong numbers: that case deserves a warning.
void reportNestedLaunchers(const Env& env, const LauncherVars* chosen, const LauncherEnv& r) {
  for (const LauncherVars* other = chosen + 1; other != std::end(kLaunchers); ++other) {
    const char* rankText = env.get(other->rank);
    if (rankText == nullptr) continue;
    const char* sizeText = env.get(other->size);
    int rank = -1, size = -1;
    bool differs = (parseIntStrict(rankText, &rank) && rank != r.rank) ||
                   (sizeText != nullptr && parseIntStrict(sizeText, &size) && size != r.size);
    if (!differs) continue;
    LogLevel level = strcmp(other->name, "torchrun") == 0 ? kLogWarn : kLogInfo;
    GCCL_LOG_AT(level, kLogEnv,
                "%s=%s %s=%s (%s) differ from %s's rank %d of %d; using %s's, which takes "
                "precedence",
                other->rank, rankText, other->size, sizeText != nullptr ? sizeText : "(unset)",
                other->name, chosen->name, r.rank, r.size, chosen->name);
  }
}

}  // namespace

gcclResult_t readLauncherEnv(const std::function<const char*(const char*)>& getenvFn,
                             LauncherEnv* out) {
  GCCL_REQUIRE(out != nullptr, gcclInvalidArgument, "readLauncherEnv: out is null");
  GCCL_REQUIRE(static_cast<bool>(getenvFn), gcclInvalidArgument,
               "readLauncherEnv: getenvFn is empty");
  Env env(getenvFn);

  const LauncherVars* found = nullptr;
  // torchrun is always the innermost launcher when present (it is started by
  // srun or mpirun, never the other way round): its workers' RANK is the one
  // to use, not the outer launcher's task number.
  if (env.get("TORCHELASTIC_RUN_ID") != nullptr && env.get("RANK") != nullptr)
    found = &kLaunchers[3];
  for (const LauncherVars& l : kLaunchers) {
    if (found == nullptr && env.get(l.rank) != nullptr) found = &l;
  }
  GCCL_REQUIRE(found != nullptr, gcclInvalidUsage,
               "no launcher environment found: none of OMPI_COMM_WORLD_RANK (mpirun), PMI_RANK "
               "(PMI), SLURM_PROCID (srun) or RANK (torchrun) is set");

  LauncherEnv r;
  r.launcher = found->name;
  GCCL_CHECK(readInt(found->rank, env.get(found->rank), &r.rank));
  const char* sizeName = found->size;
  const char* sizeText = env.firstOf({found->size, found->sizeAlias}, &sizeName);
  GCCL_REQUIRE(sizeText != nullptr, gcclInvalidUsage,
               "launcher variable %s=\"%s\" is set but %s is not", found->rank,
               env.get(found->rank), found->size);
  GCCL_CHECK(readInt(sizeName, sizeText, &r.size));
  GCCL_REQUIRE(r.size >= 1, gcclInvalidArgument, "launcher variable %s=\"%s\": size must be >= 1",
               sizeName, sizeText);
  GCCL_REQUIRE(r.rank >= 0 && r.rank < r.size, gcclInvalidArgument,
               "launcher variable %s=\"%s\" is outside [0, %d) given by %s=\"%s\"", found->rank,
               env.get(found->rank), r.size, sizeName, sizeText);

  GCCL_CHECK(readOptionalInt(env, found->localRank, &r.localRank));
  const char* localSizeName = found->localSize;  // nullptr while unknown
  if (found->localSize != nullptr) {
    GCCL_CHECK(readOptionalInt(env, found->localSize, &r.localSize));
  } else {
    GCCL_CHECK(readSlurmLocalSize(env, &r.localSize, &localSizeName));
  }
  // Presence is decided by the variable, not the value: "-1" must be rejected.
  const bool haveLocalSize = env.get(localSizeName) != nullptr;
  if (haveLocalSize) {
    GCCL_REQUIRE(r.localSize >= 1, gcclInvalidArgument,
                 "launcher variable %s=\"%s\": local size must be >= 1", localSizeName,
                 env.get(localSizeName));
  }
  if (env.get(found->localRank) != nullptr) {
    GCCL_REQUIRE(r.localRank >= 0, gcclInvalidArgument,
                 "launcher variable %s=\"%s\": local rank must be >= 0", found->localRank,
                 env.get(found->localRank));
    GCCL_REQUIRE(!haveLocalSize || r.localRank < r.localSize, gcclInvalidArgument,
                 "launcher variable %s=\"%s\" is outside [0, %d) given by %s=\"%s\"",
                 found->localRank, env.get(found->localRank), r.localSize, localSizeName,
                 env.get(localSizeName));
  }

  r.jobId = readJobId(env, r.launcher);
  if (const char* addr = env.get("MASTER_ADDR")) r.masterAddr = addr;
  if (const char* port = env.get("MASTER_PORT")) {
    int p = -1;
    GCCL_REQUIRE(parseIntStrict(port, &p) && p >= 1 && p <= 65535, gcclInvalidArgument,
                 "launcher variable MASTER_PORT=\"%s\" is not a port number in 1..65535", port);
    r.masterPort = p;
  }

  reportNestedLaunchers(env, found, r);
  GCCL_INFO(kLogEnv,
            "launcher %s: rank %d of %d, local rank %d of %d, job \"%s\", MASTER_ADDR \"%s\" "
            "MASTER_PORT %d",
            r.launcher.c_str(), r.rank, r.size, r.localRank, r.localSize, r.jobId.c_str(),
            r.masterAddr.c_str(), r.masterPort);
  *out = r;
  return gcclSuccess;
}

gcclResult_t readLauncherEnv(LauncherEnv* out) {
  return readLauncherEnv([](const char* name) { return static_cast<const char*>(::getenv(name)); },
                         out);
}

}  // namespace gccl
