// Checks and conversions shared by the backend and the custom ops: torch dtypes and reductions
// to gccl's, CPU placement, and contiguous staging of tensors that are not.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include <string>

#include "gccl/gccl.h"

namespace gccl_torch {

// gccl's type for a torch dtype; throws naming the dtype and the supported ones.
gcclDataType_t toGcclType(at::ScalarType type, const std::string& what);
// gccl's reduction for a torch ReduceOp; throws for those gccl lacks (bitwise ops, PREMUL_SUM).
gcclRedOp_t toGcclOp(const c10d::ReduceOp& op, const std::string& what);
// Throws unless the tensor lives in CPU memory and is dense (not sparse).
void checkCpu(const at::Tensor& tensor, const std::string& what);
// Throws unless the two tensors have the same dtype.
void checkSameType(const at::Tensor& a, const at::Tensor& b, const std::string& what);

}  // namespace gccl_torch
