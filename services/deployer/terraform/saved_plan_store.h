#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/concurrency/mutex.h"

namespace ferry::deployer::terraform {

// Where the terraform target keeps saved plan files between planning (the
// dry run the planner asks for) and applying (the approved deployment).
// Keyed by application, environment and the file's digest; also remembers
// which plans were applied.
class SavedPlanStore {
 public:
  virtual ~SavedPlanStore() = default;
  virtual absl::Status Put(const std::string& app, const std::string& env, const std::string& digest,
                           const std::string& plan_file) = 0;
  // NOT_FOUND when no such plan is kept.
  virtual absl::StatusOr<std::string> Get(const std::string& app, const std::string& env,
                                          const std::string& digest) = 0;
  virtual absl::Status MarkApplied(const std::string& app, const std::string& env, const std::string& digest) = 0;
  virtual absl::StatusOr<bool> WasApplied(const std::string& app, const std::string& env,
                                          const std::string& digest) = 0;
};

// Plans as files under one folder (mode 0700; files 0600: a plan file holds
// the variable values, secret ones included):
// <dir>/<app>/<env>/<hex>.tfplan and <hex>.applied. Thread-safe within a process; one deployer per
// folder (replicas need a shared store: see docs/terraform.md).
class DirectoryPlanStore final : public SavedPlanStore {
 public:
  explicit DirectoryPlanStore(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Put(const std::string& app, const std::string& env, const std::string& digest,
                   const std::string& plan_file) override;
  absl::StatusOr<std::string> Get(const std::string& app, const std::string& env, const std::string& digest) override;
  absl::Status MarkApplied(const std::string& app, const std::string& env, const std::string& digest) override;
  absl::StatusOr<bool> WasApplied(const std::string& app, const std::string& env, const std::string& digest) override;

 private:
  absl::StatusOr<std::string> Folder(const std::string& app, const std::string& env, bool create);
  ferry::Mutex mu_;
  const std::string dir_;
};

}  // namespace ferry::deployer::terraform
