#include "common/git/libgit2_client.h"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/git/libgit2_handles.h"
#include "common/git/libgit2_repository.h"
#include "common/status/status_macros.h"

namespace ferry::git {

void EnsureLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    // libgit2 keeps parsed trees in its object cache only up to 4 KiB: a
    // monorepo folder of 10,000 applications (a 330 KiB tree) was inflated
    // and parsed again for every path read beneath it, 2.4 ms a read, so
    // reading every application's folder grew with the square of their
    // number (issue #23). Trees up to kCachedTreeLimit stay cached; the
    // cache's total stays bounded by libgit2's GIT_OPT_SET_CACHE_MAX_SIZE.
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, kCachedTreeLimit);
    // Only the repository's own config counts: not the host's
    // /etc/gitconfig, nor the service user's ~/.gitconfig or XDG config
    // (an insteadOf or core setting there would change what a repository's
    // URL or mirror means, invisibly to Ferry's records). libgit2 otherwise
    // looks for all of them at every repository open, a local ls-remote
    // included: 83 -> 58 us of CPU per check of an unchanged local
    // repository (issue #23: 10,000 repositories polled each minute).
    for (git_config_level_t level :
         {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA}) {
      git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, "");
    }
  });
}

absl::Status GitError(int code, const std::string& what, absl::StatusCode network_code) {
  const git_error* e = git_error_last();
  std::string msg = absl::StrCat(what, ": ", e != nullptr && e->message != nullptr ? e->message : "libgit2 error");
  if (code == GIT_ENOTFOUND) return absl::NotFoundError(msg);
  if (code == GIT_EAUTH) return absl::UnauthenticatedError(msg);
  if (e != nullptr && (e->klass == GIT_ERROR_NET || e->klass == GIT_ERROR_HTTP || e->klass == GIT_ERROR_SSH ||
                       e->klass == GIT_ERROR_SSL || e->klass == GIT_ERROR_OS || e->klass == GIT_ERROR_CALLBACK)) {
    return absl::Status(network_code, msg);
  }
  return absl::Status(network_code == absl::StatusCode::kInternal ? absl::StatusCode::kInternal : network_code, msg);
}

Libgit2Client::Libgit2Client(FetchLimits limits) : limits_(limits) { EnsureLibgit2(); }

absl::StatusOr<std::vector<RemoteRef>> Libgit2Client::ListRemoteRefs(const std::string& url,
                                                                     const Credentials& credentials) {
  git_remote* raw = nullptr;
  int rc = git_remote_create_detached(&raw, url.c_str());
  RemoteHandle remote(raw);
  if (rc != 0) return GitError(rc, "ls-remote: bad remote URL", absl::StatusCode::kInvalidArgument);
  CredentialPayload payload{&credentials, 0, url, nullptr, ""};
  git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
  callbacks.credentials = AcquireCredential;
  callbacks.certificate_check = CheckCertificate;
  callbacks.payload = &payload;
  rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr);
  if (rc != 0) return GitError(rc, "ls-remote", absl::StatusCode::kUnavailable);
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  rc = git_remote_ls(&heads, &count, remote.get());
  if (rc != 0) {
    git_remote_disconnect(remote.get());
    return GitError(rc, "ls-remote", absl::StatusCode::kUnavailable);
  }
  std::vector<RemoteRef> refs;
  refs.reserve(count);
  char hex[GIT_OID_HEXSZ + 1];
  for (size_t i = 0; i < count; ++i) {
    std::string name = heads[i]->name;
    git_oid_tostr(hex, sizeof(hex), &heads[i]->oid);
    constexpr std::string_view kPeeled = "^{}";
    if (name.size() > kPeeled.size() && name.compare(name.size() - kPeeled.size(), kPeeled.size(), kPeeled) == 0) {
      std::string base = name.substr(0, name.size() - kPeeled.size());
      for (RemoteRef& r : refs) {
        if (r.name == base) r.commit = hex;
      }
      continue;
    }
    refs.push_back(RemoteRef{name, hex, hex});
  }
  git_remote_disconnect(remote.get());
  return refs;
}

