// Contexts, devices and connection set-up (net_comm.h): listen, connect and
// accept, none of which waits.
#include <sys/resource.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <map>

#include "base/hmac.h"
#include "base/le.h"
#include "base/param.h"
#include "plugins/nccl-net/net_comm_impl.h"
#include "plugins/nccl-net/net_devices.h"
#include "transports/tcp/acceptor.h"
#include "transports/tcp/handshake.h"

namespace gccl::nccl_net {

namespace {

// Handle layout (little-endian):
//    0 u32 magic   4 u16 version   6 u16 0
//    8 24 B listening address     32 u64 listen id (every frame's comm hash)
//   40 32 B secret
//   72 u32 kStageMagic while a connect is under way, 76 u32 0, 80 u64 its state
// The listen side writes bytes 0..71 and zeroes the rest; the connect side
// keeps its state in 72..87 between calls (NCCL passes the same handle).
constexpr uint32_t kHandleMagic = 0x484e4347u;  // "GCNH"
constexpr uint16_t kHandleVersion = 1;
constexpr uint32_t kStageMagic = 0x43504347u;  // "GCPC"
constexpr size_t kStageOffset = 72;
static_assert(kHandleBytes <= NCCL_NET_HANDLE_MAXSIZE, "the handle must fit NCCL's");
static_assert(kStageOffset + 16 <= kHandleBytes, "the connect state must fit the handle");

constexpr int kMaxDataSockets = 8;
constexpr int kMaxSocketRetries = 3;

std::atomic<ncclDebugLogger_t> gLogger{nullptr};

void forwardLog(LogLevel level, uint32_t subsys, const char* file, int line, const char* msg) {
  ncclDebugLogger_t fn = gLogger.load(std::memory_order_acquire);
  if (fn == nullptr) return;
  ncclDebugLogLevel l = level <= kLogWarn   ? NCCL_LOG_WARN
                        : level == kLogInfo ? NCCL_LOG_INFO
                                            : NCCL_LOG_TRACE;
  unsigned long flags = NCCL_NET | ((subsys & kLogInit) != 0 ? NCCL_INIT : 0);
  fn(l, flags, file, line, "%s", msg);
}

int dataSocketsFor(const SockAddr& peer) {
  int64_t n = param::NSocksPerPeer();
  if (n > 0) return static_cast<int>(std::min<int64_t>(n, kMaxDataSockets));
  return tcp::addressIsLocal(peer) ? 1 : 2;
}

}  // namespace
class ListenComm {
 public:
  std::mutex mu;
  int dev = 0;
  tcp::Credentials creds;
  std::unique_ptr<tcp::Acceptor> acceptor;
  struct Group {
    std::vector<int> fds;
    int missing = 0;
    SockAddr from;
  };
  std::map<int32_t, Group> groups;  // connects whose sockets are still coming in
  std::deque<Group> ready;

