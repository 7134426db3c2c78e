/*
 * Misuse suite, in C through the public header only: what a careless user or
 * a buggy program does to a communicator, and what it must get back: a clear
 * error naming what is wrong, quickly, with nothing lost and no hang.
 *
 *   misuse <case>      runs one case on forked ranks (loopback); exit 0 = pass
 *   misuse --list      prints the case names
 *
 * Each case is its own ctest test and also runs in the sanitizer build.
 */
#define _GNU_SOURCE
#include "gccl/gccl.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- harness ------------------------------------------------------------ */

static int64_t nowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define CHECK(cond, ...)                                                                        \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      fprintf(stderr, "[rank %d] %s:%d: check failed: %s: ", gRank, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                             \
      fprintf(stderr, "\n");                                                                    \
      return 1;                                                                                 \
    }                                                                                           \
  } while (0)
#define OK(call)                                                                                \
  do {                                                                                          \
    gcclResult_t okResult_ = (call);                                                            \
    CHECK(okResult_ == gcclSuccess, "%s returned %s: %s", #call, gcclGetErrorString(okResult_), \
          gcclGetLastError(NULL));                                                              \
  } while (0)
/* `call` must fail with `code`, and the comm's (or thread's) reason must contain `word`. */
#define EXPECT_ERROR(comm, call, code, word)                                                 \
  do {                                                                                       \
    gcclResult_t errResult_ = (call);                                                        \
    const char* errWhy_ = gcclGetLastError(comm);                                            \
    CHECK(errResult_ == (code), "%s returned %s, expected %s (%s)", #call,                   \
          gcclGetErrorString(errResult_), gcclGetErrorString(code), errWhy_);                \
    CHECK(strstr(errWhy_, (word)) != NULL, "%s: reason \"%s\" lacks \"%s\"", #call, errWhy_, \
          (word));                                                                           \
  } while (0)

static int gRank = -1;

struct IdBox {
  atomic_int state; /* 0 pending, 1 ready, 2 failed */
  gcclUniqueId id;
};

typedef int (*RankFn)(int rank, int nranks, gcclUniqueId id);

/* Forks `n` ranks (rank 0 makes the unique id, so this process stays
 * single-threaded), waits up to `timeoutSec`, and returns 0 when every rank
 * exited 0. */
static int runRanks(int n, RankFn fn, int timeoutSec) {
  struct IdBox* box =
      mmap(NULL, sizeof(*box), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (box == MAP_FAILED) return 1;
  atomic_init(&box->state, 0);
  pid_t pids[16];
  fflush(stdout);
  fflush(stderr);
  for (int r = 0; r < n; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      gRank = r;
      if (r == 0) {
        gcclUniqueId id;
        gcclResult_t res = gcclGetUniqueId(&id);
        box->id = id;
        atomic_store(&box->state, res == gcclSuccess ? 1 : 2);
      }
      int64_t until = nowMs() + 1000LL * timeoutSec;
      while (atomic_load(&box->state) == 0 && nowMs() < until)
        usleep(1000);
      int code = atomic_load(&box->state) == 1 ? fn(r, n, box->id) : 1;
      fflush(stdout);
      fflush(stderr);
      _exit(code);
    }
    pids[r] = pid;
  }
  int failed = 0, left = n;
  int64_t deadline = nowMs() + 1000LL * timeoutSec;
  while (left > 0) {
    for (int r = 0; r < n; ++r) {
      if (pids[r] <= 0) continue;
      int status = 0;
      if (waitpid(pids[r], &status, WNOHANG) == 0) continue;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "rank %d %s %d\n", r, WIFEXITED(status) ? "exited with" : "died of signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        failed = 1;
      }
      pids[r] = 0;
      --left;
    }
    if (left > 0 && nowMs() > deadline) {
      for (int r = 0; r < n; ++r)
        if (pids[r] > 0) {
          fprintf(stderr, "rank %d did not finish in %d s (a hang)\n", r, timeoutSec);
          kill(pids[r], SIGKILL);
          waitpid(pids[r], NULL, 0);
        }
      failed = 1;
      break;
    }
    usleep(5000);
  }
  munmap(box, sizeof(*box));
  return failed;
}

static gcclResult_t initComm(gcclComm_t* comm, int n, gcclUniqueId id, int rank, int timeoutMs) {
  gcclConfig_t config = GCCL_CONFIG_INITIALIZER;
  config.timeoutMs = timeoutMs;
  return gcclCommInitRankConfig(comm, n, id, rank, &config);
}

