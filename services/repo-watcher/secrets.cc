#include "services/repo-watcher/secrets.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ferry::repo_watcher {

absl::StatusOr<std::string> ReadSecret(const v1::SecretRef& ref, const std::string& field) {
  std::string value;
  if (ref.source_case() == v1::SecretRef::kFile) {
    std::ifstream in(ref.file(), std::ios::binary);
    if (!in) return absl::FailedPreconditionError(absl::StrCat(field, ": cannot read file \"", ref.file(), "\""));
    std::stringstream ss;
    ss << in.rdbuf();
    value = ss.str();
  } else if (ref.source_case() == v1::SecretRef::kEnv) {
    const char* v = std::getenv(ref.env().c_str());
    if (v == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(field, ": environment variable \"", ref.env(), "\" is not set"));
    }
    value = v;
  } else {
    return absl::FailedPreconditionError(absl::StrCat(field, ": not set"));
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

absl::StatusOr<git::Credentials> ResolveCredentials(const v1::Repository& repo) {
  git::Credentials creds;
  if (!repo.has_credentials()) return creds;
  const v1::GitCredentials& c = repo.credentials();
  if (c.has_https_token()) {
    creds.kind = git::Credentials::Kind::kUserPassword;
    creds.username = c.https_token().username().empty() ? "git" : c.https_token().username();
    absl::StatusOr<std::string> token = ReadSecret(c.https_token().token(), "credentials.https_token.token");
    if (!token.ok()) return token.status();
    creds.password = std::move(*token);
  } else if (c.has_ssh_key()) {
    creds.kind = git::Credentials::Kind::kSshKey;
    creds.private_key_file = c.ssh_key().private_key_file();
    creds.known_hosts_file = c.ssh_key().known_hosts_file();
    if (c.ssh_key().has_passphrase()) {
      absl::StatusOr<std::string> pass = ReadSecret(c.ssh_key().passphrase(), "credentials.ssh_key.passphrase");
      if (!pass.ok()) return pass.status();
      creds.passphrase = std::move(*pass);
    }
  }
  return creds;
}

}  // namespace ferry::repo_watcher
