// The tables NCCL looks up in libnccl-net-gccl.so: ncclNetPlugin_v12 (NCCL
// 2.30), v11 (NCCL 2.28's first choice) and v10 down to v6, each a thin
// conversion of that version's signatures to net_comm.h.
#include <cstddef>
#include <memory>

#include "plugins/nccl-net/nccl_net_abi.h"
#include "plugins/nccl-net/net_comm.h"

// Layouts that differ between versions, pinned so that an edit that moves
// a field cannot build.
static_assert(sizeof(ncclNetProperties_v6_t) == 48, "v6 properties");
static_assert(sizeof(ncclNetProperties_v7_t) == 56, "v7 properties");
static_assert(offsetof(ncclNetProperties_v8_t, speed) == 32, "v8 properties");
static_assert(offsetof(ncclNetProperties_v9_t, vProps) == 64, "v9 properties");
static_assert(offsetof(ncclNetProperties_v9_t, maxP2pBytes) == 88, "v9 properties");
static_assert(sizeof(ncclNetProperties_v11_t) == 112, "v11 properties");
static_assert(offsetof(ncclNetProperties_v12_t, maxMultiRequestSize) == 120, "v12 properties");
static_assert(offsetof(ncclNetProperties_v12_t, railId) == 124, "v12 properties");
static_assert(sizeof(ncclNet_v6_t) == 17 * sizeof(void*), "v6 table");
static_assert(sizeof(ncclNet_v7_t) == 19 * sizeof(void*), "v7 table");
static_assert(sizeof(ncclNet_v8_t) == 19 * sizeof(void*), "v8 table");
static_assert(sizeof(ncclNet_v9_t) == 20 * sizeof(void*), "v9 table");
static_assert(sizeof(ncclNet_v10_t) == 20 * sizeof(void*), "v10 table");
static_assert(sizeof(ncclNet_v11_t) == 22 * sizeof(void*), "v11 table");
static_assert(sizeof(ncclNet_v12_t) == 22 * sizeof(void*), "v12 table");

namespace net = gccl::nccl_net;