  ~ListenComm() {
    for (auto& g : groups)
      for (int& fd : g.second.fds)
        tcp::closeFd(&fd);
    for (auto& g : ready)
      for (int& fd : g.fds)
        tcp::closeFd(&fd);
  }
};

// A connect under way, kept between NCCL's calls (its address is in the handle).
struct PendingConnect {
  tcp::Credentials creds;
  SockAddr addr;
  int32_t connId = 0;
  std::vector<int> fds;
  std::vector<tcp::ClientHandshake> hs;
  std::vector<bool> done;
  std::vector<int> retries;
  ~PendingConnect() {
    for (int& fd : fds)
      tcp::closeFd(&fd);
  }
};

void setLogger(ncclDebugLogger_t fn) {
  gLogger.store(fn, std::memory_order_release);
  if (fn == nullptr) {
    setLogSink(nullptr, kLogNone);
    return;
  }
  // NCCL's logger applies NCCL_DEBUG; formatting what it would drop is waste.
  const char* level = getenv("NCCL_DEBUG");
  LogLevel max = kLogWarn;
  if (level != nullptr && strcasecmp(level, "INFO") == 0) max = kLogInfo;
  if (level != nullptr && strcasecmp(level, "TRACE") == 0) max = kLogTrace;
  setLogSink(forwardLog, max);
}

ncclDebugLogger_t logger() {
  return gLogger.load(std::memory_order_acquire);
}

ncclResult_t contextCreate(uint64_t commId, const ncclNetCommConfig_t* config, Context** out) {
  NET_REQUIRE(out != nullptr, ncclInvalidArgument, "init: ctx is NULL");
  auto* ctx = new Context();
  ctx->commId = commId;
  if (config != nullptr) ctx->trafficClass = config->trafficClass;
  *out = ctx;
  GCCL_INFO(kLogInit, "NET/gccl: context for communicator %016llx",
            static_cast<unsigned long long>(commId));
  return ncclSuccess;
}

ncclResult_t contextSetAttr(Context* ctx, const ncclNetAttr_t* attr) {
  NET_REQUIRE(ctx != nullptr && attr != nullptr, ncclInvalidArgument, "setNetAttr: ctx %p, attr %p",
              static_cast<void*>(ctx), static_cast<const void*>(attr));
  // Hints only: one connection already uses every socket it was given.
  ctx->attr = *attr;
  return ncclSuccess;
}

ncclResult_t contextDestroy(Context* ctx) {
  delete ctx;
  return ncclSuccess;
}

ncclResult_t deviceCount(int* ndev) {
  NET_REQUIRE(ndev != nullptr, ncclInvalidArgument, "devices: ndev is NULL");
  *ndev = static_cast<int>(devices().size());
  return ncclSuccess;
}

ncclResult_t deviceProps(int dev, DeviceProps* out) {
  const auto& list = devices();
  NET_REQUIRE(dev >= 0 && dev < static_cast<int>(list.size()), ncclInvalidArgument,
              "getProperties: device %d does not exist (%zu devices)", dev, list.size());
  const Device& d = list[static_cast<size_t>(dev)];
  out->name = const_cast<char*>(d.ifname.c_str());
  out->pciPath = d.pciPath.empty() ? nullptr : const_cast<char*>(d.pciPath.c_str());
  out->guid = static_cast<uint64_t>(dev);
  out->speedMbps = d.speedMbps;
  out->latencyUs = d.latencyUs;
  // A comm holds its sockets (control, asynchronous lane, 2 data sockets to
  // another host) and an epoll fd: descriptors are the limit.
  rlimit lim{};
  uint64_t fds = getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : 1024;
  out->maxComms = static_cast<int>(std::min<uint64_t>(fds / 5, 65536));
  out->maxRecvs = kMaxRecvs;
  return ncclSuccess;
}

// ---- connection set-up -------------------------------------------------------

ncclResult_t listen(Context* ctx, int dev, void* handle, ListenComm** out) {
  const auto& list = devices();
  NET_REQUIRE(dev >= 0 && dev < static_cast<int>(list.size()), ncclInvalidArgument,
              "listen: device %d does not exist (%zu devices)", dev, list.size());
  NET_REQUIRE(handle != nullptr && out != nullptr, ncclInvalidArgument,
              "listen: handle %p, listenComm %p", handle, static_cast<void*>(out));
  auto l = std::make_unique<ListenComm>();
  l->dev = dev;
  NET_CHECK(randomBytes(&l->creds.commHash, sizeof(l->creds.commHash)));
  NET_CHECK(randomBytes(l->creds.secret, sizeof(l->creds.secret)));
  int fd = -1;
  SockAddr bound;
  NET_CHECK(tcp::listenOn(list[static_cast<size_t>(dev)].addr, &fd, &bound));
  tcp::AcceptorOptions ao;
  ao.who = "NET/gccl listener " + bound.toString();
  ao.logSubsys = kLogNet;
  l->acceptor = std::make_unique<tcp::Acceptor>(l->creds, ao);
  NET_CHECK(l->acceptor->start(fd));
  auto* h = static_cast<uint8_t*>(handle);
  memset(h, 0, kHandleBytes);
  putLe32(h, kHandleMagic);
  putLe16(h + 4, kHandleVersion);
  encodeSockAddr(bound, h + 8);
  putLe64(h + 32, l->creds.commHash);
  memcpy(h + 40, l->creds.secret, sizeof(l->creds.secret));
  GCCL_INFO(kLogNet, "NET/gccl: listening on %s (device %d %s)%s", bound.toString().c_str(), dev,
            list[static_cast<size_t>(dev)].ifname.c_str(),
            ctx != nullptr ? (" for communicator " + std::to_string(ctx->commId)).c_str() : "");
  *out = l.release();
  return ncclSuccess;
}

namespace {

gcclResult_t openSocket(PendingConnect* pc, size_t i) {
  tcp::closeFd(&pc->fds[i]);
  GCCL_CHECK(tcp::startConnect(pc->addr, &pc->fds[i]));
  tcp::HelloInfo hello;
  hello.purpose = tcp::Purpose::kNetPlugin;
  hello.fromRank = pc->connId;
  hello.toRank = static_cast<int32_t>(pc->fds.size());
  hello.channel = static_cast<uint32_t>(i);
  return pc->hs[i].start(pc->fds[i], pc->creds, hello);
}

gcclResult_t startConnect(const uint8_t* h, PendingConnect* pc) {
  GCCL_REQUIRE(getLe32(h) == kHandleMagic && getLe16(h + 4) == kHandleVersion, gcclInvalidArgument,
               "the handle is not one this plugin's listen made (magic 0x%08x, version %u)",
               getLe32(h), getLe16(h + 4));
  GCCL_CHECK(decodeSockAddr(h + 8, &pc->addr));
  pc->creds.commHash = getLe64(h + 32);
  memcpy(pc->creds.secret, h + 40, sizeof(pc->creds.secret));
  uint32_t id = 0;
  GCCL_CHECK(randomBytes(&id, sizeof(id)));
  pc->connId = static_cast<int32_t>(id & 0x7fffffffu);
  size_t n = 2 + static_cast<size_t>(dataSocketsFor(pc->addr));
  pc->fds.assign(n, -1);
  pc->hs.resize(n);
  pc->done.assign(n, false);
  pc->retries.assign(n, 0);
  for (size_t i = 0; i < n; ++i)
    GCCL_CHECK(openSocket(pc, i));
  return gcclSuccess;
}

// One pass over the sockets; *complete once every one proved the secret.
gcclResult_t stepConnect(PendingConnect* pc, bool* complete) {
  *complete = true;
  for (size_t i = 0; i < pc->fds.size(); ++i) {
    if (pc->done[i]) continue;
    bool ok = false;
    gcclResult_t r = pc->hs[i].step(&ok);
    if (r != gcclSuccess) {
      // A listener under a flood of strangers may close a member's socket to
      // make room (tcp/acceptor.h): open it again, a few times.
      if (r != gcclRemoteError || ++pc->retries[i] > kMaxSocketRetries)
        return setError(r, "connecting to %s: %s", pc->addr.toString().c_str(), threadLastError());
      GCCL_INFO(kLogNet, "NET/gccl: %s closed socket %zu before the handshake ended (%s); again",
                pc->addr.toString().c_str(), i, threadLastError());
      GCCL_CHECK(openSocket(pc, i));
      ok = false;
    }
    pc->done[i] = ok;
    *complete = *complete && ok;
  }
  return gcclSuccess;
}

}  // namespace

ncclResult_t connect(Context* ctx, int dev, void* handle, Comm** out) {
  (void)ctx;
  (void)dev;  // the route to the listener is the kernel's to choose
  NET_REQUIRE(handle != nullptr && out != nullptr, ncclInvalidArgument,
              "connect: handle %p, sendComm %p", handle, static_cast<void*>(out));
  *out = nullptr;
  auto* h = static_cast<uint8_t*>(handle);
  PendingConnect* pc = nullptr;
  if (getLe32(h + kStageOffset) == kStageMagic) {
    pc = reinterpret_cast<PendingConnect*>(static_cast<uintptr_t>(getLe64(h + kStageOffset + 8)));
  } else {
    auto fresh = std::make_unique<PendingConnect>();
    NET_CHECK(startConnect(h, fresh.get()));
    pc = fresh.release();
    putLe32(h + kStageOffset, kStageMagic);
    putLe64(h + kStageOffset + 8, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pc)));
  }
  auto finish = [h, pc] {
    memset(h + kStageOffset, 0, 16);
    delete pc;
  };
  bool complete = false;
  gcclResult_t r = stepConnect(pc, &complete);
  if (r != gcclSuccess) {
    GCCL_WARN(kLogNet, "NET/gccl: connect: %s", threadLastError());
    finish();
    return toNccl(r);
  }
  if (!complete) return ncclSuccess;
  for (int fd : pc->fds)
    tcp::tuneDataSocket(fd, 0, "auto");
  auto comm = std::make_unique<Comm>(true, pc->creds.commHash, pc->addr.toString());
  std::vector<int> fds;
  fds.swap(pc->fds);
  finish();
  NET_CHECK(comm->start(std::move(fds)));
  GCCL_INFO(kLogNet, "NET/gccl: send comm %016llx connected to %s",
            static_cast<unsigned long long>(comm->id()), comm->peer().c_str());
  *out = comm.release();
  return ncclSuccess;
}

