// Memory registration, data movement and closing of a comm (net_comm.h).
#include <climits>

#include "base/clock.h"
#include "plugins/nccl-net/net_comm_impl.h"

namespace gccl::nccl_net {

namespace {
// How long closing a comm waits for its peer to acknowledge the last bytes.
constexpr int64_t kSettleBeforeCloseMs = 1000;
}  // namespace

ncclResult_t closeComm(Comm* comm) {
  if (comm == nullptr) return ncclSuccess;
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    tcp::TcpConnection& c = comm->conn();
    GCCL_INFO(kLogNet,
              "NET/gccl: closing %s comm %016llx with %s: sent %llu bytes in %llu messages, "
              "received %llu bytes in %llu messages",
              comm->isSend() ? "send" : "recv", static_cast<unsigned long long>(comm->id()),
              comm->peer().c_str(), static_cast<unsigned long long>(c.bytesSent()),
              static_cast<unsigned long long>(c.messagesSent()),
              static_cast<unsigned long long>(c.bytesReceived()),
              static_cast<unsigned long long>(c.messagesReceived()));
    // The peer then reads the end of the stream as a goodbye, not a failure;
    // the goodbye and the last data reach it before the socket closes.
    if (comm->broken() == ncclSuccess) {
      c.sendCloseNotice();
      transport::Connection* one = &c;
      transport::settleBeforeClose(&one, 1, nowMs() + kSettleBeforeCloseMs);
    }
  }
  delete comm;
  return ncclSuccess;
}

// ---- memory --------------------------------------------------------------------

ncclResult_t regMr(Comm* comm, void* data, size_t size, int type, void** mhandle) {
  NET_REQUIRE(comm != nullptr && mhandle != nullptr, ncclInvalidArgument,
              "regMr: comm %p, mhandle %p", static_cast<void*>(comm), static_cast<void*>(mhandle));
  NET_REQUIRE(type == NCCL_PTR_HOST, ncclInvalidUsage,
              "regMr: memory of type %d at %p is not host memory; this plugin supports "
              "NCCL_PTR_HOST only (ptrSupport)",
              type, data);
  auto mh = std::make_unique<MemHandle>();
  std::lock_guard<std::mutex> lock(comm->mu);
  NET_CHECK(comm->conn().registerMemory(data, size, transport::MemoryType::kHost, &mh->region));
  *mhandle = mh.release();
  return ncclSuccess;
}

ncclResult_t regMrDmaBuf(Comm* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                         void** mhandle) {
  (void)comm;
  (void)mhandle;
  GCCL_WARN(kLogNet,
            "NET/gccl: regMrDmaBuf(%p, %zu bytes, type %d, offset %llu, fd %d): DMA-BUF "
            "registration is not supported (ptrSupport is NCCL_PTR_HOST only)",
            data, size, type, static_cast<unsigned long long>(offset), fd);
  return ncclInvalidUsage;
}

ncclResult_t deregMr(Comm* comm, void* mhandle) {
  NET_REQUIRE(comm != nullptr, ncclInvalidArgument, "deregMr: comm is NULL");
  auto* mh = static_cast<MemHandle*>(mhandle);
  if (mh == nullptr) return ncclSuccess;
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    comm->conn().deregisterMemory(&mh->region);
  }
  delete mh;
  return ncclSuccess;
}

// ---- data ----------------------------------------------------------------------

ncclResult_t isend(Comm* comm, void* data, size_t size, int tag, void* mhandle,
                   NetRequest** request) {
  (void)mhandle;
  NET_REQUIRE(comm != nullptr && request != nullptr && comm->isSend(), ncclInvalidArgument,
              "isend: comm %p is not a send comm, or request is NULL", static_cast<void*>(comm));
  NET_REQUIRE(data != nullptr || size == 0, ncclInvalidArgument,
              "isend: %zu bytes at a NULL pointer", size);
  *request = nullptr;
  std::lock_guard<std::mutex> lock(comm->mu);
  if (comm->broken() != ncclSuccess) return comm->broken();
  NetRequest* r = comm->takeSlot();
  if (r == nullptr) return ncclSuccess;  // every slot in flight: NCCL tries again
  r->isSend = true;
  r->n = 1;
  r->sub[0] = transport::Request();
  gcclResult_t res =
      comm->conn().isend(data, size, comm->nextTag(tag), transport::MessageMeta(), &r->sub[0]);
  if (res != gcclSuccess) {
    r->used = false;
    return comm->fail(res, threadLastError());
  }
  *request = r;
  return ncclSuccess;
}

