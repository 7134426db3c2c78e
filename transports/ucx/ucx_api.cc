#include "transports/ucx/ucx_api.h"

#include <dlfcn.h>

#include <mutex>

#include "base/param.h"

namespace gccl::ucx {

namespace {

// The AM API with ucp_am_send_nbx / ucp_am_recv_data_nbx and rendezvous
// descriptors is complete from UCX 1.10 on.
constexpr unsigned kMinMajor = 1, kMinMinor = 10;

std::string loadInto(UcpApi* api) {
  std::string lib = param::UcxLibrary();
  if (lib.empty()) lib = "libucp.so.0";
  // Never closed: see loadUcp.
  void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return "cannot load " + lib + " (" + (err ? err : "unknown error") +
           "); install UCX (Debian: libucx0) or set GCCL_UCX_LIBRARY";
  }
  // dlsym on the handle also searches the library's dependencies (libucs).
#define GCCL_UCP_FN(name)                                                  \
  api->name = reinterpret_cast<decltype(api->name)>(dlsym(handle, #name)); \
  if (api->name == nullptr) return lib + " has no " #name;
#include "transports/ucx/ucx_functions.def"
#undef GCCL_UCP_FN
  api->ucp_get_version(&api->major, &api->minor, &api->release);
  if (api->major < kMinMajor || (api->major == kMinMajor && api->minor < kMinMinor))
    return lib + " is UCX " + std::to_string(api->major) + "." + std::to_string(api->minor) +
           "; the ucx transport needs " + std::to_string(kMinMajor) + "." +
           std::to_string(kMinMinor) + " or later";
  return "";
}

}  // namespace

const UcpApi* loadUcp(std::string* why) {
  static std::once_flag once;
  static UcpApi api;
  static std::string error;
  std::call_once(once, [] { error = loadInto(&api); });
  if (!error.empty()) {
    *why = error;
    return nullptr;
  }
  return &api;
}

}  // namespace gccl::ucx
