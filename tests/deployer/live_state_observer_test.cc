// LiveStateObserver and DeploymentHistory through the Deployer, against fakes.
#include "services/deployer/live_state_observer.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "services/deployer/deployment_history.h"
#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::LogicHarness;
using testing::LogicPlan;

v1::GetLiveStateRequest LiveOf(const std::string& app) {
  v1::GetLiveStateRequest req;
  req.set_application_id(app);
  req.set_environment_id("dev");
  req.set_include_json(true);
  return req;
}

TEST(LiveStateObserverTest, TheLiveStateNamesTheLiveRevisionAndEveryObjectsDrift) {
  LogicHarness h;
  EXPECT_EQ(h.deployer->GetLiveState(LiveOf("web")).status().code(), absl::StatusCode::kNotFound)
      << "an application never deployed has no target to observe";
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a", "b"}, std::string(40, '1'))).ok());
  h.deployer->WaitIdle();
  absl::StatusOr<v1::LiveState> live = h.deployer->GetLiveState(LiveOf("web"));
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->revision().sha(), std::string(40, '1'));
  EXPECT_EQ(live->deployment_id(), "dep-p1");
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_SYNCED);
  EXPECT_EQ(live->health(), v1::HEALTH_STATUS_HEALTHY);
  ASSERT_EQ(live->objects_size(), 2);
  EXPECT_FALSE(live->objects(0).applied_json().empty());
  h.target.SetDrift("web", ObjectKey{"ferry.dev", "ConfigFile", "", "b"}, v1::DRIFT_STATUS_MISSING);
  live = h.deployer->GetLiveState(LiveOf("web"));
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_OUT_OF_SYNC);
  EXPECT_EQ(live->objects(1).drift(), v1::DRIFT_STATUS_MISSING);
}

// Issue #23: the planner observes every application it plans. Its managed
// record, applied objects, pin and live deployment are one read, not four.
TEST(LiveStateObserverTest, AnObservationReadsTheStoreOnce) {
  LogicHarness h;
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a", "b"}, std::string(40, '1'))).ok());
  h.deployer->WaitIdle();
  v1::ObserveLiveStateRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  const int before = h.store.record_reads();
  absl::StatusOr<v1::ObserveLiveStateResponse> page = h.deployer->ObserveLiveState(req);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(h.store.record_reads() - before, 1);
  EXPECT_EQ(page->state().deployment_id(), "dep-p1");
  EXPECT_EQ(page->state().revision().sha(), std::string(40, '1'));
  EXPECT_EQ(page->state().objects_size(), 2);
}

TEST(LiveStateObserverTest, ObjectsNeverAppliedAreObservedWithTheTargetGiven) {
  LogicHarness h;
  v1::ObserveLiveStateRequest req;
  req.set_application_id("new-app");
  req.set_environment_id("dev");
  req.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  v1::ObjectRef* ref = req.add_objects();
  ref->set_group("ferry.dev");
  ref->set_kind("ConfigFile");
  ref->set_name("x");
  absl::StatusOr<v1::ObserveLiveStateResponse> page = h.deployer->ObserveLiveState(req);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next_page_token(), "");
  const v1::LiveState* live = &page->state();
  ASSERT_EQ(live->objects_size(), 1);
  EXPECT_EQ(live->objects(0).drift(), v1::DRIFT_STATUS_UNKNOWN);
  EXPECT_EQ(live->health(), v1::HEALTH_STATUS_MISSING) << "nothing applied";
}