namespace {

constexpr const char* kName = "gccl";
// The largest message NCCL may hand over: test reports sizes as ints.
constexpr size_t kMaxMessageBytes = 0x7fffffff;

net::Context* asCtx(void* p) {
  return static_cast<net::Context*>(p);
}
net::ListenComm* asListen(void* p) {
  return static_cast<net::ListenComm*>(p);
}
net::Comm* asComm(void* p) {
  return static_cast<net::Comm*>(p);
}

ncclResult_t initLogger(ncclDebugLogger_t logFunction) {
  net::setLogger(logFunction);
  int n = 0;
  return net::deviceCount(&n);  // finds (and logs) the devices once
}

ncclResult_t initV6(ncclDebugLogger_t logFunction) {
  return initLogger(logFunction);
}
ncclResult_t initV10(ncclDebugLogger_t logFunction, ncclProfilerCallback_t) {
  return initLogger(logFunction);
}
ncclResult_t initV11(void** ctx, uint64_t commId, ncclNetCommConfig_t* config,
                     ncclDebugLogger_t logFunction, ncclProfilerCallback_t) {
  ncclResult_t r = initLogger(logFunction);
  if (r != ncclSuccess) return r;
  return net::contextCreate(commId, config, reinterpret_cast<net::Context**>(ctx));
}
ncclResult_t finalizeV11(void* ctx) {
  return net::contextDestroy(asCtx(ctx));
}
ncclResult_t setNetAttrV11(void* ctx, ncclNetAttr_t* attr) {
  return net::contextSetAttr(asCtx(ctx), attr);
}

ncclResult_t devices(int* ndev) {
  return net::deviceCount(ndev);
}

// Fills the fields every version has; `Props` is that version's struct.
template <typename Props>
ncclResult_t fillCommon(int dev, Props* props) {
  if (props == nullptr) return ncclInvalidArgument;
  net::DeviceProps d{};
  ncclResult_t r = net::deviceProps(dev, &d);
  if (r != ncclSuccess) return r;
  *props = Props();
  props->name = d.name;
  props->pciPath = d.pciPath;
  props->guid = d.guid;
  props->ptrSupport = NCCL_PTR_HOST;
  props->speed = d.speedMbps;
  props->port = 0;
  props->latency = d.latencyUs;
  props->maxComms = d.maxComms;
  props->maxRecvs = d.maxRecvs;
  return ncclSuccess;
}

ncclResult_t getPropertiesV6(int dev, ncclNetProperties_v6_t* props) {
  return fillCommon(dev, props);
}
template <typename Props>
ncclResult_t getPropertiesV7(int dev, Props* props) {
  ncclResult_t r = fillCommon(dev, props);
  if (r != ncclSuccess) return r;
  props->netDeviceType = NCCL_NET_DEVICE_HOST;
  props->netDeviceVersion = NCCL_NET_DEVICE_INVALID_VERSION;
  return ncclSuccess;
}
template <typename Props>
ncclResult_t getPropertiesV9(int dev, Props* props) {
  ncclResult_t r = getPropertiesV7(dev, props);
  if (r != ncclSuccess) return r;
  props->regIsGlobal = 0;
  props->forceFlush = 0;
  props->vProps.ndevs = 1;
  props->vProps.devs[0] = dev;
  props->maxP2pBytes = kMaxMessageBytes;
  props->maxCollBytes = kMaxMessageBytes;
  return ncclSuccess;
}
ncclResult_t getPropertiesV8(int dev, ncclNetProperties_v8_t* props) {
  ncclResult_t r = getPropertiesV7(dev, props);
  if (r == ncclSuccess) props->regIsGlobal = 0;
  return r;
}
ncclResult_t getPropertiesV11(int dev, ncclNetProperties_v11_t* props) {
  ncclResult_t r = getPropertiesV9(dev, props);
  if (r == ncclSuccess) props->maxMultiRequestSize = 1;
  return r;
}
ncclResult_t getPropertiesV12(int dev, ncclNetProperties_v12_t* props) {
  ncclResult_t r = getPropertiesV9(dev, props);
  if (r != ncclSuccess) return r;
  props->maxMultiRequestSize = 1;
  props->railId = -1;  // NCCL_NET_ID_UNDEF
  props->planeId = -1;
  return ncclSuccess;
}

ncclResult_t listenV6(int dev, void* handle, void** listenComm) {
  return net::listen(nullptr, dev, handle, reinterpret_cast<net::ListenComm**>(listenComm));
}
ncclResult_t listenV11(void* ctx, int dev, void* handle, void** listenComm) {
  return net::listen(asCtx(ctx), dev, handle, reinterpret_cast<net::ListenComm**>(listenComm));
}

ncclResult_t connectV6(int dev, void* handle, void** sendComm) {
  return net::connect(nullptr, dev, handle, reinterpret_cast<net::Comm**>(sendComm));
}
ncclResult_t connectV7(int dev, void* handle, void** sendComm, ncclNetDeviceHandle_t** devComm) {
  if (devComm != nullptr) *devComm = nullptr;
  return connectV6(dev, handle, sendComm);
}
ncclResult_t connectV10(int dev, ncclNetCommConfig_t*, void* handle, void** sendComm,
                        ncclNetDeviceHandle_t** devComm) {
  return connectV7(dev, handle, sendComm, devComm);
}
ncclResult_t connectV11(void* ctx, int dev, void* handle, void** sendComm,
                        ncclNetDeviceHandle_t** devComm) {
  if (devComm != nullptr) *devComm = nullptr;
  return net::connect(asCtx(ctx), dev, handle, reinterpret_cast<net::Comm**>(sendComm));
}

ncclResult_t acceptV6(void* listenComm, void** recvComm) {
  return net::accept(asListen(listenComm), reinterpret_cast<net::Comm**>(recvComm));
}
ncclResult_t acceptV7(void* listenComm, void** recvComm, ncclNetDeviceHandle_t** devComm) {
  if (devComm != nullptr) *devComm = nullptr;
  return acceptV6(listenComm, recvComm);
}

ncclResult_t regMrInt(void* comm, void* data, int size, int type, void** mhandle) {
  if (size < 0) return ncclInvalidArgument;
  return net::regMr(asComm(comm), data, static_cast<size_t>(size), type, mhandle);
}
ncclResult_t regMr(void* comm, void* data, size_t size, int type, void** mhandle) {
  return net::regMr(asComm(comm), data, size, type, mhandle);
}
ncclResult_t regMrDmaBuf(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                         void** mhandle) {
  return net::regMrDmaBuf(asComm(comm), data, size, type, offset, fd, mhandle);
}
ncclResult_t deregMr(void* comm, void* mhandle) {
  return net::deregMr(asComm(comm), mhandle);
}

ncclResult_t isendInt(void* sendComm, void* data, int size, int tag, void* mhandle,
                      void** request) {
  if (size < 0) return ncclInvalidArgument;
  return net::isend(asComm(sendComm), data, static_cast<size_t>(size), tag, mhandle,
                    reinterpret_cast<net::NetRequest**>(request));
}
ncclResult_t isendV9(void* sendComm, void* data, size_t size, int tag, void* mhandle,
                     void** request) {
  return net::isend(asComm(sendComm), data, size, tag, mhandle,
                    reinterpret_cast<net::NetRequest**>(request));
}
ncclResult_t isendV10(void* sendComm, void* data, size_t size, int tag, void* mhandle, void*,
                      void** request) {
  return isendV9(sendComm, data, size, tag, mhandle, request);
}

ncclResult_t irecvInt(void* recvComm, int n, void** data, int* sizes, int* tags, void** mhandles,
                      void** request) {
  if (n < 1 || n > net::kMaxRecvs || sizes == nullptr) return ncclInvalidArgument;
  size_t wide[net::kMaxRecvs];
  for (int i = 0; i < n; ++i) {
    if (sizes[i] < 0) return ncclInvalidArgument;
    wide[i] = static_cast<size_t>(sizes[i]);
  }
  return net::irecv(asComm(recvComm), n, data, wide, tags, mhandles,
                    reinterpret_cast<net::NetRequest**>(request));
}
ncclResult_t irecvV9(void* recvComm, int n, void** data, size_t* sizes, int* tags, void** mhandles,
                     void** request) {
  return net::irecv(asComm(recvComm), n, data, sizes, tags, mhandles,
                    reinterpret_cast<net::NetRequest**>(request));
}
ncclResult_t irecvV10(void* recvComm, int n, void** data, size_t* sizes, int* tags, void** mhandles,
                      void**, void** request) {
  return irecvV9(recvComm, n, data, sizes, tags, mhandles, request);
}

ncclResult_t iflush(void* recvComm, int n, void** data, int* sizes, void** mhandles,
                    void** request) {
  return net::iflush(asComm(recvComm), n, data, sizes, mhandles,
                     reinterpret_cast<net::NetRequest**>(request));
}
ncclResult_t test(void* request, int* done, int* sizes) {
  return net::test(static_cast<net::NetRequest*>(request), done, sizes);
}
ncclResult_t closeComm(void* comm) {
  return net::closeComm(asComm(comm));
}
ncclResult_t closeListen(void* listenComm) {
  return net::closeListen(asListen(listenComm));
}

}  // namespace

