#include "tensor_args.h"

#include <c10/util/Exception.h>

namespace gccl_torch {

gcclDataType_t toGcclType(at::ScalarType type, const std::string& what) {
  switch (type) {
    case at::kChar:
      return gcclInt8;
    case at::kByte:
      return gcclUint8;
    case at::kInt:
      return gcclInt32;
    case at::kLong:
      return gcclInt64;
    case at::kHalf:
      return gcclFloat16;
    case at::kFloat:
      return gcclFloat32;
    case at::kDouble:
      return gcclFloat64;
    case at::kBFloat16:
      return gcclBfloat16;
    default:
      break;
  }
  TORCH_CHECK_TYPE(false, "gccl: ", what, ": dtype ", type,
                   " is not supported (gccl has int8, uint8, int32, int64, float16, bfloat16, "
                   "float32, float64)");
}

gcclRedOp_t toGcclOp(const c10d::ReduceOp& op, const std::string& what) {
  switch (op.op_) {
    case c10d::ReduceOp::SUM:
      return gcclSum;
    case c10d::ReduceOp::PRODUCT:
      return gcclProd;
    case c10d::ReduceOp::MIN:
      return gcclMin;
    case c10d::ReduceOp::MAX:
      return gcclMax;
    case c10d::ReduceOp::AVG:
      return gcclAvg;
    default:
      break;
  }
  const char* name = "this reduction";
  switch (op.op_) {
    case c10d::ReduceOp::BAND:
      name = "BAND";
      break;
    case c10d::ReduceOp::BOR:
      name = "BOR";
      break;
    case c10d::ReduceOp::BXOR:
      name = "BXOR";
      break;
    case c10d::ReduceOp::PREMUL_SUM:
      name = "PREMUL_SUM";
      break;
    default:
      break;
  }
  TORCH_CHECK_VALUE(false, "gccl: ", what, ": ReduceOp.", name,
                    " is not supported (gccl has SUM, PRODUCT, MIN, MAX, AVG)");
}

void checkCpu(const at::Tensor& tensor, const std::string& what) {
  TORCH_CHECK(tensor.defined(), "gccl: ", what, ": undefined tensor");
  TORCH_CHECK(tensor.device().is_cpu(), "gccl: ", what, ": tensor on ", tensor.device(),
              "; the gccl backend takes CPU tensors (the CUDA path has not landed yet)");
  TORCH_CHECK(tensor.layout() == at::kStrided, "gccl: ", what, ": ", tensor.layout(),
              " tensors are not supported (dense tensors only)");
}

void checkSameType(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "gccl: ", what, ": dtypes differ (",
                   a.scalar_type(), " and ", b.scalar_type(), ")");
}

}  // namespace gccl_torch
