#include "services/deployer/terraform/saved_plan_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ferry::deployer::terraform {
namespace {

bool SafeName(const std::string& s) {
  if (s.empty() || s[0] == '.' || s.size() > 200) return false;
  for (char c : s)
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

// "sha256:<hex>" -> "<hex>", or "" when it is not one.
std::string Hex(const std::string& digest) {
  absl::string_view hex = digest;
  if (!absl::ConsumePrefix(&hex, "sha256:") || hex.size() != 64) return "";
  for (char c : hex)
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return "";
  return std::string(hex);
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", path, ": errno ", errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path, ": errno ", errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return absl::InternalError(absl::StrCat("cannot write ", path));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return absl::InternalError(absl::StrCat("cannot rename to ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::string> DirectoryPlanStore::Folder(const std::string& app, const std::string& env, bool create) {
  if (!SafeName(app) || !SafeName(env))
    return absl::InvalidArgumentError(absl::StrCat("application \"", app, "\" / environment \"", env,
                                                   "\": not usable as a plan folder name"));
  std::string folder = absl::StrCat(dir_, "/", app, "/", env);
  if (create) {
    for (const std::string& d : {dir_, dir_ + "/" + app, folder})
      if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
        return absl::InternalError(absl::StrCat("cannot create ", d, ": errno ", errno));
  }
  return folder;
}

absl::Status DirectoryPlanStore::Put(const std::string& app, const std::string& env, const std::string& digest,
                                     const std::string& plan_file) {
  std::string hex = Hex(digest);
  if (hex.empty()) return absl::InvalidArgumentError("plan digest must be sha256:<hex>");
  ferry::MutexLock l(&mu_);
  absl::StatusOr<std::string> folder = Folder(app, env, true);
  if (!folder.ok()) return folder.status();
  return WriteFile(absl::StrCat(*folder, "/", hex, ".tfplan"), plan_file);
}

absl::StatusOr<std::string> DirectoryPlanStore::Get(const std::string& app, const std::string& env,
                                                    const std::string& digest) {
  std::string hex = Hex(digest);
  if (hex.empty()) return absl::InvalidArgumentError(absl::StrCat("plan digest \"", digest, "\" is not sha256:<hex>"));
  ferry::MutexLock l(&mu_);
  absl::StatusOr<std::string> folder = Folder(app, env, false);
  if (!folder.ok()) return folder.status();
  absl::StatusOr<std::string> file = ReadFile(absl::StrCat(*folder, "/", hex, ".tfplan"));
  if (!file.ok()) return absl::NotFoundError(absl::StrCat("no saved plan ", digest, " for ", app, "/", env));
  return file;
}

absl::Status DirectoryPlanStore::MarkApplied(const std::string& app, const std::string& env, const std::string& digest) {
  std::string hex = Hex(digest);
  if (hex.empty()) return absl::InvalidArgumentError("plan digest must be sha256:<hex>");
  ferry::MutexLock l(&mu_);
  absl::StatusOr<std::string> folder = Folder(app, env, true);
  if (!folder.ok()) return folder.status();
  return WriteFile(absl::StrCat(*folder, "/", hex, ".applied"), "");
}

absl::StatusOr<bool> DirectoryPlanStore::WasApplied(const std::string& app, const std::string& env,
                                                    const std::string& digest) {
  std::string hex = Hex(digest);
  if (hex.empty()) return absl::InvalidArgumentError("plan digest must be sha256:<hex>");
  ferry::MutexLock l(&mu_);
  absl::StatusOr<std::string> folder = Folder(app, env, false);
  if (!folder.ok()) return folder.status();
  return ::access(absl::StrCat(*folder, "/", hex, ".applied").c_str(), F_OK) == 0;
}

}  // namespace ferry::deployer::terraform
