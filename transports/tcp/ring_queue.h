// A FIFO over a growable circular array: pushing and popping allocate nothing
// once the queue has reached its working size (the hot path must not malloc).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace gccl::tcp {

template <typename T>
class RingQueue {
 public:
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  T& at(size_t i) { return items_[(head_ + i) & (items_.size() - 1)]; }
  void push(T item) {
    if (count_ == items_.size()) grow();
    items_[(head_ + count_) & (items_.size() - 1)] = std::move(item);
    ++count_;
  }
  void pop() {
    head_ = (head_ + 1) & (items_.size() - 1);
    --count_;
  }
  void clear() {
    head_ = 0;
    count_ = 0;
  }

 private:
  void grow() {
    std::vector<T> bigger(items_.empty() ? 16 : items_.size() * 2);
    for (size_t i = 0; i < count_; ++i)
      bigger[i] = std::move(at(i));
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;
  size_t head_ = 0;
  size_t count_ = 0;
};

}  // namespace gccl::tcp
