#pragma once

#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/postgres/connection_pool.h"

namespace ferry::testing {

// Holds what `sql` locks (a table by LOCK TABLE, a row by SELECT ... FOR
// UPDATE) in a transaction of `pool` on a thread of its own, from the
// constructor, which returns once it is held, until Release() or the
// destructor: statements that need it wait meanwhile. The tests of shared
// statements (concurrency::Batcher) hold a first call's statement this way
// so that the calls behind it queue for the next one.
class HeldLock {
 public:
  HeldLock(postgres::ConnectionPool& pool, std::string sql);
  ~HeldLock() { Release(); }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;

  // Ends the transaction (the lock is released); idempotent.
  void Release();

 private:
  absl::Notification locked_;
  absl::Notification release_;
  std::thread thread_;
};

}  // namespace ferry::testing
