// Loads libnccl-net-gccl.so the way NCCL 2.28 does (dlopen with RTLD_NOW |
// RTLD_LOCAL, then ncclNetPlugin_v12 ... v6, or one version on request) and
// gives one call surface over whichever table was found, so that every test
// drives every version's own struct: the per-version conversions (int sizes
// before v9, profiler handles from v10, the context of v11) happen here, on
// the caller's side, as NCCL's own adaptors do.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "plugins/nccl-net/nccl_net_abi.h"

namespace gccl::test {

// What the tests read from getProperties, whatever the version.
struct NetProps {
  std::string name;
  int ptrSupport = 0;
  int speed = 0;
  float latency = 0;
  int maxComms = 0;
  int maxRecvs = 0;
};

class NetApi {
 public:
  virtual ~NetApi() = default;
  virtual int version() const = 0;
  virtual const char* name() const = 0;
  virtual ncclResult_t init(ncclDebugLogger_t logger) = 0;
  virtual ncclResult_t finalize() = 0;
  virtual ncclResult_t devices(int* n) = 0;
  virtual ncclResult_t properties(int dev, NetProps* out) = 0;
  virtual ncclResult_t listen(int dev, void* handle, void** listenComm) = 0;
  virtual ncclResult_t connect(int dev, void* handle, void** sendComm) = 0;
  virtual ncclResult_t accept(void* listenComm, void** recvComm) = 0;
  virtual ncclResult_t regMr(void* comm, void* data, size_t size, int type, void** mh) = 0;
  virtual ncclResult_t regMrDmaBuf(void* comm, void* data, size_t size, int type, uint64_t offset,
                                   int fd, void** mh) = 0;
  virtual ncclResult_t deregMr(void* comm, void* mh) = 0;
  virtual ncclResult_t isend(void* sendComm, void* data, size_t size, int tag, void* mh,
                             void** request) = 0;
  virtual ncclResult_t irecv(void* recvComm, int n, void** data, size_t* sizes, int* tags,
                             void** mhs, void** request) = 0;
  virtual ncclResult_t iflush(void* recvComm, int n, void** data, int* sizes, void** mhs,
                              void** request) = 0;
  virtual ncclResult_t test(void* request, int* done, int* sizes) = 0;
  virtual ncclResult_t closeSend(void* comm) = 0;
  virtual ncclResult_t closeRecv(void* comm) = 0;
  virtual ncclResult_t closeListen(void* comm) = 0;
  // Requests NCCL keeps in flight per comm with this version.
  int maxRequests() const {
    return version() == 6 ? NCCL_NET_MAX_REQUESTS_V6 : NCCL_NET_MAX_REQUESTS;
  }
};

namespace detail {

template <typename Table, int V>
class NetApiImpl final : public NetApi {
 public:
  explicit NetApiImpl(const Table* t) : t_(t) {}
  int version() const override { return V; }
  const char* name() const override { return t_->name; }
  ncclResult_t init(ncclDebugLogger_t logger) override {
    if constexpr (V >= 11) {
      ncclNetCommConfig_t config{-1};
      return t_->init(&ctx_, 0x1234abcdULL, &config, logger, nullptr);
    } else if constexpr (V == 10) {
      return t_->init(logger, nullptr);
    } else {
      return t_->init(logger);
    }
  }
  ncclResult_t finalize() override {
    if constexpr (V >= 11) {
      ncclNetAttr_t attr;
      memset(&attr, 0xff, sizeof(attr));
      ncclResult_t r = t_->setNetAttr(ctx_, &attr);
      if (r != ncclSuccess) return r;
      return t_->finalize(ctx_);
    } else {
      return ncclSuccess;
    }
  }
  ncclResult_t devices(int* n) override { return t_->devices(n); }
  ncclResult_t properties(int dev, NetProps* out) override {
    typename PropsArg<decltype(Table::getProperties)>::type p;
    memset(&p, 0, sizeof(p));
    ncclResult_t r = t_->getProperties(dev, &p);
    if (r != ncclSuccess) return r;
    out->name = p.name != nullptr ? p.name : "";
    out->ptrSupport = p.ptrSupport;
    out->speed = p.speed;
    out->latency = p.latency;
    out->maxComms = p.maxComms;
    out->maxRecvs = p.maxRecvs;
    return ncclSuccess;
  }
  ncclResult_t listen(int dev, void* handle, void** lc) override {
    if constexpr (V >= 11)
      return t_->listen(ctx_, dev, handle, lc);
    else
      return t_->listen(dev, handle, lc);
  }
  ncclResult_t connect(int dev, void* handle, void** sc) override {
    if constexpr (V >= 11) {
      ncclNetDeviceHandle_t* dh = nullptr;
      return t_->connect(ctx_, dev, handle, sc, &dh);
    } else if constexpr (V == 10) {
      ncclNetDeviceHandle_t* dh = nullptr;
      ncclNetCommConfig_t config{-1};
      return t_->connect(dev, &config, handle, sc, &dh);
    } else if constexpr (V >= 7) {
      ncclNetDeviceHandle_t* dh = nullptr;
      return t_->connect(dev, handle, sc, &dh);
    } else {
      return t_->connect(dev, handle, sc);
    }
  }
  ncclResult_t accept(void* lc, void** rc) override {
    if constexpr (V >= 7) {
      ncclNetDeviceHandle_t* dh = nullptr;
      return t_->accept(lc, rc, &dh);
    } else {
      return t_->accept(lc, rc);
    }
  }
  ncclResult_t regMr(void* comm, void* data, size_t size, int type, void** mh) override {
    if constexpr (V >= 8)
      return t_->regMr(comm, data, size, type, mh);
    else
      return t_->regMr(comm, data, static_cast<int>(size), type, mh);
  }
  ncclResult_t regMrDmaBuf(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                           void** mh) override {
    return t_->regMrDmaBuf(comm, data, size, type, offset, fd, mh);
  }
  ncclResult_t deregMr(void* comm, void* mh) override { return t_->deregMr(comm, mh); }
  ncclResult_t isend(void* sc, void* data, size_t size, int tag, void* mh, void** req) override {
    if constexpr (V >= 10)
      return t_->isend(sc, data, size, tag, mh, nullptr, req);
    else if constexpr (V == 9)
      return t_->isend(sc, data, size, tag, mh, req);
    else
      return t_->isend(sc, data, static_cast<int>(size), tag, mh, req);
  }
  ncclResult_t irecv(void* rc, int n, void** data, size_t* sizes, int* tags, void** mhs,
                     void** req) override {
    if constexpr (V >= 10) {
      void* ph[NCCL_NET_MAX_REQUESTS] = {};
      return t_->irecv(rc, n, data, sizes, tags, mhs, ph, req);
    } else if constexpr (V == 9) {
      return t_->irecv(rc, n, data, sizes, tags, mhs, req);
    } else {
      int narrow[NCCL_NET_MAX_REQUESTS];
      for (int i = 0; i < n; ++i)
        narrow[i] = static_cast<int>(sizes[i]);
      return t_->irecv(rc, n, data, narrow, tags, mhs, req);
    }
  }
  ncclResult_t iflush(void* rc, int n, void** data, int* sizes, void** mhs, void** req) override {
    return t_->iflush(rc, n, data, sizes, mhs, req);
  }
  ncclResult_t test(void* req, int* done, int* sizes) override {
    return t_->test(req, done, sizes);
  }
  ncclResult_t closeSend(void* c) override { return t_->closeSend(c); }
  ncclResult_t closeRecv(void* c) override { return t_->closeRecv(c); }
  ncclResult_t closeListen(void* c) override { return t_->closeListen(c); }

