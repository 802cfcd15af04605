// The drift check's one read (issue #23) against a real PostgreSQL: what
// GetManagedApp, GetDriftSettings and Applied answer, in one statement.

#include <map>
#include <string>

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
  SaveWebAndGlobalDriftSettings();

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
  ASSERT_EQ(web->applied.size(), 3u);
  ExpectAppliedAsStored(web->applied, "web", "dep-1");
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

// A pass's due applications in one read: for each managed one what its own
// read answers; one not managed is left out.
TEST_F(PostgresDriftInputsTest, OneReadOfSeveralAnswersWhatEachOwnReadAnswers) {
  absl::StatusOr<std::vector<DriftStore::DriftCheckInputs>> empty = store_->ReadDriftCheckInputsOf({});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());

  Deploy("dep-1", "web", {{"c", 0}, {"a", 1}, {"b", 0}});
  Deploy("dep-2", "api", {});
  Deploy("dep-3", "db", {{"x", 0}});
  SaveWebAndGlobalDriftSettings();

  absl::StatusOr<std::vector<DriftStore::DriftCheckInputs>> read =
      store_->ReadDriftCheckInputsOf({{"web", "dev"}, {"gone", "dev"}, {"api", "dev"}, {"web", "prod"}});
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u) << "an application not asked for, or not managed, was answered";
  std::map<std::string, const DriftStore::DriftCheckInputs*> by_app;
  for (const DriftStore::DriftCheckInputs& in : *read) {
    ASSERT_TRUE(in.app.has_value());
    EXPECT_EQ(in.app->environment_id, "dev");
    by_app[in.app->application_id] = &in;
  }
  ASSERT_EQ(by_app.count("web"), 1u);
  ASSERT_EQ(by_app.count("api"), 1u);
  for (const char* app : {"web", "api"}) {
    absl::StatusOr<DriftStore::DriftCheckInputs> one = store_->ReadDriftCheckInputs(app, "dev");
    ASSERT_TRUE(one.ok()) << one.status();
    const DriftStore::DriftCheckInputs& many = *by_app[app];
    EXPECT_EQ(many.app->live_deployment_id, one->app->live_deployment_id) << app;
    EXPECT_EQ(many.app->target.SerializeAsString(), one->app->target.SerializeAsString()) << app;
    EXPECT_EQ(many.app->sync_policy.SerializeAsString(), one->app->sync_policy.SerializeAsString()) << app;
    EXPECT_EQ(many.own.has_value(), one->own.has_value()) << app;
    if (many.own.has_value()) {
      EXPECT_EQ(many.own->SerializeAsString(), one->own->SerializeAsString()) << app;
    }
    ASSERT_EQ(many.applied.size(), one->applied.size()) << app;
    for (size_t i = 0; i < many.applied.size(); ++i) {
      EXPECT_EQ(many.applied[i].object.key.ToString(), one->applied[i].object.key.ToString()) << app;
      EXPECT_EQ(many.applied[i].object.json, one->applied[i].object.json) << app;
      EXPECT_EQ(many.applied[i].object.wave, one->applied[i].object.wave) << app;
      EXPECT_EQ(many.applied[i].deployment_id, one->applied[i].deployment_id) << app;
    }
  }
  EXPECT_EQ(by_app["web"]->own->interval().seconds(), 7);
  ASSERT_EQ(by_app["web"]->applied.size(), 3u);
  EXPECT_EQ(by_app["web"]->applied[0].object.key.name, "b");  // wave, then key
  EXPECT_EQ(by_app["web"]->applied[2].object.key.name, "a");
  EXPECT_FALSE(by_app["api"]->own.has_value());
}

}  // namespace
}  // namespace ferry::deployer
