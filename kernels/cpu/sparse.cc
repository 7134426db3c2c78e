#include "kernels/cpu/sparse.h"

#include <cstring>
#include <vector>

#include "kernels/cpu/half.h"

namespace gccl::kernels::sparse {

namespace {

// One element type's addition with the dense reduce kernel's rounding.
template <typename T>
struct Plain {
  using Storage = T;
  static T add(T a, T b) {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) +
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a + b;
  }
  static bool isZero(T v) { return v == T(0); }
};
struct Half {
  using Storage = uint16_t;
  static uint16_t add(uint16_t a, uint16_t b) {
    return floatToHalf(halfToFloat(a) + halfToFloat(b));
  }
  static bool isZero(uint16_t v) { return (v & 0x7fff) == 0; }
};
struct Bfloat {
  using Storage = uint16_t;
  static uint16_t add(uint16_t a, uint16_t b) {
    return floatToBfloat16(bfloat16ToFloat(a) + bfloat16ToFloat(b));
  }
  static bool isZero(uint16_t v) { return (v & 0x7fff) == 0; }
};

template <typename F>
void scatterAddT(void* dst, const uint32_t* idx, const void* values, size_t nnz) {
  using S = typename F::Storage;
  S* d = static_cast<S*>(dst);
  const S* v = static_cast<const S*>(values);
  for (size_t k = 0; k < nnz; ++k)
    d[idx[k]] = F::add(d[idx[k]], v[k]);
}

template <typename F>
bool mergeT(int n, const uint32_t* const* indices, const void* const* values, const size_t* nnz,
            bool dropZeros, uint32_t* outIdx, void* outValues, size_t capacity, size_t* outNnz) {
  using S = typename F::Storage;
  S* out = static_cast<S*>(outValues);
  std::vector<size_t> pos(static_cast<size_t>(n), 0);
  size_t written = 0, needed = 0;
  for (;;) {
    // The smallest index at the head of any list.
    uint64_t next = UINT64_MAX;
    for (int r = 0; r < n; ++r)
      if (pos[r] < nnz[r] && indices[r][pos[r]] < next) next = indices[r][pos[r]];
    if (next == UINT64_MAX) break;
    S sum = S(0);
    for (int r = 0; r < n; ++r) {
      if (pos[r] < nnz[r] && indices[r][pos[r]] == next) {
        sum = F::add(sum, static_cast<const S*>(values[r])[pos[r]]);
        ++pos[r];
      }
    }
    if (dropZeros && F::isZero(sum)) continue;
    if (written < capacity) {
      outIdx[written] = static_cast<uint32_t>(next);
      out[written] = sum;
      ++written;
    }
    ++needed;
  }
  *outNnz = needed;
  return needed <= capacity;
}

template <typename F>
bool compactT(const void* dense, size_t count, uint32_t* outIdx, void* outValues, size_t capacity,
              size_t* outNnz) {
  using S = typename F::Storage;
  const S* d = static_cast<const S*>(dense);
  S* out = static_cast<S*>(outValues);
  size_t needed = 0;
  for (size_t i = 0; i < count; ++i) {
    if (F::isZero(d[i])) continue;
    if (needed < capacity) {
      outIdx[needed] = static_cast<uint32_t>(i);
      out[needed] = d[i];
    }
    ++needed;
  }
  *outNnz = needed;
  return needed <= capacity;
}

// Calls fn.template operator()<F>() with F the arithmetic of `type`.
template <typename Fn>
bool dispatch(gcclDataType_t type, Fn&& fn) {
  switch (type) {
    case gcclInt8:
      return fn(Plain<int8_t>());
    case gcclUint8:
      return fn(Plain<uint8_t>());
    case gcclInt32:
      return fn(Plain<int32_t>());
    case gcclUint32:
      return fn(Plain<uint32_t>());
    case gcclInt64:
      return fn(Plain<int64_t>());
    case gcclUint64:
      return fn(Plain<uint64_t>());
    case gcclFloat16:
      return fn(Half());
    case gcclFloat32:
      return fn(Plain<float>());
    case gcclFloat64:
      return fn(Plain<double>());
    case gcclBfloat16:
      return fn(Bfloat());
    default:
      return false;
  }
}

}  // namespace

bool checkIndices(const uint32_t* indices, size_t nnz, size_t count, size_t* bad) {
  for (size_t k = 0; k < nnz; ++k) {
    if (indices[k] >= count || (k > 0 && indices[k] <= indices[k - 1])) {
      *bad = k;
      return false;
    }
  }
  return true;
}

bool scatterAdd(void* dst, const uint32_t* indices, const void* values, size_t nnz,
                gcclDataType_t type) {
  return dispatch(type, [&](auto f) {
    scatterAddT<decltype(f)>(dst, indices, values, nnz);
    return true;
  });
}

bool mergeSum(int n, const uint32_t* const* indices, const void* const* values, const size_t* nnz,
              gcclDataType_t type, bool dropZeros, uint32_t* outIndices, void* outValues,
              size_t capacity, size_t* outNnz) {
  *outNnz = 0;
  return dispatch(type, [&](auto f) {
    return mergeT<decltype(f)>(n, indices, values, nnz, dropZeros, outIndices, outValues, capacity,
                               outNnz);
  });
}

bool compact(const void* dense, size_t count, gcclDataType_t type, uint32_t* outIndices,
             void* outValues, size_t capacity, size_t* outNnz) {
  *outNnz = 0;
  return dispatch(type, [&](auto f) {
    return compactT<decltype(f)>(dense, count, outIndices, outValues, capacity, outNnz);
  });
}

}  // namespace gccl::kernels::sparse
