#include "tests/support/held_lock.h"

#include <utility>

#include <gtest/gtest.h>

namespace ferry::testing {

HeldLock::HeldLock(postgres::ConnectionPool& pool, std::string sql)
    : thread_([this, &pool, sql = std::move(sql)] {
        absl::Status s = pool.RunInTransaction([&](pqxx::work& txn) {
          txn.exec(sql);
          locked_.Notify();
          release_.WaitForNotification();
          return absl::OkStatus();
        });
        EXPECT_TRUE(s.ok()) << sql << ": " << s;
        if (!locked_.HasBeenNotified()) locked_.Notify();  // failed before: do not leave the constructor waiting
      }) {
  locked_.WaitForNotification();
}

void HeldLock::Release() {
  if (!release_.HasBeenNotified()) release_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ferry::testing
