// Failures must surface as clear errors in time, never as hangs: killed and
// stopped ranks, aborts from another thread, mismatched calls, bad arguments,
// use after destroy, and strangers on the listening ports.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/data.h"
#include "common/multiproc.h"
#include "common/run_ranks.h"
#include "core/bootstrap.h"
#include "core/comm.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/socket.h"

namespace gccl::test {
namespace {

gcclResult_t initWithTimeout(gcclComm_t* comm, int n, const gcclUniqueId& id, int rank, int ms) {
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  cfg.timeoutMs = ms;
  return gcclCommInitRankConfig(comm, n, id, rank, &cfg);
}

// ---- dead and stopped ranks ---------------------------------------------------

struct FaultReport {
  std::atomic<int> running[8];
  std::atomic<int64_t> failedAtMs[8];
  gcclResult_t code[8];
  char message[8][512];
};

// Ranks loop on a large AllReduce until it fails; the parent hurts `victim`.
void loseARankMidAllReduce(int signal, int timeoutMs, int64_t maxDelayMs) {
  const int n = 4, victim = 2;
  SharedArea area(sizeof(FaultReport));
  auto* rep = area.as<FaultReport>();
  int64_t hurtAt = 0;
  auto outcomes = runRanksWithControl(
      n,
      [rep, timeoutMs](int rank, int n, const gcclUniqueId& id) {
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, timeoutMs));
        std::vector<float> buf(4 << 20, 1.0f);
        for (int iter = 0;; ++iter) {
          rep->running[rank] = iter + 1;
          gcclResult_t r = gcclAllReduce(buf.data(), buf.data(), buf.size(), gcclFloat32, gcclAvg,
                                         comm, nullptr, nullptr);
          if (r != gcclSuccess) {
            rep->failedAtMs[rank] = nowMs();
            rep->code[rank] = r;
            snprintf(rep->message[rank], sizeof(rep->message[rank]), "%s", gcclGetLastError(comm));
            break;
          }
        }
        gcclCommAbort(comm);
        return 0;
      },
      [&](const std::vector<int>& pids) {
        // Wait until every rank is inside its loop, then strike mid-AllReduce.
        for (int spin = 0; spin < 3000; ++spin) {
          bool all = true;
          for (int r = 0; r < n; ++r)
            all = all && rep->running[r] >= 2;
          if (all) break;
          usleep(10000);
        }
        usleep(20000);
        hurtAt = nowMs();
        kill(pids[victim], signal);
        if (signal == SIGSTOP) {
          // Let the survivors notice, then clean up the stopped one.
          for (int spin = 0; spin < 1000; ++spin) {
            bool all = true;
            for (int r = 0; r < n; ++r)
              if (r != victim) all = all && rep->failedAtMs[r] != 0;
            if (all) break;
            usleep(20000);
          }
          kill(pids[victim], SIGKILL);
          kill(pids[victim], SIGCONT);
        }
      },
      120);
  for (int r = 0; r < n; ++r) {
    if (r == victim) continue;
    EXPECT_EQ(outcomes[r].exitCode, 0) << "rank " << r;
    ASSERT_NE(rep->failedAtMs[r].load(), 0) << "rank " << r << " never reported an error";
    int64_t delay = rep->failedAtMs[r] - hurtAt;
    EXPECT_LE(delay, maxDelayMs) << "rank " << r << " took " << delay << " ms: " << rep->message[r];
    EXPECT_NE(strstr(rep->message[r], "rank 2"), nullptr)
        << "rank " << r << "'s error does not name rank 2: " << rep->message[r];
  }
}

TEST(DeadPeer, KilledRankMidAllReduceIsNamedByEveryOtherRankAtOnce) {
  loseARankMidAllReduce(SIGKILL, 60000, 5000);
}

TEST(DeadPeer, StoppedRankMidAllReduceIsNamedByEveryOtherRankWithinTheTimeout) {
  const int timeoutMs = 3000;
  loseARankMidAllReduce(SIGSTOP, timeoutMs, timeoutMs + 3000);
}

