// SSH host-key checking against known_hosts files written by real
// ssh-keygen (plain and hashed entries).

#include "common/git/known_hosts.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::git {
namespace {

std::string KeyOf(const std::string& pub_file) {
  std::ifstream in(pub_file);
  std::string type, key;
  in >> type >> key;
  return key;
}

TEST(KnownHostsTest, MatchesPlainBracketedAndHashedEntriesOnly) {
  std::string dir = testing::MakeTempDir("known-hosts");
  for (const char* name : {"a", "b"}) {
    auto r = testing::RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir + "/" + name});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string a = KeyOf(dir + "/a.pub"), b = KeyOf(dir + "/b.pub");
  std::string file = dir + "/known_hosts";
  {
    std::ofstream out(file);
    out << "# comment\n"
        << "git.example.com,10.0.0.1 ssh-ed25519 " << a << "\n"
        << "[alt.example.com]:2222 ssh-ed25519 " << a << "\n"
        << "hashed.example.com ssh-ed25519 " << a << "\n"
        << "@revoked revoked.example.com ssh-ed25519 " << a << "\n";
  }
  // Let ssh-keygen hash the last plain entry the way OpenSSH does.
  auto hashed = testing::RunCommand({"ssh-keygen", "-H", "-f", file});
  ASSERT_EQ(hashed.exit_code, 0) << hashed.output;
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSERT_EQ(ss.str().find("hashed.example.com"), std::string::npos) << "not hashed: " << ss.str();

  EXPECT_TRUE(KnownHostsContains(file, "git.example.com", 22, a));
  EXPECT_TRUE(KnownHostsContains(file, "10.0.0.1", 22, a));
  EXPECT_TRUE(KnownHostsContains(file, "alt.example.com", 2222, a));
  EXPECT_FALSE(KnownHostsContains(file, "alt.example.com", 22, a)) << "listed for port 2222 only";
  EXPECT_TRUE(KnownHostsContains(file, "hashed.example.com", 22, a));
  EXPECT_FALSE(KnownHostsContains(file, "git.example.com", 22, b)) << "different key";
  EXPECT_FALSE(KnownHostsContains(file, "other.example.com", 22, a)) << "unknown host";
  EXPECT_FALSE(KnownHostsContains(file, "revoked.example.com", 22, a));
  EXPECT_FALSE(KnownHostsContains(dir + "/missing", "git.example.com", 22, a));
}

TEST(KnownHostsTest, SshPortComesFromTheUrl) {
  EXPECT_EQ(SshPortOf("ssh://git@h.example:2222/o/r.git"), 2222);
  EXPECT_EQ(SshPortOf("ssh://h.example/o/r.git"), 22);
  EXPECT_EQ(SshPortOf("git@h.example:o/r.git"), 22);
}

TEST(KnownHostsTest, Base64MatchesOpenSsh) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
}

}  // namespace
}  // namespace ferry::git
