// A PostgresDeploymentStore (no fences) on a freshly migrated test database,
// for the deployer's store tests against a real PostgreSQL.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::testing {

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(2);
    ASSERT_TRUE(postgres::Migrate(*pool_, DeployerMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "deployer", "deployer");
    store_ = std::make_unique<PostgresDeploymentStore>(pool_.get(), outbox_.get());
  }

  // Deploys objects (name, wave) of `app` in dev as deployment `id` and
  // makes it the application's live deployment.
  void Deploy(const std::string& id, const std::string& app, const std::vector<std::pair<std::string, int>>& objects) {
    v1::Deployment d;
    d.set_id(id);
    d.set_application_id(app);
    d.set_environment_id("dev");
    d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
    ASSERT_TRUE(store_->Create(d, v1::Plan(), {}).ok());
    int seq = 0;
    for (const auto& [name, wave] : objects) {
      AppliedChange c;
      c.application_id = app;
      c.environment_id = "dev";
      c.deployment_id = id;
      c.object.key = ObjectKey{"ferry.dev", "ConfigFile", "", name};
      c.object.json = "{\"name\":\"" + name + "\"}";
      c.object.source_path = "apps/" + app + "/" + name + ".yaml";
      c.object.wave = wave;
      v1::DeploymentStep step;
      step.set_sequence(++seq);
      ASSERT_TRUE(store_->SaveStep(id, step, &c, {}).ok());
    }
    d.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
    ManagedApp m;
    m.application_id = app;
    m.environment_id = "dev";
    m.target.set_kind(v1::TARGET_KIND_HOST);
    m.sync_policy.set_self_heal(true);
    m.live_deployment_id = id;
    ASSERT_TRUE(store_->Update(d, {}, &m, nullptr).ok());
  }

  // Expects `got` to be what Applied(app, "dev") answers, each object of
  // deployment `id`, in Applied's order.
  void ExpectAppliedAsStored(const std::vector<AppliedObject>& got, const std::string& app, const std::string& id) {
    absl::StatusOr<std::vector<AppliedObject>> applied = store_->Applied(app, "dev");
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(got.size(), applied->size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].object.key.ToString(), (*applied)[i].object.key.ToString()) << i;
      EXPECT_EQ(got[i].object.json, (*applied)[i].object.json) << i;
      EXPECT_EQ(got[i].object.source_path, (*applied)[i].object.source_path) << i;
      EXPECT_EQ(got[i].object.wave, (*applied)[i].object.wave) << i;
      EXPECT_EQ(got[i].deployment_id, id) << i;
    }
  }

  // Drift settings of web's own in dev (a 7 s interval) and global ones that
  // disable drift checks, so that a read taking one for the other shows.
  void SaveWebAndGlobalDriftSettings() {
    v1::DriftSettings own;
    own.set_application_id("web");
    own.set_environment_id("dev");
    own.mutable_interval()->set_seconds(7);
    ASSERT_TRUE(store_->SaveDriftSettings(own).ok());
    v1::DriftSettings global;
    global.set_disabled(true);
    ASSERT_TRUE(store_->SaveDriftSettings(global).ok());
  }

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresDeploymentStore> store_;
};

}  // namespace ferry::deployer::testing
