// The part of UCP (UCX's protocol layer) the ucx transport calls, resolved
// at run time from libucp with dlopen: libgccl links no UCX library, so it
// loads and runs where UCX is not installed, and only a communicator that
// asks for the ucx transport needs it. The build needs UCX's headers alone
// (the types and the inline helpers such as UCS_PTR_IS_ERR); every function
// the transport calls goes through this table.
#pragma once

#include <ucp/api/ucp.h>

#include <string>

namespace gccl::ucx {

struct UcpApi {
#define GCCL_UCP_FN(name) decltype(&::name) name = nullptr;
#include "transports/ucx/ucx_functions.def"
#undef GCCL_UCP_FN
  unsigned major = 0, minor = 0, release = 0;  // the loaded library's version
};

// The table, loaded once per process (GCCL_UCX_LIBRARY names the library,
// libucp.so.0 by default), or null with the reason in *why (the dlopen or
// dlsym error, or a library older than the API this build was written for).
// The library stays loaded until the process exits: UCX installs memory
// hooks and atexit handlers that must outlive every use.
const UcpApi* loadUcp(std::string* why);

}  // namespace gccl::ucx
