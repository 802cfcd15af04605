#include "services/repo-watcher/repository_spec.h"

#include <fnmatch.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "re2/re2.h"

namespace ferry::repo_watcher {
namespace {

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckSecretRef(const secrets::SecretSources& sources, const v1::SecretRef& ref, const std::string& field) {
  return sources.Read(ref, field).status();
}

bool ValidPattern(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.back() == '/') return false;
  if (absl::StrContains(p, "..") || absl::StrContains(p, "//")) return false;
  for (char c : p) {
    if (c <= ' ' || c == '~' || c == '^' || c == ':' || c == '\\' || c == 0x7f) return false;
  }
  return true;
}

// repository.git_host: kind set; api_url https:// (http:// only to a
// loopback host), with a host, no user info, query or fragment; project in
// the host's form; token a secret reference that resolves.
absl::Status CheckGitHost(const v1::GitHost& host, const secrets::SecretSources& sources) {
  const std::string f = "repository.git_host";
  if (host.kind() != v1::GIT_HOST_KIND_GITHUB && host.kind() != v1::GIT_HOST_KIND_GITLAB &&
      host.kind() != v1::GIT_HOST_KIND_GITEA) {
    return Bad(f + ".kind", "must be GIT_HOST_KIND_GITHUB, GIT_HOST_KIND_GITLAB or GIT_HOST_KIND_GITEA");
  }
  const std::string& url = host.api_url();
  if (url.empty()) return Bad(f + ".api_url", "is required (e.g. https://api.github.com)");
  if (url.size() > 2048) return Bad(f + ".api_url", "is longer than 2048 bytes");
  for (unsigned char c : url) {
    if (c <= ' ' || c >= 0x7f) return Bad(f + ".api_url", "must not contain spaces, control or non-ASCII characters");
  }
  const bool https = absl::StartsWith(url, "https://");
  if (!https && !absl::StartsWith(url, "http://")) return Bad(f + ".api_url", "must be an https:// URL");
  const std::string rest = url.substr(https ? 8 : 7);
  const std::string authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return Bad(f + ".api_url", "has no host");
  if (absl::StrContains(authority, "@")) return Bad(f + ".api_url", "must not carry user information; use token");
  if (absl::StrContains(url, "?") || absl::StrContains(url, "#")) {
    return Bad(f + ".api_url", "must not have a query or fragment");
  }
  if (!https && !IsLoopbackOrigin(absl::StrCat("http://", authority))) {
    return Bad(f + ".api_url", "a token is never sent over plain http:// (only to a loopback host); use https://");
  }
  const std::string& project = host.project();
  if (project.empty()) return Bad(f + ".project", "is required");
  if (project.size() > 255) return Bad(f + ".project", "is longer than 255 bytes");
  static const LazyRE2 kOwnerName = {"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"};
  static const LazyRE2 kGitLab = {"[0-9]+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+"};
  const bool gitlab = host.kind() == v1::GIT_HOST_KIND_GITLAB;
  if (!RE2::FullMatch(project, gitlab ? *kGitLab : *kOwnerName) || absl::StrContains(project, "..")) {
    return Bad(f + ".project", gitlab ? "must be a project path (group/name) or numeric id"
                                      : "must be \"owner/name\"");
  }
  if (!host.has_token()) return Bad(f + ".token", "is required (the API token's secret reference)");
  return CheckSecretRef(sources, host.token(), f + ".token");
}

}  // namespace

bool IsValidId(const std::string& id) {
  static const LazyRE2 kId = {"[a-z0-9]([-a-z0-9]*[a-z0-9])?"};
  return !id.empty() && id.size() <= 63 && RE2::FullMatch(id, *kId);
}

absl::StatusOr<UrlKind> ClassifyUrl(const std::string& url, const std::string& field) {
  if (url.empty()) return Bad(field, "is required");
  if (url.size() > kMaxUrlBytes) return Bad(field, absl::StrCat("is longer than ", kMaxUrlBytes, " bytes"));
  for (char c : url) {
    if (c <= ' ' || c == 0x7f) return Bad(field, "must not contain spaces or control characters");
  }
  if (url[0] == '/') return UrlKind::kLocalPath;
  size_t scheme_end = url.find("://");
  if (scheme_end != std::string::npos) {
    std::string scheme = url.substr(0, scheme_end);
    std::string rest = url.substr(scheme_end + 3);
    if (scheme == "file") {
      if (rest.empty() || rest[0] != '/') return Bad(field, "file:// URLs need an absolute path (file:///path)");
      return UrlKind::kFile;
    }
    UrlKind kind;
    if (scheme == "https") kind = UrlKind::kHttps;
    else if (scheme == "http") kind = UrlKind::kHttp;
    else if (scheme == "ssh") kind = UrlKind::kSsh;
    else return Bad(field, absl::StrCat("unknown scheme \"", scheme, "\" (use a local path, file://, https://, ssh:// or git@host:path)"));
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);  // [user@]host[:port]
    size_t at = authority.rfind('@');
    std::string host = at == std::string::npos ? authority : authority.substr(at + 1);
    // The URL is shown in audit events, API responses and logs: credentials
    // have their own field, read from a file or the environment. An HTTP
    // user name alone can be a token too (https://TOKEN@github.com/...).
    const bool http = kind == UrlKind::kHttps || kind == UrlKind::kHttp;
    if (at != std::string::npos && (http || authority.substr(0, at).find(':') != std::string::npos)) {
      return Bad(field, http ? "must not carry credentials (user[:token]@); use credentials.https_token, "
                               "which reads the token from a file or environment variable"
                             : "must not carry a password (user:password@); use credentials.ssh_key");
    }
    if (host.empty() || host[0] == ':') return Bad(field, "has no host");
    if (slash == std::string::npos || slash + 1 >= rest.size()) return Bad(field, "has no repository path");
    return kind;
  }
  // scp-style user@host:path
  static const LazyRE2 kScp = {"([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:[^/].*|([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:/.+"};
  if (RE2::FullMatch(url, *kScp) && url.find(':') > 1) return UrlKind::kScp;
  return Bad(field, "is not a local absolute path, file://, https://, ssh:// or scp-style git@host:path URL");
}

