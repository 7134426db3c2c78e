// Argument checks shared by the gossip calls.
#pragma once

#include <memory>

#include "core/comm.h"
#include "gossip/topology.h"

namespace gccl {

// float16, bfloat16, float32 or float64; anything else is named in the error.
gcclResult_t checkFloatingType(gcclDataType_t type, const char* call);
// The topology behind `topo`, with as many ranks as `comm` and validated for `mixing`.
gcclResult_t checkTopologyFor(gcclComm* comm, gcclTopology_t topo, gcclMixing_t mixing,
                              const char* call, std::shared_ptr<Topology>* out);

}  // namespace gccl