/* A blocking AllReduce of `count` floats that must give exactly n * value. */
static int allReduceWorks(gcclComm_t comm, int n) {
  float buf[64];
  for (int i = 0; i < 64; ++i)
    buf[i] = (float)(i + 1);
  OK(gcclAllReduce(buf, buf, 64, gcclFloat32, gcclSum, comm, NULL, NULL));
  for (int i = 0; i < 64; ++i)
    CHECK(buf[i] == (float)(n * (i + 1)), "element %d is %g", i, buf[i]);
  return 0;
}

/* ---- 1. counts whose byte size overflows -------------------------------- */

static int countOverflow(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 30000));
  float small[16] = {0};
  double w = 1.0;
  gcclTopology_t topo;
  OK(gcclTopologyCreate(&topo, gcclTopoExponential, n, 1));
  int64_t t0 = nowMs();
  /* 0x4000000000000004 floats is 16 bytes after the multiplication wraps. */
  EXPECT_ERROR(
      comm,
      gcclAllReduce(small, small, 0x4000000000000004ull, gcclFloat32, gcclSum, comm, NULL, NULL),
      gcclInvalidArgument, "count");
  EXPECT_ERROR(comm, gcclAllReduce(small, small, SIZE_MAX, gcclFloat32, gcclSum, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  EXPECT_ERROR(comm, gcclPushSum(small, SIZE_MAX, gcclFloat32, &w, topo, 0, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  EXPECT_ERROR(comm, gcclBroadcast(small, small, SIZE_MAX / 2, gcclFloat64, 0, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  EXPECT_ERROR(comm,
               gcclReduce(small, small, SIZE_MAX / 4 + 1, gcclInt32, gcclSum, 0, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  EXPECT_ERROR(comm, gcclSend(small, SIZE_MAX / 8 + 2, gcclFloat64, 1 - rank, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  EXPECT_ERROR(comm, gcclRecv(small, SIZE_MAX / 8 + 2, gcclFloat64, 1 - rank, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  /* Fine per rank, too large once multiplied by the rank count. */
  EXPECT_ERROR(comm, gcclAllGather(small, small, SIZE_MAX / 2, gcclInt8, comm, NULL, NULL),
               gcclInvalidArgument, "sendcount");
  EXPECT_ERROR(comm,
               gcclReduceScatter(small, small, SIZE_MAX / 2, gcclInt8, gcclSum, comm, NULL, NULL),
               gcclInvalidArgument, "recvcount");
  EXPECT_ERROR(comm,
               gcclNeighborAverage(small, small, SIZE_MAX, gcclFloat32, topo, 0, comm, NULL, NULL),
               gcclInvalidArgument, "count");
  EXPECT_ERROR(NULL, gcclPushSumDebias(small, small + 8, SIZE_MAX, gcclFloat32, 1.0),
               gcclInvalidArgument, "count");
  gcclGossip_t g;
  EXPECT_ERROR(comm, gcclGossipCreate(&g, small, SIZE_MAX, gcclFloat32, &w, topo, 1, comm),
               gcclInvalidArgument, "count");
  /* A pointer whose range would wrap around the address space. */
  EXPECT_ERROR(
      comm,
      gcclAllReduce((void*)(UINTPTR_MAX - 63), small, 1024, gcclFloat32, gcclSum, comm, NULL, NULL),
      gcclInvalidArgument, "end of memory");
  CHECK(nowMs() - t0 < 5000, "refusing the counts took %lld ms", (long long)(nowMs() - t0));
  /* Nothing was sent: the communicator works as before. */
  if (allReduceWorks(comm, n)) return 1;
  OK(gcclTopologyDestroy(topo));
  OK(gcclCommDestroy(comm));
  return 0;
}

/* ---- 2. destroy inside an open group ------------------------------------ */

static int destroyInGroup(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 30000));
  float buf[32];
  for (int i = 0; i < 32; ++i)
    buf[i] = 1.0f;
  OK(gcclGroupStart());
  OK(gcclAllReduce(buf, buf, 32, gcclFloat32, gcclSum, comm, NULL, NULL));
  EXPECT_ERROR(comm, gcclCommDestroy(comm), gcclInvalidUsage, "gcclGroupEnd");
  OK(gcclGroupEnd());
  for (int i = 0; i < 32; ++i)
    CHECK(buf[i] == (float)n, "element %d is %g", i, buf[i]);
  OK(gcclCommDestroy(comm));
  /* Abort drops what the open group queued: its request ends with gcclAborted.
   * On a communicator of this rank alone, so no peer's abort notice can reach
   * the other rank while it still finishes the AllReduce above. */
  gcclUniqueId soloId;
  gcclComm_t solo;
  OK(gcclGetUniqueId(&soloId));
  OK(initComm(&solo, 1, soloId, 0, 30000));
  gcclRequest_t req;
  OK(gcclGroupStart());
  OK(gcclAllReduce(buf, buf, 32, gcclFloat32, gcclSum, solo, NULL, &req));
  OK(gcclCommAbort(solo));
  OK(gcclGroupEnd());
  EXPECT_ERROR(NULL, gcclWait(req), gcclAborted, "aborted");
  return 0;
}

/* ---- 3. requests used after completion ---------------------------------- */

static int requestReuse(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 30000));
  float buf[32] = {0};
  gcclRequest_t req;
  OK(gcclAllReduce(buf, buf, 32, gcclFloat32, gcclSum, comm, NULL, &req));
  OK(gcclWait(req));
  int64_t t0 = nowMs();
  EXPECT_ERROR(NULL, gcclWait(req), gcclInvalidUsage, "not valid");
  int done = 0;
  EXPECT_ERROR(NULL, gcclTest(req, &done), gcclInvalidUsage, "not valid");
  CHECK(nowMs() - t0 < 1000, "the stale request took %lld ms", (long long)(nowMs() - t0));
  /* gcclTest that reported done has released it too. */
  OK(gcclAllReduce(buf, buf, 32, gcclFloat32, gcclSum, comm, NULL, &req));
  done = 0;
  int64_t until = nowMs() + 20000;
  while (!done && nowMs() < until) {
    OK(gcclTest(req, &done));
    if (!done) usleep(100);
  }
  CHECK(done, "the request did not finish in 20 s");
  EXPECT_ERROR(NULL, gcclTest(req, &done), gcclInvalidUsage, "not valid");
  /* Waiting on a call that an open group still holds could never finish. */
  OK(gcclGroupStart());
  OK(gcclAllReduce(buf, buf, 32, gcclFloat32, gcclSum, comm, NULL, &req));
  EXPECT_ERROR(NULL, gcclWait(req), gcclInvalidUsage, "gcclGroupEnd");
  OK(gcclGroupEnd());
  OK(gcclWait(req));
  EXPECT_ERROR(NULL, gcclWait(NULL), gcclInvalidArgument, "NULL");
  if (allReduceWorks(comm, n)) return 1;
  OK(gcclCommDestroy(comm));
  return 0;
}

/* ---- 4a. Broadcast with different roots --------------------------------- */

static int broadcastRoots(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 20000));
  float buf[16];
  for (int i = 0; i < 16; ++i)
    buf[i] = (float)rank;
  /* Two ranks: each names itself. More: the halves name their first rank. */
  int root = n == 2 ? rank : (rank < n / 2 ? 0 : n / 2);
  int64_t t0 = nowMs();
  gcclResult_t r = gcclBroadcast(buf, buf, 16, gcclFloat32, root, comm, NULL, NULL);
  if (r == gcclSuccess) {
    /* A rank that got its data from the root it named learns at its next call. */
    CHECK(n > 2 && rank != root, "the root's Broadcast succeeded though ranks disagree on it");
    r = gcclAllReduce(buf, buf, 16, gcclFloat32, gcclSum, comm, NULL, NULL);
    CHECK(r != gcclSuccess, "the next call succeeded after a Broadcast with different roots");
  } else {
    CHECK(r == gcclInvalidUsage || r == gcclRemoteError, "Broadcast returned %s",
          gcclGetErrorString(r));
  }
  CHECK(strstr(gcclGetLastError(comm), "root") != NULL, "reason: %s", gcclGetLastError(comm));
  CHECK(nowMs() - t0 < 10000, "took %lld ms", (long long)(nowMs() - t0));
  gcclCommAbort(comm);
  return 0;
}

/* ---- 4b. two threads issuing on one communicator ------------------------ */

struct ThreadArgs {
  gcclComm_t comm;
  int n, value, calls, wrong, refused, other;
};

static void* issueMany(void* p) {
  struct ThreadArgs* a = p;
  float buf[256];
  for (int c = 0; c < a->calls; ++c) {
    for (int i = 0; i < 256; ++i)
      buf[i] = (float)a->value;
    gcclResult_t r = gcclAllReduce(buf, buf, 256, gcclFloat32, gcclSum, a->comm, NULL, NULL);
    if (r == gcclSuccess) {
      for (int i = 0; i < 256; ++i)
        if (buf[i] != (float)(a->n * a->value)) {
          ++a->wrong;
          break;
        }
    } else if (r == gcclInvalidUsage) {
      ++a->refused;
    } else {
      ++a->other;
    }
  }
  return NULL;
}

/* Rank 0's first thread is inside a blocking AllReduce (rank 1 holds back)
 * when its second thread starts issuing too: the overlap is certain, and
 * every call from then on, on every rank, must fail rather than mix. */
static int twoThreads(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 20000));
  struct ThreadArgs a = {comm, n, 1, 100, 0, 0, 0}, b = {comm, n, 1000, 100, 0, 0, 0};
  pthread_t ta, tb;
  if (rank != 0) usleep(300 * 1000);
  CHECK(pthread_create(&ta, NULL, issueMany, &a) == 0, "pthread_create");
  if (rank == 0) usleep(100 * 1000);
  CHECK(pthread_create(&tb, NULL, issueMany, &b) == 0, "pthread_create");
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK(a.wrong == 0 && b.wrong == 0, "%d and %d calls returned success with mixed sums", a.wrong,
        b.wrong);
  CHECK(a.refused + b.refused + a.other + b.other == 200, "%d calls succeeded",
        200 - (a.refused + b.refused + a.other + b.other));
  if (rank == 0) CHECK(a.refused + b.refused > 0, "no call was refused as concurrent use");
  gcclResult_t async = gcclSuccess;
  OK(gcclCommGetAsyncError(comm, &async));
  CHECK(async != gcclSuccess, "the communicator is not broken");
  CHECK(strstr(gcclGetLastError(comm), "thread") != NULL, "reason: %s", gcclGetLastError(comm));
  gcclCommAbort(comm);
  return 0;
}

/* ---- 4c. PushSum with different topologies ------------------------------- */

static int topologyMismatch(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 20000));
  gcclTopology_t topo;
  /* Half the ranks mix on the one-peer exponential graph, half on the ring. */
  OK(gcclTopologyCreate(&topo, rank < n / 2 ? gcclTopoExponential : gcclTopoRing, n, 1));
  float x[1024];
  for (int i = 0; i < 1024; ++i)
    x[i] = (float)rank;
  double w = 1.0;
  int64_t t0 = nowMs();
  gcclResult_t r = gcclPushSum(x, 1024, gcclFloat32, &w, topo, 0, comm, NULL, NULL);
  /* A rank whose own in-peers agree with it got what its graph prescribes;
   * it learns of the mismatch elsewhere at its next call. Ranks that received
   * from a rank with another graph fail in the call. */
  if (r == gcclSuccess) {
    r = gcclPushSum(x, 1024, gcclFloat32, &w, topo, 1, comm, NULL, NULL);
    CHECK(r != gcclSuccess, "PushSum after a topology mismatch succeeded");
  }
  CHECK(strstr(gcclGetLastError(comm), "topolog") != NULL, "reason: %s", gcclGetLastError(comm));
  CHECK(nowMs() - t0 < 8000, "took %lld ms with a 20 s timeout", (long long)(nowMs() - t0));
  gcclCommAbort(comm);
  OK(gcclTopologyDestroy(topo));
  return 0;
}

/* ---- 7. a live rank that never posts the call ---------------------------- */

enum { kShortTimeoutMs = 2000 };

static int skippedCall(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, kShortTimeoutMs));
  float buf[16] = {0};
  OK(gcclBroadcast(buf, buf, 16, gcclFloat32, 0, comm, NULL, NULL));
  if (rank == n - 1) {
    /* Alive and answering, but it skips the AllReduce. */
    usleep(3 * kShortTimeoutMs * 1000);
    gcclCommAbort(comm);
    return 0;
  }
  int64_t t0 = nowMs();
  gcclResult_t r = gcclAllReduce(buf, buf, 16, gcclFloat32, gcclSum, comm, NULL, NULL);
  int64_t took = nowMs() - t0;
  CHECK(r != gcclSuccess, "the AllReduce succeeded without rank %d", n - 1);
  const char* why = gcclGetLastError(comm);
  char who[32];
  snprintf(who, sizeof(who), "rank %d", n - 1);
  CHECK(strstr(why, who) && strstr(why, "has not called") && strstr(why, "Broadcast"), "reason: %s",
        why);
  CHECK(took < kShortTimeoutMs + 1500, "reported after %lld ms with a %d ms timeout",
        (long long)took, kShortTimeoutMs);
  gcclCommAbort(comm);
  return 0;
}

