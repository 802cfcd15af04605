// The derived table of live intervals (services/audit/schema/
// 005_deployed_intervals.sql) against the events it is derived from, on a
// real PostgreSQL: a seeded random history of deployment outcomes, appended
// through the audit log in an order unrelated to their event times (ties
// included, single events and batches), across restarts of the service's
// objects, and from a database whose events predate the table (the
// migration's backfill). After each phase the table must equal its
// recomputation from the events, and GetDeployedState and ListChanges must
// equal a brute-force answer worked out here from what was appended.

#include <gtest/gtest.h>

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <map>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "audit_migrations.h"
#include "common/postgres/migrator.h"
#include "services/audit/audit_log.h"
#include "services/audit/checkpoint_signer.h"
#include "services/audit/postgres_event_store.h"
#include "services/audit/postgres_history_store.h"
#include "services/audit/time_travel.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

// One appended deployment outcome, as the oracle sees it.
struct Outcome {
  int64_t sequence = 0;
  absl::Time time;
  v1::AuditAction action = v1::AUDIT_ACTION_UNSPECIFIED;
  std::string app, env, deployment;
};

// The table, and its recomputation from the events: (sequence, application,
// environment, valid_from, valid_to or "live") per row, in sequence order.
constexpr char kTable[] =
    "SELECT sequence, application_id, environment_id, valid_from::text, coalesce(valid_to::text, 'live')"
    " FROM audit.deployed_intervals ORDER BY sequence";
constexpr char kRecomputed[] =
    "SELECT sequence, application_id, environment_id, event_time::text,"
    " coalesce((lead(event_time) OVER (PARTITION BY application_id, environment_id"
    "   ORDER BY event_time, sequence))::text, 'live')"
    " FROM audit.events WHERE action = 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED' ORDER BY sequence";

class DeployedIntervalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_dir_ = testing::MakeTempDir("ferry-deployed-intervals-test");
    bool generated = false;
    auto signer = CheckpointSigner::LoadOrGenerate(key_dir_ + "/key.pem", &generated);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::move(*signer);
    clock_.Set(kT0 + absl::Hours(1000));
  }

  // The audit service's objects on fresh connections, as after a restart.
  void Open() {
    pool_ = db_.Pool(4);
    store_ = std::make_unique<PostgresEventStore>(*pool_);
    appender_ = std::make_unique<Appender>(*store_, clock_, nullptr);
    log_ = std::make_unique<AuditLog>(*store_, *appender_, *signer_, clock_, nullptr);
    history_store_ = std::make_unique<PostgresHistoryStore>(*pool_);
    history_ = std::make_unique<TimeTravel>(*history_store_, clock_);
  }
  void Close() {
    history_.reset();
    history_store_.reset();
    log_.reset();
    appender_.reset();
    store_.reset();
    pool_.reset();
  }

  // `n` random outcomes on 3 applications x 2 environments, with event
  // times on a coarse grid (so that ties happen) anywhere in 100 hours,
  // appended in the order drawn, one by one or in batches of up to 5.
  void AppendRandom(int n) {
    const std::vector<std::string> apps = {"web", "api", "db"};
    const std::vector<std::string> envs = {"staging", "prod"};
    int appended = 0;
    while (appended < n) {
      const int batch = std::min<int>(n - appended, std::uniform_int_distribution<int>(1, 5)(rng_));
      std::vector<v1::Event> events;
      std::vector<Outcome> outcomes;
      for (int i = 0; i < batch; ++i) {
        Outcome o;
        const int roll = std::uniform_int_distribution<int>(0, 9)(rng_);
        o.action = roll < 6   ? v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED
                   : roll < 8 ? v1::AUDIT_ACTION_DEPLOYMENT_FAILED
                   : roll < 9 ? v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK
                              : v1::AUDIT_ACTION_DEPLOYMENT_STARTED;
        o.app = apps[std::uniform_int_distribution<int>(0, 2)(rng_)];
        o.env = envs[std::uniform_int_distribution<int>(0, 1)(rng_)];
        o.time = kT0 + absl::Minutes(30 * std::uniform_int_distribution<int>(0, 200)(rng_));
        o.deployment = absl::StrCat("d", next_id_++);
        v1::Event e;
        e.set_action(o.action);
        e.mutable_actor()->set_id("alice");
        e.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
        e.mutable_subject()->set_repository_id("config");
        e.mutable_subject()->set_application_id(o.app);
        e.mutable_subject()->set_environment_id(o.env);
        e.mutable_subject()->set_deployment_id(o.deployment);
        e.mutable_subject()->set_commit_sha(std::string(40, 'a'));
        e.set_message(o.deployment);
        e.set_idempotency_key(o.deployment);
        *e.mutable_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(o.time));
        (*e.mutable_details()->mutable_fields())["kind"].set_string_value("DEPLOYMENT_KIND_ROLLOUT");
        events.push_back(std::move(e));
        outcomes.push_back(std::move(o));
      }
      absl::StatusOr<std::vector<AppendResult>> r = log_->AppendBatch("deployer", events);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->size(), outcomes.size());
      for (size_t i = 0; i < outcomes.size(); ++i) {
        outcomes[i].sequence = (*r)[i].event.sequence();
        if (outcomes[i].action != v1::AUDIT_ACTION_DEPLOYMENT_STARTED) appended_.push_back(outcomes[i]);
      }
      appended += batch;
    }
  }

  std::vector<std::string> Rows(const char* sql) {
    pqxx::connection conn(db_.url());
    pqxx::work txn(conn);
    std::vector<std::string> out;
    for (const pqxx::row& row : txn.exec(sql)) {
      std::string line;
      for (const pqxx::field& f : row) absl::StrAppend(&line, f.c_str(), "|");
      out.push_back(line);
    }
    return out;
  }

  // The last success of each pair with time <= `at` (or < `at` when
  // `strictly`), as "app/env=deployment#sequence", sorted by pair.
  std::vector<std::string> Oracle(absl::Time at, bool strictly) {
    std::map<std::pair<std::string, std::string>, const Outcome*> live;
    for (const Outcome& o : appended_) {
      if (o.action != v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED || o.time > at || (strictly && o.time == at)) continue;
      const Outcome*& cur = live[{o.app, o.env}];
      if (cur == nullptr || std::tie(o.time, o.sequence) > std::tie(cur->time, cur->sequence)) cur = &o;
    }
    std::vector<std::string> out;
    for (const auto& [pair, o] : live) out.push_back(Name(*o));
    return out;
  }
  static std::string Name(const Outcome& o) {
    return absl::StrCat(o.app, "/", o.env, "=", o.deployment, "#", o.sequence);
  }
  static std::string Name(const v1::DeployedRevision& d) {
    return absl::StrCat(d.application_id(), "/", d.environment_id(), "=", d.deployment_id(), "#", d.sequence());
  }

  // Every check of this file, at the current state of the log.
  void ExpectAgreement() {
    // 1. The table is its recomputation from the events.
    const std::vector<std::string> table = Rows(kTable);
    EXPECT_EQ(table, Rows(kRecomputed));
    EXPECT_FALSE(table.empty());

    // 2. GetDeployedState at every event time, a microsecond either side,
    //    before everything and after everything.
    std::set<absl::Time> times = {kT0 - absl::Hours(1), kT0 + absl::Hours(500)};
    for (const Outcome& o : appended_) {
      times.insert(o.time);
      times.insert(o.time - absl::Microseconds(1));
      times.insert(o.time + absl::Microseconds(1));
    }
    int n = 0;
    for (absl::Time t : times) {
      v1::GetDeployedStateRequest req;
      *req.mutable_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
      absl::StatusOr<v1::GetDeployedStateResponse> got = history_->GetDeployedState(req);
      ASSERT_TRUE(got.ok()) << got.status();
      std::vector<std::string> names;
      for (const v1::DeployedRevision& d : got->deployed()) names.push_back(Name(d));
      EXPECT_EQ(names, Oracle(t, false)) << "at " << absl::FormatTime(t);
      // One pair named: the same answer narrowed (at every 5th time, to keep
      // the test quick on a loaded machine).
      if (n++ % 5 != 0) continue;
      req.set_application_id("web");
      req.set_environment_id("prod");
      got = history_->GetDeployedState(req);
      ASSERT_TRUE(got.ok()) << got.status();
      std::vector<std::string> web_prod;
      for (const std::string& n : Oracle(t, false)) {
        if (n.rfind("web/prod=", 0) == 0) web_prod.push_back(n);
      }
      names.clear();
      for (const v1::DeployedRevision& d : got->deployed()) names.push_back(Name(d));
      EXPECT_EQ(names, web_prod) << "web/prod at " << absl::FormatTime(t);
    }

    // 3. ListChanges' targets over ranges between grid points: each pair
    //    whose live deployment differs between just before start and just
    //    before end, with both ends.
    for (int i = 0; i < 25; ++i) {
      const int a = std::uniform_int_distribution<int>(0, 200)(rng_);
      const int b = std::uniform_int_distribution<int>(a + 1, 202)(rng_);
      const absl::Time start = kT0 + absl::Minutes(30 * a);
      const absl::Time end = kT0 + absl::Minutes(30 * b);
      v1::ListChangesRequest req;
      *req.mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(start));
      *req.mutable_end_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(end));
      absl::StatusOr<v1::ListChangesResponse> got = history_->ListChanges(req);
      ASSERT_TRUE(got.ok()) << got.status();
      std::map<std::string, std::string> before, after;
      for (const std::string& n : Oracle(start, true)) before[n.substr(0, n.find('='))] = n;
      for (const std::string& n : Oracle(end, true)) after[n.substr(0, n.find('='))] = n;
      std::vector<std::string> want;
      for (const auto& [pair, n] : after) {
        auto it = before.find(pair);
        const std::string was = it == before.end() ? "none" : it->second;
        if (was != n) want.push_back(absl::StrCat(was, " -> ", n));
      }
      std::vector<std::string> names;
      for (const v1::TargetChange& c : got->targets()) {
        names.push_back(absl::StrCat(c.has_before() ? Name(c.before()) : "none", " -> ", Name(c.after())));
      }
      EXPECT_EQ(names, want) << "[" << a << ", " << b << ") half hours";
    }
  }

  testing::TestDatabase db_;
  std::string key_dir_;
  testing::FakeClock clock_;
  std::unique_ptr<CheckpointSigner> signer_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<PostgresEventStore> store_;
  std::unique_ptr<Appender> appender_;
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<PostgresHistoryStore> history_store_;
  std::unique_ptr<TimeTravel> history_;
  std::mt19937 rng_{20261205};
  int next_id_ = 1;
  std::vector<Outcome> appended_;
};

