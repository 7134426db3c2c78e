// The plugin's comms over gccl's TCP transport, independent of the ABI
// version (plugin_tables.cc adapts each version's table to these calls).
//
// - listen: a listening socket on the device's address, guarded by a
//   tcp::Acceptor; the handle carries its address, a random 64-bit id (the
//   comm hash every frame carries) and a random 32-byte secret.
// - connect (never blocks): opens 2 + D sockets (control, asynchronous lane,
//   D data sockets) and runs gccl's handshake on each without waiting; the
//   state lives in the handle NCCL passes again, and the send comm is
//   returned once every socket proved the secret.
// - accept (never blocks): lets the acceptor authenticate what arrived;
//   sockets that do not prove the secret are refused and logged; a recv comm
//   is returned once all sockets of one connect are in.
// - data: a comm owns one tcp::TcpConnection and is its own Poller (an epoll
//   set it polls without waiting on every test). Messages of one NCCL tag
//   match in posting order: the k-th send with tag t carries the transport
//   tag (t, k), so the TCP connection's tag matching pairs it with the k-th
//   receive buffer posted with tag t, whatever the striping.
//
// Threads: NCCL calls listen/connect/accept/regMr from its service thread
// and isend/irecv/test from its progress thread; every call that touches a
// comm takes that comm's mutex.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plugins/nccl-net/nccl_net_abi.h"

namespace gccl::nccl_net {

// Grouped receives: at most this many buffers in one irecv.
inline constexpr int kMaxRecvs = 8;
// The handle's bytes this plugin uses (<= NCCL_NET_HANDLE_MAXSIZE).
inline constexpr size_t kHandleBytes = 96;

class Context;
class ListenComm;
class Comm;
struct NetRequest;

// Routes gccl's log lines to NCCL's logger (null: stderr as usual).
void setLogger(ncclDebugLogger_t logger);
ncclDebugLogger_t logger();

// v11's per-communicator context (older versions pass null).
ncclResult_t contextCreate(uint64_t commId, const ncclNetCommConfig_t* config, Context** out);
ncclResult_t contextSetAttr(Context* ctx, const ncclNetAttr_t* attr);
ncclResult_t contextDestroy(Context* ctx);

ncclResult_t deviceCount(int* ndev);
// The version-neutral part of the properties; maxRequests depends on the version.
struct DeviceProps {
  char* name;
  char* pciPath;
  uint64_t guid;
  int speedMbps;
  float latencyUs;
  int maxComms;
  int maxRecvs;
};
ncclResult_t deviceProps(int dev, DeviceProps* out);

ncclResult_t listen(Context* ctx, int dev, void* handle, ListenComm** out);
// *out stays null until the connection is ready; call again with the same handle.
ncclResult_t connect(Context* ctx, int dev, void* handle, Comm** out);
ncclResult_t accept(ListenComm* listener, Comm** out);
ncclResult_t closeListen(ListenComm* listener);
ncclResult_t closeComm(Comm* comm);

ncclResult_t regMr(Comm* comm, void* data, size_t size, int type, void** mhandle);
ncclResult_t regMrDmaBuf(Comm* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                         void** mhandle);
ncclResult_t deregMr(Comm* comm, void* mhandle);

// *request is null when every request slot of the comm is in flight (try again).
ncclResult_t isend(Comm* comm, void* data, size_t size, int tag, void* mhandle,
                   NetRequest** request);
ncclResult_t irecv(Comm* comm, int n, void** data, const size_t* sizes, const int* tags,
                   void** mhandles, NetRequest** request);
ncclResult_t iflush(Comm* comm, int n, void** data, const int* sizes, void** mhandles,
                    NetRequest** request);
// *done becomes 1 once, with the received sizes (sizes may be null); the
// request is gone after that.
ncclResult_t test(NetRequest* request, int* done, int* sizes);

}  // namespace gccl::nccl_net
