// The ucx transport beyond the conformance suite: what a job sees where
// libucp is missing, that "auto" never picks it, and that UCX's lack of
// authentication does not let a stranger in: a process that reaches a rank's
// UCP worker (its address leaked) but does not know the communicator's
// secret gets nothing it sends taken.
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/clock.h"
#include "base/le.h"
#include "common/multiproc.h"
#include "gtest/gtest.h"
#include "transports/registry.h"
#include "transports/ucx/ucx_api.h"
#include "transports/ucx/ucx_wire.h"

namespace gccl::test {
namespace {

using transport::Connection;
using transport::MessageMeta;
using transport::Request;

TEST(UcxSelection, AutoNeverChoosesUcxButTheListMayNameIt) {
  std::vector<std::string> names;
  ASSERT_EQ(transport::parseTransportPreference("auto", &names), gcclSuccess);
  EXPECT_EQ(names, (std::vector<std::string>{"shm", "tcp"}));
  ASSERT_EQ(transport::parseTransportPreference("shm,ucx,tcp", &names), gcclSuccess);
  EXPECT_EQ(names, (std::vector<std::string>{"shm", "ucx", "tcp"}));
}

// libgccl loads libucp only when asked for ucx: without it, a job that asks
// is told why by name, and one that does not runs as before.
TEST(UcxSelection, WithoutLibucpAskingForUcxFailsByNameAndAutoStillRuns) {
  auto outcomes = runRanks(2, [](int rank, int n, const gcclUniqueId& id) -> int {
    setenv("GCCL_UCX_LIBRARY", "/nonexistent/libucp.so.0", 1);
    setenv("GCCL_TRANSPORT", "ucx", 1);
    gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
    cfg.timeoutMs = 5000;
    gcclComm_t comm = nullptr;
    gcclResult_t r = gcclCommInitRankConfig(&comm, n, id, rank, &cfg);
    RANK_CHECK(r == gcclInvalidUsage, "asking for ucx without libucp gave %s",
               gcclGetErrorString(r));
    const char* why = gcclGetLastError(nullptr);
    RANK_CHECK(strstr(why, "ucx") && strstr(why, "/nonexistent/libucp.so.0") &&
                   strstr(why, "GCCL_UCX_LIBRARY"),
               "the error does not say what is missing: %s", why);
    // The same process, "auto": the registry alone, as a communicator opens it.
    transport::RegistryOptions ro;
    ro.ctx.rank = 0;
    ro.ctx.nranks = 1;
    transport::Registry registry(ro);
    std::string blob;
    RANK_OK(registry.open(&blob));
    RANK_CHECK(registry.find("ucx") == nullptr, "auto opened the ucx transport");
    return 0;
  });
  std::string why;
  EXPECT_TRUE(allSucceeded(outcomes, &why)) << why;
}

// ---- a stranger on the worker ---------------------------------------------------------------

constexpr size_t kMaxBlob = 8192;

struct Board {
  std::atomic<int> ready[2];
  uint32_t len[2];
  char blob[2][kMaxBlob];
  std::atomic<int> strangerDone;  // 1: its messages were sent; 2: it failed
  std::atomic<int> go;            // rank 0 saw nothing of them: rank 1 may send
  std::atomic<int> finished;      // the pair is done: the stranger may leave
};

// The ucx part of a registry blob (registry.cc's layout).
bool ucxPart(const std::string& blob, std::string* out) {
  size_t at = 5;
  auto bytes = [&](size_t lenBytes, std::string* s) {
    if (blob.size() < at + lenBytes) return false;
    size_t n = lenBytes == 1 ? static_cast<uint8_t>(blob[at])
                             : getLe16(reinterpret_cast<const uint8_t*>(blob.data() + at));
    at += lenBytes;
    if (blob.size() < at + n) return false;
    s->assign(blob, at, n);
    at += n;
    return true;
  };
  std::string host, pref, name, part;
  if (!bytes(1, &host) || !bytes(2, &pref) || at >= blob.size()) return false;
  size_t count = static_cast<uint8_t>(blob[at++]);
  for (size_t i = 0; i < count; ++i) {
    if (!bytes(1, &name) || !bytes(2, &part)) return false;
    if (name == "ucx") {
      *out = part;
      return true;
    }
  }
  return false;
}

class Poller final : public transport::Poller {
 public:
  Poller() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~Poller() override { close(epfd_); }
  gcclResult_t watch(int fd, uint32_t events, void*) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      return setError(gcclSystemError, "epoll_ctl: %s", strerror(errno));
    return gcclSuccess;
  }
  void unwatch(int fd) override { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }
  // Moves `c` until done() or waitMs pass (false then).
  bool drive(Connection* c, const std::function<bool()>& done, int64_t waitMs) {
    int64_t deadline = nowMs() + waitMs;
    while (!done()) {
      if (nowMs() > deadline) return false;
      bool moved = false;
      if (c->poll(&moved) != gcclSuccess) return false;
      if (moved) continue;
      epoll_event evs[8];
      int n = epoll_wait(epfd_, evs, 8, c->armForSleep() ? 5 : 0);
      for (int i = 0; i < n; ++i)
        if (c->onEvents(evs[i].data.fd, evs[i].events) != gcclSuccess) return false;
    }
    return true;
  }

