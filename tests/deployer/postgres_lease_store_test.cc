// Environment leases and the fencing check of deployment-state writes
// against a real PostgreSQL: two replicas' keepers over one lease table,
// each with its own fenced deployment store.

#include "services/deployer/postgres_lease_store.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <functional>
#include <thread>
#include <vector>


#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/lease_keeper.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/support/held_lock.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

class PostgresLeaseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(4);
    ASSERT_TRUE(postgres::Migrate(*pool_, DeployerMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "deployer", "deployer");
    leases_ = std::make_unique<PostgresLeaseStore>(pool_.get(), outbox_.get());
  }
  LeaseOptions Options(const std::string& holder) {
    LeaseOptions o;
    o.holder = holder;
    o.ttl = absl::Seconds(30);
    return o;
  }
  // The lease of `env` lapses now (as if its holder stopped renewing 30 s ago).
  void Expire(const std::string& env) {
    ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       txn.exec_params("UPDATE deployer.environment_leases SET expire_time = now() - interval '1 s' "
                                       "WHERE environment_id = $1",
                                       env);
                       return absl::OkStatus();
                     })
                    .ok());
  }
  int64_t Count(const std::string& sql) {
    int64_t n = 0;
    EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       n = txn.exec(sql)[0][0].as<int64_t>();
                       return absl::OkStatus();
                     })
                    .ok());
    return n;
  }
  int64_t Steps(const std::string& id) {
    int64_t n = 0;
    EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       n = txn.exec_params1("SELECT count(*) FROM deployer.steps WHERE deployment_id = $1", id)[0]
                               .as<int64_t>();
                       return absl::OkStatus();
                     })
                    .ok());
    return n;
  }
  static v1::Deployment Deployment(const std::string& id) {
    v1::Deployment d;
    d.set_id(id);
    d.set_application_id("web");
    d.set_environment_id("dev");
    d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
    return d;
  }
  static v1::DeploymentStep Step(int64_t seq) {
    v1::DeploymentStep s;
    s.set_sequence(seq);
    s.set_kind(v1::STEP_KIND_APPLY);
    s.set_result(v1::STEP_RESULT_RUNNING);
    return s;
  }
  static v1::DeploymentStep Finished(int64_t seq) {
    v1::DeploymentStep s = Step(seq);
    s.set_result(v1::STEP_RESULT_SUCCEEDED);
    return s;
  }
  static v1::Event StepEvent(const std::string& key) {
    v1::Event out;
    out.set_action(v1::AUDIT_ACTION_DEPLOYMENT_STEP);
    out.set_idempotency_key(key);
    return out;
  }

  // Two replicas: a holds "dev", where deployment d1 is made; b holds
  // "prod" and has learnt d1's environment (its write was refused).
  struct DevAndProd {
    explicit DevAndProd(PostgresLeaseStoreTest& t)
        : a(t.leases_.get(), &t.clock_, t.Options("replica-a")),
          b(t.leases_.get(), &t.clock_, t.Options("replica-b")),
          a_store(t.pool_.get(), t.outbox_.get(), {.fences = &a}),
          b_store(t.pool_.get(), t.outbox_.get(), {.fences = &b}) {}
    void Start() {
      ASSERT_TRUE(a.Claim("dev").ok());
      ASSERT_TRUE(a.Tick().ok());
      ASSERT_TRUE(b.Claim("prod").ok());
      ASSERT_TRUE(b.Tick().ok());
      ASSERT_TRUE(a_store.Create(Deployment("d1"), v1::Plan(), {}).ok());
      ASSERT_EQ(b_store.SaveStep("d1", Step(1), nullptr, {}).code(), absl::StatusCode::kAborted);
    }
    LeaseKeeper a, b;
    PostgresDeploymentStore a_store, b_store;
  };

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresLeaseStore> leases_;
  SystemClock clock_;
};