ncclResult_t irecv(Comm* comm, int n, void** data, const size_t* sizes, const int* tags,
                   void** mhandles, NetRequest** request) {
  (void)mhandles;
  NET_REQUIRE(comm != nullptr && request != nullptr && !comm->isSend(), ncclInvalidArgument,
              "irecv: comm %p is not a recv comm, or request is NULL", static_cast<void*>(comm));
  NET_REQUIRE(n >= 1 && n <= kMaxRecvs && data != nullptr && sizes != nullptr && tags != nullptr,
              ncclInvalidArgument, "irecv: %d buffers (1 to %d), data %p, sizes %p, tags %p", n,
              kMaxRecvs, static_cast<void*>(data), static_cast<const void*>(sizes),
              static_cast<const void*>(tags));
  for (int i = 0; i < n; ++i)
    NET_REQUIRE(data[i] != nullptr || sizes[i] == 0, ncclInvalidArgument,
                "irecv: buffer %d of %zu bytes is NULL", i, sizes[i]);
  *request = nullptr;
  std::lock_guard<std::mutex> lock(comm->mu);
  if (comm->broken() != ncclSuccess) return comm->broken();
  NetRequest* r = comm->takeSlot();
  if (r == nullptr) return ncclSuccess;
  r->isSend = false;
  r->n = n;
  for (int i = 0; i < n; ++i) {
    r->sub[i] = transport::Request();
    r->capacity[i] = sizes[i];
    transport::MessageMeta any;
    any.info = transport::kMetaAny;
    gcclResult_t res =
        comm->conn().irecv(data[i], sizes[i], comm->nextTag(tags[i]), any, &r->sub[i]);
    if (res != gcclSuccess) return comm->fail(res, threadLastError());
  }
  *request = r;
  return ncclSuccess;
}

ncclResult_t iflush(Comm* comm, int n, void** data, const int* sizes, void** mhandles,
                    NetRequest** request) {
  (void)n;
  (void)data;
  (void)sizes;
  (void)mhandles;
  NET_REQUIRE(comm != nullptr && request != nullptr && !comm->isSend(), ncclInvalidArgument,
              "iflush: comm %p is not a recv comm, or request is NULL", static_cast<void*>(comm));
  // Host memory holds the bytes once the receive completed: nothing to flush.
  *request = nullptr;
  return comm->broken();
}

ncclResult_t test(NetRequest* r, int* done, int* sizes) {
  NET_REQUIRE(r != nullptr && done != nullptr && r->comm != nullptr, ncclInvalidArgument,
              "test: request %p, done %p", static_cast<void*>(r), static_cast<void*>(done));
  Comm* comm = r->comm;
  *done = 0;
  std::lock_guard<std::mutex> lock(comm->mu);
  NET_REQUIRE(r->used, ncclInvalidUsage, "test: request %p already reported done",
              static_cast<void*>(r));
  auto pending = [r] {
    for (int i = 0; i < r->n; ++i)
      if (r->sub[i].pending()) return true;
    return false;
  };
  if (pending()) {
    ncclResult_t res = comm->progress();
    if (res != ncclSuccess) return res;
  }
  for (int i = 0; i < r->n; ++i)
    if (r->sub[i].failed())
      return comm->fail(gcclInvalidUsage,
                        ("receive " + std::to_string(i) + " of " + std::to_string(r->n) +
                         ": the message is larger than its buffer of " +
                         std::to_string(r->capacity[i]) + " bytes")
                            .c_str());
  if (pending()) return ncclSuccess;
  *done = 1;
  if (sizes != nullptr)
    for (int i = 0; i < r->n; ++i)
      sizes[i] = static_cast<int>(std::min<size_t>(r->sub[i].bytes, INT32_MAX));
  r->used = false;
  return ncclSuccess;
}

}  // namespace gccl::nccl_net