#define GCCL_NET_EXPORT extern "C" __attribute__((visibility("default")))

GCCL_NET_EXPORT const ncclNet_v12_t ncclNetPlugin_v12 = {
    kName,    initV11, devices,     getPropertiesV12, listenV11,   connectV11,
    acceptV7, regMr,   regMrDmaBuf, deregMr,          isendV10,    irecvV10,
    iflush,   test,    closeComm,   closeComm,        closeListen, nullptr,
    nullptr,  nullptr, finalizeV11, setNetAttrV11};

GCCL_NET_EXPORT const ncclNet_v11_t ncclNetPlugin_v11 = {
    kName,    initV11, devices,     getPropertiesV11, listenV11,   connectV11,
    acceptV7, regMr,   regMrDmaBuf, deregMr,          isendV10,    irecvV10,
    iflush,   test,    closeComm,   closeComm,        closeListen, nullptr,
    nullptr,  nullptr, finalizeV11, setNetAttrV11};

GCCL_NET_EXPORT const ncclNet_v10_t ncclNetPlugin_v10 = {
    kName,       initV10,    devices,   getPropertiesV9<ncclNetProperties_v10_t>,
    listenV6,    connectV10, acceptV7,  regMr,
    regMrDmaBuf, deregMr,    isendV10,  irecvV10,
    iflush,      test,       closeComm, closeComm,
    closeListen, nullptr,    nullptr,   nullptr};

GCCL_NET_EXPORT const ncclNet_v9_t ncclNetPlugin_v9 = {
    kName,       initV6,    devices,   getPropertiesV9<ncclNetProperties_v9_t>,
    listenV6,    connectV7, acceptV7,  regMr,
    regMrDmaBuf, deregMr,   isendV9,   irecvV9,
    iflush,      test,      closeComm, closeComm,
    closeListen, nullptr,   nullptr,   nullptr};

GCCL_NET_EXPORT const ncclNet_v8_t ncclNetPlugin_v8 = {
    kName,     initV6,      devices,     getPropertiesV8, listenV6, connectV7, acceptV7,
    regMr,     regMrDmaBuf, deregMr,     isendInt,        irecvInt, iflush,    test,
    closeComm, closeComm,   closeListen, nullptr,         nullptr};

GCCL_NET_EXPORT const ncclNet_v7_t ncclNetPlugin_v7 = {
    kName,       initV6,    devices,   getPropertiesV7<ncclNetProperties_v7_t>,
    listenV6,    connectV7, acceptV7,  regMrInt,
    regMrDmaBuf, deregMr,   isendInt,  irecvInt,
    iflush,      test,      closeComm, closeComm,
    closeListen, nullptr,   nullptr};

GCCL_NET_EXPORT const ncclNet_v6_t ncclNetPlugin_v6 = {
    kName,    initV6,   devices,     getPropertiesV6, listenV6,   connectV6,
    acceptV6, regMrInt, regMrDmaBuf, deregMr,         isendInt,   irecvInt,
    iflush,   test,     closeComm,   closeComm,       closeListen};
