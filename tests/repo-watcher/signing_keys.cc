#include "tests/repo-watcher/signing_keys.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/support/service_process.h"

namespace ferry::testing {
namespace {




std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

PgpKey PgpKey::Generate(const std::string& home, const std::string& user_id) {
  PgpKey key;
  key.home = home;
  std::filesystem::create_directories(home);
  std::filesystem::permissions(home, std::filesystem::perms::owner_all);
  std::vector<std::string> env = {"GNUPGHOME=" + home};
  CommandResult gen = RunCommand({"gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                                  "--quick-gen-key", user_id, "ed25519", "sign", "never"},
                                 absl::Seconds(60), env);
  EXPECT_EQ(gen.exit_code, 0) << gen.output;
  CommandResult list = RunCommand({"gpg", "--batch", "--with-colons", "--list-secret-keys"}, absl::Seconds(30), env);
  for (absl::string_view line : absl::StrSplit(list.output, '\n')) {
    if (absl::StartsWith(line, "fpr:")) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      if (f.size() > 9) key.fingerprint = f[9];
      break;
    }
  }
  EXPECT_FALSE(key.fingerprint.empty()) << list.output;
  CommandResult exported = RunCommand({"gpg", "--batch", "--armor", "--export", key.fingerprint}, absl::Seconds(30), env);
  EXPECT_EQ(exported.exit_code, 0) << exported.output;
  key.public_key = exported.output;
  return key;
}

void PgpKey::Stop() const {
  if (!home.empty()) RunCommand({"gpgconf", "--kill", "all"}, absl::Seconds(10), {"GNUPGHOME=" + home});
}

SshKey SshKey::Generate(const std::string& dir, const std::string& principal) {
  SshKey key;
  std::filesystem::create_directories(dir);
  key.private_key = dir + "/id_ed25519";
  key.public_key_file = key.private_key + ".pub";
  CommandResult gen =
      RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", key.private_key});
  EXPECT_EQ(gen.exit_code, 0) << gen.output;
  std::vector<std::string> parts = absl::StrSplit(std::string(absl::StripAsciiWhitespace(Slurp(key.public_key_file))), ' ');
  EXPECT_GE(parts.size(), 2u);
  key.allowed_signer = principal + " " + parts[0] + " " + parts[1];
  return key;
}

}  // namespace ferry::testing
