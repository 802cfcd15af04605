#include "services/repo-watcher/secrets.h"

#include "absl/strings/str_cat.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {

// FAILED_PRECONDITION (do not retry until the spec or sources change), but
// UNAVAILABLE stays so when only the secret store could not be asked.
absl::Status Unusable(const absl::Status& s) {
  return absl::Status(absl::IsUnavailable(s) ? absl::StatusCode::kUnavailable : absl::StatusCode::kFailedPrecondition,
                      absl::StrCat("credentials not used, nothing sent: ", s.message()));
}

}  // namespace

absl::StatusOr<git::Credentials> ResolveCredentials(const v1::Repository& repo, const secrets::SecretSources& sources) {
  git::Credentials creds;
  if (!repo.has_credentials()) return creds;
  const v1::GitCredentials& c = repo.credentials();
  const std::string origin = UrlOrigin(repo.url());
  if (!c.origin().empty() && c.origin() != origin) {
    return absl::FailedPreconditionError(
        absl::StrCat("credentials not used, nothing sent: repository.credentials were given for ", c.origin(),
                     " but the URL now names ", origin.empty() ? "another origin" : origin,
                     "; give the credentials again with UpdateRepository"));
  }
  if (c.has_https_token()) {
    if (absl::Status s = CheckTokenTransport(repo.url(), sources, "repository.credentials.https_token"); !s.ok()) {
      return Unusable(s);
    }
    creds.kind = git::Credentials::Kind::kUserPassword;
    creds.username = c.https_token().username().empty() ? "git" : c.https_token().username();
    absl::StatusOr<std::string> token = sources.Read(c.https_token().token(), "repository.credentials.https_token.token");
    if (!token.ok()) return Unusable(token.status());
    creds.password = std::move(*token);
  } else if (c.has_ssh_key()) {
    creds.kind = git::Credentials::Kind::kSshKey;
    absl::StatusOr<std::string> key =
        sources.ResolveFile(c.ssh_key().private_key_file(), "repository.credentials.ssh_key.private_key_file");
    if (!key.ok()) return Unusable(key.status());
    creds.private_key_file = *key;
    creds.known_hosts_file = c.ssh_key().known_hosts_file();
    if (c.ssh_key().has_passphrase()) {
      absl::StatusOr<std::string> pass =
          sources.Read(c.ssh_key().passphrase(), "repository.credentials.ssh_key.passphrase");
      if (!pass.ok()) return Unusable(pass.status());
      creds.passphrase = std::move(*pass);
    }
  }
  return creds;
}

}  // namespace ferry::repo_watcher