TEST(LiveStateObserverTest, ObserveLiveStateIsPagedByCountAndBytesAndThePagesCoverEveryObjectOnce) {
  // 20,000 applied objects with their JSON did not fit the planner's 4 MiB
  // receive limit in one response; pages bounded by bytes always do.
  LogicHarness h;
  std::vector<std::string> names;
  for (int i = 0; i < 30; ++i) names.push_back(absl::StrCat("obj", i < 10 ? "0" : "", i));
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p1", "web", {names.begin(), names.begin() + 20}, std::string(40, '1'))).ok());
  h.deployer->WaitIdle();
  v1::ObserveLiveStateRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  for (int i = 15; i < 30; ++i) {  // 5 already applied, 10 new
    v1::ObjectRef* ref = req.add_objects();
    ref->set_group("ferry.dev");
    ref->set_kind("ConfigFile");
    ref->set_name(names[i]);
  }
  for (auto [size, bytes] : {std::pair<int, size_t>{7, size_t{1} << 20}, {0, size_t{1}}}) {
    req.set_page_size(size);
    req.clear_page_token();
    std::vector<std::string> seen;
    int pages = 0;
    while (true) {
      absl::StatusOr<v1::ObserveLiveStateResponse> page = h.deployer->ObserveLiveState(req, bytes);
      ASSERT_TRUE(page.ok()) << page.status();
      ++pages;
      ASSERT_GE(page->state().objects_size(), 1) << "a page always holds at least one object";
      if (size > 0) {
        EXPECT_LE(page->state().objects_size(), size);
      }
      for (const v1::LiveObject& o : page->state().objects()) {
        seen.push_back(o.object().name());
        EXPECT_EQ(o.applied_json().empty(), o.object().name() >= "obj20") << o.object().name();
      }
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
      ASSERT_LT(pages, 100);
    }
    EXPECT_EQ(seen, names) << "every object once, in identity order";
    EXPECT_EQ(pages, size > 0 ? 5 : 30) << "one object a page when the byte budget is tiny";
  }
  req.set_page_token("not-a-token!");
  EXPECT_EQ(h.deployer->ObserveLiveState(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.clear_page_token();
  req.set_page_size(10001);
  EXPECT_EQ(h.deployer->ObserveLiveState(req).status().code(), absl::StatusCode::kInvalidArgument);
}

// bench/bigplan: each page of an observation read all of the application's
// applied objects again (all 20,000 a page). A page now reads its own (and
// one more), in the order the store pages them: keys compared as bytes. In
// that order "ferry.dev.x/..." comes before "ferry.dev/..." and "ferry/..."
// after it, unlike field by field: the pages must still cover every object,
// applied or only asked for, once.
TEST(LiveStateObserverTest, EachPageReadsOnlyItsAppliedObjectsAndThePagesCoverEveryObjectOnce) {
  LogicHarness h;
  std::vector<std::string> applied;
  for (int i = 0; i < 30; ++i) applied.push_back(absl::StrCat("obj", i < 10 ? "0" : "", i));
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p1", "web", applied, std::string(40, '1'))).ok());
  h.deployer->WaitIdle();
  v1::ObserveLiveStateRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  std::set<std::string> want;
  for (const std::string& name : applied) want.insert(ObjectKey{"ferry.dev", "ConfigFile", "", name}.ToString());
  for (const char* group : {"ferry", "ferry.dev.x"}) {
    for (int i = 0; i < 6; ++i) {
      v1::ObjectRef* ref = req.add_objects();
      ref->set_group(group);
      ref->set_kind("ConfigFile");
      ref->set_name(absl::StrCat("new", i));
      want.insert(ObjectKey::FromProto(*ref).ToString());
    }
  }
  for (int size : {1, 7, 29, 100}) {
    req.set_page_size(size);
    req.clear_page_token();
    std::multiset<std::string> seen;
    int pages = 0;
    const int rows_before = h.store.applied_rows_read();
    while (true) {
      absl::StatusOr<v1::ObserveLiveStateResponse> page = h.deployer->ObserveLiveState(req);
      ASSERT_TRUE(page.ok()) << page.status();
      ++pages;
      ASSERT_GE(page->state().objects_size(), 1);
      EXPECT_LE(page->state().objects_size(), size);
      EXPECT_EQ(page->state().health(), v1::HEALTH_STATUS_HEALTHY)
          << "the application has applied objects, whether this page holds any or not";
      for (const v1::LiveObject& o : page->state().objects()) {
        seen.insert(ObjectKey::FromProto(o.object()).ToString());
        EXPECT_EQ(o.applied_json().empty(), o.object().group() != "ferry.dev") << o.object().name();
      }
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
      ASSERT_LT(pages, 100);
    }
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want) << "page size " << size;
    EXPECT_EQ(seen.size(), want.size()) << "page size " << size << ": each object once";
    EXPECT_LE(h.store.applied_rows_read() - rows_before, pages * (size + 1))
        << "page size " << size << ", " << pages << " pages: a page reads its own applied objects and one more";
  }
}

// The plan's diff asks for a dry run of every desired object; an object
// unchanged in Git and live as applied is answered with the live object
// (its dry run would return just that), so a commit changing one object of
// 1,000 makes one dry run, not 1,000. A changed object, a drifted one and a
// target whose dry run is the plan (Terraform) are still dry-run.
TEST(LiveStateObserverTest, OnlyObjectsChangedInGitOrDriftedAreDryRun) {
  LogicHarness h;
  h.target.EnableDryRun();
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a", "b", "c"}, std::string(40, '1'))).ok());
  h.deployer->WaitIdle();
  v1::Plan next = LogicPlan("p2", "web", {"a", "b", "c"}, std::string(40, '1'));
  next.mutable_manifests(1)->set_json(R"({"kind":"ConfigFile","metadata":{"name":"b"},"changed":true})");
  v1::ObserveLiveStateRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  *req.mutable_desired() = next.manifests();
  auto observe = [&] {
    absl::StatusOr<v1::ObserveLiveStateResponse> page = h.deployer->ObserveLiveState(req);
    EXPECT_TRUE(page.ok()) << page.status();
    std::map<std::string, v1::LiveObject> by_name;
    if (page.ok()) {
      for (const v1::LiveObject& o : page->state().objects()) by_name[o.object().name()] = o;
    }
    return by_name;
  };
  std::map<std::string, v1::LiveObject> live = observe();
  EXPECT_EQ(h.target.dry_runs("web"), std::vector<std::string>{"ConfigFile/b"}) << "only the changed object";
  EXPECT_EQ(live["a"].dry_run_json(), live["a"].live_json()) << "unchanged: answered with the live object";
  EXPECT_EQ(live["c"].dry_run_json(), live["c"].live_json());
  EXPECT_NE(live["b"].dry_run_json().find("\"dryRun\":true"), std::string::npos) << live["b"].dry_run_json();

  h.target.SetDrift("web", ObjectKey{"ferry.dev", "ConfigFile", "", "c"}, v1::DRIFT_STATUS_MODIFIED);
  live = observe();
  EXPECT_EQ(h.target.dry_runs("web"), (std::vector<std::string>{"ConfigFile/b", "ConfigFile/b", "ConfigFile/c"}))
      << "a drifted object is dry-run: its live state is not what was applied";
  EXPECT_NE(live["c"].dry_run_json().find("\"dryRun\":true"), std::string::npos);

  h.target.SetDrift("web", ObjectKey{"ferry.dev", "ConfigFile", "", "c"}, v1::DRIFT_STATUS_IN_SYNC);
  h.target.EnableDryRun(/*is_the_plan=*/true);
  observe();
  EXPECT_EQ(h.target.dry_runs("web").size(), 6u) << "a target whose dry run is the plan dry-runs every object";
}

TEST(DeploymentHistoryTest, PagesAreNewestFirstAndBadTokensAreRefused) {
  LogicHarness h;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p" + std::to_string(i), "web", {"a"}, std::string(40, '0' + i))).ok());
    h.deployer->WaitIdle();
  }
  v1::ListDeploymentsRequest req;
  req.set_page_size(2);
  absl::StatusOr<v1::ListDeploymentsResponse> first = h.deployer->ListDeployments(req);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->deployments_size(), 2);
  EXPECT_EQ(first->deployments(0).id(), "dep-p3");
  ASSERT_FALSE(first->next_page_token().empty());
  req.set_page_token(first->next_page_token());
  absl::StatusOr<v1::ListDeploymentsResponse> second = h.deployer->ListDeployments(req);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->deployments_size(), 1);
  EXPECT_EQ(second->deployments(0).id(), "dep-p1");
  EXPECT_TRUE(second->next_page_token().empty());
  req.set_page_token("x");
  EXPECT_EQ(h.deployer->ListDeployments(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.clear_page_token();
  req.set_page_size(1001);
  EXPECT_EQ(h.deployer->ListDeployments(req).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::Deployment> one = h.deployer->GetDeployment("dep-p2");
  ASSERT_TRUE(one.ok());
  EXPECT_GT(one->steps_size(), 0) << "GetDeployment gives the steps";
  EXPECT_EQ(h.deployer->GetDeployment("").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::deployer
