// A PostgresDeploymentStore (no fences) on a freshly migrated test database,
// for the deployer's store tests against a real PostgreSQL.
#pragma once

#include <memory>

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

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresDeploymentStore> store_;
};

}  // namespace ferry::deployer::testing
