// The one read of an (application, environment) that a plan's hand-off, its
// run and a live-state observation make (issue #23), against a real
// PostgreSQL: what Get, GetPin, Applied and GetManagedApp answer, in one
// statement.

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <gtest/gtest.h>

#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/postgres_store_fixture.h"
#include "tests/support/held_lock.h"

namespace ferry::deployer {
namespace {

using PostgresAppStateTest = testing::PostgresStoreTest;

// web's deployment dep-2, PENDING, and web pinned in dev at aaaa...
void RecordPendingAndPin(PostgresDeploymentStore& store) {
  v1::Deployment pending;
  pending.set_id("dep-2");
  pending.set_application_id("web");
  pending.set_environment_id("dev");
  pending.set_state(v1::DEPLOYMENT_STATE_PENDING);
  ASSERT_TRUE(store.Create(pending, v1::Plan(), {}).ok());
  v1::PinState pin;
  pin.set_application_id("web");
  pin.set_environment_id("dev");
  pin.set_pinned(true);
  pin.set_sha(std::string(40, 'a'));
  ASSERT_TRUE(store.SavePin(pin, {}).ok());
}

TEST_F(PostgresAppStateTest, OneReadAnswersWhatTheSeparateReadsAnswer) {
  DeploymentRecords::AppStateRead all;
  all.deployment_id = "dep-2";
  all.applied = true;
  all.managed = true;
  // Nothing recorded: no deployment, an unpinned pin of its own ids.
  absl::StatusOr<DeploymentRecords::AppState> none = store_->ReadAppState("web", "dev", all);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->deployment.has_value());
  EXPECT_FALSE(none->managed.has_value());
  EXPECT_FALSE(none->live.has_value());
  EXPECT_TRUE(none->applied.empty());
  EXPECT_FALSE(none->pin.pinned());
  EXPECT_EQ(none->pin.application_id(), "web");
  EXPECT_EQ(none->pin.environment_id(), "dev");

  Deploy("dep-1", "web", {{"c", 0}, {"a", 1}, {"b", 0}});
  Deploy("dep-9", "api", {{"x", 0}});
  ASSERT_NO_FATAL_FAILURE(RecordPendingAndPin(*store_));

