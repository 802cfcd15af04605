#pragma once

#include <string>
#include <vector>

#include <prometheus/registry.h>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/concurrency/change_signal.h"
#include "services/planner/planner.h"
#include "tests/planner/fake_approval_policy.h"
#include "tests/planner/fake_check_source.h"
#include "tests/planner/fake_live_state_source.h"
#include "tests/planner/fake_planner_store.h"
#include "tests/planner/fake_repo_source.h"

namespace ferry::planner::testing {

inline constexpr char kRef[] = "refs/heads/main";

inline v1::Actor User(const std::string& id) {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_USER);
  a.set_id(id);
  return a;
}

inline std::string ConfigMap(const std::string& name, const std::string& value) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: \"" + value + "\"\n";
}

inline v1::Environment EnvSpec(const std::string& id, v1::ApprovalPolicy approval, const std::string& promote_from = "") {
  v1::Environment env;
  env.set_id(id);
  env.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  env.mutable_target()->mutable_host()->set_root_dir("/tmp/ferry-" + id);
  env.set_approval(approval);
  env.set_promote_from(promote_from);
  return env;
}

// 2026-11-<day> <hour>:00 UTC.
inline absl::Time At(int day, int hour) {
  return absl::FromCivil(absl::CivilMinute(2026, 11, day, hour, 0), absl::UTCTimeZone());
}

// Environments "local" (automatic) and "prod" (manual, promoted from local).
inline absl::Status AddLocalAndProd(FakePlannerStore& store) {
  ConfigChange change;
  change.create_environments = {EnvSpec("local", v1::APPROVAL_POLICY_AUTO),
                                EnvSpec("prod", v1::APPROVAL_POLICY_MANUAL, "local")};
  return store.ApplyConfigChange(change);
}

// Environment `id` (automatic) whose only allow window opens daily at 09:00
// UTC for an hour.
inline v1::Environment WindowedEnv(const std::string& id) {
  v1::Environment env = EnvSpec(id, v1::APPROVAL_POLICY_AUTO);
  v1::SyncWindow* w = env.add_sync_windows();
  w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
  w->set_schedule("0 9 * * *");
  w->mutable_duration()->set_seconds(3600);
  return env;
}

// Stores a plan as the plan maker would, for tests of what happens to it
// afterwards.
inline v1::Plan InsertPlan(FakePlannerStore& store, const std::string& app, const std::string& env,
                           v1::PlanState state, const std::string& sha = "sha1",
                           v1::HoldReason hold = v1::HOLD_REASON_UNSPECIFIED, std::vector<std::string> after = {}) {
  v1::Plan p;
  p.set_application_id(app);
  p.set_environment_id(env);
  p.set_state(state);
  p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
  p.mutable_target_revision()->set_sha(sha);
  p.set_hold_reason(hold);
  for (auto& id : after) p.add_after_plan_ids(id);
  return *store.InsertPlan(p, "key-" + sha, false, false, nullptr, nullptr);
}

inline v1::Application AppSpec(const std::string& id, const std::string& path, std::vector<std::string> envs,
                               std::vector<std::string> deps = {}) {
  v1::Application app;
  app.set_id(id);
  app.set_repository_id("repo");
  app.set_ref("main");
  app.set_path(path);
  app.set_render_method(v1::RENDER_METHOD_PLAIN);
  for (auto& e : envs) app.add_environment_ids(e);
  for (auto& d : deps) app.add_depends_on(d);
  app.mutable_sync_policy()->set_automated(true);
  app.mutable_sync_policy()->set_prune(true);
  return app;
}

// The planner's components wired over in-memory fakes (no PostgreSQL, no
// peers): the store, the repo-watcher, the deployer's live state and a clock
// the test sets. Plain YAML renders need no tool.
struct PlannerOverFakes {
  FakePlannerStore store;
  FakeRepoSource repo;
  FakeLiveStateSource live;
  FakeClock clock{absl::FromCivil(absl::CivilMinute(2026, 11, 26, 12, 0), absl::UTCTimeZone())};
  concurrency::ChangeSignal notifier;
  prometheus::Registry registry;
  PlannerMetrics metrics{&registry};
  Renderer renderer{&repo, RendererOptions{}};
  FakeApprovalPolicy approvals;  // separation of duties per environment
  FakeCheckSource checks;        // CI check results (required checks)
  Planner planner{&store, &repo, &live, &renderer, &clock, &notifier, &metrics,
                  /*plan_concurrency=*/8, ParseLimits(), SyncWindowLimits(), &approvals, &checks};

  // Plans of (app, env), newest first ("" = any).
  std::vector<v1::Plan> Plans(const std::string& app = "", const std::string& env = "") {
    PlanFilter f;
    f.application_id = app;
    f.environment_id = env;
    f.limit = 1000;
    return store.ListPlans(f)->plans;
  }
  std::vector<std::string> ReleasedIds() {
    std::vector<std::string> ids;
    absl::StatusOr<std::vector<ReleasedPlan>> released = planner.ReleasedAfter("", 1000);
    if (!released.ok()) return {};
    for (auto& rp : *released) ids.push_back(rp.plan.id());
    return ids;
  }
};

}  // namespace ferry::planner::testing
