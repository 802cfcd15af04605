#include "common/postgres/notification_listener.h"

#include <gtest/gtest.h>

#include "common/concurrency/change_signal.h"
#include "tests/support/test_database.h"

namespace ferry::postgres {
namespace {

TEST(NotificationListenerTest, ANotifyOnTheChannelMovesTheSignalOn) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  concurrency::ChangeSignal signal;
  std::unique_ptr<NotificationListener> listener = NotificationListener::ForSignal(pool.get(), "things", &signal);
  listener->Start();
  // Once listening, the listener notifies once to catch up.
  const uint64_t listening = signal.WaitForChange(0, absl::Seconds(30));
  ASSERT_GE(listening, 1u);
  ASSERT_TRUE(pool->RunInTransaction([](pqxx::work& t) {
                     t.exec0("NOTIFY things");
                     return absl::OkStatus();
                   }).ok());
  EXPECT_EQ(signal.WaitForChange(listening, absl::Seconds(30)), listening + 1);
  listener->Stop();
}

}  // namespace
}  // namespace ferry::postgres