// ---- abort ------------------------------------------------------------------

TEST(Abort, AbortFromAnotherThreadUnblocksAWaitingCall) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(initWithTimeout(&comm, n, id, rank, 60000));
    if (rank == 1) {
      // Never joins the collective; leaves when rank 0 aborts.
      gcclResult_t async = gcclSuccess;
      for (int i = 0; i < 2000 && async == gcclSuccess; ++i) {
        RANK_OK(gcclCommGetAsyncError(comm, &async));
        usleep(5000);
      }
      RANK_CHECK(async == gcclRemoteError, "rank 1 saw %s", gcclGetErrorString(async));
      RANK_CHECK(strstr(gcclGetLastError(comm), "aborted") != nullptr, "%s",
                 gcclGetLastError(comm));
      gcclCommDestroy(comm);
      return 0;
    }
    std::vector<float> buf(1000, 1.0f);
    std::atomic<int> result{-1};
    int64_t start = nowMs();
    std::thread waiter([&] {
      result = gcclAllReduce(buf.data(), buf.data(), buf.size(), gcclFloat32, gcclSum, comm,
                             nullptr, nullptr);
    });
    usleep(200000);
    RANK_OK(gcclCommAbort(comm));
    waiter.join();
    RANK_CHECK(result == gcclAborted, "the waiting call returned %s",
               gcclGetErrorString(static_cast<gcclResult_t>(result.load())));
    RANK_CHECK(nowMs() - start < 10000, "abort took %lld ms",
               static_cast<long long>(nowMs() - start));
    return 0;
  });
}

// ---- mismatched calls ---------------------------------------------------------

TEST(Mismatch, CountsThatDifferBetweenRanksAreReportedOnBothSides) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(initWithTimeout(&comm, n, id, rank, 10000));
    size_t count = rank == 0 ? 100 : 200;
    std::vector<float> buf(count, 1.0f);
    gcclResult_t r =
        gcclAllReduce(buf.data(), buf.data(), count, gcclFloat32, gcclSum, comm, nullptr, nullptr);
    RANK_CHECK(r != gcclSuccess, "a mismatched AllReduce succeeded");
    const char* msg = gcclGetLastError(comm);
    RANK_CHECK(strstr(msg, "count=100") && strstr(msg, "count=200"), "message: %s", msg);
    gcclCommAbort(comm);
    return 0;
  });
}

TEST(Mismatch, DifferentCollectivesAtTheSameStepAreReported) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(initWithTimeout(&comm, n, id, rank, 10000));
    std::vector<int32_t> buf(64, 1);
    gcclResult_t r =
        rank == 0
            ? gcclAllReduce(buf.data(), buf.data(), 64, gcclInt32, gcclSum, comm, nullptr, nullptr)
            : gcclBroadcast(buf.data(), buf.data(), 64, gcclInt32, 0, comm, nullptr, nullptr);
    RANK_CHECK(r != gcclSuccess, "mismatched collectives succeeded");
    const char* msg = gcclGetLastError(comm);
    RANK_CHECK(strstr(msg, "mismatched") || strstr(msg, "aborted"), "message: %s", msg);
    gcclCommAbort(comm);
    return 0;
  });
}

// ---- bad arguments ------------------------------------------------------------

