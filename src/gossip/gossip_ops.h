// Gossip operations for the progress engine (see mix_op.cc).
#pragma once

#include <cstdint>
#include <memory>

#include "core/executor.h"
#include "core/op.h"
#include "core/wire_codec.h"
#include "gossip/topology.h"

namespace gccl {

struct GossipArgs {
  const void* send = nullptr;  // the tensor this rank sends (== recv for in-place)
  void* recv = nullptr;        // where the mixed result goes
  // Where send and recv live (checkMemoryTypes: the same memory).
  MemoryType sendMem = MemoryType::kHost;
  MemoryType recvMem = MemoryType::kHost;
  size_t count = 0;
  gcclDataType_t type = gcclFloat32;
  std::shared_ptr<Topology> topo;  // kept alive while the step runs
  uint64_t step = 0;
  bool pushSum = false;  // carry the push-sum weight
  double* psWeight =
      nullptr;      // PushSum: in: this rank's weight; out (at completion): the mixed weight
  WireCodec codec;  // active: tensor messages travel encoded (mix_op.cc)
};

// One PushSum or neighbour-averaging step.
std::unique_ptr<Op> makeMixOp(const GossipArgs& args, gcclRequest* req);

}  // namespace gccl
