#pragma once

#include <semaphore>

namespace ferry::process {

// Holds one of a bounded number of slots for a subprocess (a render tool, a
// check command) while in scope: the slots are a std::counting_semaphore
// shared by everything that runs such processes, so that running more work
// at once (the planner's --plan-concurrency) does not run more tools at once
// than --tool-processes. A null semaphore bounds nothing.
class ToolSlot {
 public:
  explicit ToolSlot(std::counting_semaphore<>* slots) : slots_(slots) {
    if (slots_ != nullptr) slots_->acquire();
  }
  ~ToolSlot() {
    if (slots_ != nullptr) slots_->release();
  }
  ToolSlot(const ToolSlot&) = delete;
  ToolSlot& operator=(const ToolSlot&) = delete;

 private:
  std::counting_semaphore<>* const slots_;
};

}  // namespace ferry::process
