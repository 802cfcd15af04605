// PostgresDeploymentStore's Create against a real PostgreSQL: deployments
// recorded at once (the plan intake hands several plans off together) share
// one statement, and each is answered as if alone (issue #23).

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/text_array.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/postgres_store_fixture.h"
#include "tests/support/generic_plans.h"
#include "tests/support/held_lock.h"

namespace ferry::deployer {
namespace {

using PostgresDeploymentStoreTest = testing::PostgresStoreTest;

v1::Deployment Pending(const std::string& id, const std::string& app) {
  v1::Deployment d;
  d.set_id(id);
  d.set_application_id(app);
  d.set_environment_id("dev");
  d.set_plan_id("plan-" + id);
  d.set_state(v1::DEPLOYMENT_STATE_PENDING);
  return d;
}

// The deployments table is locked meanwhile, so the first Create waits in
// its statement and the others queue behind it.
TEST_F(PostgresDeploymentStoreTest, CreatesMadeAtOnceShareAStatementAndADuplicateIsRefusedAlone) {
  ASSERT_TRUE(store_->Create(Pending("dep-0", "app0"), v1::Plan(), {}).ok());
  for (int round = 0; round < 2; ++round) {
    // Round 0: four new ones. Round 1: three new ones and dep-0 again.
    std::vector<std::string> ids;
    for (int i = 1; i <= 4; ++i) ids.push_back(absl::StrCat("dep-", round, "-", i));
    if (round == 1) ids[2] = "dep-0";
    ferry::testing::HeldLock held(*pool_, "LOCK TABLE deployer.deployments IN SHARE MODE");
    const uint64_t before = store_->creates_together();
    const uint64_t failed_before = store_->shared_statements_failed();
    std::vector<absl::Status> created(ids.size() + 1);
    std::vector<std::thread> threads;
    threads.emplace_back([&] { created.back() = store_->Create(Pending(absl::StrCat("first-", round), "x"), v1::Plan(), {}); });
    absl::SleepFor(absl::Milliseconds(100));
    for (size_t i = 0; i < ids.size(); ++i) {
      threads.emplace_back([&, i] {
        v1::Plan spec;
        spec.set_id("plan-" + ids[i]);
        spec.set_application_id(absl::StrCat("app", i));
        created[i] = store_->Create(Pending(ids[i], absl::StrCat("app", i)), spec, {});
      });
    }
    absl::SleepFor(absl::Milliseconds(300));
    held.Release();
    for (std::thread& t : threads) t.join();
    EXPECT_TRUE(created.back().ok()) << created.back();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == "dep-0") {
        EXPECT_EQ(created[i].code(), absl::StatusCode::kAlreadyExists) << created[i];
        continue;
      }
      EXPECT_TRUE(created[i].ok()) << ids[i] << ": " << created[i];
      absl::StatusOr<v1::Deployment> d = store_->Get(ids[i], false);
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_EQ(d->application_id(), absl::StrCat("app", i));
      EXPECT_EQ(d->plan_id(), "plan-" + ids[i]);
      EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_PENDING);
      absl::StatusOr<v1::Plan> spec = store_->GetSpec(ids[i]);
      ASSERT_TRUE(spec.ok()) << spec.status();
      EXPECT_EQ(spec->id(), "plan-" + ids[i]);
    }
    if (round == 0) {
      EXPECT_EQ(store_->creates_together(), before + ids.size()) << "the four in one statement";
      EXPECT_EQ(store_->shared_statements_failed(), failed_before);
    } else {
      EXPECT_EQ(store_->creates_together(), before) << "the statement with dep-0 failed whole: each alone";
      EXPECT_EQ(store_->shared_statements_failed(), failed_before + 1) << "the failed statement is counted and logged";
    }
  }
  absl::StatusOr<v1::Deployment> first = store_->Get("dep-0", false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->application_id(), "app0");
}

// Issue #23: the statements a commit touching 10,000 applications runs once
// per plan or step with arrays (the shared reads, the reported marks) must
// settle on their generic plan: PostgreSQL planned kAppStates afresh at
// every call while its arrays were plain parameters (0.8 ms a call, more
// than it took to run), and kMarkReported likewise.
TEST_F(PostgresDeploymentStoreTest, TheStatementsOverArraysAreNotPlannedAfreshAtEveryCall) {
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     txn.exec0("INSERT INTO deployer.deployments (id, application_id, environment_id, plan_id, state,"
                               " record, spec) SELECT 'dep-' || g, 'app-' || g, 'dev', 'plan-' || g, 3, ''::bytea,"
                               " ''::bytea FROM generate_series(1, 10000) g");
                     txn.exec0("INSERT INTO deployer.managed_apps (application_id, environment_id, target, sync_policy,"
                               " live_deployment_id) SELECT 'app-' || g, 'dev', ''::bytea, ''::bytea, 'dep-' || g"
                               " FROM generate_series(1, 10000) g");
                     txn.exec0("ANALYZE deployer.deployments");
                     txn.exec0("ANALYZE deployer.managed_apps");
                     return absl::OkStatus();
                   })
                  .ok());
  std::unique_ptr<postgres::ConnectionPool> one = db_.Pool(1);
  outbox::PostgresOutboxStore outbox(one.get(), "deployer", "deployer");
  PostgresDeploymentStore store(one.get(), &outbox);  // prepares its statements on `one`
  using postgres::TextArray;
  for (int i = 0; i < 12; ++i) {
    const std::string a = absl::StrCat("app-", 1 + i), b = absl::StrCat("app-", 100 + i);
    ASSERT_TRUE(one->RunStatement([&](pqxx::transaction_base& txn) {
                     pqxx::result r = txn.exec_prepared(
                         "deployer_app_states", TextArray({a, b, "none"}), TextArray({"dev", "dev", "dev"}),
                         TextArray({"dep-1", "", "dep-2"}), TextArray({"t", "f", "t"}), TextArray({"t", "t", "f"}),
                         TextArray({"", "", ""}), TextArray({"0", "0", "5"}));
                     EXPECT_EQ(r.size(), 3u);  // the records' row of each (no applied objects)
                     txn.exec_prepared0("deployer_mark_reported", TextArray({absl::StrCat("dep-", 10 + i), "nope"}));
                     return absl::OkStatus();
                   })
                    .ok());
  }
  ferry::testing::ExpectGenericPlansKept(*one, {"deployer_app_states", "deployer_mark_reported"});
}

}  // namespace
}  // namespace ferry::deployer