TEST_F(PostgresLeaseStoreTest, OneHolderAtATimeAndTheExHoldersWritesAreRefusedAfterTheTakeover) {
  LeaseKeeper a(leases_.get(), &clock_, Options("replica-a"));
  LeaseKeeper b(leases_.get(), &clock_, Options("replica-b"));
  PostgresDeploymentStore a_store(pool_.get(), outbox_.get(), {.fences = &a});
  PostgresDeploymentStore b_store(pool_.get(), outbox_.get(), {.fences = &b});

  ASSERT_TRUE(a.Claim("dev").ok());
  ASSERT_TRUE(b.Claim("dev").ok());
  EXPECT_EQ(a.TokenFor("dev"), 1);
  EXPECT_EQ(b.TokenFor("dev"), 0);
  ASSERT_TRUE(a.Tick().ok());
  ASSERT_TRUE(b.Tick().ok());
  EXPECT_TRUE(a.Holds("dev"));
  EXPECT_FALSE(b.Holds("dev"));

  // Any replica records a plan it takes; only the holder writes its state.
  ASSERT_TRUE(b_store.Create(Deployment("d1"), v1::Plan(), {}).ok());
  EXPECT_TRUE(a_store.SaveStep("d1", Step(1), nullptr, {}).ok());
  absl::Status refused = b_store.SaveStep("d1", Step(2), nullptr, {});
  EXPECT_EQ(refused.code(), absl::StatusCode::kAborted) << refused;
  EXPECT_NE(refused.message().find("does not hold the lease of environment \"dev\""), std::string::npos) << refused;
  EXPECT_EQ(b_store.Update(Deployment("d1"), {}, nullptr, nullptr).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(b_store.RecordDrift("web", "dev", "k", v1::DRIFT_STATUS_MISSING, "gone", {}).status().code(),
            absl::StatusCode::kAborted);

  // a stops renewing; its lease lapses and b takes over with token 2. a
  // still believes it holds token 1 (it has not ticked): the row says
  // otherwise and its write is refused, nothing written.
  Expire("dev");
  ASSERT_TRUE(b.Tick().ok());
  EXPECT_EQ(b.TokenFor("dev"), 2);
  EXPECT_EQ(a.TokenFor("dev"), 1);
  // a_store knows d1's environment since its first step (one statement
  // now); a fresh store of a looks it up in a transaction. Both are refused.
  PostgresDeploymentStore a_fresh(pool_.get(), outbox_.get(), {.fences = &a});
  for (PostgresDeploymentStore* store : {&a_store, &a_fresh}) {
    absl::Status lost = store->SaveStep("d1", Step(2), nullptr, {});
    EXPECT_EQ(lost.code(), absl::StatusCode::kAborted) << lost;
    EXPECT_NE(lost.message().find("lost the lease of environment \"dev\" (token 1) to replica-b (token 2)"),
              std::string::npos)
        << lost;
  }
  EXPECT_EQ(Steps("d1"), 1);
  EXPECT_TRUE(b_store.SaveStep("d1", Step(2), nullptr, {}).ok());
  EXPECT_EQ(Steps("d1"), 2);
  // The record likewise: the fence and the update are one statement.
  absl::Status update = a_store.Update(Deployment("d1"), {}, nullptr, nullptr);
  EXPECT_EQ(update.code(), absl::StatusCode::kAborted) << update;
  EXPECT_NE(update.message().find("to replica-b (token 2)"), std::string::npos) << update;
  EXPECT_TRUE(b_store.Update(Deployment("d1"), {}, nullptr, nullptr).ok());
  // a learns it at its next renewal and does not take it back.
  ASSERT_TRUE(a.Tick().ok());
  EXPECT_FALSE(a.Holds("dev"));
  // A clean stop hands it over at once.
  b.ReleaseAll();
  ASSERT_TRUE(a.Tick().ok());
  EXPECT_EQ(a.TokenFor("dev"), 3);
}

// A step's fence is found through its deployment (issue #23: one statement
// instead of a lookup of the deployment's environment and a read of its
// lease): the lease that counts is that of the deployment's own
// environment, and a lease row that is gone refuses the write.
TEST_F(PostgresLeaseStoreTest, AStepIsFencedByTheLeaseOfItsOwnDeploymentsEnvironment) {
  LeaseKeeper a(leases_.get(), &clock_, Options("replica-a"));
  LeaseKeeper b(leases_.get(), &clock_, Options("replica-b"));
  PostgresDeploymentStore a_store(pool_.get(), outbox_.get(), {.fences = &a});
  PostgresDeploymentStore b_store(pool_.get(), outbox_.get(), {.fences = &b});
  ASSERT_TRUE(a.Claim("dev").ok());
  ASSERT_TRUE(b.Claim("prod").ok());
  ASSERT_TRUE(a.Tick().ok());
  ASSERT_TRUE(b.Tick().ok());
  ASSERT_TRUE(a.Holds("dev"));
  ASSERT_TRUE(b.Holds("prod"));
  ASSERT_TRUE(a_store.Create(Deployment("d1"), v1::Plan(), {}).ok());  // in dev

  // b holds a lease, of another environment: refused, nothing written.
  absl::Status other = b_store.SaveStep("d1", Step(1), nullptr, {});
  EXPECT_EQ(other.code(), absl::StatusCode::kAborted) << other;
  EXPECT_NE(other.message().find("does not hold the lease of environment \"dev\""), std::string::npos) << other;
  EXPECT_EQ(b_store.SaveRecoveryAttempts("d1", {}).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Steps("d1"), 0);
  EXPECT_TRUE(a_store.SaveStep("d1", Step(1), nullptr, {}).ok());
  EXPECT_TRUE(a_store.SaveRecoveryAttempts("d1", {.without_progress = 1}).ok());
  EXPECT_EQ(Steps("d1"), 1);

  // An unknown deployment is not found, whoever asks.
  EXPECT_EQ(a_store.SaveStep("nope", Step(1), nullptr, {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(a_store.Update(Deployment("nope"), {}, nullptr, nullptr).code(), absl::StatusCode::kNotFound);
  // A step with an audit event: the fenced step and the event commit together.
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_DEPLOYMENT_STEP);
  e.set_idempotency_key("d1/step/9");
  EXPECT_EQ(b_store.SaveStep("d1", Step(9), nullptr, {e}).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(a_store.SaveStep("d1", Step(9), nullptr, {e}).ok());
  EXPECT_EQ(Steps("d1"), 2);

  // The lease row gone (the environment's lease dropped): a still believes
  // it holds token 1, the store says nobody does.
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     txn.exec("DELETE FROM deployer.environment_leases WHERE environment_id = 'dev'");
                     return absl::OkStatus();
                   })
                  .ok());
  // a_store created d1 and knows its environment (a step alone is then one
  // statement); a fresh store of the same replica looks it up first. Both
  // refuse alike.
  PostgresDeploymentStore a_fresh(pool_.get(), outbox_.get(), {.fences = &a});
  for (PostgresDeploymentStore* store : {&a_store, &a_fresh}) {
    absl::Status gone = store->SaveStep("d1", Step(2), nullptr, {});
    EXPECT_EQ(gone.code(), absl::StatusCode::kAborted) << gone;
    EXPECT_NE(gone.message().find("lost the lease of environment \"dev\" (token 1) to nobody"), std::string::npos)
        << gone;
  }
  EXPECT_EQ(a_store.Update(Deployment("d1"), {}, nullptr, nullptr).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Steps("d1"), 2);
}

// A step's outcome with its applied change and audit event is written in
// one statement by the lease holder (and wakes the outbox's forwarder), and
// not at all by anyone else: no step, no applied object, no event.
TEST_F(PostgresLeaseStoreTest, AStepOutcomeWithItsChangeAndEventIsWrittenWholeOnlyUnderTheLease) {
  DevAndProd replicas(*this);
  ASSERT_NO_FATAL_FAILURE(replicas.Start());
  LeaseKeeper& b = replicas.b;
  PostgresDeploymentStore& a_store = replicas.a_store;
  PostgresDeploymentStore& b_store = replicas.b_store;

  AppliedChange change{"web", "dev", {{"", "ConfigMap", "ns", "cm"}, R"({"kind":"ConfigMap"})", "cm.yaml", 2}, false,
                       "d1"};
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_DEPLOYMENT_STEP);
  e.set_idempotency_key("d1/step/1");
  auto written = [&] {
    return std::make_tuple(Steps("d1"), Count("SELECT count(*) FROM deployer.applied_objects WHERE wave = 2"),
                           Count("SELECT count(*) FROM deployer.outbox WHERE idempotency_key = 'd1/step/1'"));
  };
  EXPECT_EQ(b_store.SaveStep("d1", Step(1), &change, {e}).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(written(), std::make_tuple(0, 0, 0));

  // The forwarder's wake-up comes with it, in this process, once the event
  // is committed (issue #23: not a NOTIFY, which woke every LISTEN backend).
  int woken = 0;
  int64_t visible_when_woken = -1;
  postgres::ConnectionPool::LocalListenerId id =
      pool_->ListenLocally(outbox::PostgresOutboxStore::NotifyChannel("deployer"), [&] {
        ++woken;
        visible_when_woken = Count("SELECT count(*) FROM deployer.outbox WHERE idempotency_key = 'd1/step/1'");
      });
  ASSERT_TRUE(a_store.SaveStep("d1", Step(1), &change, {e}).ok());
  EXPECT_EQ(written(), std::make_tuple(1, 1, 1));
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(visible_when_woken, 1);

  // The same event again: refused as a duplicate, and nothing of the step
  // is written either.
  v1::DeploymentStep again = Step(1);
  again.set_result(v1::STEP_RESULT_SUCCEEDED);
  EXPECT_FALSE(a_store.SaveStep("d1", again, nullptr, {e}).ok());
  absl::StatusOr<v1::Deployment> d = a_store.Get("d1", true);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->steps_size(), 1);
  EXPECT_EQ(d->steps(0).result(), v1::STEP_RESULT_RUNNING);

  // The deployment's record with its managed application and its event:
  // one statement too, all of it or nothing.
  ManagedApp app{"web", "dev", v1::DeployTarget(), v1::SyncPolicy(), "d1"};
  auto event = [](const std::string& key) {
    v1::Event out;
    out.set_action(v1::AUDIT_ACTION_DEPLOYMENT_STARTED);
    out.set_idempotency_key(key);
    return out;
  };
  auto events = [&](const std::string& key) {
    return Count("SELECT count(*) FROM deployer.outbox WHERE idempotency_key = '" + key + "'");
  };
  EXPECT_EQ(b_store.Update(Deployment("d1"), {event("d1/started")}, &app, nullptr).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps"), 0);
  EXPECT_EQ(events("d1/started"), 0);
  EXPECT_EQ(woken, 1);  // refused: nothing written, nobody woken
  ASSERT_TRUE(a_store.Update(Deployment("d1"), {event("d1/started")}, &app, nullptr).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps WHERE live_deployment_id = 'd1'"), 1);
  EXPECT_EQ(events("d1/started"), 1);
  EXPECT_EQ(woken, 2);
  pool_->StopListeningLocally(id);
  // Not found: neither its managed application nor its event is written.
  ManagedApp api{"api", "dev", v1::DeployTarget(), v1::SyncPolicy(), "nope"};
  EXPECT_EQ(a_store.Update(Deployment("nope"), {event("nope/started")}, &api, nullptr).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps WHERE application_id = 'api'"), 0);
  EXPECT_EQ(events("nope/started"), 0);

  // A deletion, then a lease lost: the deletion is not made.
  change.deleted = true;
  ASSERT_TRUE(a_store.SaveStep("d1", Step(2), &change, {}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.applied_objects"), 0);
  change.deleted = false;
  ASSERT_TRUE(a_store.SaveStep("d1", Step(3), &change, {}).ok());
  Expire("dev");
  ASSERT_TRUE(b.Claim("dev").ok());
  ASSERT_TRUE(b.Tick().ok());
  ASSERT_TRUE(b.Holds("dev"));
  change.deleted = true;
  absl::Status lost = a_store.SaveStep("d1", Step(4), &change, {});
  EXPECT_EQ(lost.code(), absl::StatusCode::kAborted) << lost;
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.applied_objects"), 1);
  EXPECT_EQ(Steps("d1"), 3);
  app.live_deployment_id = "d1-later";
  absl::Status late = a_store.Update(Deployment("d1"), {event("d1/ended")}, &app, nullptr);
  EXPECT_EQ(late.code(), absl::StatusCode::kAborted) << late;
  EXPECT_NE(late.message().find("to replica-b (token 2)"), std::string::npos) << late;
  EXPECT_EQ(events("d1/ended"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps WHERE live_deployment_id = 'd1'"), 1);
}

// Issue #23: a step's outcome with the next step's start, and a last
// outcome with the deployment's end, each in one write under the lease: all
// of it or nothing, the events in the order of the steps.
TEST_F(PostgresLeaseStoreTest, StepsSavedTogetherAreWrittenWholeUnderTheLeaseTheirEventsInOrder) {
  DevAndProd replicas(*this);
  ASSERT_NO_FATAL_FAILURE(replicas.Start());
  PostgresDeploymentStore& a_store = replicas.a_store;
  PostgresDeploymentStore& b_store = replicas.b_store;
  ASSERT_TRUE(a_store.SaveStep("d1", Step(1), nullptr, {}).ok());

  auto event = [](const std::string& key) { return StepEvent(key); };
  auto finished = [](int64_t seq) { return Finished(seq); };
  auto keys = [&] {
    std::vector<std::string> out;
    EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       for (const auto& row : txn.exec("SELECT idempotency_key FROM deployer.outbox"
                                                       " WHERE idempotency_key LIKE 'd1/%' ORDER BY id")) {
                         out.push_back(row[0].as<std::string>());
                       }
                       return absl::OkStatus();
                     })
                    .ok());
    return out;
  };
  auto results = [&] {
    std::vector<int> out;
    absl::StatusOr<v1::Deployment> d = a_store.Get("d1", true);
    EXPECT_TRUE(d.ok()) << d.status();
    if (d.ok()) {
      for (const v1::DeploymentStep& s : d->steps()) out.push_back(s.result());
    }
    return out;
  };
  const int running = v1::STEP_RESULT_RUNNING, succeeded = v1::STEP_RESULT_SUCCEEDED;
  AppliedChange change{"web", "dev", {{"", "ConfigMap", "ns", "cm"}, R"({"kind":"ConfigMap"})", "cm.yaml", 2}, false,
                       "d1"};
  using StepWrite = DeploymentRecords::StepWrite;
  const std::vector<StepWrite> outcome_and_next = {StepWrite{finished(1), change, {event("d1/step/1")}},
                                                   StepWrite{Step(2), std::nullopt, {}}};
  // Not the holder: nothing of either.
  EXPECT_EQ(b_store.SaveSteps("d1", outcome_and_next).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(results(), (std::vector<int>{running}));
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.applied_objects"), 0);
  EXPECT_TRUE(keys().empty());
  // The holder: both steps, the change and the event (one statement).
  ASSERT_TRUE(a_store.SaveSteps("d1", outcome_and_next).ok());
  EXPECT_EQ(results(), (std::vector<int>{succeeded, running}));
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.applied_objects WHERE wave = 2"), 1);
  EXPECT_EQ(keys(), (std::vector<std::string>{"d1/step/1"}));
  // More than one statement can carry (two events): one transaction, all
  // or nothing: a reused event key leaves no step behind.
  const std::vector<StepWrite> reused = {StepWrite{finished(2), std::nullopt, {event("d1/step/2")}},
                                         StepWrite{finished(3), std::nullopt, {event("d1/step/1")}}};
  EXPECT_FALSE(a_store.SaveSteps("d1", reused).ok());
  EXPECT_EQ(results(), (std::vector<int>{succeeded, running}));
  EXPECT_EQ(keys(), (std::vector<std::string>{"d1/step/1"}));
  const std::vector<StepWrite> two_events = {StepWrite{finished(2), std::nullopt, {event("d1/step/2")}},
                                             StepWrite{finished(3), std::nullopt, {event("d1/step/3")}},
                                             StepWrite{Step(4), std::nullopt, {}}};
  ASSERT_TRUE(a_store.SaveSteps("d1", two_events).ok());
  EXPECT_EQ(results(), (std::vector<int>{succeeded, succeeded, succeeded, running}));
  EXPECT_EQ(keys(), (std::vector<std::string>{"d1/step/1", "d1/step/2", "d1/step/3"}));

  // The last outcome with the deployment's end: the step's event before the
  // deployment's, whoever is refused writes nothing.
  v1::Deployment end = Deployment("d1");
  end.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Event succeeded_event = event("d1/succeeded");
  succeeded_event.set_action(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED);
  ManagedApp app{"web", "dev", v1::DeployTarget(), v1::SyncPolicy(), "d1"};
  const std::vector<StepWrite> last = {StepWrite{finished(4), std::nullopt, {event("d1/step/4")}}};
  EXPECT_EQ(b_store.SaveStepsThenUpdate(last, end, {succeeded_event}, &app, nullptr).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(results(), (std::vector<int>{succeeded, succeeded, succeeded, running}));
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps"), 0);
  // Not found: neither the step nor the events.
  v1::Deployment nope = Deployment("nope");
  EXPECT_EQ(a_store.SaveStepsThenUpdate(last, nope, {event("nope/succeeded")}, &app, nullptr).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.steps WHERE deployment_id = 'nope'"), 0);
  EXPECT_EQ(keys(), (std::vector<std::string>{"d1/step/1", "d1/step/2", "d1/step/3"}));
  ASSERT_TRUE(a_store.SaveStepsThenUpdate(last, end, {succeeded_event}, &app, nullptr).ok());
  EXPECT_EQ(results(), (std::vector<int>{succeeded, succeeded, succeeded, succeeded}));
  EXPECT_EQ(a_store.Get("d1", false)->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps WHERE live_deployment_id = 'd1'"), 1);
  EXPECT_EQ(keys(), (std::vector<std::string>{"d1/step/1", "d1/step/2", "d1/step/3", "d1/step/4", "d1/succeeded"}));
}

// Issue #23: the fenced writes of deployments running at once share one
// statement (a batch), and each is still written whole, or refused alone
// with its own reason. The lease row is held FOR UPDATE meanwhile, so the
// first write waits in its statement and the others queue behind it: they
// are written together once it is released.
TEST_F(PostgresLeaseStoreTest, ConcurrentFencedWritesShareAStatementEachWrittenWholeOrRefusedAlone) {
  LeaseKeeper a(leases_.get(), &clock_, Options("replica-a"));
  LeaseKeeper b(leases_.get(), &clock_, Options("replica-b"));
  ASSERT_TRUE(a.Claim("dev").ok());
  ASSERT_TRUE(a.Tick().ok());
  PostgresDeploymentStore store(pool_.get(), outbox_.get(), {.fences = &a});
  constexpr int kDeployments = 8;
  auto id = [](int i) { return absl::StrCat("d", i); };
  auto deployment = [&](int i) {
    v1::Deployment d = Deployment(id(i));
    d.set_application_id(absl::StrCat("app", i));
    return d;
  };
  for (int i = 0; i < kDeployments; ++i) ASSERT_TRUE(store.Create(deployment(i), v1::Plan(), {}).ok());
  auto event = [](const std::string& key) { return StepEvent(key); };
  auto finished = [](int64_t seq) { return Finished(seq); };
  auto managed = [&](int i) { return ManagedApp{absl::StrCat("app", i), "dev", v1::DeployTarget(), v1::SyncPolicy(), id(i)}; };
  auto change = [&](int i) {
    return AppliedChange{absl::StrCat("app", i), "dev",
                         {{"", "ConfigMap", "ns", absl::StrCat("cm", i)}, R"({"kind":"ConfigMap"})", "cm.yaml", 1},
                         false, id(i)};
  };
  // Runs the writes at once while the lease row is held; their statuses.
  auto together = [&](std::vector<std::function<absl::Status()>> writes) {
    ferry::testing::HeldLock held(*pool_, "SELECT 1 FROM deployer.environment_leases WHERE environment_id = 'dev' FOR UPDATE");
    std::vector<absl::Status> out(writes.size());
    std::vector<std::thread> threads;
    // The first write waits in its statement; the others, started after it,
    // queue behind it and share the next.
    threads.emplace_back([&] { out[0] = writes[0](); });
    absl::SleepFor(absl::Milliseconds(100));
    for (size_t i = 1; i < writes.size(); ++i) threads.emplace_back([&, i] { out[i] = writes[i](); });
    absl::SleepFor(absl::Milliseconds(300));
    held.Release();
    for (std::thread& t : threads) t.join();
    return out;
  };
  using StepWrite = DeploymentRecords::StepWrite;

  // Started, with their managed applications and events; one of a
  // deployment that does not exist is not found, and writes nothing.
  std::vector<std::function<absl::Status()>> writes;
  for (int i = 0; i < kDeployments; ++i) {
    writes.push_back([&, i] {
      const ManagedApp app = managed(i);
      return store.Update(deployment(i), {event(id(i) + "/started")}, &app, nullptr);
    });
  }
  writes.push_back([&] {
    const ManagedApp app{"nope-app", "dev", v1::DeployTarget(), v1::SyncPolicy(), "nope"};
    return store.Update(Deployment("nope"), {event("nope/started")}, &app, nullptr);
  });
  uint64_t batched = store.fenced_writes_together();
  std::vector<absl::Status> started = together(writes);
  EXPECT_GT(store.fenced_writes_together(), batched);
  for (int i = 0; i < kDeployments; ++i) EXPECT_TRUE(started[i].ok()) << i << ": " << started[i];
  EXPECT_EQ(started[kDeployments].code(), absl::StatusCode::kNotFound) << started[kDeployments];
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps"), kDeployments);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps WHERE application_id = 'nope-app'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.outbox WHERE idempotency_key LIKE '%/started'"), kDeployments);

  // A step's outcome with its change and event, and the next step's start.
  writes.clear();
  for (int i = 0; i < kDeployments; ++i) {
    writes.push_back([&, i] {
      return store.SaveSteps(id(i), {StepWrite{finished(1), change(i), {event(id(i) + "/step/1")}},
                                     StepWrite{Step(2), std::nullopt, {}}});
    });
  }
  batched = store.fenced_writes_together();
  for (const absl::Status& s : together(writes)) EXPECT_TRUE(s.ok()) << s;
  EXPECT_GT(store.fenced_writes_together(), batched);
  for (int i = 0; i < kDeployments; ++i) EXPECT_EQ(Steps(id(i)), 2) << i;
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.applied_objects WHERE wave = 1"), kDeployments);

  // The last deployment's next event is one already written: the batch
  // holding it fails whole and each of its writes is retried alone; only
  // that one is refused.
  writes.clear();
  for (int i = 0; i < kDeployments; ++i) {
    writes.push_back([&, i] {
      return store.SaveSteps(id(i), {StepWrite{finished(2), std::nullopt, {event(i == kDeployments - 1 ? "d1/started" : id(i) + "/step/2")}}});
    });
  }
  const uint64_t failed = store.shared_statements_failed();
  std::vector<absl::Status> stepped = together(writes);
  EXPECT_GT(store.shared_statements_failed(), failed) << "the statement with the duplicate failed whole: counted";
  EXPECT_FALSE(stepped[kDeployments - 1].ok());
  for (int i = 0; i < kDeployments - 1; ++i) EXPECT_TRUE(stepped[i].ok()) << i << ": " << stepped[i];
  for (int i = 0; i < kDeployments; ++i) {
    absl::StatusOr<v1::Deployment> d = store.Get(id(i), true);
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->steps_size(), 2) << i;
    EXPECT_EQ(d->steps(1).result(), i == kDeployments - 1 ? v1::STEP_RESULT_RUNNING : v1::STEP_RESULT_SUCCEEDED) << i;
  }

  // The last outcome with the deployment's end, terminal (its commit waits
  // for the flush): each deployment's events in its own order.
  writes.clear();
  for (int i = 0; i < kDeployments - 1; ++i) {
    writes.push_back([&, i] {
      v1::Deployment end = deployment(i);
      end.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
      const ManagedApp app = managed(i);
      return store.SaveStepsThenUpdate({StepWrite{finished(3), std::nullopt, {event(id(i) + "/step/3")}}}, end,
                                       {event(id(i) + "/succeeded")}, &app, nullptr);
    });
  }
  batched = store.fenced_writes_together();
  std::vector<absl::Status> ended = together(writes);
  EXPECT_GT(store.fenced_writes_together(), batched);
  for (size_t i = 0; i < ended.size(); ++i) EXPECT_TRUE(ended[i].ok()) << i << ": " << ended[i];
  for (int i = 0; i < kDeployments - 1; ++i) {
    absl::StatusOr<v1::Deployment> d = store.Get(id(i), true);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << i;
    ASSERT_EQ(d->steps_size(), 3) << i;
    EXPECT_EQ(d->steps(2).result(), v1::STEP_RESULT_SUCCEEDED) << i;
    std::vector<std::string> keys;
    EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       for (const auto& row : txn.exec_params("SELECT idempotency_key FROM deployer.outbox"
                                                              " WHERE idempotency_key LIKE $1 ORDER BY id",
                                                              id(i) + "/%")) {
                         keys.push_back(row[0].as<std::string>());
                       }
                       return absl::OkStatus();
                     })
                    .ok());
    EXPECT_EQ(keys, (std::vector<std::string>{id(i) + "/started", id(i) + "/step/1", id(i) + "/step/2",
                                              id(i) + "/step/3", id(i) + "/succeeded"}))
        << i;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.managed_apps WHERE live_deployment_id LIKE 'd%'"), kDeployments);

  // The lease taken over: every write of the batch is refused, none written.
  Expire("dev");
  ASSERT_TRUE(b.Claim("dev").ok());
  ASSERT_TRUE(b.Tick().ok());
  writes.clear();
  for (int i = 1; i < kDeployments; ++i) {
    writes.push_back([&, i] {
      return store.SaveSteps(id(i), {StepWrite{finished(4), change(i), {event(id(i) + "/step/4")}},
                                     StepWrite{Step(5), std::nullopt, {}}});
    });
  }
  batched = store.fenced_writes_together();
  for (const absl::Status& s : together(writes)) EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_GT(store.fenced_writes_together(), batched);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.steps"), 3 * (kDeployments - 1) + 2);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.outbox WHERE idempotency_key LIKE '%/step/4'"), 0);
}

TEST_F(PostgresLeaseStoreTest, ThePlanCursorIsPerDeployerGroup) {
  PostgresDeploymentStore def(pool_.get(), outbox_.get());
  PostgresDeploymentStore edge(pool_.get(), outbox_.get(), {.deployer_group = "edge"});
  ASSERT_TRUE(def.SaveCursor("7").ok());
  ASSERT_TRUE(edge.SaveCursor("3").ok());
  EXPECT_EQ(*def.GetCursor(), "7");
  EXPECT_EQ(*edge.GetCursor(), "3");
}

}  // namespace
}  // namespace ferry::deployer