/* A blocking send to oneself outside a group, and a lone receive from
 * oneself (on one rank, so that no other rank's failure reaches it first). */
static int selfSend(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 20000));
  float buf[8] = {0};
  int64_t t0 = nowMs();
  EXPECT_ERROR(comm, gcclSend(buf, 8, gcclFloat32, rank, comm, NULL, NULL), gcclInvalidUsage,
               "itself");
  /* In a group it is fine. */
  float in[8] = {0};
  for (int i = 0; i < 8; ++i)
    buf[i] = (float)(rank + i);
  OK(gcclGroupStart());
  OK(gcclSend(buf, 8, gcclFloat32, rank, comm, NULL, NULL));
  OK(gcclRecv(in, 8, gcclFloat32, rank, comm, NULL, NULL));
  OK(gcclGroupEnd());
  CHECK(memcmp(in, buf, sizeof(in)) == 0, "the self exchange went wrong");
  gcclRequest_t req;
  OK(gcclRecv(in, 8, gcclFloat32, rank, comm, NULL, &req));
  EXPECT_ERROR(NULL, gcclWait(req), gcclInvalidUsage, "itself");
  CHECK(nowMs() - t0 < 5000, "took %lld ms with a 20 s timeout", (long long)(nowMs() - t0));
  gcclCommAbort(comm);
  return 0;
}