TEST(BadInput, EveryBadArgumentGetsANamedErrorAndChangesNothing) {
  runAndExpect(1, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    std::vector<float> a(16, 1.0f), b(16, 7.0f);
    auto expectError = [&](gcclResult_t r, gcclResult_t want, const char* needle) -> int {
      RANK_CHECK(r == want, "wanted %s, got %s (%s)", gcclGetErrorString(want),
                 gcclGetErrorString(r), gcclGetLastError(comm));
      RANK_CHECK(strstr(gcclGetLastError(comm), needle) != nullptr, "message '%s' lacks '%s'",
                 gcclGetLastError(comm), needle);
      for (float v : b)
        RANK_CHECK(v == 7.0f, "recvbuff changed by a rejected call");
      return 0;
    };
    float* data = a.data();
    float* out = b.data();
    if (expectError(gcclAllReduce(nullptr, out, 16, gcclFloat32, gcclSum, comm, nullptr, nullptr),
                    gcclInvalidArgument, "sendbuff"))
      return 1;
    if (expectError(gcclAllReduce(data, nullptr, 16, gcclFloat32, gcclSum, comm, nullptr, nullptr),
                    gcclInvalidArgument, "recvbuff"))
      return 1;
    if (expectError(gcclAllReduce(data, out, 16, static_cast<gcclDataType_t>(42), gcclSum, comm,
                                  nullptr, nullptr),
                    gcclInvalidArgument, "datatype 42"))
      return 1;
    if (expectError(gcclAllReduce(data, out, 16, gcclFloat32, static_cast<gcclRedOp_t>(-3), comm,
                                  nullptr, nullptr),
                    gcclInvalidArgument, "op -3"))
      return 1;
    if (expectError(gcclAllReduce(reinterpret_cast<char*>(data) + 1, out, 8, gcclFloat32, gcclSum,
                                  comm, nullptr, nullptr),
                    gcclInvalidArgument, "aligned"))
      return 1;
    if (expectError(gcclAllReduce(data, data + 1, 8, gcclFloat32, gcclSum, comm, nullptr, nullptr),
                    gcclInvalidArgument, "overlap"))
      return 1;
    if (expectError(gcclBroadcast(data, out, 16, gcclFloat32, 5, comm, nullptr, nullptr),
                    gcclInvalidArgument, "root 5"))
      return 1;
    if (expectError(gcclReduce(data, out, 16, gcclFloat32, gcclSum, -1, comm, nullptr, nullptr),
                    gcclInvalidArgument, "root -1"))
      return 1;
    if (expectError(gcclSend(data, 16, gcclFloat32, 3, comm, nullptr, nullptr), gcclInvalidArgument,
                    "peer 3"))
      return 1;
    int fakeStream = 0;
    if (expectError(gcclAllReduce(data, out, 16, gcclFloat32, gcclSum, comm, &fakeStream, nullptr),
                    gcclInvalidArgument, "stream"))
      return 1;
    RANK_CHECK(gcclAllReduce(data, out, 16, gcclFloat32, gcclSum, nullptr, nullptr, nullptr) ==
                   gcclInvalidArgument,
               "NULL comm accepted");
    RANK_CHECK(gcclGroupEnd() == gcclInvalidUsage, "GroupEnd without GroupStart accepted");
    // The communicator still works after all of that.
    RANK_OK(gcclAllReduce(data, out, 16, gcclFloat32, gcclSum, comm, nullptr, nullptr));
    RANK_CHECK(b[0] == 1.0f, "AllReduce after rejected calls gave %g", b[0]);
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

TEST(BadInput, InitRejectsBadRanksSizesConfigsAndIds) {
  runAndExpect(1, [](int, int, const gcclUniqueId& id) {
    gcclComm_t comm = nullptr;
    RANK_CHECK(gcclCommInitRank(&comm, 4, id, 4) == gcclInvalidArgument, "rank 4 of 4 accepted");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "rank 4 is out of range") != nullptr, "%s",
               gcclGetLastError(nullptr));
    RANK_CHECK(gcclCommInitRank(&comm, 0, id, 0) == gcclInvalidArgument, "0 ranks accepted");
    RANK_CHECK(gcclCommInitRank(nullptr, 1, id, 0) == gcclInvalidArgument, "NULL comm accepted");
    gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
    cfg.magic = 0;
    RANK_CHECK(gcclCommInitRankConfig(&comm, 1, id, 0, &cfg) == gcclInvalidArgument,
               "bad config magic accepted");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "GCCL_CONFIG_INITIALIZER") != nullptr, "%s",
               gcclGetLastError(nullptr));
    cfg = GCCL_CONFIG_INITIALIZER;
    cfg.nSocketsPerPeer = 99;
    RANK_CHECK(gcclCommInitRankConfig(&comm, 1, id, 0, &cfg) == gcclInvalidArgument,
               "99 sockets accepted");
    cfg = GCCL_CONFIG_INITIALIZER;
    cfg.transport = "carrier-pigeon";
    RANK_CHECK(gcclCommInitRankConfig(&comm, 1, id, 0, &cfg) == gcclInvalidArgument,
               "unknown transport accepted");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "carrier-pigeon") != nullptr, "%s",
               gcclGetLastError(nullptr));
    cfg = GCCL_CONFIG_INITIALIZER;
    cfg.faultTolerant = 2;
    RANK_CHECK(gcclCommInitRankConfig(&comm, 1, id, 0, &cfg) == gcclInvalidArgument,
               "faultTolerant 2 accepted");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "config.faultTolerant is 2") != nullptr, "%s",
               gcclGetLastError(nullptr));
    gcclUniqueId garbage;
    memset(&garbage, 0x5a, sizeof(garbage));
    RANK_CHECK(gcclCommInitRank(&comm, 1, garbage, 0) == gcclInvalidArgument,
               "garbage id accepted");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "unique id") != nullptr, "%s",
               gcclGetLastError(nullptr));
    RANK_CHECK(comm == nullptr, "a failed init wrote the output");
    return 0;
  });
}

