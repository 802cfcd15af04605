#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::planner {

struct SubprocessOptions {
  std::string working_dir;            // cwd of the child
  std::vector<std::string> env;       // the child's whole environment ("K=V"); nothing is inherited
  absl::Duration timeout = absl::Seconds(90);
  size_t max_output_bytes = 64 << 20;  // stdout bound; stderr is capped at 64 KiB
};

struct SubprocessResult {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs argv[0] (an absolute path) in its own process group with a clean
// environment, stdin from /dev/null. Returns DEADLINE_EXCEEDED after killing
// the whole group when `timeout` passes, RESOURCE_EXHAUSTED when stdout
// exceeds the bound, INTERNAL when it cannot start. A non-zero exit is not an
// error here: it is reported in exit_code. Thread-safe.
absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv, const SubprocessOptions& options);

}  // namespace ferry::planner