namespace {

// The repository a local URL names, as libgit2's local transport would open
// it: an absolute path, or a file:// URL without escapes (a %-escaped one is
// left to ListRemoteRefs, which decodes it).
std::optional<std::string> LocalPath(const std::string& url) {
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "file://")) {
    absl::ConsumePrefix(&rest, "localhost");
    if (absl::StrContains(rest, '%')) return std::nullopt;
  }
  if (rest.empty() || rest.front() != '/') return std::nullopt;
  return std::string(rest);
}

bool HasWildcard(const std::string& pattern) { return pattern.find_first_of("*?[\\") != std::string::npos; }

// Adds `ref` (resolved when symbolic; skipped when it leads nowhere) to
// `out`, a tag peeled to what it finally names, as the local transport
// advertises it.
absl::Status AddRef(git_repository* repo, git_reference* ref, bool peel, std::vector<RemoteRef>& out) {
  git_reference* raw = nullptr;
  int rc = git_reference_resolve(&raw, ref);
  ReferenceHandle resolved(raw);
  if (rc == GIT_ENOTFOUND) return absl::OkStatus();
  if (rc != 0) return GitError(rc, "resolve ref");
  const git_oid* oid = git_reference_target(resolved.get());
  if (oid == nullptr) return absl::InternalError("ref without a target");
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof(hex), oid);
  RemoteRef r{git_reference_name(ref), hex, hex};
  if (peel) {
    git_object* obj_raw = nullptr;
    rc = git_object_lookup(&obj_raw, repo, oid, GIT_OBJECT_ANY);
    ObjectHandle obj(obj_raw);
    if (rc != 0) return GitError(rc, "read tag");
    if (git_object_type(obj.get()) == GIT_OBJECT_TAG) {
      git_object* peeled_raw = nullptr;
      rc = git_tag_peel(&peeled_raw, reinterpret_cast<git_tag*>(obj.get()));
      ObjectHandle peeled(peeled_raw);
      if (rc != 0) return GitError(rc, "peel tag");
      git_oid_tostr(hex, sizeof(hex), git_object_id(peeled.get()));
      r.commit = hex;
    }
  }
  out.push_back(std::move(r));
  return absl::OkStatus();
}

// The refs under `dir` ("refs/heads/") that `patterns` may select: each
// named one looked up alone, or all of `dir` when a pattern has a wildcard.
absl::Status ReadRefsUnder(git_repository* repo, const std::string& dir, const std::vector<std::string>& patterns,
                           std::vector<RemoteRef>& out) {
  if (patterns.empty()) return absl::OkStatus();
  bool peel = dir == "refs/tags/";
  if (std::none_of(patterns.begin(), patterns.end(), HasWildcard)) {
    std::set<std::string> names;
    for (const std::string& p : patterns) names.insert(dir + p);
    for (const std::string& name : names) {
      git_reference* raw = nullptr;
      int rc = git_reference_lookup(&raw, repo, name.c_str());
      ReferenceHandle ref(raw);
      if (rc == GIT_ENOTFOUND) continue;
      if (rc != 0) return GitError(rc, absl::StrCat("read ", name));
      RETURN_IF_ERROR(AddRef(repo, ref.get(), peel, out));
    }
    return absl::OkStatus();
  }
  git_reference_iterator* it_raw = nullptr;
  int rc = git_reference_iterator_glob_new(&it_raw, repo, (dir + "*").c_str());
  ReferenceIteratorHandle it(it_raw);
  if (rc != 0) return GitError(rc, absl::StrCat("list ", dir));
  for (;;) {
    git_reference* raw = nullptr;
    rc = git_reference_next(&raw, it.get());
    ReferenceHandle ref(raw);
    if (rc == GIT_ITEROVER) return absl::OkStatus();
    if (rc != 0) return GitError(rc, absl::StrCat("list ", dir));
    RETURN_IF_ERROR(AddRef(repo, ref.get(), peel, out));
  }
}