TEST(BadInput, RanksThatDisagreeOnTheSizeFailInitWithTheReason) {
  runAndExpect(2, [](int rank, int, const gcclUniqueId& id) {
    gcclComm_t comm = nullptr;
    gcclResult_t r = initWithTimeout(&comm, rank == 0 ? 2 : 3, id, rank, 5000);
    RANK_CHECK(r != gcclSuccess, "init with disagreeing sizes succeeded");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "disagree") != nullptr, "%s",
               gcclGetLastError(nullptr));
    return 0;
  });
}

TEST(BadInput, InitTimesOutNamingTheRankThatNeverCame) {
  runAndExpect(3, [](int rank, int n, const gcclUniqueId& id) {
    if (rank == 1) return 0;  // never joins
    gcclComm_t comm = nullptr;
    int64_t start = nowMs();
    gcclResult_t r = initWithTimeout(&comm, n, id, rank, 1500);
    RANK_CHECK(r == gcclTimeout || r == gcclInvalidUsage, "got %s", gcclGetErrorString(r));
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "rank(s) 1 never joined") != nullptr, "%s",
               gcclGetLastError(nullptr));
    RANK_CHECK(nowMs() - start < 8000, "init took %lld ms",
               static_cast<long long>(nowMs() - start));
    return 0;
  });
}

TEST(UseAfterDestroy, CallsOnADestroyedCommunicatorAreRejected) {
  runAndExpect(1, [](int rank, int n, const gcclUniqueId& id) {
    gcclComm_t comm;
    RANK_OK(gcclCommInitRank(&comm, n, id, rank));
    RANK_OK(gcclCommDestroy(comm));
    float x = 1;
    RANK_CHECK(
        gcclAllReduce(&x, &x, 1, gcclFloat32, gcclSum, comm, nullptr, nullptr) == gcclInvalidUsage,
        "AllReduce on a destroyed communicator was accepted");
    RANK_CHECK(strstr(gcclGetLastError(nullptr), "not valid") != nullptr, "%s",
               gcclGetLastError(nullptr));
    int count;
    RANK_CHECK(gcclCommCount(comm, &count) == gcclInvalidUsage, "Count accepted");
    RANK_CHECK(gcclCommDestroy(comm) == gcclInvalidUsage, "double destroy accepted");
    return 0;
  });
}

TEST(NonBlockingInit, ReportsInProgressThenSuccess) {
  runAndExpect(2, [](int rank, int n, const gcclUniqueId& id) {
    gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    gcclComm_t comm;
    RANK_OK(gcclCommInitRankConfig(&comm, n, id, rank, &cfg));
    gcclResult_t state = gcclInProgress;
    for (int i = 0; i < 3000 && state == gcclInProgress; ++i) {
      RANK_OK(gcclCommGetAsyncError(comm, &state));
      if (state == gcclInProgress) usleep(2000);
    }
    RANK_CHECK(state == gcclSuccess, "init ended with %s", gcclGetErrorString(state));
    int32_t v = rank + 1;
    RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
    RANK_CHECK(v == 3, "sum %d", v);
    RANK_OK(gcclCommDestroy(comm));
    return 0;
  });
}

