// Saved Terraform plans in PostgreSQL, shared by deployer replicas: a plan
// put by one store (one replica) is read and marked applied through another
// on the same database; plans are per application and environment; the
// applied mark survives; a bad digest is refused.
#include "services/deployer/postgres_saved_plan_store.h"

#include <gtest/gtest.h>

#include <string>

#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');
const std::string kOther = "sha256:" + std::string(64, 'b');

TEST(PostgresSavedPlanStoreTest, APlanPutByOneReplicaIsAppliedThroughAnother) {
  ferry::testing::TestDatabase db;
  std::unique_ptr<postgres::ConnectionPool> pool = db.Pool(2);
  ASSERT_TRUE(postgres::Migrate(*pool, DeployerMigrations()).ok());
  PostgresSavedPlanStore planner_side(pool.get());
  std::unique_ptr<postgres::ConnectionPool> other_pool = db.Pool(2);
  PostgresSavedPlanStore applying_side(other_pool.get());

  std::string file("PK\x03\x04\0binary plan\xff", 18);
  ASSERT_TRUE(planner_side.Put("infra", "prod", kDigest, file).ok());
  ASSERT_TRUE(planner_side.Put("infra", "prod", kDigest, file).ok()) << "a second put of the same plan";
  absl::StatusOr<std::string> got = applying_side.Get("infra", "prod", kDigest);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, file);
  EXPECT_EQ(applying_side.Get("infra", "staging", kDigest).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(applying_side.Get("other", "prod", kDigest).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(applying_side.Get("infra", "prod", kOther).status().code(), absl::StatusCode::kNotFound);

  EXPECT_FALSE(*applying_side.WasApplied("infra", "prod", kDigest));
  ASSERT_TRUE(applying_side.MarkApplied("infra", "prod", kDigest).ok());
  EXPECT_TRUE(*planner_side.WasApplied("infra", "prod", kDigest));
  EXPECT_FALSE(*planner_side.WasApplied("infra", "staging", kDigest));
  ASSERT_TRUE(applying_side.MarkApplied("infra", "prod", kDigest).ok()) << "marking twice";
  // A plan applied without being kept here (marked only) is known as applied, not kept.
  ASSERT_TRUE(applying_side.MarkApplied("infra", "prod", kOther).ok());
  EXPECT_TRUE(*planner_side.WasApplied("infra", "prod", kOther));
  EXPECT_EQ(planner_side.Get("infra", "prod", kOther).status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(planner_side.Put("infra", "prod", "md5:x", file).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(planner_side.Get("infra", "prod", "sha256:short").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::deployer
