#include "common/config/service_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace ferry::config {
namespace {

struct Parsed {
  ServiceConfig config;
  std::string error;
};

Parsed Parse(std::vector<std::string> args) {
  Parsed out;
  out.config = DefaultsFor("audit", 7004, 9104);
  CLI::App app{"test"};
  AddServiceFlags(app, out.config);
  std::vector<const char*> argv = {"ferry-test"};
  for (auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    out.error = e.what();
  }
  return out;
}

TEST(ServiceConfigTest, EnvNamesFollowFlags) {
  EXPECT_EQ(EnvNameFor("--database-url"), "FERRY_DATABASE_URL");
  EXPECT_EQ(EnvNameFor("--db-pool-size"), "FERRY_DB_POOL_SIZE");
}

TEST(ServiceConfigTest, DefaultsAndFlags) {
  Parsed p = Parse({"--database-url=postgresql://x@127.0.0.1/db", "--drain-timeout=2s", "--threads=4"});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.config.grpc_address, "127.0.0.1:7004");
  EXPECT_EQ(p.config.drain_timeout, absl::Seconds(2));
  EXPECT_EQ(p.config.threads, 4);
}

TEST(ServiceConfigTest, RejectsBadDurationNamingFlagAndValue) {
  Parsed p = Parse({"--database-url=x", "--drain-timeout=soon"});
  EXPECT_NE(p.error.find("--drain-timeout"), std::string::npos) << p.error;
  EXPECT_NE(p.error.find("soon"), std::string::npos) << p.error;
}

TEST(ServiceConfigTest, RejectsOutOfRangeNumber) {
  Parsed p = Parse({"--database-url=x", "--threads=0"});
  EXPECT_NE(p.error.find("--threads"), std::string::npos) << p.error;
}

TEST(ServiceConfigTest, RequiresDatabaseUrl) {
  unsetenv("FERRY_DATABASE_URL");
  Parsed p = Parse({});
  EXPECT_NE(p.error.find("--database-url"), std::string::npos) << p.error;
}

TEST(ServiceConfigTest, EnvironmentFallsBackAndFlagWins) {
  setenv("FERRY_DATABASE_URL", "postgresql://env@127.0.0.1/db", 1);
  setenv("FERRY_LOG_LEVEL", "debug", 1);
  Parsed p = Parse({"--log-level=warn"});
  unsetenv("FERRY_DATABASE_URL");
  unsetenv("FERRY_LOG_LEVEL");
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.config.database_url, "postgresql://env@127.0.0.1/db");
  EXPECT_EQ(p.config.log_level, "warn");
}

// --insecure-plaintext and --insecure-no-auth were options wanting a value:
// given bare, as documented, they swallowed the next argument or failed.
TEST(ServiceConfigTest, InsecureSwitchesAreBareFlagsWithEnvironmentFallback) {
  Parsed p = Parse({"--database-url=x", "--insecure-plaintext", "--insecure-no-auth", "--threads=4"});
  ASSERT_EQ(p.error, "");
  EXPECT_TRUE(p.config.insecure_plaintext);
  EXPECT_TRUE(p.config.insecure_no_auth);
  EXPECT_EQ(p.config.threads, 4);
  Parsed none = Parse({"--database-url=x"});
  EXPECT_FALSE(none.config.insecure_plaintext);
  EXPECT_FALSE(none.config.insecure_no_auth);
  setenv("FERRY_INSECURE_PLAINTEXT", "true", 1);
  Parsed env = Parse({"--database-url=x"});
  unsetenv("FERRY_INSECURE_PLAINTEXT");
  ASSERT_EQ(env.error, "");
  EXPECT_TRUE(env.config.insecure_plaintext);
  EXPECT_FALSE(env.config.insecure_no_auth);
}

TEST(ServiceConfigTest, RejectsBadEnvironmentValue) {
  setenv("FERRY_DB_POOL_SIZE", "many", 1);
  Parsed p = Parse({"--database-url=x"});
  unsetenv("FERRY_DB_POOL_SIZE");
  EXPECT_NE(p.error.find("many"), std::string::npos) << p.error;
}

}  // namespace
}  // namespace ferry::config
