// ProcessManager's own records under <root>/.ferry/run.
#include "services/deployer/host/process_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/test_database.h"

namespace ferry::deployer::host {
namespace {

// An instance record edited or corrupted on disk (a field of the wrong
// type) used to throw nlohmann's type_error out of Load on whichever thread
// read it (drift, health, a rollout), ending the deployer. It is skipped.
TEST(ProcessManagerTest, ARecordWithAFieldOfTheWrongTypeIsSkippedNotACrash) {
  const std::string root = ferry::testing::MakeTempDir("ferry-pm");
  const std::string dir = root + "/.ferry/run/shop/web";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/bad.json") << R"({"id": 5, "pid": "not a pid", "ports": [1, 2]})";
  std::ofstream(dir + "/worse.json") << R"({"id": "w", "pid": 0, "ports": {"http": "eighty"}})";
  ProcessManager manager(root);
  EXPECT_TRUE(manager.LiveInstances("shop", "web").empty());
  EXPECT_EQ(manager.Signal("shop", "web", 0).code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(root);
}


// Issue #23: a starting instance is re-probed quickly, not after the
// configured period. Its health check fails the first time it runs (it leaves
// a mark) and passes from the second: with a 10-minute period and a 60 s
// deadline, Apply succeeds only if the second probe comes long before the
// period (the schedule is asserted in startup_probe_schedule_test).
TEST(ProcessManagerTest, AStartingInstanceIsReprobedLongBeforeALongPeriod) {
  const std::string root = ferry::testing::MakeTempDir("ferry-pm");
  absl::StatusOr<HostObject> obj = ParseHostObject(R"({
    "apiVersion": "ferry.dev/v1", "kind": "Process", "metadata": {"name": "web"},
    "spec": {"command": ["/bin/sleep", "600"],
             "healthCheck": {"exec": {"command": "test -f probed || { touch probed; exit 1; }"},
                             "periodSeconds": 600, "timeoutSeconds": 30}}})",
                                                   "app/process.yaml");
  ASSERT_TRUE(obj.ok()) << obj.status();
  ProcessManager manager(root);
  absl::Status s = manager.Apply("shop", *obj, absl::Now() + absl::Seconds(60));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(std::filesystem::exists(root + "/probed"));
  EXPECT_EQ(manager.LiveInstances("shop", "web").size(), 1u);
  EXPECT_TRUE(manager.Delete("shop", "web").ok());
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace ferry::deployer::host