struct StuckCall {
  gcclComm_t comm;
  gcclResult_t result;
};

static void* stuckAllReduce(void* p) {
  struct StuckCall* s = p;
  float buf[16] = {0};
  s->result = gcclAllReduce(buf, buf, 16, gcclFloat32, gcclSum, s->comm, NULL, NULL);
  return NULL;
}

/* gcclCommDestroy from another thread returns within the timeout. */
static int destroyWhileStuck(int rank, int n, gcclUniqueId id) {
  enum { kTimeoutMs = 3000 };
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, kTimeoutMs));
  if (rank == 1) {
    usleep(3 * kTimeoutMs * 1000);
    gcclCommAbort(comm);
    return 0;
  }
  struct StuckCall s = {comm, gcclSuccess};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, stuckAllReduce, &s) == 0, "pthread_create");
  usleep(300 * 1000);
  int64_t t0 = nowMs();
  OK(gcclCommDestroy(comm));
  int64_t took = nowMs() - t0;
  pthread_join(t, NULL);
  CHECK(s.result != gcclSuccess, "the stuck AllReduce succeeded");
  CHECK(took < kTimeoutMs + 1500, "gcclCommDestroy took %lld ms with a %d ms timeout",
        (long long)took, kTimeoutMs);
  return 0;
}