ncclResult_t accept(ListenComm* l, Comm** out) {
  NET_REQUIRE(l != nullptr && out != nullptr, ncclInvalidArgument,
              "accept: listenComm %p, recvComm %p", static_cast<void*>(l), static_cast<void*>(out));
  *out = nullptr;
  std::lock_guard<std::mutex> lock(l->mu);
  std::vector<tcp::Admitted> admitted;
  l->acceptor->process(nowMs(), &admitted);
  for (tcp::Admitted& a : admitted) {
    const tcp::HelloInfo& info = a.info;
    int n = info.toRank;
    bool valid = info.purpose == tcp::Purpose::kNetPlugin && info.fromRank >= 0 && n >= 3 &&
                 n <= 2 + kMaxDataSockets && info.channel < static_cast<uint32_t>(n);
    ListenComm::Group* g = nullptr;
    if (valid) {
      auto it = l->groups.find(info.fromRank);
      if (it == l->groups.end()) {
        g = &l->groups[info.fromRank];
        g->fds.assign(static_cast<size_t>(n), -1);
        g->missing = n;
        g->from = a.from;
      } else {
        g = &it->second;
      }
      valid = static_cast<int>(g->fds.size()) == n && g->fds[info.channel] < 0;
    }
    if (!valid) {
      l->acceptor->reject(&a, "not a socket of a NET/gccl connection (purpose " +
                                  std::to_string(static_cast<unsigned>(info.purpose)) +
                                  ", socket " + std::to_string(info.channel) + " of " +
                                  std::to_string(n) + ", or a duplicate)");
      continue;
    }
    g->fds[info.channel] = a.fd;
    if (--g->missing == 0) {
      l->ready.push_back(std::move(*g));
      l->groups.erase(info.fromRank);
    }
  }
  if (l->ready.empty()) return ncclSuccess;
  ListenComm::Group g = std::move(l->ready.front());
  l->ready.pop_front();
  for (int fd : g.fds)
    tcp::tuneDataSocket(fd, 0, "auto");
  auto comm = std::make_unique<Comm>(false, l->creds.commHash, g.from.toString());
  NET_CHECK(comm->start(std::move(g.fds)));
  GCCL_INFO(kLogNet, "NET/gccl: recv comm %016llx accepted from %s",
            static_cast<unsigned long long>(comm->id()), comm->peer().c_str());
  *out = comm.release();
  return ncclSuccess;
}

ncclResult_t closeListen(ListenComm* l) {
  delete l;
  return ncclSuccess;
}

}  // namespace gccl::nccl_net
