// PostgresDeploymentStore's Create against a real PostgreSQL: deployments
// recorded at once (the plan intake hands several plans off together) share
// one statement, and each is answered as if alone (issue #23).

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/postgres_store_fixture.h"

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
    absl::Notification locked, release;
    std::thread holder([&] {
      EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                         txn.exec("LOCK TABLE deployer.deployments IN SHARE MODE");
                         locked.Notify();
                         release.WaitForNotification();
                         return absl::OkStatus();
                       })
                      .ok());
    });
    locked.WaitForNotification();
    const uint64_t before = store_->creates_together();
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
    release.Notify();
    holder.join();
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
    } else {
      EXPECT_EQ(store_->creates_together(), before) << "the statement with dep-0 failed whole: each alone";
    }
  }
  absl::StatusOr<v1::Deployment> first = store_->Get("dep-0", false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->application_id(), "app0");
}

}  // namespace
}  // namespace ferry::deployer
