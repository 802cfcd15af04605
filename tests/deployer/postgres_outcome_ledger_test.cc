// The outcome ledger of the PostgreSQL deployment store (Unreported,
// MarkReported) against a real PostgreSQL: which finished deployments are
// still to be reported to the planner, and that finding them reads only
// those, not every deployment ever made (issue #23: the read ran at every
// maintenance tick and after every deployment and scanned the whole table,
// its cost growing with the number of applications).

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include <nlohmann/json.hpp>
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/postgres_store_fixture.h"

namespace ferry::deployer {
namespace {

class PostgresOutcomeLedgerTest : public testing::PostgresStoreTest {
 protected:
  void Add(const std::string& id, const std::string& app, v1::DeploymentState state, const std::string& plan = "p") {
    v1::Deployment d;
    d.set_id(id);
    d.set_application_id(app);
    d.set_environment_id("dev");
    d.set_plan_id(plan.empty() ? "" : absl::StrCat(plan, "-", id));
    d.set_state(state);
    ASSERT_TRUE(store_->Create(d, v1::Plan(), {}).ok()) << id;
  }
  std::vector<std::string> Unreported() {
    absl::StatusOr<std::vector<v1::Deployment>> got = store_->Unreported();
    EXPECT_TRUE(got.ok()) << got.status();
    std::vector<std::string> ids;
    if (got.ok())
      for (const v1::Deployment& d : *got) ids.push_back(d.id());
    return ids;
  }
  // The rows PostgreSQL read from deployer.deployments to answer the
  // store's own prepared statement: those each scan returned plus those it
  // read and filtered out, over every loop (EXPLAIN ANALYZE).
  int64_t RowsRead() {
    int64_t rows = 0;
    absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) {
      txn.exec("ANALYZE deployer.deployments");
      std::string plan = txn.exec1("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE deployer_unreported")[0].as<std::string>();
      std::vector<const nlohmann::json*> todo;
      nlohmann::json doc = nlohmann::json::parse(plan);
      todo.push_back(&doc[0]["Plan"]);
      while (!todo.empty()) {
        const nlohmann::json& node = *todo.back();
        todo.pop_back();
        if (node.value("Relation Name", "") == "deployments") {
          int64_t loops = node.value("Actual Loops", 1);
          rows += (node.value("Actual Rows", int64_t{0}) + node.value("Rows Removed by Filter", int64_t{0})) * loops;
        }
        if (node.contains("Plans"))
          for (const nlohmann::json& child : node["Plans"]) todo.push_back(&child);
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return rows;
  }
};

TEST_F(PostgresOutcomeLedgerTest, ListsTheFinishedUnreportedOnesInOrderAndSkipsThoseWithARunningSuccessor) {
  Add("d1", "web", v1::DEPLOYMENT_STATE_SUCCEEDED);
  Add("d2", "api", v1::DEPLOYMENT_STATE_FAILED);
  Add("d3", "db", v1::DEPLOYMENT_STATE_ROLLED_BACK);
  Add("d4", "cache", v1::DEPLOYMENT_STATE_RUNNING);    // not finished
  Add("d5", "cache", v1::DEPLOYMENT_STATE_SUCCEEDED);  // its application still runs one: reported after it
  Add("d6", "queue", v1::DEPLOYMENT_STATE_SUCCEEDED, /*plan=*/"");  // not of a plan: nothing to report
  EXPECT_EQ(Unreported(), (std::vector<std::string>{"d1", "d2", "d3"}));
  ASSERT_TRUE(store_->MarkReported({"d2"}).ok());
  EXPECT_EQ(Unreported(), (std::vector<std::string>{"d1", "d3"}));
  ASSERT_TRUE(store_->MarkReported({}).ok());
  EXPECT_EQ(Unreported(), (std::vector<std::string>{"d1", "d3"}));
  ASSERT_TRUE(store_->MarkReported({"d1", "d3", "no-such"}).ok()) << "several in one write";
  EXPECT_TRUE(Unreported().empty());
}

TEST_F(PostgresOutcomeLedgerTest, ReadsOnlyTheUnreportedNotEveryDeploymentEverMade) {
  // 3,000 applications deployed and reported (as after a first deploy),
  // then one commit's deployment finishes, not yet reported.
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     txn.exec("INSERT INTO deployer.deployments (id, application_id, environment_id, plan_id, state,"
                              " record, spec, reported) SELECT 'old-' || i, 'app-' || i, 'dev', 'plan-' || i, 3, '', '',"
                              " true FROM generate_series(1, 3000) AS i");
                     return absl::OkStatus();
                   })
                  .ok());
  Add("new", "app-7", v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(Unreported(), (std::vector<std::string>{"new"}));
  // The one unreported row and no more: the scan of every deployment read
  // all 3,001.
  EXPECT_LE(RowsRead(), 3) << "the unreported deployments are found by reading the table, not an index";
  ASSERT_TRUE(store_->MarkReported({"new"}).ok());
  EXPECT_TRUE(Unreported().empty());
  EXPECT_LE(RowsRead(), 3);
}

}  // namespace
}  // namespace ferry::deployer
