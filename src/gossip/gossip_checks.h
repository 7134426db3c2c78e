// Argument checks shared by the gossip calls.
#pragma once

#include <memory>

#include "core/comm.h"
#include "core/executor.h"
#include "gossip/topology.h"

namespace gccl {

// float16, bfloat16, float32 or float64; anything else is named in the error.
gcclResult_t checkFloatingType(gcclDataType_t type, const char* call);
// The model a gossip object keeps (x, count floats of `type`): a floating
// type, a count whose bytes fit, a buffer the communicator's executor
// reaches. *bytes and *mem describe it.
gcclResult_t checkGossipModel(gcclComm* comm, void* x, size_t count, gcclDataType_t type,
                              const char* call, size_t* bytes, MemoryType* mem);
// The topology behind `topo`, with as many ranks as `comm` and validated for `mixing`.
gcclResult_t checkTopologyFor(gcclComm* comm, gcclTopology_t topo, gcclMixing_t mixing,
                              const char* call, std::shared_ptr<Topology>* out);

// The public PushSum and neighbour-averaging calls, with or without options
// (gossip_api.cc); `call` names the entry point in errors.
gcclResult_t pushSum(const char* call, void* x, size_t count, gcclDataType_t datatype,
                     double* psWeight, gcclTopology_t topo, uint64_t step,
                     const gcclGossipOptions_t* options, gcclComm_t comm, gcclStream_t stream,
                     gcclRequest_t* request);
gcclResult_t neighborAverage(const char* call, const void* sendbuff, void* recvbuff, size_t count,
                             gcclDataType_t datatype, gcclTopology_t topo, uint64_t step,
                             const gcclGossipOptions_t* options, gcclComm_t comm,
                             gcclStream_t stream, gcclRequest_t* request);

}  // namespace gccl
