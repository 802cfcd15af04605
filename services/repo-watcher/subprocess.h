#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::repo_watcher {

struct ProcessResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs argv (argv[0] looked up in PATH) with stdin read from `stdin_file`
// (empty: /dev/null), killing it after `timeout`. INTERNAL when it cannot
// be started; DEADLINE_EXCEEDED on timeout. Thread-safe.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, const std::string& stdin_file,
                                         absl::Duration timeout = absl::Seconds(20));

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