// ---- strangers on the listening ports -------------------------------------------

int connectTo(const SockAddr& addr) {
  int fd = socket(addr.family(), SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, addr.sa(), addr.len) != 0) return -1;
  return fd;
}

void sendGarbage(const SockAddr& addr, uint64_t seed) {
  int fd = connectTo(addr);
  if (fd < 0) return;
  std::mt19937_64 rng(seed);
  uint8_t junk[300];
  for (auto& b : junk)
    b = static_cast<uint8_t>(rng());
  (void)!write(fd, junk, sizeof(junk));
  usleep(20000);
  close(fd);
}

struct IntruderBoard {
  std::atomic<int> idReady;
  std::atomic<int> rendezvousAttacked;
  gcclUniqueId id;
  SockAddr data[2];
};

TEST(Intruders, RandomBytesAndWrongSecretsAreRejectedAndTheCommunicatorIsUnaffected) {
  SharedArea area(sizeof(IntruderBoard));
  auto* board = area.as<IntruderBoard>();
  std::string why;
  auto outcomes = runRanksWithControl(
      2,
      [board](int rank, int n, const gcclUniqueId&) {
        if (rank == 0) {
          gcclUniqueId id;
          RANK_OK(gcclGetUniqueId(&id));
          board->id = id;
          board->idReady = 1;
        }
        // Nobody joins until the parent has thrown garbage at the rendezvous.
        for (int spin = 0; spin < 2000 && !board->rendezvousAttacked; ++spin)
          usleep(5000);
        gcclUniqueId id = board->id;
        gcclComm_t comm;
        RANK_OK(initWithTimeout(&comm, n, id, rank, 20000));
        board->data[rank] = comm->listenAddr;
        // Give the parent time to attack the data ports, then prove the communicator works.
        usleep(600000);
        int32_t v = rank + 1;
        RANK_OK(gcclAllReduce(&v, &v, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
        RANK_CHECK(v == 3, "sum %d", v);
        gcclResult_t async;
        RANK_OK(gcclCommGetAsyncError(comm, &async));
        RANK_CHECK(async == gcclSuccess, "async error %s", gcclGetErrorString(async));
        RANK_OK(gcclCommDestroy(comm));
        return 0;
      },
      [board](const std::vector<int>&) {
        for (int spin = 0; spin < 2000 && !board->idReady; ++spin)
          usleep(5000);
        UniqueIdFields fields;
        if (decodeUniqueId(board->id, &fields) == gcclSuccess)
          for (uint64_t s = 1; s <= 3; ++s)
            sendGarbage(fields.root, s);
        board->rendezvousAttacked = 1;
        for (int spin = 0; spin < 2000 && (board->data[0].len == 0 || board->data[1].len == 0);
             ++spin)
          usleep(5000);
        for (int r = 0; r < 2; ++r) {
          sendGarbage(board->data[r], 100 + static_cast<uint64_t>(r));
          // A well-formed handshake with the wrong secret.
          int fd = -1;
          if (tcp::startConnect(board->data[r], &fd) != gcclSuccess) continue;
          tcp::Credentials wrong;
          memset(wrong.secret, 0x42, sizeof(wrong.secret));
          tcp::HelloInfo hello;
          hello.fromRank = 1 - r;
          hello.toRank = r;
          gcclResult_t res = tcp::clientHandshake(fd, wrong, hello, nowMs() + 3000);
          EXPECT_NE(res, gcclSuccess) << "a wrong secret was accepted by rank " << r;
          close(fd);
        }
      },
      60);
  ASSERT_TRUE(allSucceeded(outcomes, &why)) << why;
}

}  // namespace
}  // namespace gccl::test
