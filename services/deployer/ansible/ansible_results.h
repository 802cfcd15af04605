#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace ferry::deployer::ansible {

// One task's result on one host, as ansible-playbook's JSON callback
// (ansible.posix.json) reports it.
struct TaskResult {
  std::string host;
  std::string task;    // the task's name (or its action when unnamed)
  std::string action;  // module, e.g. "ansible.builtin.copy"
  std::string path;    // "<file>:<line>" of the task, relative to the run's folder
  enum class Status { kOk, kChanged, kFailed, kUnreachable, kSkipped };
  Status status = Status::kOk;
  std::string message;  // msg of a failed or unreachable result (stderr when no msg)
  // The task's --diff output as text ("before"/"after" pairs rendered with
  // their headers); empty when none or when the task is no_log.
  std::string diff_before;
  std::string diff_after;
  std::string diff_header;  // e.g. "/srv/app/motd"
};

// Totals per host from the callback's "stats".
struct HostStats {
  std::string host;
  int ok = 0, changed = 0, failures = 0, unreachable = 0, skipped = 0;
};

struct PlaybookResults {
  std::vector<TaskResult> tasks;  // in run order
  std::vector<HostStats> stats;   // by host name
  bool AnyFailed() const;
  std::vector<const TaskResult*> Changed() const;
  // The first failed or unreachable result, or nullptr.
  const TaskResult* FirstFailure() const;
};

// Parses the JSON callback's document. `workdir` is cut from the task paths.
// INVALID_ARGUMENT when the text is not the callback's JSON.
absl::StatusOr<PlaybookResults> ParsePlaybookJson(const std::string& text, const std::string& workdir);

const char* StatusName(TaskResult::Status s);

}  // namespace ferry::deployer::ansible