TEST_F(DeployedIntervalsTest, AgreesWithTheEventsOutOfOrderAndAcrossRestarts) {
  auto pool = db_.Pool(1);
  ASSERT_TRUE(postgres::Migrate(*pool, AuditMigrations()).ok());
  Open();
  AppendRandom(150);
  ExpectAgreement();
  // A restart: new connections and objects over the same database; the
  // table carries on from what it holds.
  Close();
  Open();
  AppendRandom(150);
  ExpectAgreement();
  // Migrating again (every start does) changes nothing.
  ASSERT_TRUE(postgres::Migrate(*pool, AuditMigrations()).ok());
  ExpectAgreement();
}

TEST_F(DeployedIntervalsTest, TheMigrationBackfillsEventsAppendedBeforeIt) {
  // The schema as it was before the table: migrations 001-004.
  postgres::MigrationSet before = AuditMigrations();
  before.migrations.erase(std::remove_if(before.migrations.begin(), before.migrations.end(),
                                         [](const postgres::Migration& m) { return m.version >= 5; }),
                          before.migrations.end());
  ASSERT_EQ(before.migrations.size(), 4u);
  auto pool = db_.Pool(1);
  ASSERT_TRUE(postgres::Migrate(*pool, before).ok());
  Open();
  AppendRandom(150);
  Close();
  // The upgrade: 005 creates the table from the events stored.
  ASSERT_TRUE(postgres::Migrate(*pool, AuditMigrations()).ok());
  Open();
  ExpectAgreement();
  AppendRandom(100);
  ExpectAgreement();
}

// The store binds the filters into its SQL text as literals (one round trip
// per read): quotes, backslashes and `$n` in them are data, never SQL or
// another parameter.
TEST_F(DeployedIntervalsTest, FiltersAreBoundAsDataNotSql) {
  auto pool = db_.Pool(1);
  ASSERT_TRUE(postgres::Migrate(*pool, AuditMigrations()).ok());
  Open();
  AppendRandom(40);
  for (const std::string& app : {std::string("web' OR ''='"), std::string("$1"), std::string("web\\"),
                                 std::string("x'); DELETE FROM audit.deployed_intervals; --")}) {
    SCOPED_TRACE(app);
    v1::GetDeployedStateRequest state;
    state.set_application_id(app);
    state.set_environment_id("$2");
    absl::StatusOr<v1::GetDeployedStateResponse> got = history_->GetDeployedState(state);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->deployed_size(), 0);
    v1::ListChangesRequest changes;
    *changes.mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kT0 - absl::Hours(1)));
    changes.set_application_id(app);
    absl::StatusOr<v1::ListChangesResponse> moved = history_->ListChanges(changes);
    ASSERT_TRUE(moved.ok()) << moved.status();
    EXPECT_EQ(moved->changes_size(), 0);
    EXPECT_EQ(moved->targets_size(), 0);
  }
  ExpectAgreement();
}

}  // namespace
}  // namespace ferry::audit