absl::StatusOr<std::vector<RemoteRef>> ReadLocalRefs(const std::string& path, const RefPatterns& patterns) {
  git_repository* raw = nullptr;
  // open_ext, unlike open_bare, keeps libgit2's check of who owns the
  // repository, as the local transport's open does.
  int rc = git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  RepositoryHandle repo(raw);
  if (rc != 0) return GitError(rc, "open");
  std::vector<RemoteRef> out;
  RETURN_IF_ERROR(ReadRefsUnder(repo.get(), "refs/heads/", patterns.branches, out));
  RETURN_IF_ERROR(ReadRefsUnder(repo.get(), "refs/tags/", patterns.tags, out));
  return out;
}

absl::StatusOr<RepositoryHandle> InitMirror(const std::string& dir, const std::string& url) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  git_repository* raw = nullptr;
  int rc = git_repository_init(&raw, dir.c_str(), /*is_bare=*/1);
  RepositoryHandle repo(raw);
  if (rc != 0) return GitError(rc, absl::StrCat("cannot create mirror ", dir));
  git_config* cfg_raw = nullptr;
  rc = git_repository_config(&cfg_raw, repo.get());
  ConfigHandle cfg(cfg_raw);
  if (rc == 0) rc = git_config_set_string(cfg.get(), "ferry.url", url.c_str());
  if (rc != 0) return GitError(rc, absl::StrCat("cannot configure mirror ", dir));
  return repo;
}

// Opens an existing mirror and checks that it is usable and ours.
absl::StatusOr<RepositoryHandle> OpenExisting(const std::string& dir, const std::string& url) {
  git_repository* raw = nullptr;
  int rc = git_repository_open_bare(&raw, dir.c_str());
  RepositoryHandle repo(raw);
  if (rc != 0) return absl::FailedPreconditionError(GitError(rc, "open mirror").message());
  git_config* cfg_raw = nullptr;
  rc = git_repository_config_snapshot(&cfg_raw, repo.get());
  ConfigHandle cfg(cfg_raw);
  if (rc != 0) return GitError(rc, "read mirror config");
  const char* stored = nullptr;
  rc = git_config_get_string(&stored, cfg.get(), "ferry.url");
  if (rc != 0 || stored == nullptr || url != stored) return absl::FailedPreconditionError("mirror of another URL");
  git_odb* odb_raw = nullptr;
  rc = git_repository_odb(&odb_raw, repo.get());
  OdbHandle odb(odb_raw);
  if (rc != 0) return GitError(rc, "open mirror object database");
  return repo;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Repository>> Libgit2Client::OpenMirror(const std::string& dir, const std::string& url,
                                                                       bool* rebuilt) {
  *rebuilt = false;
  absl::StatusOr<RepositoryHandle> repo = absl::NotFoundError("missing");
  if (std::filesystem::exists(dir)) repo = OpenExisting(dir, url);
  if (!repo.ok()) {
    *rebuilt = std::filesystem::exists(dir);
    repo = InitMirror(dir, url);
    if (!repo.ok()) return repo.status();
  }
  return std::unique_ptr<Repository>(new Libgit2Repository(std::move(*repo), limits_));
}

absl::StatusOr<std::unique_ptr<Repository>> Libgit2Client::OpenExistingMirror(const std::string& dir,
                                                                               const std::string& url) {
  if (!std::filesystem::exists(dir)) return absl::NotFoundError(absl::StrCat("no mirror at ", dir));
  absl::StatusOr<RepositoryHandle> repo = OpenExisting(dir, url);
  if (!repo.ok()) return absl::FailedPreconditionError(repo.status().message());
  return std::unique_ptr<Repository>(new Libgit2Repository(std::move(*repo), limits_));
}

absl::StatusOr<std::vector<RemoteRef>> Libgit2Client::ListRemoteRefsFor(const std::string& url,
                                                                        const Credentials& credentials,
                                                                        const RefPatterns& patterns) {
  // Issue #23: a check of an unchanged repository on this host read every
  // ref it has through the local transport (77 us a check); opening it and
  // reading only the tracked refs takes about 30. An error is left to
  // ls-remote, so that its words and code are the ones recorded.
  if (std::optional<std::string> path = LocalPath(url)) {
    absl::StatusOr<std::vector<RemoteRef>> refs = ReadLocalRefs(*path, patterns);
    if (refs.ok()) return refs;
  }
  return ListRemoteRefs(url, credentials);
}

}  // namespace ferry::git
