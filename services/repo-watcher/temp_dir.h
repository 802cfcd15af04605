#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ferry::repo_watcher {

// A private temporary directory (mode 0700) removed on destruction.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create(const std::string& prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  // Writes `contents` to path()/name and returns the full path.
  absl::StatusOr<std::string> WriteFile(const std::string& name, const std::string& contents) const;

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace ferry::repo_watcher
