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

}  // namespace
}  // namespace ferry::deployer::host
