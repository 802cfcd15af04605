#pragma once

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/planner/approval_policy.h"

namespace ferry::planner::testing {

// An approval rule (every field named: -Wmissing-field-initializers).
inline auth::ApprovalRule Rule(int required, bool distinct_from_author = false, bool distinct_from_requester = false) {
  auth::ApprovalRule rule;
  rule.required = required;
  rule.distinct_from_author = distinct_from_author;
  rule.distinct_from_requester = distinct_from_requester;
  return rule;
}

// The access policy's separation of duties, set per environment by the
// test; {1, false, false} elsewhere. Thread-safe.
class FakeApprovalPolicy final : public ApprovalPolicy {
 public:
  void Set(const std::string& environment, const auth::ApprovalRule& rule) {
    MutexLock lock(&mu_);
    rules_[environment] = rule;
  }
  auth::ApprovalRule RuleFor(const std::string& environment) const override {
    MutexLock lock(&mu_);
    auto it = rules_.find(environment);
    return it == rules_.end() ? auth::ApprovalRule{} : it->second;
  }

 private:
  mutable Mutex mu_;
  std::map<std::string, auth::ApprovalRule> rules_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::planner::testing