 private:
  // The properties struct this version's getProperties fills.
  template <typename F>
  struct PropsArg;
  template <typename R, typename P>
  struct PropsArg<R (*)(int, P*)> {
    using type = P;
  };
  const Table* t_;
  void* ctx_ = nullptr;
};

}  // namespace detail

// The library, loaded as NCCL loads it. version 0: the first of v12..v6 found.
class LoadedPlugin {
 public:
  LoadedPlugin(const char* path, int version) {
    lib_ = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) {
      error_ = std::string("dlopen: ") + dlerror();
      return;
    }
    for (int v = 12; v >= 6 && !api_; --v) {
      if (version != 0 && v != version) continue;
      std::string sym = "ncclNetPlugin_v" + std::to_string(v);
      void* t = dlsym(lib_, sym.c_str());
      if (t == nullptr) continue;
      switch (v) {
        case 12:
          api_.reset(new detail::NetApiImpl<ncclNet_v12_t, 12>(static_cast<ncclNet_v12_t*>(t)));
          break;
        case 11:
          api_.reset(new detail::NetApiImpl<ncclNet_v11_t, 11>(static_cast<ncclNet_v11_t*>(t)));
          break;
        case 10:
          api_.reset(new detail::NetApiImpl<ncclNet_v10_t, 10>(static_cast<ncclNet_v10_t*>(t)));
          break;
        case 9:
          api_.reset(new detail::NetApiImpl<ncclNet_v9_t, 9>(static_cast<ncclNet_v9_t*>(t)));
          break;
        case 8:
          api_.reset(new detail::NetApiImpl<ncclNet_v8_t, 8>(static_cast<ncclNet_v8_t*>(t)));
          break;
        case 7:
          api_.reset(new detail::NetApiImpl<ncclNet_v7_t, 7>(static_cast<ncclNet_v7_t*>(t)));
          break;
        case 6:
          api_.reset(new detail::NetApiImpl<ncclNet_v6_t, 6>(static_cast<ncclNet_v6_t*>(t)));
          break;
      }
    }
    if (!api_) error_ = "no ncclNetPlugin_v" + (version ? std::to_string(version) : "12..v6");
  }
  ~LoadedPlugin() {
    api_.reset();
    // Left loaded: NCCL never unloads a net plugin while the process runs.
  }
  NetApi* api() const { return api_.get(); }
  const std::string& error() const { return error_; }

 private:
  void* lib_ = nullptr;
  std::unique_ptr<NetApi> api_;
  std::string error_;
};

// NCCL's logger as the plugin sees it: every line kept (and printed when
// GCCL_TEST_PLUGIN_LOG is set), so tests can check what was logged.
struct LogCapture {
  std::mutex mu;
  std::vector<std::string> lines;
  static LogCapture& get() {
    static LogCapture c;
    return c;
  }
  bool contains(const char* text) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

inline void captureLog(ncclDebugLogLevel level, unsigned long flags, const char* file, int line,
                       const char* fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  (void)flags;
  std::string text = std::string(level == NCCL_LOG_WARN ? "WARN " : "INFO ") + buf;
  if (getenv("GCCL_TEST_PLUGIN_LOG") != nullptr)
    fprintf(stderr, "[%d] %s:%d %s\n", getpid(), file, line, text.c_str());
  LogCapture& c = LogCapture::get();
  std::lock_guard<std::mutex> lock(c.mu);
  c.lines.push_back(text);
}

}  // namespace gccl::test
