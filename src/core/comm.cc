// Communicator life cycle: creation (bootstrap, connections, engine),
// destruction, abort, and the small queries of the public API.
#include "core/comm.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "core/api_call.h"
#include "core/bootstrap.h"
#include "core/membership.h"
#include "base/check.h"
#include "core/launcher_env.h"
#include "base/log.h"
#include "base/param.h"
#include "transports/tcp/socket.h"
#include "transports/registry.h"
#include "transports/tcp/tcp_transport.h"

namespace gccl {

namespace {

std::mutex gRegistryMutex;
std::set<gcclComm*>& registry() {
  static auto* r = new std::set<gcclComm*>();
  return *r;
}

// The shortest timeout accepted. Every rank must start initialization within
// the timeout of the others, and a peer whose progress thread does not answer
// within half of it is reported dead: below a second, ranks that start a
// little late or pause briefly on a busy host would fail for no fault.
constexpr int64_t kMinTimeoutMs = 1000;

// `source` names where the value came from, for the error.
gcclResult_t checkTimeout(int64_t timeoutMs, const char* source) {
  GCCL_REQUIRE(timeoutMs >= kMinTimeoutMs, gcclInvalidArgument,
               "%s is %lld ms; the minimum is %lld ms (ranks that start a little late, or pause "
               "briefly on a busy host, would be reported as failed)",
               source, static_cast<long long>(timeoutMs), static_cast<long long>(kMinTimeoutMs));
  return gcclSuccess;
}

struct ResolvedConfig {
  bool blocking = true;
  int64_t timeoutMs = 0;
  int dataSockets = 0;  // 0: automatic (TcpOptions)
  std::string ifname;
  std::string transport;
  bool faultTolerant = false;
};

gcclResult_t resolveConfig(const gcclConfig_t* config, ResolvedConfig* out) {
  ResolvedConfig rc;
  rc.timeoutMs = param::TimeoutMs();
  rc.dataSockets = static_cast<int>(param::NSocksPerPeer());
  rc.ifname = param::SocketIfname();
  rc.transport = param::Transport();
  rc.faultTolerant = param::FaultTolerant() != 0;
  const char* timeoutSource = "GCCL_TIMEOUT_MS";
  if (config != nullptr) {
    GCCL_REQUIRE(config->magic == GCCL_CONFIG_MAGIC, gcclInvalidArgument,
                 "config.magic is 0x%x: initialize the config with GCCL_CONFIG_INITIALIZER",
                 config->magic);
    GCCL_REQUIRE(config->size >= offsetof(gcclConfig_t, blocking) + sizeof(int),
                 gcclInvalidArgument, "config.size %zu is too small", config->size);
    auto has = [config](size_t offset, size_t size) { return config->size >= offset + size; };
    if (has(offsetof(gcclConfig_t, blocking), sizeof(int)) &&
        config->blocking != GCCL_CONFIG_UNDEF_INT)
      rc.blocking = config->blocking != 0;
    if (has(offsetof(gcclConfig_t, timeoutMs), sizeof(int)) &&
        config->timeoutMs != GCCL_CONFIG_UNDEF_INT) {
      rc.timeoutMs = config->timeoutMs;
      timeoutSource = "config.timeoutMs";
    }
    if (has(offsetof(gcclConfig_t, nSocketsPerPeer), sizeof(int)) &&
        config->nSocketsPerPeer != GCCL_CONFIG_UNDEF_INT)
      rc.dataSockets = config->nSocketsPerPeer;
    if (has(offsetof(gcclConfig_t, socketIfname), sizeof(char*)) && config->socketIfname != nullptr)
      rc.ifname = config->socketIfname;
    if (has(offsetof(gcclConfig_t, transport), sizeof(char*)) && config->transport != nullptr)
      rc.transport = config->transport;
    if (has(offsetof(gcclConfig_t, faultTolerant), sizeof(int)) &&
        config->faultTolerant != GCCL_CONFIG_UNDEF_INT) {
      GCCL_REQUIRE(config->faultTolerant == 0 || config->faultTolerant == 1, gcclInvalidArgument,
                   "config.faultTolerant is %d; it must be 0 or 1", config->faultTolerant);
      rc.faultTolerant = config->faultTolerant == 1;
    }
  }
  GCCL_CHECK(checkTimeout(rc.timeoutMs, timeoutSource));
  GCCL_REQUIRE(rc.dataSockets >= 0 && rc.dataSockets <= 16, gcclInvalidArgument,
               "nSocketsPerPeer is %d; it must be between 1 and 16, or 0 (automatic)",
               rc.dataSockets);
  std::vector<std::string> names;
  GCCL_CHECK(transport::parseTransportPreference(rc.transport, &names));
  *out = rc;
  return gcclSuccess;
}

// GCCL_SPIN_US: how long a blocked caller polls without sleeping after the
// last event, and for how much of that it pauses the core rather than yield
// it. Automatic (-1): while this machine runs no more ranks than this process
// may use cores, 50 us, the first quarter pausing; with more ranks than
// cores, 20 us of yielding only: a yield hands the core to a rank with work
// at once, where a sleeping rank would need a wake-up for every message
// (measured in perf/RESULTS.md, "4 ranks on 2 cores").
void resolveSpin(int localRanks, int64_t* spinUs, int64_t* pauseUs) {
  cpu_set_t set;
  int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  bool dedicated = localRanks <= cores;
  int64_t spin = param::SpinUs();
  if (spin < 0) spin = dedicated ? 50 : 20;
  *spinUs = spin;
  *pauseUs = dedicated ? spin / 4 : 0;
}

OpParams resolveOpParams() {
  OpParams p;
  p.chunkBytes = static_cast<size_t>(std::max<int64_t>(param::ChunkBytes(), 4096));
  p.ringThresholdBytes = static_cast<size_t>(std::max<int64_t>(param::RingThreshold(), 0));
  std::string algo = param::AlgoAllReduce();
  if (algo == "ring")
    p.allReduceAlgo = 1;
  else if (algo == "rd")
    p.allReduceAlgo = 2;
  else if (algo != "auto")
    GCCL_WARN(kLogEnv, "GCCL_ALGO_ALLREDUCE=%s is not one of auto, ring, rd; using auto",
              algo.c_str());
  return p;
}

// Everything of init that talks to other ranks.
// A restarted rank (`rejoin`) finds the others through the root, which
// fault-tolerant communicators keep serving, connects to those it can reach
// and waits until the survivors take it in (membership.h, "Rejoin").
gcclResult_t connectComm(gcclComm* comm, const UniqueIdFields& id, const ResolvedConfig& rc,
                         bool rejoin) {
  int64_t deadline = nowMs() + rc.timeoutMs;
  if (id.rootAtRank0 && comm->rank == 0 && !rejoin) GCCL_CHECK(startRootAt(id, rc.timeoutMs));

  EngineOptions eo;
  eo.rank = comm->rank;
  eo.nranks = comm->nranks;
  eo.timeoutMs = rc.timeoutMs;
  eo.params = resolveOpParams();
  eo.callerProgress = param::CallerProgress() != 0;
  eo.leaseUs = std::max<int64_t>(param::ProgressLeaseUs(), 0);
  eo.faultTolerant = rc.faultTolerant;
  comm->engine = std::make_unique<Engine>(eo);

  transport::RegistryOptions ro;
  ro.ctx.rank = comm->rank;
  ro.ctx.nranks = comm->nranks;
  tcp::Credentials creds = credentialsOf(id);
  ro.ctx.commHash = creds.commHash;
  memcpy(ro.ctx.secret, creds.secret, sizeof(ro.ctx.secret));
  ro.ctx.poller = comm->engine.get();
  ro.preference = rc.transport;
  ro.tcp.ifname = rc.ifname;
  ro.tcp.family = param::SocketFamily();
  ro.tcp.dataSockets = rc.dataSockets;
  ro.tcp.sockBufBytes = param::SockBufBytes();
  ro.tcp.congestion = param::TcpCongestion();
  ro.tcp.helloTimeoutMs = std::min<int64_t>(rc.timeoutMs, tcp::kMaxHelloWaitMs);
  ro.tcp.acceptRejoins = rc.faultTolerant;
  ro.tcp.tuning.stripeMinBytes = static_cast<size_t>(std::max<int64_t>(param::StripeMinBytes(), 1));
  ro.tcp.tuning.delayUs = std::max<int64_t>(param::BenchDelayUs(), 0);
  if (ro.tcp.tuning.delayUs > 0)
    GCCL_WARN(kLogEnv,
              "GCCL_BENCH_DELAY_US=%lld: every data frame is held %lld us (emulated latency)",
              static_cast<long long>(ro.tcp.tuning.delayUs),
              static_cast<long long>(ro.tcp.tuning.delayUs));
  transport::Registry registry(ro);
  std::string blob;
  GCCL_CHECK(registry.open(&blob));
  registry.socketAddress(&comm->listenAddr, &comm->ifname);
  std::vector<std::string> table;
  std::vector<std::unique_ptr<transport::Connection>> conns;
  std::vector<std::unique_ptr<transport::Listener>> listeners;
  if (rejoin) {
    uint32_t incarnation = 0;
    GCCL_CHECK(bootstrapRejoin(id, comm->rank, comm->nranks, blob, deadline, &table, &incarnation));
    comm->engine->setIncarnation(incarnation);
    // A member that does not answer within half the timeout counts as gone.
    int64_t perPeerMs = std::max<int64_t>(rc.timeoutMs / 2, 1);
    GCCL_CHECK(registry.rejoin(table, incarnation, perPeerMs, deadline, &conns, &listeners));
    GCCL_INFO(kLogInit, "rank %d/%d: rejoining as incarnation %u", comm->rank, comm->nranks,
              incarnation);
  } else {
    GCCL_CHECK(
        bootstrapExchange(id, comm->rank, comm->nranks, blob, deadline, &table, rc.faultTolerant));
    GCCL_CHECK(registry.connect(table, deadline, &conns, &listeners));
  }
  comm->transports = registry.chosen();
  if (ro.tcp.tuning.delayUs > 0)
    for (size_t r = 0; r < comm->transports.size(); ++r)
      if (comm->transports[r] != "tcp" && comm->transports[r] != "self") {
        GCCL_WARN(kLogEnv,
                  "GCCL_BENCH_DELAY_US delays TCP frames only, but rank %zu is reached over %s: "
                  "set GCCL_TRANSPORT=tcp to emulate latency between ranks on one host",
                  r, comm->transports[r].c_str());
        break;
      }
  int64_t spinUs, pauseUs;
  resolveSpin(registry.localRanks(), &spinUs, &pauseUs);
  comm->engine->setSpin(spinUs, pauseUs);
  GCCL_CHECK(comm->engine->start(std::move(conns), std::move(listeners)));
  if (rejoin) {
    // Until a view takes this rank in; its collectives then go on from the
    // survivors' count, the first being its join step (gcclGossipJoin).
    uint64_t joinSeq = 0;
    gcclRequest* req = newRequest(rc.timeoutMs);
    std::vector<std::unique_ptr<Op>> batch;
    batch.push_back(makeJoinedOp(&joinSeq, req));
    req->submitted = true;
    comm->engine->submitAndDrive(std::move(batch), req, deadline);
    std::string reason;
    gcclResult_t r = waitRequest(req, rc.timeoutMs + 5000, &reason);
    releaseRequest(req);
    if (r != gcclSuccess) return setError(r, "rejoining: %s", reason.c_str());
    comm->collectiveSeq = joinSeq;
    comm->joinPending = true;
  }
  GCCL_INFO(kLogInit, "rank %d/%d ready: %s", comm->rank, comm->nranks,
            registry.describe().c_str());
  return gcclSuccess;
}

gcclResult_t initComm(gcclComm** out, int nranks, const gcclUniqueId& commId, int rank,
                      const gcclConfig_t* config, bool rejoin = false) {
  GCCL_REQUIRE(out != nullptr, gcclInvalidArgument, "comm (the output pointer) is NULL");
  GCCL_REQUIRE(nranks >= 1, gcclInvalidArgument, "nranks is %d; it must be at least 1", nranks);
  GCCL_REQUIRE(rank >= 0 && rank < nranks, gcclInvalidArgument,
               "rank %d is out of range for nranks %d", rank, nranks);
  ResolvedConfig rc;
  GCCL_CHECK(resolveConfig(config, &rc));
  UniqueIdFields id;
  GCCL_CHECK(decodeUniqueId(commId, &id));
  if (rejoin) {
    bool explicitOff = config != nullptr && config->magic == GCCL_CONFIG_MAGIC &&
                       config->size >= offsetof(gcclConfig_t, faultTolerant) + sizeof(int) &&
                       config->faultTolerant == 0;
    GCCL_REQUIRE(!explicitOff, gcclInvalidArgument,
                 "gcclCommRejoin: config.faultTolerant is 0, but only fault-tolerant "
                 "communicators take a restarted rank back");
    rc.faultTolerant = true;
  }

  auto* comm = new gcclComm();
  comm->rank = rank;
  comm->nranks = nranks;
  comm->timeoutMs = rc.timeoutMs;
  comm->dataSockets = rc.dataSockets;
  comm->configIfname = rc.ifname;
  comm->configTransport = rc.transport;
  comm->faultTolerant = rc.faultTolerant;
  comm->idFields = id;
  comm->rejoined = rejoin;
  comm->sendSeq.assign(static_cast<size_t>(nranks), 0);
  comm->recvSeq.assign(static_cast<size_t>(nranks), 0);
  {
    std::lock_guard<std::mutex> lock(gRegistryMutex);
    registry().insert(comm);
  }
  auto run = [comm, id, rc, rejoin] {
    gcclResult_t r = connectComm(comm, id, rc, rejoin);
    if (r != gcclSuccess) {
      comm->initError = threadLastError();
      if (comm->engine) comm->engine.reset();
      waitForLocalRoots(2000);
    }
    comm->initState = r;
    return r;
  };
  if (rc.blocking) {
    gcclResult_t r = run();
    if (r != gcclSuccess) {
      {
        std::lock_guard<std::mutex> lock(gRegistryMutex);
        registry().erase(comm);
      }
      std::string why = comm->initError;
      delete comm;
      return setError(r, "rank %d: initialization failed: %s", rank, why.c_str());
    }
  } else {
    comm->initThread = std::thread(run);
  }
  *out = comm;
  return gcclSuccess;
}

// Waits (bounded) until no other API call runs inside `comm`, then frees it.
void retireComm(gcclComm* comm) {
  if (comm->initThread.joinable()) comm->initThread.join();
  if (comm->engine) comm->engine->shutdown();
  // A root kept serving rejoins in this process for it stops.
  if (comm->faultTolerant) stopRejoinService(comm->idFields);
  if (!comm->rendezvousFile.empty()) unlink(comm->rendezvousFile.c_str());
  waitForCalls(comm);
  comm->engine.reset();
  delete comm;
}

}  // namespace

ApiGuard::ApiGuard(gcclComm* comm, const char* call) : comm_(nullptr) {
  result_ = checkComm(comm, call, /*hold=*/true);
  if (result_ == gcclSuccess) comm_ = comm;
}

ApiGuard::~ApiGuard() {
  if (comm_ != nullptr) comm_->activeCalls.fetch_sub(1);
}

IssueGuard::IssueGuard(gcclComm* comm, const char* call, bool active) {
  if (!active) return;
  static thread_local char token;  // its address names this thread
  const void* me = &token;
  std::string reason;
  {
    // Acquire on taking it pairs with the release of the thread that issued
    // before: what that thread's calls wrote (sequence numbers) is seen here.
    const void* expected = nullptr;
    if (comm->issuer.load(std::memory_order_acquire) == me) {
      ++comm->issueDepth;
      comm_ = comm;
      return;
    }
    if (comm->issuer.compare_exchange_strong(expected, me, std::memory_order_acq_rel)) {
      comm->issueDepth = 1;
      comm->issuingCall.store(call, std::memory_order_relaxed);
      comm_ = comm;
      return;
    }
    reason = std::string(call) + " was called while another thread was inside " +
             comm->issuingCall.load(std::memory_order_relaxed) +
             " on the same communicator: calls that issue operations must come from one "
             "thread at a time, since ranks match them by the order each one issues them "
             "(two threads at once could pair different calls on different ranks)";
  }
  // Whatever either thread's call does now may be paired with the wrong call
  // on another rank: stop every rank before any of it completes.
  comm->engine->abort(gcclInvalidUsage, reason);
  result_ = setError(gcclInvalidUsage, "%s; the communicator is now broken on every rank",
                     reason.c_str());
}

IssueGuard::~IssueGuard() {
  if (comm_ == nullptr) return;
  if (--comm_->issueDepth == 0) comm_->issuer.store(nullptr, std::memory_order_release);
}

void waitForCalls(gcclComm* comm) {
  // Calls in flight were woken by the engine's shutdown; give them time to leave.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(comm->timeoutMs);
  while (comm->activeCalls.load() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

gcclResult_t checkComm(gcclComm* comm, const char* call, bool hold) {
  GCCL_REQUIRE(comm != nullptr, gcclInvalidArgument, "%s: comm is NULL", call);
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  GCCL_REQUIRE(registry().count(comm) != 0, gcclInvalidUsage,
               "%s: communicator %p is not valid (destroyed, aborted or never created)", call,
               static_cast<void*>(comm));
  // Counted under the registry lock, so a concurrent destroy either sees this
  // call in flight or this call sees the communicator gone.
  if (hold) comm->activeCalls.fetch_add(1);
  return gcclSuccess;
}

gcclResult_t checkCommReady(gcclComm* comm, const char* call) {
  GCCL_CHECK(checkComm(comm, call));
  return checkCommState(comm, call);
}

gcclResult_t checkCommState(gcclComm* comm, const char* call) {
  gcclResult_t state = comm->initState.load();
  GCCL_REQUIRE(state != gcclInProgress, gcclInProgress,
               "%s: the communicator is still initializing (poll gcclCommGetAsyncError)", call);
  GCCL_REQUIRE(state == gcclSuccess, state, "%s: the communicator failed to initialize: %s", call,
               comm->initError.c_str());
  std::string reason;
  gcclResult_t err = comm->engine->error(&reason);
  GCCL_REQUIRE(err == gcclSuccess, err, "%s: the communicator is broken: %s", call, reason.c_str());
  return gcclSuccess;
}

gcclResult_t recordError(gcclComm* comm, gcclResult_t result) {
  if (result == gcclSuccess || comm == nullptr) return result;
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  if (registry().count(comm) == 0) return result;
  std::lock_guard<std::mutex> lock2(comm->errorMutex);
  comm->lastError = threadLastError();
  return result;
}

gcclResult_t unregisterComm(gcclComm* comm, const char* call) {
  GCCL_REQUIRE(comm != nullptr, gcclInvalidArgument, "%s: comm is NULL", call);
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  GCCL_REQUIRE(registry().erase(comm) != 0, gcclInvalidUsage,
               "%s: communicator %p is not valid (destroyed, aborted or never created)", call,
               static_cast<void*>(comm));
  return gcclSuccess;
}

}  // namespace gccl

namespace gccl {
namespace {
// For calls that read a communicator's state without running anything: it
// must have finished initializing, successfully.
gcclResult_t checkInitialized(gcclComm* comm, const char* call) {
  gcclResult_t state = comm->initState.load();
  GCCL_REQUIRE(state != gcclInProgress, gcclInProgress,
               "%s: the communicator is still initializing (poll gcclCommGetAsyncError)", call);
  GCCL_REQUIRE(state == gcclSuccess, gcclInvalidUsage,
               "%s: the communicator failed to initialize: %s", call, comm->initError.c_str());
  return gcclSuccess;
}
}  // namespace
}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclGetVersion(int* version) {
  clearThreadLastError();
  if (version == nullptr) return setError(gcclInvalidArgument, "gcclGetVersion: version is NULL");
  *version = GCCL_VERSION_CODE;
  return gcclSuccess;
}

const char* gcclGetLastError(gcclComm_t comm) {
  static thread_local std::string copy;
  if (comm == nullptr) return threadLastError();
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  if (registry().count(comm) == 0) return threadLastError();
  std::lock_guard<std::mutex> lock2(comm->errorMutex);
  copy = comm->lastError;
  return copy.c_str();
}

gcclResult_t gcclGetUniqueId(gcclUniqueId* uniqueId) {
  clearThreadLastError();
  if (uniqueId == nullptr)
    return setError(gcclInvalidArgument, "gcclGetUniqueId: uniqueId is NULL");
  // The rendezvous root waits this long for the ranks.
  GCCL_CHECK(checkTimeout(param::TimeoutMs(), "GCCL_TIMEOUT_MS"));
  return createUniqueId(param::TimeoutMs(), uniqueId);
}

gcclResult_t gcclCommInitRank(gcclComm_t* comm, int nranks, gcclUniqueId commId, int rank) {
  clearThreadLastError();
  return initComm(comm, nranks, commId, rank, nullptr);
}

gcclResult_t gcclCommInitRankConfig(gcclComm_t* comm, int nranks, gcclUniqueId commId, int rank,
                                    gcclConfig_t* config) {
  clearThreadLastError();
  return initComm(comm, nranks, commId, rank, config);
}

gcclResult_t gcclCommRejoin(gcclComm_t* comm, int nranks, gcclUniqueId commId, int rank,
                            gcclConfig_t* config) {
  clearThreadLastError();
  return initComm(comm, nranks, commId, rank, config, true);
}

gcclResult_t gcclCommInitFromEnv(gcclComm_t* comm, gcclConfig_t* config) {
  clearThreadLastError();
  // GCCL_REJOIN=1: this process restarts a rank of a running fault-tolerant
  // communicator (gcclCommRejoin).
  bool rejoin = param::Rejoin() != 0;
  LauncherEnv env;
  GCCL_CHECK(readLauncherEnv(&env));
  gcclUniqueId id;
  std::string commId = param::CommId();
  if (!commId.empty()) {
    GCCL_CHECK(uniqueIdFromAddress(commId, env.jobId, &id));
  } else if (!env.masterAddr.empty() && env.masterPort > 0) {
    int port = env.masterPort + static_cast<int>(param::PortOffset());
    GCCL_REQUIRE(port > 0 && port < 65536, gcclInvalidArgument,
                 "MASTER_PORT %d + GCCL_PORT_OFFSET gives port %d, outside 1..65535",
                 env.masterPort, port);
    std::string host =
        env.masterAddr.find(':') != std::string::npos ? "[" + env.masterAddr + "]" : env.masterAddr;
    GCCL_CHECK(uniqueIdFromAddress(host + ":" + std::to_string(port), env.jobId, &id));
  } else {
    // All ranks on one host: rank 0 publishes a fresh id in a private file.
    GCCL_REQUIRE(env.localSize == env.size && !env.jobId.empty(), gcclInvalidUsage,
                 "gcclCommInitFromEnv (%s, rank %d of %d): set GCCL_COMM_ID=host:port or "
                 "MASTER_ADDR/MASTER_PORT; the file rendezvous needs all ranks on one host and a "
                 "job id",
                 env.launcher.c_str(), env.rank, env.size);
    std::string safe;
    for (char c : env.jobId)
      safe += (isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '_';
    std::string path =
        param::RendezvousDir() + "/gccl-" + std::to_string(getuid()) + "-" + safe + ".id";
    int64_t timeoutMs = param::TimeoutMs();
    const char* timeoutSource = "GCCL_TIMEOUT_MS";
    if (config != nullptr && config->magic == GCCL_CONFIG_MAGIC &&
        config->timeoutMs != GCCL_CONFIG_UNDEF_INT && config->timeoutMs > 0) {
      timeoutMs = config->timeoutMs;
      timeoutSource = "config.timeoutMs";
    }
    GCCL_CHECK(checkTimeout(timeoutMs, timeoutSource));
    if (env.rank == 0 && !rejoin) {
      GCCL_CHECK(createUniqueId(timeoutMs, &id));
      std::string tmp = path + ".tmp" + std::to_string(getpid());
      FILE* f = fopen(tmp.c_str(), "wb");
      GCCL_REQUIRE(f != nullptr, gcclSystemError, "cannot write %s: %s", tmp.c_str(),
                   strerror(errno));
      fchmod(fileno(f), 0600);
      size_t w = fwrite(&id, sizeof(id), 1, f);
      fclose(f);
      GCCL_REQUIRE(w == 1 && rename(tmp.c_str(), path.c_str()) == 0, gcclSystemError,
                   "cannot publish the rendezvous file %s: %s", path.c_str(), strerror(errno));
    } else {
      int64_t deadline = nowMs() + timeoutMs;
      for (;;) {
        std::ifstream in(path, std::ios::binary);
        if (in.read(reinterpret_cast<char*>(&id), sizeof(id))) break;
        GCCL_REQUIRE(nowMs() < deadline, gcclTimeout,
                     "rank %d: rank 0 did not publish the rendezvous file %s in time", env.rank,
                     path.c_str());
        usleep(20 * 1000);
      }
    }
    gcclResult_t r = initComm(comm, env.size, id, env.rank, config, rejoin);
    // A fault-tolerant communicator keeps the file while rank 0's lives, for
    // restarted ranks to find the root (removed when rank 0 destroys it).
    if (env.rank == 0 && !rejoin) {
      if (r == gcclSuccess && (*comm)->faultTolerant)
        (*comm)->rendezvousFile = path;
      else
        unlink(path.c_str());
    }
    return r;
  }
  return initComm(comm, env.size, id, env.rank, config, rejoin);
}

gcclResult_t gcclCommDestroy(gcclComm_t comm) {
  clearThreadLastError();
  {
    // Calls this thread queued in an open group still point at it: refuse
    // rather than leave gcclGroupEnd with a freed communicator.
    ApiGuard guard(comm, "gcclCommDestroy");
    GCCL_CHECK(guard.result());
    size_t queued = queuedGroupCalls(comm);
    if (queued != 0)
      return recordError(
          comm, setError(gcclInvalidUsage,
                         "gcclCommDestroy: %zu call(s) on this communicator are queued in an open "
                         "group; call gcclGroupEnd first (or gcclCommAbort to drop them)",
                         queued));
  }
  GCCL_CHECK(unregisterComm(comm, "gcclCommDestroy"));
  retireComm(comm);
  return gcclSuccess;
}

gcclResult_t gcclCommAbort(gcclComm_t comm) {
  clearThreadLastError();
  GCCL_CHECK(unregisterComm(comm, "gcclCommAbort"));
  dropGroupCalls(comm, gcclAborted,
                 "the application aborted the communicator before gcclGroupEnd started this call");
  if (comm->initThread.joinable()) comm->initThread.join();
  if (comm->engine) comm->engine->abort(gcclAborted, "the application aborted the communicator");
  retireComm(comm);
  return gcclSuccess;
}

gcclResult_t gcclCommGetAsyncError(gcclComm_t comm, gcclResult_t* asyncError) {
  clearThreadLastError();
  ApiGuard guard(comm, "gcclCommGetAsyncError");
  GCCL_CHECK(guard.result());
  if (asyncError == nullptr)
    return recordError(comm,
                       setError(gcclInvalidArgument, "gcclCommGetAsyncError: asyncError is NULL"));
  gcclResult_t state = comm->initState.load();
  if (state != gcclSuccess) {
    if (state != gcclInProgress)
      setError(state, "initialization failed: %s", comm->initError.c_str());
    *asyncError = state;
    return gcclSuccess;
  }
  std::string reason;
  *asyncError = comm->engine->error(&reason);
  if (*asyncError != gcclSuccess) {
    setError(*asyncError, "%s", reason.c_str());
    recordError(comm, *asyncError);
  }
  return gcclSuccess;
}

gcclResult_t gcclCommCount(const gcclComm_t comm, int* count) {
  clearThreadLastError();
  GCCL_CHECK(checkComm(comm, "gcclCommCount"));
  if (count == nullptr)
    return recordError(comm, setError(gcclInvalidArgument, "gcclCommCount: count is NULL"));
  *count = comm->nranks;
  return gcclSuccess;
}

gcclResult_t gcclCommUserRank(const gcclComm_t comm, int* rank) {
  clearThreadLastError();
  GCCL_CHECK(checkComm(comm, "gcclCommUserRank"));
  if (rank == nullptr)
    return recordError(comm, setError(gcclInvalidArgument, "gcclCommUserRank: rank is NULL"));
  *rank = comm->rank;
  return gcclSuccess;
}

gcclResult_t gcclCommGetPeerCounters(gcclComm_t comm, int peer, gcclPeerCounters_t* counters) {
  clearThreadLastError();
  const char* call = "gcclCommGetPeerCounters";
  ApiGuard guard(comm, call);
  GCCL_CHECK(guard.result());
  if (counters == nullptr)
    return recordError(comm, setError(gcclInvalidArgument, "%s: counters is NULL", call));
  if (counters->magic != GCCL_PEER_COUNTERS_MAGIC)
    return recordError(comm, setError(gcclInvalidArgument,
                                      "%s: counters->magic is 0x%x, not GCCL_PEER_COUNTERS_MAGIC: "
                                      "initialize it with GCCL_PEER_COUNTERS_INITIALIZER",
                                      call, counters->magic));
  const size_t minSize = offsetof(gcclPeerCounters_t, bytesSent) + sizeof(uint64_t);
  if (counters->size < minSize)
    return recordError(comm,
                       setError(gcclInvalidArgument,
                                "%s: counters->size is %zu; it must be at least %zu (up to "
                                "bytesSent): initialize it with GCCL_PEER_COUNTERS_INITIALIZER",
                                call, counters->size, minSize));
  if (peer < 0 || peer >= comm->nranks)
    return recordError(comm, setError(gcclInvalidArgument,
                                      "%s: peer %d is out of range for a communicator of %d ranks",
                                      call, peer, comm->nranks));
  GCCL_CHECK(recordError(comm, checkInitialized(comm, call)));
  Engine::PeerCounters c = comm->engine->peerCounters(peer);
  // Only the fields the caller's struct has room for.
  auto put = [counters](size_t offset, uint64_t value) {
    if (counters->size >= offset + sizeof(uint64_t))
      memcpy(reinterpret_cast<char*>(counters) + offset, &value, sizeof(value));
  };
  put(offsetof(gcclPeerCounters_t, bytesSent), c.bytesSent);
  put(offsetof(gcclPeerCounters_t, bytesReceived), c.bytesReceived);
  put(offsetof(gcclPeerCounters_t, messagesSent), c.messagesSent);
  put(offsetof(gcclPeerCounters_t, messagesReceived), c.messagesReceived);
  return gcclSuccess;
}

gcclResult_t gcclCommGetFailedRanks(gcclComm_t comm, gcclFailedRank_t* failed, int capacity,
                                    int* count) {
  clearThreadLastError();
  const char* call = "gcclCommGetFailedRanks";
  ApiGuard guard(comm, call);
  GCCL_CHECK(guard.result());
  if (count == nullptr)
    return recordError(comm, setError(gcclInvalidArgument, "%s: count is NULL", call));
  if (capacity < 0)
    return recordError(
        comm, setError(gcclInvalidArgument, "%s: capacity is %d; it must be >= 0", call, capacity));
  if (failed == nullptr && capacity > 0)
    return recordError(comm, setError(gcclInvalidArgument, "%s: failed is NULL but capacity is %d",
                                      call, capacity));
  GCCL_CHECK(recordError(comm, checkInitialized(comm, call)));
  std::vector<std::pair<int, std::string>> list = comm->engine->failedRanks();
  for (size_t i = 0; i < list.size() && i < static_cast<size_t>(capacity); ++i) {
    failed[i].rank = list[i].first;
    snprintf(failed[i].reason, sizeof(failed[i].reason), "%s", list[i].second.c_str());
  }
  *count = static_cast<int>(list.size());
  return gcclSuccess;
}

gcclResult_t gcclCommShrink(gcclComm_t comm, gcclConfig_t* config, gcclComm_t* newcomm) {
  const char* call = "gcclCommShrink";
  ShrinkState st;
  int newRank = -1, newSize = 0;
  gcclResult_t r = apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_REQUIRE(newcomm != nullptr, gcclInvalidArgument, "%s: newcomm is NULL", call);
    GCCL_REQUIRE(comm->faultTolerant, gcclInvalidUsage,
                 "%s: the communicator is not in fault-tolerant mode (gcclConfig_t.faultTolerant "
                 "or GCCL_FAULT_TOLERANT=1)",
                 call);
    GCCL_REQUIRE(!groupOpen(), gcclInvalidUsage,
                 "%s: not allowed between gcclGroupStart and "
                 "gcclGroupEnd",
                 call);
    // 1. Until the survivors' agreement has settled: who is in, at which view.
    gcclRequest* req = newRequest(comm->timeoutMs);
    GCCL_CHECK(launch(comm, makeShrinkOp(ShrinkStep::kSettle, &st, req), req, nullptr));
    for (size_t i = 0; i < st.alive.size(); ++i) {
      if (!st.alive[i]) continue;
      if (static_cast<int>(i) == comm->rank) newRank = newSize;
      ++newSize;
    }
    GCCL_REQUIRE(newRank >= 0, gcclRemoteError,
                 "%s: the survivors left this rank out (it was found failed)", call);
    // 2. The lowest survivor makes the new communicator's id and sends it to
    // the others over the old communicator's connections (authenticated);
    // they wait for it.
    bool leader = newRank == 0;
    if (leader) {
      gcclUniqueId id;
      GCCL_CHECK(createServedUniqueId(comm->configIfname, comm->timeoutMs, &id));
      st.id.assign(id.internal, id.internal + sizeof(id.internal));
    }
    req = newRequest(comm->timeoutMs);
    GCCL_CHECK(launch(comm,
                      makeShrinkOp(leader ? ShrinkStep::kAnnounce : ShrinkStep::kAwait, &st, req),
                      req, nullptr));
    GCCL_REQUIRE(st.id.size() == GCCL_UNIQUE_ID_BYTES, gcclRemoteError,
                 "%s: the new communicator's id has %zu bytes", call, st.id.size());
    return gcclSuccess;
  });
  if (r != gcclSuccess) return r;
  // 3. The survivors make the new communicator, numbered in the old order.
  gcclConfig_t inherited = GCCL_CONFIG_INITIALIZER;
  inherited.timeoutMs = static_cast<int>(comm->timeoutMs);
  inherited.nSocketsPerPeer = comm->dataSockets;
  inherited.socketIfname = comm->configIfname.c_str();
  inherited.transport = comm->configTransport.c_str();
  inherited.faultTolerant = comm->faultTolerant ? 1 : 0;
  gcclUniqueId id;
  memcpy(id.internal, st.id.data(), sizeof(id.internal));
  r = initComm(newcomm, newSize, id, newRank, config != nullptr ? config : &inherited);
  if (r != gcclSuccess) return recordError(comm, r);
  GCCL_INFO(kLogInit, "rank %d: shrunk to rank %d of %d", comm->rank, newRank, newSize);
  return gcclSuccess;
}

}  // extern "C"
