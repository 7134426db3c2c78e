#include "core/memory_type.h"

#ifdef GCCL_MEMTYPE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace gccl {

#ifdef GCCL_MEMTYPE_CUDA
transport::MemoryType memoryTypeOf(const void* ptr) {
  if (ptr == nullptr) return transport::MemoryType::kHost;
  cudaPointerAttributes attr;
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    // A pointer the runtime has never seen: plain host memory. Clear the
    // error so that the application's next CUDA call does not report it.
    cudaGetLastError();
    return transport::MemoryType::kHost;
  }
  return attr.type == cudaMemoryTypeDevice ? transport::MemoryType::kCuda
                                           : transport::MemoryType::kHost;
}
#else
transport::MemoryType memoryTypeOf(const void*) {
  return transport::MemoryType::kHost;
}
#endif

}  // namespace gccl