/* ---- 8. small ones ------------------------------------------------------- */

static int nullOutputs(int rank, int n, gcclUniqueId id) {
  gcclComm_t comm;
  OK(initComm(&comm, n, id, rank, 20000));
  float buf[8] = {0};
  /* An older reason must not show through. */
  EXPECT_ERROR(comm, gcclAllReduce(buf, buf, 8, (gcclDataType_t)99, gcclSum, comm, NULL, NULL),
               gcclInvalidArgument, "datatype");
  EXPECT_ERROR(comm, gcclCommCount(comm, NULL), gcclInvalidArgument, "count is NULL");
  EXPECT_ERROR(comm, gcclCommUserRank(comm, NULL), gcclInvalidArgument, "rank is NULL");
  EXPECT_ERROR(comm, gcclCommGetAsyncError(comm, NULL), gcclInvalidArgument, "asyncError is NULL");
  if (allReduceWorks(comm, n)) return 1;
  OK(gcclCommDestroy(comm));
  return 0;
}

/* ---- main ---------------------------------------------------------------- */

struct Case {
  const char* name;
  RankFn fn;
  int nranks;
};

static const struct Case kCases[] = {
    {"count_overflow", countOverflow, 2},
    {"destroy_in_group", destroyInGroup, 2},
    {"request_reuse", requestReuse, 2},
    {"broadcast_roots_2", broadcastRoots, 2},
    {"broadcast_roots_4", broadcastRoots, 4},
    {"two_threads", twoThreads, 2},
    {"topology_mismatch", topologyMismatch, 4},
    {"skipped_call", skippedCall, 3},
    {"self_send", selfSend, 1},
    {"destroy_while_stuck", destroyWhileStuck, 2},
    {"null_outputs", nullOutputs, 2},
};

int main(int argc, char** argv) {
  size_t ncases = sizeof(kCases) / sizeof(kCases[0]);
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < ncases; ++i)
      printf("%s\n", kCases[i].name);
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: %s <case> | --list\n", argv[0]);
    return 2;
  }
  for (size_t i = 0; i < ncases; ++i) {
    if (strcmp(argv[1], kCases[i].name) != 0) continue;
    int failed = runRanks(kCases[i].nranks, kCases[i].fn, 120);
    printf("%s: %s\n", kCases[i].name, failed ? "FAILED" : "passed");
    return failed;
  }
  fprintf(stderr, "unknown case %s (see --list)\n", argv[1]);
  return 2;
}
