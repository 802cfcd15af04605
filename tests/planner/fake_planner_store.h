#pragma once

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_path.h"

namespace ferry::planner::testing {

// PlannerStore in memory, for logic tests without PostgreSQL. Keeps the
// contract of PostgresPlannerStore: each write is all-or-nothing (made on a
// copy, committed when it succeeds), audit events are kept with it and an
// idempotency key used twice fails the write (ALREADY_EXISTS), plans get ids
// "plan-<seq>", a plan APPROVED without a hold and not a preview is released
// (next release position) when it is written. Thread-safe: one mutex
// serialises every call, as one transaction at a time would.
class FakePlannerStore final : public PlannerStore {
 public:
  // --- CatalogStore
  absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id) override {
    MutexLock lock(&mu_);
    auto it = state_.envs.find(id);
    if (it == state_.envs.end()) return absl::NotFoundError(absl::StrCat("environment \"", id, "\" not found"));
    return it->second;
  }
  absl::StatusOr<std::vector<v1::Environment>> ListEnvironments() override {
    MutexLock lock(&mu_);
    ++environment_listings_;
    std::vector<v1::Environment> out;
    for (const auto& [id, e] : state_.envs) out.push_back(e);
    return out;
  }
  absl::StatusOr<v1::Application> GetApplication(const std::string& id) override {
    MutexLock lock(&mu_);
    ++application_reads_;
    auto it = state_.apps.find(id);
    if (it == state_.apps.end()) return absl::NotFoundError(absl::StrCat("application \"", id, "\" not found"));
    return it->second;
  }
  absl::StatusOr<std::vector<v1::Application>> ListApplications() override {
    if (absl::Status s = RunListHook(); !s.ok()) return s;
    MutexLock lock(&mu_);
    std::vector<v1::Application> out;
    for (const auto& [id, a] : state_.apps) out.push_back(a);
    ++full_listings_;
    return out;
  }
  absl::StatusOr<std::vector<v1::Application>> ListApplicationsAfter(const std::string& after_id,
                                                                     int limit) override {
    if (absl::Status s = RunListHook(); !s.ok()) return s;
    MutexLock lock(&mu_);
    std::vector<v1::Application> out;
    for (auto it = state_.apps.upper_bound(after_id); it != state_.apps.end() && static_cast<int>(out.size()) < limit;
         ++it)
      out.push_back(it->second);
    page_rows_read_ += static_cast<int>(out.size());
    return out;
  }
  // Calls of GetApplication (one application by id).
  int ApplicationReads() {
    MutexLock lock(&mu_);
    return application_reads_;
  }
  // Calls of GetInputPaths (one application's).
  int InputPathReads() {
    MutexLock lock(&mu_);
    return input_path_reads_;
  }
  // Calls of ListEnvironments.
  int EnvironmentListings() {
    MutexLock lock(&mu_);
    return environment_listings_;
  }
  // Calls of HavePlansFor.
  int HavePlansReads() {
    MutexLock lock(&mu_);
    return have_plans_reads_;
  }
  // Calls of GetCommitAuthor.
  int AuthorReads() {
    MutexLock lock(&mu_);
    return author_reads_;
  }
  // Calls of ListUnreleased (one per pass over held plans).
  int UnreleasedReads() {
    MutexLock lock(&mu_);
    return unreleased_reads_;
  }
  // Applications returned by ListApplicationsAfter, all calls together.
  int PageRowsRead() {
    MutexLock lock(&mu_);
    return page_rows_read_;
  }
  absl::StatusOr<std::vector<v1::Application>> ListApplicationsOf(const std::string& repository_id,
                                                                  const std::string& ref) override {
    if (absl::Status s = RunListHook(); !s.ok()) return s;
    MutexLock lock(&mu_);
    ++repo_listings_;
    std::vector<v1::Application> out;
    for (const auto& [id, a] : state_.apps) {
      if (a.repository_id() == repository_id && a.ref() == ref) out.push_back(a);
    }
    return out;
  }
  // Calls of ListApplicationsOf (every application of one repository and ref).
  int RepoListings() {
    MutexLock lock(&mu_);
    return repo_listings_;
  }
  // Exactly the applications a changed path touches (the real store may
  // return more), so that tests see what the planner does with the rest.
  absl::StatusOr<std::vector<ApplicationRoots>> ListApplicationsTouchedBy(
      const std::string& repository_id, const std::string& ref, const std::vector<std::string>& changed_paths) override {
    if (absl::Status s = RunListHook(); !s.ok()) return s;
    MutexLock lock(&mu_);
    ++touched_by_calls_;
    std::vector<ApplicationRoots> out;
    for (const auto& [id, a] : state_.apps) {
      if (a.repository_id() != repository_id || a.ref() != ref) continue;
      auto it = state_.input_paths.find(id);
      std::vector<std::string> inputs = it == state_.input_paths.end() ? std::vector<std::string>() : it->second;
      std::vector<std::string> roots = inputs;
      roots.push_back(a.path());
      bool hit = false;
      for (const std::string& root : roots)
        for (const std::string& p : changed_paths) hit = hit || IsUnderRepoPath(p, root) || IsUnderRepoPath(root, p);
      if (hit) out.push_back({a, std::move(inputs)});
    }
    return out;
  }
  int TouchedByCalls() {
    MutexLock lock(&mu_);
    return touched_by_calls_;
  }
  absl::StatusOr<std::vector<v1::Application>> GetApplications(const std::set<std::string>& ids) override {
    if (absl::Status s = RunListHook(); !s.ok()) return s;
    MutexLock lock(&mu_);
    std::vector<v1::Application> out;
    for (const std::string& id : ids) {
      if (auto it = state_.apps.find(id); it != state_.apps.end()) out.push_back(it->second);
    }
    return out;
  }