  absl::StatusOr<DeploymentRecords::AppState> web = store_->ReadAppState("web", "dev", all);
  ASSERT_TRUE(web.ok()) << web.status();
  ASSERT_TRUE(web->deployment.has_value());
  EXPECT_EQ(web->deployment->id(), "dep-2");
  EXPECT_EQ(web->deployment->state(), v1::DEPLOYMENT_STATE_PENDING);
  EXPECT_TRUE(web->pin.pinned());
  EXPECT_EQ(web->pin.sha(), std::string(40, 'a'));
  ASSERT_TRUE(web->managed.has_value());
  EXPECT_EQ(web->managed->live_deployment_id, "dep-1");
  EXPECT_EQ(web->managed->target.kind(), v1::TARGET_KIND_HOST);
  EXPECT_TRUE(web->managed->sync_policy.self_heal());
  ASSERT_TRUE(web->live.has_value());
  EXPECT_EQ(web->live->id(), "dep-1");
  EXPECT_EQ(web->live->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  ASSERT_EQ(web->applied.size(), 3u);
  ExpectAppliedAsStored(web->applied, "web", "dep-1");
  // Wave, then key, as Applied: b and c (wave 0), then a.
  EXPECT_EQ(web->applied[0].object.key.name, "b");
  EXPECT_EQ(web->applied[1].object.key.name, "c");
  EXPECT_EQ(web->applied[2].object.key.name, "a");

  // Only what is asked for: the hand-off's read has neither the applied
  // objects nor the managed record; another application's deployment id
  // is read as any id, and nothing of that application comes with it.
  DeploymentRecords::AppStateRead intake;
  intake.deployment_id = "dep-9";
  absl::StatusOr<DeploymentRecords::AppState> bare = store_->ReadAppState("web", "dev", intake);
  ASSERT_TRUE(bare.ok()) << bare.status();
  ASSERT_TRUE(bare->deployment.has_value());
  EXPECT_EQ(bare->deployment->application_id(), "api");
  EXPECT_TRUE(bare->applied.empty());
  EXPECT_FALSE(bare->managed.has_value());
  EXPECT_FALSE(bare->live.has_value());
  EXPECT_TRUE(bare->pin.pinned());

  // Managed, unpinned, no such deployment.
  all.deployment_id = "dep-404";
  absl::StatusOr<DeploymentRecords::AppState> api = store_->ReadAppState("api", "dev", all);
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_FALSE(api->deployment.has_value());
  EXPECT_FALSE(api->pin.pinned());
  ASSERT_TRUE(api->live.has_value());
  EXPECT_EQ(api->live->id(), "dep-9");
  ASSERT_EQ(api->applied.size(), 1u);
  EXPECT_EQ(api->applied[0].object.key.name, "x");
}


// What a read answers, as text, to compare answers.
std::string Describe(const absl::StatusOr<DeploymentRecords::AppState>& s) {
  if (!s.ok()) return s.status().ToString();
  std::vector<std::string> applied;
  for (const AppliedObject& a : s->applied) {
    applied.push_back(absl::StrCat(a.object.key.ToString(), "@", a.object.wave, ":", a.deployment_id, ":", a.object.json));
  }
  return absl::StrCat("deployment=", s->deployment ? s->deployment->ShortDebugString() : "-",
                      " pin=", s->pin.ShortDebugString(),
                      " managed=", s->managed ? absl::StrCat(s->managed->application_id, "/", s->managed->live_deployment_id, "/",
                                                             s->managed->target.ShortDebugString())
                                              : "-",
                      " live=", s->live ? s->live->id() : "-", " has_applied=", s->has_applied,
                      " applied=", absl::StrJoin(applied, ","));
}

// Issue #23: reads made at once (a plan's hand-off, a deployment's start,
// the planner's observations) share one statement, and each gets what it
// would have got alone. The pins table is locked meanwhile, so the first
// read waits in its statement and the others queue behind it.
TEST_F(PostgresAppStateTest, ReadsMadeAtOnceShareAStatementAndEachGetsItsOwnAnswer) {
  Deploy("dep-1", "web", {{"c", 0}, {"a", 1}, {"b", 0}, {"a-b", 0}});
  Deploy("dep-9", "api", {{"x", 0}});
  ASSERT_NO_FATAL_FAILURE(RecordPendingAndPin(*store_));

  struct Read {
    std::string app;
    DeploymentRecords::AppStateRead what;
  };
  std::vector<Read> reads;
  DeploymentRecords::AppStateRead all;
  all.deployment_id = "dep-2";
  all.applied = true;
  all.managed = true;
  reads.push_back({"web", all});
  DeploymentRecords::AppStateRead intake;
  intake.deployment_id = "dep-9";
  reads.push_back({"web", intake});
  all.deployment_id = "dep-404";
  reads.push_back({"api", all});
  reads.push_back({"nobody", all});
  DeploymentRecords::AppStateRead page;
  page.applied = true;
  page.managed = true;
  page.applied_limit = 2;
  reads.push_back({"web", page});
  page.applied_limit = 0;
  page.applied_after = ObjectKey{"ferry.dev", "ConfigFile", "", "a-b"}.ToString();
  reads.push_back({"web", page});
  page.applied_after = ObjectKey{"ferry.dev", "ConfigFile", "", "c"}.ToString();
  reads.push_back({"web", page});

  // Alone, one after another: each in a statement of its own.
  std::vector<std::string> alone;
  for (const Read& r : reads) alone.push_back(Describe(store_->ReadAppState(r.app, "dev", r.what)));
  EXPECT_EQ(store_->app_state_reads_together(), 0u);

  for (int round = 0; round < 2; ++round) {
    ferry::testing::HeldLock held(*pool_, "LOCK TABLE deployer.pins IN ACCESS EXCLUSIVE MODE");
    const uint64_t before = store_->app_state_reads_together();
    std::vector<std::string> together(reads.size() + 1);
    std::vector<std::thread> threads;
    // A first read, which waits for the lock; then the others, queued.
    threads.emplace_back([&] { together.back() = Describe(store_->ReadAppState("web", "dev", all)); });
    absl::SleepFor(absl::Milliseconds(100));
    for (size_t i = 0; i < reads.size(); ++i) {
      threads.emplace_back([&, i] { together[i] = Describe(store_->ReadAppState(reads[i].app, "dev", reads[i].what)); });
    }
    absl::SleepFor(absl::Milliseconds(300));
    held.Release();
    for (std::thread& t : threads) t.join();
    EXPECT_GE(store_->app_state_reads_together(), before + reads.size()) << "round " << round;
    for (size_t i = 0; i < reads.size(); ++i) EXPECT_EQ(together[i], alone[i]) << "read " << i;
  }
  // The answers are those of the first test's reads (not all alike).
  EXPECT_NE(alone[0].find("deployment=id: \"dep-2\""), std::string::npos) << alone[0];
  EXPECT_NE(alone[2].find("live=dep-9"), std::string::npos) << alone[2];
  EXPECT_NE(alone[3].find("managed=- live=- has_applied=0 applied="), std::string::npos) << alone[3];
  EXPECT_EQ(alone[6].substr(alone[6].rfind(" applied=")), " applied=") << "nothing after c";
}

// A live-state observation reads one page of the applied objects at a time:
// the keys after a given one, compared as bytes (as std::string compares
// them, whatever the database's collation), the first N of them. Without
// it each page of an application of 20,000 objects read all 20,000.
TEST_F(PostgresAppStateTest, AppliedObjectsArePagedByTheirKeysComparedAsBytes) {
  // Byte order: "B" < "a" < "a-b" < "a.b" < "b".
  Deploy("dep-1", "web", {{"b", 0}, {"a.b", 1}, {"B", 0}, {"a", 2}, {"a-b", 0}});
  const std::vector<std::string> order = {"B", "a", "a-b", "a.b", "b"};
  auto key = [](const std::string& name) { return ObjectKey{"ferry.dev", "ConfigFile", "", name}.ToString(); };
  for (int limit : {1, 2, 4, 5, 9}) {
    std::vector<std::string> seen;
    DeploymentRecords::AppStateRead page;
    page.applied = true;
    page.applied_limit = limit;
    for (int pages = 0; pages < 10; ++pages) {
      absl::StatusOr<DeploymentRecords::AppState> got = store_->ReadAppState("web", "dev", page);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(got->has_applied) << "the application has applied objects, in this page or not";
      ASSERT_LE(got->applied.size(), static_cast<size_t>(limit));
      if (got->applied.empty()) break;
      std::string last;
      for (const AppliedObject& a : got->applied) {
        seen.push_back(a.object.key.name);
        last = std::max(last, a.object.key.ToString());
        EXPECT_EQ(a.deployment_id, "dep-1");
      }
      page.applied_after = last;
    }
    std::vector<std::string> sorted = seen;
    std::sort(sorted.begin(), sorted.end(), [&](const std::string& x, const std::string& y) { return key(x) < key(y); });
    EXPECT_EQ(sorted, order) << "limit " << limit << ": every object once";
    EXPECT_EQ(seen.size(), order.size()) << "limit " << limit;
  }
  // The first two in byte order, then what follows "a-b".
  DeploymentRecords::AppStateRead first;
  first.applied = true;
  first.applied_limit = 2;
  absl::StatusOr<DeploymentRecords::AppState> two = store_->ReadAppState("web", "dev", first);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->applied.size(), 2u);
  EXPECT_EQ(two->applied[0].object.key.name, "B");  // wave 0 before wave 2, as every read orders them
  EXPECT_EQ(two->applied[1].object.key.name, "a");
  first.applied_limit = 0;
  first.applied_after = key("a-b");
  absl::StatusOr<DeploymentRecords::AppState> rest = store_->ReadAppState("web", "dev", first);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->applied.size(), 2u);
  EXPECT_EQ(rest->applied[0].object.key.name, "b");
  EXPECT_EQ(rest->applied[1].object.key.name, "a.b");
  // Past the last: no object, yet the application has some; none at all
  // for an application never deployed.
  first.applied_after = key("b");
  absl::StatusOr<DeploymentRecords::AppState> after_all = store_->ReadAppState("web", "dev", first);
  ASSERT_TRUE(after_all.ok()) << after_all.status();
  EXPECT_TRUE(after_all->applied.empty());
  EXPECT_TRUE(after_all->has_applied);
  absl::StatusOr<DeploymentRecords::AppState> never = store_->ReadAppState("api", "dev", first);
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_FALSE(never->has_applied);
}

// ANALYZE (autovacuum's, about every 5 s of a commit touching 10,000
// applications) samples only the columns queries filter, join or group on,
// not the serialized records, which are read by key (issue #23).
TEST_F(PostgresAppStateTest, AnalyzeKeepsNoStatisticsOfTheSerializedRecords) {
  using Columns = std::set<std::string>;
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "deployer.deployments"), (Columns{"record", "spec"}));
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "deployer.steps"), (Columns{"record"}));
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "deployer.applied_objects"),
            (Columns{"manifest", "object_ref", "source_path"}));
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "deployer.managed_apps"), (Columns{"sync_policy", "target"}));
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "deployer.outbox"),
            (Columns{"event", "idempotency_key", "last_error"}));
}

}  // namespace
}  // namespace ferry::deployer
