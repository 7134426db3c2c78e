// Sparse tensors for sparse AllReduce: (index, value) lists with ascending,
// distinct uint32 indices, and the arithmetic that merges them.
//
// Sums follow the dense reduce kernel's rounding for every type (the half
// types add in float32 and round to nearest even once per addition; integers
// wrap), so that a sum computed here in a fixed order has the same bits on
// every rank that computes it in that order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"

namespace gccl::kernels::sparse {

// Whether indices[0..nnz) ascend strictly and stay below count; otherwise
// false with *bad the first position at fault.
bool checkIndices(const uint32_t* indices, size_t nnz, size_t count, size_t* bad);

// dst[indices[k]] += values[k] for k in [0, nnz) (values: nnz elements of type).
// Indices must be valid for dst (checkIndices). False for a type outside gccl's.
bool scatterAdd(void* dst, const uint32_t* indices, const void* values, size_t nnz,
                gcclDataType_t type);

// Merges n sorted lists: list r has nnz[r] entries at indices[r], values[r].
// Writes the union of their indices, ascending, each with the sum of its
// values taken in list order (starting from zero, as scatterAdd into a
// zeroed tensor would), dropping entries whose sum is zero (+0 or -0) when
// dropZeros. outIndices/outValues have room for `capacity` entries; *outNnz
// gets the union's size. False when the union does not fit (*outNnz then
// gets the size needed) or for an unknown type.
bool mergeSum(int n, const uint32_t* const* indices, const void* const* values, const size_t* nnz,
              gcclDataType_t type, bool dropZeros, uint32_t* outIndices, void* outValues,
              size_t capacity, size_t* outNnz);

// The entries of dense[0..count) that are not zero (+0 or -0), ascending:
// as mergeSum with dropZeros for one dense list.
bool compact(const void* dense, size_t count, gcclDataType_t type, uint32_t* outIndices,
             void* outValues, size_t capacity, size_t* outNnz);

}  // namespace gccl::kernels::sparse