  absl::Status ApplyConfigChange(const ConfigChange& change) override {
    MutexLock lock(&mu_);
    ++config_changes_;
    applications_written_ += static_cast<int>(change.create_applications.size() + change.update_applications.size());
    State next = state_;
    using google::protobuf::util::MessageDifferencer;
    for (const auto& [id, expected] : change.expected_environments) {
      auto it = next.envs.find(id);
      if (it == next.envs.end()) return absl::NotFoundError(absl::StrCat("environment \"", id, "\" not found"));
      if (!MessageDifferencer::Equals(it->second, expected))
        return absl::AbortedError(absl::StrCat("environment \"", id, "\" was changed meanwhile"));
    }
    for (const auto& [id, expected] : change.expected_applications) {
      auto it = next.apps.find(id);
      if (it == next.apps.end()) return absl::NotFoundError(absl::StrCat("application \"", id, "\" not found"));
      if (!MessageDifferencer::Equals(it->second, expected))
        return absl::AbortedError(absl::StrCat("application \"", id, "\" was changed meanwhile"));
    }
    for (const auto& e : change.create_environments) {
      if (next.envs.count(e.id())) return absl::AlreadyExistsError(absl::StrCat("environment \"", e.id(), "\" exists"));
      next.envs[e.id()] = e;
    }
    for (const auto& e : change.update_environments) {
      if (!next.envs.count(e.id())) return absl::NotFoundError(absl::StrCat("environment \"", e.id(), "\" not found"));
      next.envs[e.id()] = e;
    }
    auto uses_missing_env = [&](const v1::Application& a) {
      for (const auto& env : a.environment_ids())
        if (!next.envs.count(env)) return true;
      return false;
    };
    for (const auto& a : change.create_applications) {
      if (next.apps.count(a.id())) return absl::AlreadyExistsError(absl::StrCat("application \"", a.id(), "\" exists"));
      if (uses_missing_env(a)) return absl::FailedPreconditionError("application names an unknown environment");
      next.apps[a.id()] = a;
    }
    for (const auto& a : change.update_applications) {
      if (!next.apps.count(a.id())) return absl::NotFoundError(absl::StrCat("application \"", a.id(), "\" not found"));
      if (uses_missing_env(a)) return absl::FailedPreconditionError("application names an unknown environment");
      next.apps[a.id()] = a;
    }
    std::vector<v1::Event> events;
    for (const auto& id : change.delete_applications) {
      if (!next.apps.erase(id)) return absl::NotFoundError(absl::StrCat("application \"", id, "\" not found"));
      next.input_paths.erase(id);
      if (!change.close_open_plan) continue;
      for (auto& rec : next.plans) {
        if (rec.plan.application_id() != id || !Open(rec.plan)) continue;
        for (auto& e : change.close_open_plan(rec.plan)) events.push_back(std::move(e));
        Write(next, rec);
      }
    }
    for (const auto& id : change.delete_environments) {
      if (!next.envs.count(id)) return absl::NotFoundError(absl::StrCat("environment \"", id, "\" not found"));
      for (const auto& [app_id, a] : next.apps)
        for (const auto& env : a.environment_ids())
          if (env == id)
            return absl::FailedPreconditionError(
                "environment is still used by an application (remove it from the applications' environments first)");
      next.envs.erase(id);
    }
    if (change.source) next.sources[change.source->key] = *change.source;
    for (const auto& e : change.events) events.push_back(e);
    if (absl::Status s = Append(next, events); !s.ok()) return s;
    state_ = std::move(next);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<DeclarationSourceRecord>> ListDeclarationSources() override {
    MutexLock lock(&mu_);
    std::vector<DeclarationSourceRecord> out;
    for (const auto& [key, rec] : state_.sources) out.push_back(rec);
    return out;
  }

  absl::Status RecordEvents(const std::vector<v1::Event>& events) override {
    MutexLock lock(&mu_);
    State next = state_;
    if (absl::Status s = Append(next, events); !s.ok()) return s;
    state_ = std::move(next);
    return absl::OkStatus();
  }

  // --- RenderStore
  absl::StatusOr<std::vector<std::string>> GetInputPaths(const std::string& application_id) override {
    MutexLock lock(&mu_);
    ++input_path_reads_;
    if (!state_.apps.count(application_id))
      return absl::NotFoundError(absl::StrCat("application \"", application_id, "\" not found"));
    auto it = state_.input_paths.find(application_id);
    return it == state_.input_paths.end() ? std::vector<std::string>() : it->second;
  }
  absl::Status SetInputPaths(const std::string& application_id, const std::vector<std::string>& paths) override {
    MutexLock lock(&mu_);
    if (state_.apps.count(application_id)) state_.input_paths[application_id] = paths;
    return absl::OkStatus();
  }
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> ListInputPaths() override {
    MutexLock lock(&mu_);
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [id, a] : state_.apps) {
      auto it = state_.input_paths.find(id);
      out[id] = it == state_.input_paths.end() ? std::vector<std::string>() : it->second;
    }
    ++full_listings_;
    return out;
  }
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> ListInputPathsOf(const std::string& repository_id,
                                                                                   const std::string& ref) override {
    MutexLock lock(&mu_);
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [id, a] : state_.apps) {
      if (a.repository_id() != repository_id || a.ref() != ref) continue;
      auto it = state_.input_paths.find(id);
      out[id] = it == state_.input_paths.end() ? std::vector<std::string>() : it->second;
    }
    return out;
  }
  absl::StatusOr<std::optional<std::vector<v1::Manifest>>> GetCachedRender(const std::string& key) override {
    MutexLock lock(&mu_);
    auto it = state_.cache.find(key);
    if (it == state_.cache.end()) return std::optional<std::vector<v1::Manifest>>();
    return std::optional<std::vector<v1::Manifest>>(it->second);
  }
  absl::Status PutCachedRender(const std::string& key, const std::vector<v1::Manifest>& manifests) override {
    MutexLock lock(&mu_);
    state_.cache.emplace(key, manifests);  // first one wins, as ON CONFLICT DO NOTHING
    return absl::OkStatus();
  }
  // The fake keeps no use times: every entry counts as just used, so only
  // `keep_at_most` evicts (the oldest keys first).
  absl::StatusOr<int64_t> EvictCachedRenders(absl::Duration, int64_t keep_at_most) override {
    MutexLock lock(&mu_);
    int64_t gone = 0;
    while (keep_at_most > 0 && static_cast<int64_t>(state_.cache.size()) > keep_at_most) {
      state_.cache.erase(state_.cache.begin());
      ++gone;
    }
    return gone;
  }

  // --- PlanStore
  absl::StatusOr<v1::Plan> InsertPlan(v1::Plan plan, const std::string& definition_key, bool dedupe,
                                      bool supersede_open, const PlanEventsFn& events,
                                      const SupersededEventFn& superseded_event) override {
    MutexLock lock(&mu_);
    if (dedupe && HasPlanForLocked(plan.application_id(), plan.environment_id(), plan.target_revision().sha(),
                                   definition_key)) {
      return absl::AlreadyExistsError(absl::StrCat("a plan for ", plan.application_id(), " in ", plan.environment_id(),
                                                   " at ", plan.target_revision().sha(), " exists"));
    }
    State next = state_;
    PlanRecord rec;
    rec.seq = ++next.plan_seq;
    rec.definition_key = definition_key;
    rec.plan = std::move(plan);
    rec.plan.set_id(absl::StrCat("plan-", rec.seq));
    std::vector<v1::Event> out_events;
    if (supersede_open) {
      for (auto& old : next.plans) {
        if (old.plan.application_id() != rec.plan.application_id() ||
            old.plan.environment_id() != rec.plan.environment_id() || !Open(old.plan))
          continue;
        old.plan.set_state(v1::PLAN_STATE_SUPERSEDED);
        old.plan.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
        old.plan.set_hold_message("");
        old.plan.set_superseded_by_plan_id(rec.plan.id());
        *old.plan.mutable_update_time() = rec.plan.create_time();
        Write(next, old);
        if (superseded_event) out_events.push_back(superseded_event(old.plan, rec.plan));
      }
    }
    if (events)
      for (auto& e : events(rec.plan)) out_events.push_back(std::move(e));
    Write(next, rec);
    next.plans.push_back(rec);
    if (absl::Status s = Append(next, out_events); !s.ok()) return s;
    state_ = std::move(next);
    return rec.plan;
  }

  absl::StatusOr<v1::Plan> MutatePlan(const std::string& id, const MutateFn& mutate) override {
    MutexLock lock(&mu_);
    State next = state_;
    PlanRecord* rec = Find(next, id);
    if (rec == nullptr) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    absl::StatusOr<std::vector<v1::Event>> events = mutate(rec->plan);
    if (!events.ok()) return events.status();
    Write(next, *rec);
    v1::Plan out = rec->plan;
    if (absl::Status s = Append(next, *events); !s.ok()) return s;
    state_ = std::move(next);
    return out;
  }

  // The plan's approvals are its record (PostgreSQL keeps them in a table
  // too, one per approver).
  absl::StatusOr<v1::Plan> RecordApproval(const std::string& id, const v1::PlanDecision& approval,
                                          const ApprovalFn& decide) override {
    MutexLock lock(&mu_);
    State next = state_;
    PlanRecord* rec = Find(next, id);
    if (rec == nullptr) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    bool added = true;
    for (const auto& a : rec->plan.approvals())
      if (a.actor().id() == approval.actor().id()) added = false;
    if (added) *rec->plan.add_approvals() = approval;
    absl::StatusOr<std::vector<v1::Event>> events = decide(rec->plan, added);
    if (!events.ok()) return events.status();
    Write(next, *rec);
    v1::Plan out = rec->plan;
    if (absl::Status s = Append(next, *events); !s.ok()) return s;
    state_ = std::move(next);
    return out;
  }

  absl::StatusOr<std::optional<v1::CommitAuthor>> GetCommitAuthor(const std::string& repository_id,
                                                                  const std::string& sha) override {
    MutexLock lock(&mu_);
    ++author_reads_;
    auto it = state_.authors.find({repository_id, sha});
    if (it == state_.authors.end()) return std::optional<v1::CommitAuthor>();
    return std::optional<v1::CommitAuthor>(it->second);
  }
  absl::Status RecordCommitAuthor(const std::string& repository_id, const std::string& sha,
                                  const v1::CommitAuthor& author) override {
    MutexLock lock(&mu_);
    state_.authors.emplace(std::make_pair(repository_id, sha), author);
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Plan> GetPlan(const std::string& id) override {
    MutexLock lock(&mu_);
    PlanRecord* rec = Find(state_, id);
    if (rec == nullptr) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    return rec->plan;
  }

  absl::StatusOr<PlanPage> ListPlans(const PlanFilter& filter) override {
    MutexLock lock(&mu_);
    PlanPage page;
    for (auto it = state_.plans.rbegin(); it != state_.plans.rend(); ++it) {  // newest first
      const v1::Plan& p = it->plan;
      if (!filter.application_id.empty() && p.application_id() != filter.application_id) continue;
      if (!filter.environment_id.empty() && p.environment_id() != filter.environment_id) continue;
      if (!filter.states.empty() &&
          std::find(filter.states.begin(), filter.states.end(), p.state()) == filter.states.end())
        continue;
      if (filter.before_seq != 0 && it->seq >= filter.before_seq) continue;
      if (static_cast<int>(page.plans.size()) == filter.limit) {
        page.more = true;
        break;
      }
      page.last_seq = it->seq;
      page.plans.push_back(p);
    }
    return page;
  }

  absl::StatusOr<std::vector<ReleasedPlan>> ListReleased(int64_t after_seq, int limit, int64_t max_bytes) override {
    MutexLock lock(&mu_);
    std::vector<const PlanRecord*> released;
    for (const auto& rec : state_.plans)
      if (rec.release_seq > after_seq && Unfinished(rec.plan)) released.push_back(&rec);
    std::sort(released.begin(), released.end(),
              [](const PlanRecord* a, const PlanRecord* b) { return a->release_seq < b->release_seq; });
    std::vector<ReleasedPlan> out;
    int64_t bytes = 0;
    for (const PlanRecord* rec : released) {
      if (static_cast<int>(out.size()) == limit || bytes >= max_bytes) break;
      bytes += static_cast<int64_t>(rec->plan.ByteSizeLong());
      out.push_back(ReleasedPlan{rec->release_seq, rec->plan});
    }
    return out;
  }

  absl::StatusOr<int64_t> OldestUnfinishedRelease() override {
    MutexLock lock(&mu_);
    std::optional<int64_t> oldest;
    for (const auto& rec : state_.plans)
      if (rec.release_seq != 0 && Unfinished(rec.plan) && (!oldest || rec.release_seq < *oldest))
        oldest = rec.release_seq;
    return oldest ? *oldest - 1 : state_.release_seq;
  }

  absl::StatusOr<std::vector<v1::Plan>> ListUnreleased() override {
    MutexLock lock(&mu_);
    ++unreleased_reads_;
    std::vector<v1::Plan> out;
    for (const auto& rec : state_.plans)
      if (Open(rec.plan) && rec.release_seq == 0) out.push_back(rec.plan);
    return out;
  }

  absl::StatusOr<bool> HasSucceeded(const std::string& app, const std::string& env, const std::string& sha) override {
    MutexLock lock(&mu_);
    for (const auto& rec : state_.plans)
      if (rec.plan.application_id() == app && rec.plan.environment_id() == env &&
          rec.plan.target_revision().sha() == sha && rec.plan.state() == v1::PLAN_STATE_SUCCEEDED)
        return true;
    return false;
  }

  absl::StatusOr<std::vector<bool>> HavePlansFor(const std::vector<PlanKey>& keys) override {
    MutexLock lock(&mu_);
    ++have_plans_reads_;
    std::vector<bool> out;
    for (const PlanKey& k : keys)
      out.push_back(HasPlanForLocked(k.application_id, k.environment_id, k.sha, k.definition_key));
    return out;
  }

  // --- CursorStore
  absl::StatusOr<std::string> GetCursor(const std::string& name) override {
    MutexLock lock(&mu_);
    auto it = state_.cursors.find(name);
    return it == state_.cursors.end() ? std::string() : it->second;
  }
  absl::Status SetCursor(const std::string& name, const std::string& value) override {
    MutexLock lock(&mu_);
    state_.cursors[name] = value;
    return absl::OkStatus();
  }
  absl::StatusOr<ItemAttempts> BeginAttempt(const std::string& name, const std::string& item_key) override {
    MutexLock lock(&mu_);
    AttemptRecord& a = state_.attempts[name];
    if (a.item_key != item_key) a = AttemptRecord{item_key, 0, ""};
    ItemAttempts before{a.attempts, a.last_error};
    ++a.attempts;
    return before;
  }
  absl::Status EndAttempt(const std::string& name, const std::string& item_key, bool counted,
                          const std::string& error) override {
    MutexLock lock(&mu_);
    auto it = state_.attempts.find(name);
    if (it == state_.attempts.end() || it->second.item_key != item_key) return absl::OkStatus();
    if (!counted && it->second.attempts > 0) --it->second.attempts;
    it->second.last_error = error;
    return absl::OkStatus();
  }
  absl::Status AdvanceCursor(const std::string& name, const std::string& value,
                             const std::vector<v1::Event>& events) override {
    MutexLock lock(&mu_);
    State next = state_;
    if (absl::Status s = Append(next, events); !s.ok()) return s;
    next.cursors[name] = value;
    next.attempts.erase(name);
    state_ = std::move(next);
    return absl::OkStatus();
  }
  // The attempts recorded at consumer `name`'s item (0 when none), as a
  // process killed mid-item leaves them.
  int Attempts(const std::string& name) {
    MutexLock lock(&mu_);
    auto it = state_.attempts.find(name);
    return it == state_.attempts.end() ? 0 : it->second.attempts;
  }

  // --- For tests
  // Runs `hook` at the start of every read of applications (ListApplications,
  // ListApplicationsOf, GetApplications; outside the store's lock): its error
  // is returned, and it may throw, as a surprise below the planner would.
  // Null: none.
  void OnListApplications(std::function<absl::Status()> hook) {
    MutexLock lock(&mu_);
    list_applications_hook_ = std::move(hook);
  }
  // How many times every application (ListApplications) or every
  // application's input paths (ListInputPaths) were read.
  int FullListings() {
    MutexLock lock(&mu_);
    return full_listings_;
  }
  // Audit events of committed writes, in order.
  std::vector<v1::Event> Events() {
    MutexLock lock(&mu_);
    return state_.events;
  }
  std::vector<v1::AuditAction> Actions() {
    std::vector<v1::AuditAction> out;
    for (const auto& e : Events()) out.push_back(e.action());
    return out;
  }
  int CountEvents(v1::AuditAction action) {
    int n = 0;
    for (auto a : Actions()) n += a == action;
    return n;
  }
  // The newest committed audit event of `action`; an empty event when none.
  v1::Event LastEvent(v1::AuditAction action) {
    v1::Event last;
    for (const auto& e : Events())
      if (e.action() == action) last = e;
    return last;
  }
  // Every plan, oldest first.
  std::vector<v1::Plan> AllPlans() {
    MutexLock lock(&mu_);
    std::vector<v1::Plan> out;
    for (const auto& rec : state_.plans) out.push_back(rec.plan);
    return out;
  }
  // Applications created or updated by ApplyConfigChange calls (committed or not).
  int applications_written() {
    MutexLock lock(&mu_);
    return applications_written_;
  }
  // How many ApplyConfigChange calls were made (committed or not).
  int config_changes() {
    MutexLock lock(&mu_);
    return config_changes_;
  }

 private:
  struct PlanRecord {
    int64_t seq = 0;
    int64_t release_seq = 0;  // 0 = not released
    std::string definition_key;
    v1::Plan plan;
  };
  std::function<absl::Status()> list_applications_hook_ ABSL_GUARDED_BY(mu_);
  int full_listings_ ABSL_GUARDED_BY(mu_) = 0;
  int touched_by_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int page_rows_read_ ABSL_GUARDED_BY(mu_) = 0;
  int application_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int environment_listings_ ABSL_GUARDED_BY(mu_) = 0;
  int input_path_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int author_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int unreleased_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int have_plans_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int repo_listings_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Status RunListHook() {
    std::function<absl::Status()> hook;
    {
      MutexLock lock(&mu_);
      hook = list_applications_hook_;
    }
    if (hook) return hook();  // outside the lock: it may throw
    return absl::OkStatus();
  }
  struct AttemptRecord {
    std::string item_key;
    int attempts = 0;
    std::string last_error;
  };
  struct State {
    std::map<std::string, AttemptRecord> attempts;  // by consumer name
    std::map<std::string, v1::Environment> envs;
    std::map<std::string, v1::Application> apps;
    std::map<std::string, std::vector<std::string>> input_paths;
    std::map<std::string, DeclarationSourceRecord> sources;
    std::map<std::string, std::vector<v1::Manifest>> cache;
    std::map<std::string, std::string> cursors;
    std::vector<PlanRecord> plans;  // by seq
    int64_t plan_seq = 0;
    int64_t release_seq = 0;
    std::vector<v1::Event> events;
    std::set<std::string> idempotency_keys;
    std::map<std::pair<std::string, std::string>, v1::CommitAuthor> authors;  // by (repository, sha)
  };

  static bool Open(const v1::Plan& p) {
    return p.state() == v1::PLAN_STATE_PENDING || p.state() == v1::PLAN_STATE_APPROVED;
  }
  static bool Unfinished(const v1::Plan& p) {
    return p.state() == v1::PLAN_STATE_APPROVED || p.state() == v1::PLAN_STATE_EXECUTING;
  }
  static bool Releasable(const v1::Plan& p) {
    return p.state() == v1::PLAN_STATE_APPROVED && p.hold_reason() == v1::HOLD_REASON_UNSPECIFIED && !p.preview();
  }
  // Writes `rec` back (it lives in `state` or is about to): releases it when
  // it became releasable.
  static void Write(State& state, PlanRecord& rec) {
    if (Releasable(rec.plan) && rec.release_seq == 0) rec.release_seq = ++state.release_seq;
  }
  static PlanRecord* Find(State& state, const std::string& id) {
    for (auto& rec : state.plans)
      if (rec.plan.id() == id) return &rec;
    return nullptr;
  }
  // Appends `events` to `state`; ALREADY_EXISTS when an idempotency key was
  // used before (as the outbox's unique key).
  static absl::Status Append(State& state, const std::vector<v1::Event>& events) {
    for (const auto& e : events) {
      if (!state.idempotency_keys.insert(e.idempotency_key()).second)
        return absl::AlreadyExistsError(absl::StrCat("audit event \"", e.idempotency_key(), "\" exists"));
      state.events.push_back(e);
    }
    return absl::OkStatus();
  }
  bool HasPlanForLocked(const std::string& app, const std::string& env, const std::string& sha,
                        const std::string& definition_key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& rec : state_.plans)
      if (rec.plan.application_id() == app && rec.plan.environment_id() == env &&
          rec.plan.target_revision().sha() == sha && rec.definition_key == definition_key)
        return true;
    return false;
  }

  Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  int config_changes_ ABSL_GUARDED_BY(mu_) = 0;
  int applications_written_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::planner::testing
