// Factories for the collective algorithms. Each returns an Op for the
// progress engine; arguments were validated by the API layer (coll_api.cc).
//
// Algorithms, steps and bytes on the wire per rank (n ranks, S bytes):
//   AllReduce, ring (large):        2(n-1) steps, sends 2(n-1)/n * S, pipelined in slices
//   AllReduce, recursive doubling:  ceil(log2 n) (+2 when n is not a power of two) steps,
//                                   sends S * log2(n); the extra ranks of a non-power of
//                                   two fold into a partner first and get the result back
//   ReduceScatter, ring:            n-1 steps, sends (n-1)/n * S (S = whole input)
//   AllGather, ring:                n-1 steps, sends (n-1)/n * S (S = whole output)
//   Broadcast: binomial tree (small, ceil(log2 n) steps) or pipelined chain (large)
//   Reduce: binomial tree (small) or pipelined chain towards the root (large)
//   Barrier: dissemination, ceil(log2 n) rounds of empty messages
// Every reduced element is computed by exactly one rank in one fixed order and
// then copied, or (recursive doubling) computed symmetrically with a
// commutative kernel, so results are bit-identical on every rank.
#pragma once

#include <memory>

#include "core/executor.h"
#include "core/op.h"

namespace gccl {

struct CollArgs {
  const void* send = nullptr;
  void* recv = nullptr;
  // Where send and recv live (checkMemoryTypes: the same memory); scratch is
  // taken of the same type, so the executor's arithmetic sees one type.
  MemoryType sendMem = MemoryType::kHost;
  MemoryType recvMem = MemoryType::kHost;
  size_t count = 0;  // elements: total (AllReduce, Broadcast, Reduce) or per rank (AG, RS)
  gcclDataType_t type = gcclFloat32;
  gcclRedOp_t op = gcclSum;
  int root = 0;
  int rank = 0;
  int nranks = 1;
  size_t chunkBytes = 512 << 10;
};

enum class RingMode { kAllReduce, kReduceScatter, kAllGather };

std::unique_ptr<Op> makeRingOp(RingMode mode, const CollArgs& args, gcclRequest* req);
std::unique_ptr<Op> makeRecursiveDoublingAllReduce(const CollArgs& args, gcclRequest* req);
std::unique_ptr<Op> makeBroadcastOp(const CollArgs& args, bool pipelined, gcclRequest* req);
std::unique_ptr<Op> makeReduceOp(const CollArgs& args, bool pipelined, gcclRequest* req);
std::unique_ptr<Op> makeBarrierOp(const CollArgs& args, gcclRequest* req);
std::unique_ptr<Op> makeSendOp(const void* data, size_t bytes, MemoryType mem, int peer,
                               uint64_t seq, gcclRequest* req);
std::unique_ptr<Op> makeRecvOp(void* data, size_t bytes, MemoryType mem, int peer, uint64_t seq,
                               gcclRequest* req);

}  // namespace gccl