absl::Status ValidateAndNormalize(v1::Repository& repo, const secrets::SecretSources& sources) {
  if (!IsValidId(repo.id())) {
    return Bad("repository.id", "must be a lowercase DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)");
  }
  absl::StatusOr<UrlKind> kind = ClassifyUrl(repo.url());
  if (!kind.ok()) return kind.status();
  if (!repo.has_poll_interval()) {
    *repo.mutable_poll_interval() = google::protobuf::util::TimeUtil::SecondsToDuration(60);
  } else {
    absl::Duration d = absl::Seconds(repo.poll_interval().seconds()) + absl::Nanoseconds(repo.poll_interval().nanos());
    if (d < kMinPollInterval) return Bad("repository.poll_interval", "must be at least 1s");
  }
  if (repo.branches().empty() && repo.tag_patterns().empty()) repo.add_branches("main");
  for (const std::string& b : repo.branches()) {
    std::string name = absl::StartsWith(b, "refs/heads/") ? b.substr(11) : b;
    if (!ValidPattern(name)) return Bad("repository.branches", absl::StrCat("\"", b, "\" is not a valid branch name or pattern"));
  }
  for (auto& b : *repo.mutable_branches()) {
    if (absl::StartsWith(b, "refs/heads/")) b = b.substr(11);
  }
  for (const std::string& t : repo.tag_patterns()) {
    std::string name = absl::StartsWith(t, "refs/tags/") ? t.substr(10) : t;
    if (!ValidPattern(name)) return Bad("repository.tag_patterns", absl::StrCat("\"", t, "\" is not a valid tag pattern"));
  }
  for (auto& t : *repo.mutable_tag_patterns()) {
    if (absl::StartsWith(t, "refs/tags/")) t = t.substr(10);
  }
  if (repo.has_credentials()) {
    const v1::GitCredentials& c = repo.credentials();
    bool https = *kind == UrlKind::kHttps || *kind == UrlKind::kHttp;
    bool ssh = *kind == UrlKind::kSsh || *kind == UrlKind::kScp;
    switch (c.method_case()) {
      case v1::GitCredentials::kHttpsToken:
        if (!https) return Bad("repository.credentials.https_token", "needs an https:// URL");
        if (absl::Status s = CheckTokenTransport(repo.url(), sources, "repository.credentials.https_token"); !s.ok()) {
          return s;
        }
        if (absl::Status s = CheckSecretRef(sources, c.https_token().token(), "repository.credentials.https_token.token"); !s.ok()) return s;
        break;
      case v1::GitCredentials::kSshKey: {
        if (!ssh) return Bad("repository.credentials.ssh_key", "needs an ssh:// or git@host:path URL");
        absl::StatusOr<std::string> key = sources.ResolveFile(c.ssh_key().private_key_file(),
                                                              "repository.credentials.ssh_key.private_key_file");
        if (!key.ok()) return key.status();
        if (c.ssh_key().has_passphrase()) {
          if (absl::Status s = CheckSecretRef(sources, c.ssh_key().passphrase(), "repository.credentials.ssh_key.passphrase"); !s.ok()) return s;
        }
        const std::string& kh = c.ssh_key().known_hosts_file();
        if (!kh.empty() && access(kh.c_str(), R_OK) != 0) {
          return Bad("repository.credentials.ssh_key.known_hosts_file", absl::StrCat("file \"", kh, "\" does not exist or is not readable"));
        }
        break;
      }
      case v1::GitCredentials::METHOD_NOT_SET:
        return Bad("repository.credentials", "one of https_token or ssh_key must be set");
    }
  }
  if (repo.has_webhook_secret()) {
    if (absl::Status s = CheckSecretRef(sources, repo.webhook_secret(), "repository.webhook_secret"); !s.ok()) return s;
  }
  if (repo.has_git_host()) {
    if (absl::Status s = CheckGitHost(repo.git_host(), sources); !s.ok()) return s;
  }
  v1::SignaturePolicy* policy = repo.mutable_signature_policy();
  if (policy->mode() == v1::SIGNATURE_MODE_UNSPECIFIED) policy->set_mode(v1::SIGNATURE_MODE_NONE);
  for (const std::string& k : policy->trusted_pgp_public_keys()) {
    if (!absl::StrContains(k, "-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
      return Bad("repository.signature_policy.trusted_pgp_public_keys", "each key must be an ASCII-armored OpenPGP public key");
    }
  }
  for (const std::string& line : policy->ssh_allowed_signers()) {
    if (line.size() > kMaxAllowedSignerBytes) {
      return Bad("repository.signature_policy.ssh_allowed_signers",
                 absl::StrCat("a line is longer than ", kMaxAllowedSignerBytes, " bytes"));
    }
    static const LazyRE2 kLine = {"\\s*\\S+\\s+.*(ssh-|ecdsa-|sk-)\\S+\\s+\\S+.*"};
    if (!RE2::FullMatch(line, *kLine) || absl::StrContains(line, "\n")) {
      return Bad("repository.signature_policy.ssh_allowed_signers",
                 absl::StrCat("\"", absl::CHexEscape(line.substr(0, 80)), line.size() > 80 ? "..." : "",
                              "\" is not an allowed_signers line (principal key-type key)"));
    }
  }
  if (policy->mode() != v1::SIGNATURE_MODE_NONE && policy->trusted_pgp_public_keys().empty() &&
      policy->ssh_allowed_signers().empty()) {
    return Bad("repository.signature_policy", "mode HEAD or ALL needs trusted_pgp_public_keys or ssh_allowed_signers");
  }
  return absl::OkStatus();
}

std::string UrlOrigin(const std::string& url) {
  absl::StatusOr<UrlKind> kind = ClassifyUrl(url);
  if (!kind.ok()) return "";
  std::string scheme, hostport;
  switch (*kind) {
    case UrlKind::kLocalPath:
    case UrlKind::kFile:
      return "file://";
    case UrlKind::kScp: {
      std::string head = url.substr(0, url.find(':'));
      size_t at = head.rfind('@');
      return absl::AsciiStrToLower(absl::StrCat("ssh://", at == std::string::npos ? head : head.substr(at + 1)));
    }
    case UrlKind::kHttps:
    case UrlKind::kHttp:
    case UrlKind::kSsh: {
      size_t scheme_end = url.find("://");
      scheme = url.substr(0, scheme_end);
      std::string rest = url.substr(scheme_end + 3);
      std::string authority = rest.substr(0, rest.find('/'));
      size_t at = authority.rfind('@');
      hostport = absl::AsciiStrToLower(at == std::string::npos ? authority : authority.substr(at + 1));
      const std::string default_port = *kind == UrlKind::kHttps ? ":443" : *kind == UrlKind::kHttp ? ":80" : ":22";
      if (absl::EndsWith(hostport, default_port)) hostport.resize(hostport.size() - default_port.size());
      return absl::StrCat(scheme, "://", hostport);
    }
  }
  return "";
}

bool IsLoopbackOrigin(const std::string& origin) {
  size_t scheme_end = origin.find("://");
  if (scheme_end == std::string::npos) return false;
  std::string host = origin.substr(scheme_end + 3);
  if (absl::StartsWith(host, "[")) return absl::StartsWith(host, "[::1]");
  host = host.substr(0, host.find(':'));
  static const LazyRE2 kLoopback4 = {"127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"};
  return host == "localhost" || RE2::FullMatch(host, *kLoopback4);
}

absl::Status CheckTokenTransport(const std::string& url, const secrets::SecretSources& sources, const std::string& field) {
  absl::StatusOr<UrlKind> kind = ClassifyUrl(url);
  if (!kind.ok() || *kind != UrlKind::kHttp) return absl::OkStatus();
  if (sources.allow_http_token_to_loopback() && IsLoopbackOrigin(UrlOrigin(url))) return absl::OkStatus();
  return Bad(field, "a token is never sent over plain http://; use an https:// URL");
}

bool IsTrackedRef(const v1::Repository& repo, const std::string& ref) {
  if (absl::StartsWith(ref, "refs/heads/")) {
    std::string name = ref.substr(11);
    for (const std::string& p : repo.branches()) {
      if (fnmatch(p.c_str(), name.c_str(), FNM_PATHNAME) == 0) return true;
    }
  } else if (absl::StartsWith(ref, "refs/tags/")) {
    std::string name = ref.substr(10);
    for (const std::string& p : repo.tag_patterns()) {
      if (fnmatch(p.c_str(), name.c_str(), FNM_PATHNAME) == 0) return true;
    }
  }
  return false;
}

absl::Duration PollInterval(const v1::Repository& repo) {
  if (!repo.has_poll_interval()) return kDefaultPollInterval;
  absl::Duration d = absl::Seconds(repo.poll_interval().seconds()) + absl::Nanoseconds(repo.poll_interval().nanos());
  return d < kMinPollInterval ? kMinPollInterval : d;
}

}  // namespace ferry::repo_watcher