 private:
  int epfd_;
};

int pairRank(int rank, Board* board) {
  Poller poller;
  transport::RegistryOptions ro;
  ro.ctx.rank = rank;
  ro.ctx.nranks = 2;
  ro.ctx.commHash = 0x0dd5eed0dd5eedull;
  for (size_t i = 0; i < sizeof(ro.ctx.secret); ++i)
    ro.ctx.secret[i] = static_cast<uint8_t>(i * 13 + 5);
  ro.ctx.poller = &poller;
  ro.preference = "ucx";
  transport::Registry registry(ro);
  std::string blob;
  RANK_OK(registry.open(&blob));
  RANK_CHECK(blob.size() <= kMaxBlob, "blob of %zu bytes", blob.size());
  memcpy(board->blob[rank], blob.data(), blob.size());
  board->len[rank] = static_cast<uint32_t>(blob.size());
  board->ready[rank].store(1);
  int peer = 1 - rank;
  int64_t until = nowMs() + 30000;
  while (board->ready[peer].load() == 0 && nowMs() < until)
    usleep(1000);
  std::vector<std::string> blobs(2);
  for (int i = 0; i < 2; ++i)
    blobs[static_cast<size_t>(i)].assign(board->blob[i], board->len[i]);
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<std::unique_ptr<transport::Listener>> listeners;
  RANK_OK(registry.connect(blobs, nowMs() + 30000, &conns, &listeners));
  Connection* c = conns[static_cast<size_t>(peer)].get();
  RANK_OK(c->start());
  const uint64_t tag = transport::collectiveTag(3, 1);
  const MessageMeta meta{77, 5};
  const char kReal[] = "from rank 1";
  if (rank == 1) {
    RANK_CHECK(poller.drive(
                   c, [&] { return board->go.load() != 0; }, 30000),
               "no go");
    Request s;
    RANK_OK(c->isend(kReal, sizeof(kReal), tag, meta, &s));
    RANK_CHECK(poller.drive(
                   c, [&] { return !s.pending(); }, 30000),
               "the send did not finish");
  } else {
    char got[64] = {};
    Request r;
    RANK_OK(c->irecv(got, sizeof(got), tag, meta, &r));
    RANK_CHECK(poller.drive(
                   c, [&] { return board->strangerDone.load() != 0; }, 30000),
               "the stranger never finished");
    RANK_CHECK(board->strangerDone.load() == 1, "the stranger could not send");
    // Whatever of the stranger's reached this worker has been handled by now.
    poller.drive(
        c, [] { return false; }, 300);
    RANK_CHECK(r.pending(), "the stranger's message completed a receive (state %d: %.*s)",
               static_cast<int>(r.state), static_cast<int>(sizeof(got)), got);
    board->go.store(1);
    RANK_CHECK(poller.drive(
                   c, [&] { return !r.pending(); }, 30000),
               "rank 1's message never came");
    RANK_CHECK(r.done() && r.bytes == sizeof(kReal) && memcmp(got, kReal, sizeof(kReal)) == 0,
               "the receive got %zu bytes: %.*s", r.bytes, static_cast<int>(sizeof(got)), got);
  }
  // Both sides done: goodbye, so the closes are no error.
  c->sendCloseNotice();
  RANK_CHECK(poller.drive(
                 c, [&] { return c->peerClosed(); }, 10000),
             "no goodbye from the peer");
  board->finished.fetch_add(1);
  return 0;
}

// Knows rank 0's worker address, not the secret: sends data that would
// match rank 0's posted receive, then a HELLO with a made-up proof.
int stranger(Board* board) {
  std::string why;
  const ucx::UcpApi* u = ucx::loadUcp(&why);
  auto fail = [&](const char* what) {
    fprintf(stderr, "stranger: %s\n", what);
    board->strangerDone.store(2);
    return 1;
  };
  if (u == nullptr) return fail(why.c_str());
  int64_t until = nowMs() + 30000;
  while (board->ready[0].load() == 0 && nowMs() < until)
    usleep(1000);
  std::string part;
  ucx::Blob target;
  if (!ucxPart(std::string(board->blob[0], board->len[0]), &part) ||
      !ucx::decodeBlob(part, &target))
    return fail("rank 0's blob does not decode");
  ucp_config_t* config = nullptr;
  if (u->ucp_config_read(nullptr, nullptr, &config) != UCS_OK) return fail("ucp_config_read");
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_AM;
  ucp_context_h ctx = nullptr;
  ucs_status_t s = u->ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &ctx);
  u->ucp_config_release(config);
  if (s != UCS_OK) return fail("ucp_init");
  ucp_worker_params_t wp{};
  ucp_worker_h worker = nullptr;
  if (u->ucp_worker_create(ctx, &wp, &worker) != UCS_OK) return fail("ucp_worker_create");
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  ep.address = reinterpret_cast<const ucp_address_t*>(target.address.data());
  ucp_ep_h endpoint = nullptr;
  if (u->ucp_ep_create(worker, &ep, &endpoint) != UCS_OK) return fail("ucp_ep_create");
  auto send = [&](const uint8_t* header, const void* body, size_t len) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    rp.flags = UCP_AM_SEND_FLAG_REPLY;
    void* req = u->ucp_am_send_nbx(endpoint, ucx::kAmId, header, ucx::kHeaderBytes, body, len, &rp);
    if (UCS_PTR_IS_ERR(req)) return false;
    while (req != nullptr && u->ucp_request_check_status(req) == UCS_INPROGRESS)
      u->ucp_worker_progress(worker);
    if (req != nullptr) u->ucp_request_free(req);
    return true;
  };
  uint8_t header[ucx::kHeaderBytes];
  const char kEvil[] = "from a stranger";
  ucx::encodeHeader(ucx::Header{ucx::Kind::kData, transport::collectiveTag(3, 1), {77, 5}}, header);
  if (!send(header, kEvil, sizeof(kEvil))) return fail("sending data");
  ucx::Handshake h;
  h.commHash = target.commHash;
  h.from = 1;
  h.to = 0;
  memset(h.mac, 0xab, sizeof(h.mac));
  uint8_t body[ucx::kHandshakeBytes];
  ucx::encodeHandshake(h, body);
  ucx::encodeHeader(ucx::Header{ucx::Kind::kHello, 0, {}}, header);
  if (!send(header, body, sizeof(body))) return fail("sending a HELLO");
  // Everything out (UCX may hold sends until the wire is up), then again
  // the data, which a wrongly bound endpoint would now deliver.
  ucx::encodeHeader(ucx::Header{ucx::Kind::kData, transport::collectiveTag(3, 1), {77, 5}}, header);
  if (!send(header, kEvil, sizeof(kEvil))) return fail("sending data again");
  ucp_request_param_t fp{};
  void* flush = u->ucp_ep_flush_nbx(endpoint, &fp);
  while (flush != nullptr && !UCS_PTR_IS_ERR(flush) &&
         u->ucp_request_check_status(flush) == UCS_INPROGRESS)
    u->ucp_worker_progress(worker);
  if (flush != nullptr && !UCS_PTR_IS_ERR(flush)) u->ucp_request_free(flush);
  board->strangerDone.store(1);
  until = nowMs() + 30000;
  while (board->finished.load() < 2 && nowMs() < until)
    u->ucp_worker_progress(worker);
  ucp_request_param_t cp{};
  void* closing = u->ucp_ep_close_nbx(endpoint, &cp);
  int64_t closeBy = nowMs() + 2000;
  while (closing != nullptr && !UCS_PTR_IS_ERR(closing) &&
         u->ucp_request_check_status(closing) == UCS_INPROGRESS && nowMs() < closeBy)
    u->ucp_worker_progress(worker);
  if (closing != nullptr && !UCS_PTR_IS_ERR(closing)) u->ucp_request_free(closing);
  u->ucp_worker_destroy(worker);
  u->ucp_cleanup(ctx);
  return 0;
}

TEST(UcxTrust, AnEndpointWithoutTheSecretGetsNothingTaken) {
  std::string why;
  if (ucx::loadUcp(&why) == nullptr) GTEST_SKIP() << "the ucx transport cannot run here: " << why;
  SharedArea area(sizeof(Board));
  auto* board = new (area.data()) Board();
  auto outcomes = runRanks(3, [board](int rank, int, const gcclUniqueId&) -> int {
    return rank < 2 ? pairRank(rank, board) : stranger(board);
  });
  std::string summary;
  EXPECT_TRUE(allSucceeded(outcomes, &summary)) << summary;
}

}  // namespace
}  // namespace gccl::test
