// Which memory a user's buffer lives in, asked once per call by the API
// entry points and carried by the op's arguments from there on.
#pragma once

#include "transports/transport.h"

namespace gccl {

// Host memory in a build without the CUDA runtime. Built with
// GCCL_MEMTYPE_CUDA (CMake option of the same name), it asks the runtime
// (cudaPointerGetAttributes): device memory is kCuda; host, pinned, managed
// and unknown pointers are kHost, which the host kernels can read.
transport::MemoryType memoryTypeOf(const void* ptr);

}  // namespace gccl
