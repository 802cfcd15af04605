// The drift check's one read (issue #23) against a real PostgreSQL: what
// GetManagedApp, GetDriftSettings and Applied answer, in one statement.

#include <gtest/gtest.h>

#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/postgres_store_fixture.h"

namespace ferry::deployer {
namespace {

using PostgresDriftInputsTest = testing::PostgresStoreTest;

TEST_F(PostgresDriftInputsTest, OneReadAnswersWhatTheThreeReadsAnswer) {
  // Not managed: nothing.
  absl::StatusOr<DriftStore::DriftCheckInputs> none = store_->ReadDriftCheckInputs("web", "dev");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->app.has_value());
  EXPECT_FALSE(none->own.has_value());
  EXPECT_TRUE(none->applied.empty());

  Deploy("dep-1", "web", {{"c", 0}, {"a", 1}, {"b", 0}});
  Deploy("dep-2", "api", {});
  v1::DriftSettings own;
  own.set_application_id("web");
  own.set_environment_id("dev");
  own.mutable_interval()->set_seconds(7);
  ASSERT_TRUE(store_->SaveDriftSettings(own).ok());
  v1::DriftSettings global;
  global.set_disabled(true);
  ASSERT_TRUE(store_->SaveDriftSettings(global).ok());

  absl::StatusOr<DriftStore::DriftCheckInputs> web = store_->ReadDriftCheckInputs("web", "dev");
  ASSERT_TRUE(web.ok()) << web.status();
  ASSERT_TRUE(web->app.has_value());
  absl::StatusOr<std::optional<ManagedApp>> managed = store_->GetManagedApp("web", "dev");
  ASSERT_TRUE(managed.ok() && managed->has_value());
  EXPECT_EQ(web->app->live_deployment_id, "dep-1");
  EXPECT_EQ(web->app->target.SerializeAsString(), (*managed)->target.SerializeAsString());
  EXPECT_TRUE(web->app->sync_policy.self_heal());
  ASSERT_TRUE(web->own.has_value());
  EXPECT_EQ(web->own->interval().seconds(), 7);
  EXPECT_FALSE(web->own->disabled()) << "the global settings were read as the application's";
  absl::StatusOr<std::vector<AppliedObject>> applied = store_->Applied("web", "dev");
  ASSERT_TRUE(applied.ok());
  ASSERT_EQ(web->applied.size(), 3u);
  ASSERT_EQ(applied->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(web->applied[i].object.key.ToString(), (*applied)[i].object.key.ToString());
    EXPECT_EQ(web->applied[i].object.json, (*applied)[i].object.json);
    EXPECT_EQ(web->applied[i].object.source_path, (*applied)[i].object.source_path);
    EXPECT_EQ(web->applied[i].object.wave, (*applied)[i].object.wave);
    EXPECT_EQ(web->applied[i].deployment_id, "dep-1");
  }
  // Wave, then key: b and c (wave 0), then a.
  EXPECT_EQ(web->applied[0].object.key.name, "b");
  EXPECT_EQ(web->applied[1].object.key.name, "c");
  EXPECT_EQ(web->applied[2].object.key.name, "a");

  // Managed, nothing applied, no settings of its own.
  absl::StatusOr<DriftStore::DriftCheckInputs> api = store_->ReadDriftCheckInputs("api", "dev");
  ASSERT_TRUE(api.ok()) << api.status();
  ASSERT_TRUE(api->app.has_value());
  EXPECT_EQ(api->app->live_deployment_id, "dep-2");
  EXPECT_FALSE(api->own.has_value());
  EXPECT_TRUE(api->applied.empty());
}

}  // namespace
}  // namespace ferry::deployer
