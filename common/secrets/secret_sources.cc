#include "common/secrets/secret_sources.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"

namespace ferry::secrets {
namespace {

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

std::string Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

bool Beneath(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() + 1 && absl::StartsWith(path, dir) && path[dir.size()] == '/';
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int f) {
    if (fd_ >= 0) close(fd_);
    fd_ = f;
  }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<SecretSources> SecretSources::Create(SecretSourceOptions options) {
  std::string dir, written;
  if (!options.secrets_dir.empty()) {
    dir = Canonical(options.secrets_dir);
    struct stat st;
    if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--secrets-dir: \"", options.secrets_dir, "\" is not a directory"));
    }
    if (dir == "/") return absl::FailedPreconditionError("--secrets-dir: must not be /");
    written = options.secrets_dir;
    if (written[0] != '/') {
      char cwd[PATH_MAX];
      if (getcwd(cwd, sizeof cwd) != nullptr) written = absl::StrCat(cwd, "/", written);
    }
    while (written.size() > 1 && written.back() == '/') written.pop_back();
  }
  return SecretSources(std::move(options), std::move(dir), std::move(written));
}

absl::StatusOr<int> SecretSources::OpenBeneath(const std::string& path, const std::string& field) const {
  Fd at(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (at.get() < 0) return absl::FailedPreconditionError(absl::StrCat(field, ": the secrets directory cannot be opened"));
  std::vector<std::string> parts = absl::StrSplit(path.substr(dir_.size() + 1), '/', absl::SkipEmpty());
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (parts[i] == "." || parts[i] == "..") return Bad(field, "must name a file in the secrets directory");
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY);
    Fd next(openat(at.get(), parts[i].c_str(), flags));
    if (next.get() < 0) {
      return Bad(field, errno == ELOOP || errno == ENOTDIR
                            ? "must name a regular file in the secrets directory (a symlink changed under it)"
                            : "is not readable in the secrets directory");
    }
    if (last) {
      struct stat st;
      if (fstat(next.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return Bad(field, "must name a regular file in the secrets directory");
      }
      return next.release();
    }
    at.reset(next.release());
  }
  return Bad(field, "must name a file in the secrets directory");
}

absl::StatusOr<std::string> SecretSources::ResolveFile(const std::string& path, const std::string& field) const {
  if (dir_.empty()) {
    return Bad(field, absl::StrCat("file references are refused: the ", options_.service, " was started without --secrets-dir"));
  }
  if (path.empty()) return Bad(field, "must name a file in the secrets directory");
  const std::string full = path[0] == '/' ? path : absl::StrCat(dir_, "/", path);
  // Refuse a path that is not even written beneath the directory before
  // touching it, so the answer says nothing about files elsewhere.
  if (path[0] == '/' && !Beneath(full, dir_) && !Beneath(full, written_dir_)) {
    return Bad(field, "must name a file in the secrets directory (--secrets-dir)");
  }
  const std::string canonical = Canonical(full);
  if (canonical.empty()) return Bad(field, "does not exist in the secrets directory");
  if (!Beneath(canonical, dir_)) {
    return Bad(field, "must resolve to a file in the secrets directory (it leads outside it through a symlink)");
  }
  absl::StatusOr<int> fd = OpenBeneath(canonical, field);
  if (!fd.ok()) return fd.status();
  close(*fd);
  return canonical;
}

absl::StatusOr<std::string> SecretSources::Read(const v1::SecretRef& ref, const std::string& field) const {
  std::string value;
  switch (ref.source_case()) {
    case v1::SecretRef::kFile: {
      const std::string f = field + ".file";
      absl::StatusOr<std::string> path = ResolveFile(ref.file(), f);
      if (!path.ok()) return path.status();
      absl::StatusOr<int> opened = OpenBeneath(*path, f);
      if (!opened.ok()) return opened.status();
      Fd fd(*opened);
      char buf[8192];
      for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Bad(f, "cannot be read");
        if (n == 0) break;
        value.append(buf, static_cast<size_t>(n));
        if (value.size() > kMaxSecretBytes) {
          return Bad(f, absl::StrCat("is larger than ", kMaxSecretBytes, " bytes"));
        }
      }
      break;
    }
    case v1::SecretRef::kEnv: {
      const std::string f = field + ".env";
      const std::string& name = ref.env();
      static const LazyRE2 kName = {"[A-Za-z_][A-Za-z0-9_]*"};
      if (!RE2::FullMatch(name, *kName)) return Bad(f, "must name an environment variable");
      if (options_.env_prefix.empty()) {
        return Bad(f, absl::StrCat("environment references are refused: the ", options_.service, " was started with an empty "
                      "--secret-env-prefix"));
      }
      if (!absl::StartsWith(name, options_.env_prefix) || name.size() == options_.env_prefix.size()) {
        return Bad(f, absl::StrCat("must name a variable starting with \"", options_.env_prefix,
                                   "\" (--secret-env-prefix)"));
      }
      const char* v = std::getenv(name.c_str());
      if (v == nullptr) return Bad(f, absl::StrCat("environment variable \"", name, "\" is not set"));
      value = v;
      break;
    }
    case v1::SecretRef::kVault: {
      const std::string f = field + ".vault";
      if (!options_.vault) {
        return Bad(f, "Vault references are refused: the repo-watcher was started without --vault-address");
      }
      absl::StatusOr<std::string> read = options_.vault(ref.vault().path(), ref.vault().field());
      if (!read.ok()) {
        const std::string why(read.status().message());
        if (absl::IsUnavailable(read.status()) || absl::IsDeadlineExceeded(read.status())) {
          return absl::UnavailableError(absl::StrCat(f, ": ", why));
        }
        return Bad(f, why);
      }
      if (read->size() > kMaxSecretBytes) return Bad(f, absl::StrCat("is larger than ", kMaxSecretBytes, " bytes"));
      value = std::move(*read);
      break;
    }
    case v1::SecretRef::SOURCE_NOT_SET:
      return Bad(field, "one of file, env or vault must be set");
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

}  // namespace ferry::secrets
