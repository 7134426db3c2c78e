// A vector of trivially copyable values that keeps its first N in place and
// moves to the heap only past them: for the short lists built on every call
// (an op's transfers), which would otherwise cost an allocation each time.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

namespace gccl {

template <typename T, size_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable<T>::value, "values are copied as bytes");

 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  T& operator[](size_t i) { return data()[i]; }
  void push_back(const T& v) {
    if (heap_.empty() && size_ < N) {
      inline_[size_++] = v;
      return;
    }
    if (heap_.empty()) heap_.assign(inline_, inline_ + size_);
    heap_.resize(size_);
    heap_.push_back(v);
    ++size_;
  }
  // Keeps the first n (n <= size()).
  void resize(size_t n) { size_ = n; }
  void clear() { size_ = 0; }

 private:
  T* data() { return heap_.empty() ? inline_ : heap_.data(); }

  T inline_[N];
  std::vector<T> heap_;  // all the values once there were more than N
  size_t size_ = 0;
};

}  // namespace gccl
