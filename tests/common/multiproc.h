// Multi-process tests: fork N ranks on loopback, run a function in each, and
// collect how each ended. Children report through their exit status (and a
// shared memory area for values the parent compares across ranks); a child
// that outlives the deadline is killed and reported.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "gccl/gccl.h"

namespace gccl::test {

struct RankOutcome {
  int exitCode = -1;  // valid when signal == 0
  int signal = 0;     // the signal that ended the child, 0 if it exited
  bool timedOut = false;
};

// Memory shared by the parent and all children, created before fork.
class SharedArea {
 public:
  explicit SharedArea(size_t bytes);
  ~SharedArea();
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_;
  size_t bytes_;
};

using RankFn = std::function<int(int rank, int nranks, const gcclUniqueId& id)>;

// Runs fn in `nranks` forked children with a fresh unique id (created by
// rank 0, which serves the rendezvous; the parent stays single-threaded so
// that forking it is safe). Returns one outcome per rank.
std::vector<RankOutcome> runRanks(int nranks, const RankFn& fn, int timeoutSec = 120);
// The same with child pids exposed so a test can signal a rank while it runs:
// `control` runs in the parent after the fork, with the pids.
std::vector<RankOutcome> runRanksWithControl(
    int nranks, const RankFn& fn, const std::function<void(const std::vector<int>&)>& control,
    int timeoutSec = 120);
// True when every rank exited with status 0; otherwise a readable summary in *why.
bool allSucceeded(const std::vector<RankOutcome>& outcomes, std::string* why);

// Child-side checking that works without gtest: prints and returns from the rank function.
#define RANK_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "[rank check failed] %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fprintf(stderr, "\n");                                                         \
      return 1;                                                                      \
    }                                                                                \
  } while (0)
#define RANK_OK(call)                                                         \
  do {                                                                        \
    gcclResult_t rankOkResult_ = (call);                                      \
    RANK_CHECK(rankOkResult_ == gcclSuccess, "%s returned %s: %s", #call,     \
               gcclGetErrorString(rankOkResult_), gcclGetLastError(nullptr)); \
  } while (0)

}  // namespace gccl::test
