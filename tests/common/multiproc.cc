#include "common/multiproc.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace gccl::test {

SharedArea::SharedArea(size_t bytes) : bytes_(bytes) {
  data_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (data_ == MAP_FAILED) {
    perror("mmap");
    abort();
  }
  memset(data_, 0, bytes);
}

SharedArea::~SharedArea() {
  munmap(data_, bytes_);
}

std::vector<RankOutcome> runRanksWithControl(
    int nranks, const RankFn& fn, const std::function<void(const std::vector<int>&)>& control,
    int timeoutSec) {
  // Rank 0 makes the unique id (and serves the rendezvous) and publishes it
  // here: the parent must stay single-threaded, because a fork taken while
  // another thread holds an allocator lock leaves the child deadlocked.
  struct IdBox {
    std::atomic<int> state;  // 0 pending, 1 ready, 2 failed
    gcclUniqueId id;
  };
  SharedArea box(sizeof(IdBox));
  auto* idBox = box.as<IdBox>();
  std::vector<RankOutcome> out(static_cast<size_t>(nranks));
  fflush(stdout);
  fflush(stderr);
  std::vector<int> pids;
  for (int r = 0; r < nranks; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      if (r == 0) {
        gcclUniqueId id;
        gcclResult_t res = gcclGetUniqueId(&id);
        if (res != gcclSuccess)
          fprintf(stderr, "gcclGetUniqueId failed: %s\n", gcclGetLastError(nullptr));
        idBox->id = id;
        idBox->state.store(res == gcclSuccess ? 1 : 2);
      }
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
      while (idBox->state.load() == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      int code = 1;
      if (idBox->state.load() == 1) {
        gcclUniqueId id = idBox->id;
        code = fn(r, nranks, id);
      }
      fflush(stdout);
      fflush(stderr);
      _exit(code);
    }
    pids.push_back(pid);
  }
  if (control) control(pids);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
  size_t left = pids.size();
  while (left > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (pids[i] <= 0) continue;
      int status = 0;
      pid_t w = waitpid(pids[i], &status, WNOHANG);
      if (w == 0) continue;
      if (WIFEXITED(status)) out[i].exitCode = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) out[i].signal = WTERMSIG(status);
      pids[i] = 0;
      --left;
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] <= 0) continue;
        out[i].timedOut = true;
        kill(pids[i], SIGKILL);
        kill(pids[i], SIGCONT);
        int status;
        waitpid(pids[i], &status, 0);
        pids[i] = 0;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return out;
}

std::vector<RankOutcome> runRanks(int nranks, const RankFn& fn, int timeoutSec) {
  return runRanksWithControl(nranks, fn, nullptr, timeoutSec);
}

bool allSucceeded(const std::vector<RankOutcome>& outcomes, std::string* why) {
  bool ok = true;
  why->clear();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const RankOutcome& o = outcomes[i];
    if (o.exitCode == 0 && o.signal == 0 && !o.timedOut) continue;
    ok = false;
    char buf[128];
    if (o.timedOut)
      snprintf(buf, sizeof(buf), "rank %zu timed out; ", i);
    else if (o.signal)
      snprintf(buf, sizeof(buf), "rank %zu died of signal %d; ", i, o.signal);
    else
      snprintf(buf, sizeof(buf), "rank %zu exited with %d; ", i, o.exitCode);
    *why += buf;
  }
  return ok;
}

}  // namespace gccl::test
