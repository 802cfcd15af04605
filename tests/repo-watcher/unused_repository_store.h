#pragma once

// A RepositoryStore whose every method answers UNIMPLEMENTED, naming what the
// fake is for: a test's fake derives from it and overrides only the calls
// the code under test makes, so a call it did not expect fails loudly.

#include <string>
#include <utility>

#include "services/repo-watcher/repository_store.h"

namespace ferry::repo_watcher {

class UnusedRepositoryStore : public RepositoryStore {
 public:
  explicit UnusedRepositoryStore(std::string used_by) : used_by_(std::move(used_by)) {}

  absl::StatusOr<v1::Repository> Create(const v1::Repository&, const v1::Event&) override { return Unused(); }
  absl::StatusOr<v1::Repository> Get(const std::string&) override { return Unused(); }
  absl::StatusOr<std::vector<v1::Repository>> List(const std::string&, int) override { return Unused(); }
  absl::StatusOr<v1::Repository> Update(const v1::Repository&, const v1::Repository&, const v1::Event&) override {
    return Unused();
  }
  absl::Status Delete(const std::string&, const v1::Event&) override { return Unused(); }
  absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string&) override { return Unused(); }
  absl::Status RecordCheck(const CheckRecord&, const std::optional<v1::Event>&) override { return Unused(); }
  absl::Status RecordChecks(const std::vector<CheckRecord>&) override { return Unused(); }
  absl::StatusOr<v1::Revision> RecordRevision(const v1::Revision&, const std::string&, const v1::Event&) override {
    return Unused();
  }
  absl::Status DropRefState(const std::string&, const std::string&) override { return Unused(); }
  absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t, const std::vector<std::string>&, bool,
                                                           int) override {
    return Unused();
  }
  absl::StatusOr<std::vector<v1::Revision>> ListRevisions(const RevisionQuery&) override { return Unused(); }
  absl::Status RecordEvent(const v1::Event&) override { return Unused(); }
  absl::StatusOr<bool> WithRepositoryLock(const std::string&, const std::function<void()>&) override {
    return Unused();
  }

 protected:
  absl::Status Unused() const { return absl::UnimplementedError("not used by " + used_by_); }

 private:
  const std::string used_by_;
};

}  // namespace ferry::repo_watcher
