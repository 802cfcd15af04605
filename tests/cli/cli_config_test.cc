#include "cli/cli_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"

namespace ferry::cli {
namespace {

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-cli-config.XXXXXX").string();
  return mkdtemp(tmpl.data());
}

TEST(CliConfigTest, SavesAndLoadsEveryFieldAndKeepsOtherContexts) {
  std::string dir = TempDir();
  std::string path = dir + "/sub/config.yaml";
  auto config = CliConfig::Load(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->contexts().empty());
  ContextConfig a;
  a.server = "127.0.0.1:7002";
  a.addresses["audit"] = "127.0.0.1:7004";
  a.ca_file = "/ca.pem";
  a.token_file = "/t";
  config->Set("a", a);
  ContextConfig b;
  b.server = "ferry.example.com:443";
  b.token = "ferry_x";
  b.insecure = true;
  config->Set("b", b);
  config->set_current("a");
  ASSERT_TRUE(config->Save().ok());
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto again = CliConfig::Load(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->current(), "a");
  ASSERT_NE(again->Find("a"), nullptr);
  EXPECT_EQ(again->Find("a")->AddressOf("audit"), "127.0.0.1:7004");
  EXPECT_EQ(again->Find("a")->AddressOf("deployer"), "127.0.0.1:7002");
  EXPECT_EQ(again->Find("a")->ca_file, "/ca.pem");
  EXPECT_EQ(again->Find("b")->token, "ferry_x");
  EXPECT_TRUE(again->Find("b")->insecure);
  std::filesystem::remove_all(dir);
}

TEST(CliConfigTest, RefusesUnknownFieldsNamingTheFile) {
  std::string dir = TempDir();
  std::ofstream(dir + "/c.yaml") << "contexts:\n  x:\n    sever: 1.2.3.4:5\n";
  auto config = CliConfig::Load(dir + "/c.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StrContains(config.status().message(), "c.yaml")) << config.status();
  EXPECT_TRUE(absl::StrContains(config.status().message(), "unknown field \"sever\"")) << config.status();
  std::filesystem::remove_all(dir);
}

TEST(CliConfigTest, FlagsBeatEnvironmentBeatsContext) {
  std::string dir = TempDir();
  auto config = CliConfig::Load(dir + "/c.yaml");
  ASSERT_TRUE(config.ok());
  ContextConfig a;
  a.server = "ctx:1";
  a.token = "from-context";
  config->Set("a", a);
  config->set_current("a");
  ::unsetenv("FERRY_TOKEN");
  ::setenv("FERRY_SERVER", "env:2", 1);
  Overrides o;
  auto r = Resolve(*config, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.AddressOf("planner"), "env:2");
  EXPECT_EQ(r->token, "from-context");
  o.server = "planner=flag:3";
  r = Resolve(*config, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->config.AddressOf("planner"), "flag:3");
  EXPECT_EQ(r->config.AddressOf("audit"), "ctx:1") << "a per-service --server keeps the context's other addresses";
  ::setenv("FERRY_TOKEN", "from-env", 1);
  r = Resolve(*config, o);
  EXPECT_EQ(r->token, "from-env");
  ::unsetenv("FERRY_TOKEN");
  ::unsetenv("FERRY_SERVER");

  o = Overrides();
  o.server = "nosuch=1:2";
  EXPECT_FALSE(Resolve(*config, o).ok());
  o = Overrides();
  o.context = "missing";
  r = Resolve(*config, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "it has a")) << r.status();
  std::filesystem::remove_all(dir);
}

TEST(CliConfigTest, NoContextAtAllSaysHowToGetOne) {
  std::string dir = TempDir();
  auto config = CliConfig::Load(dir + "/none.yaml");
  ASSERT_TRUE(config.ok());
  ::unsetenv("FERRY_SERVER");
  ::unsetenv("FERRY_CONTEXT");
  auto r = Resolve(*config, Overrides());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "make up")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "ferry login")) << r.status();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::cli
