// The audit log against a real PostgreSQL: chaining, group commit under
// concurrency, idempotency, the append-only guarantees, tamper detection,
// queries, tails, checkpoints and the export re-verification recipe.

#include "services/audit/audit_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "audit_migrations.h"
#include "common/concurrency/mutex.h"
#include "common/postgres/migrator.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/checkpoint_key_ring.h"
#include "services/audit/checkpoint_witness.h"
#include "services/audit/checkpointer.h"
#include "services/audit/event_encoder.h"
#include "services/audit/postgres_event_store.h"
#include "tests/support/fake_clock.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

v1::Event MakeEvent(const std::string& key, v1::AuditAction action = v1::AUDIT_ACTION_PLAN_CREATED,
                    const std::string& application = "web", const std::string& actor = "alice") {
  v1::Event e;
  e.set_service("planner");
  e.mutable_actor()->set_id(actor);
  e.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
  e.set_action(action);
  e.mutable_subject()->set_application_id(application);
  e.set_message("event " + key);
  e.set_idempotency_key(key);
  return e;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(8);
    ASSERT_TRUE(postgres::Migrate(*pool_, AuditMigrations()).ok());
    key_dir_ = testing::MakeTempDir("ferry-audit-test");
    bool generated = false;
    auto signer = CheckpointSigner::LoadOrGenerate(key_dir_ + "/key.pem", &generated);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::move(*signer);
    store_ = std::make_unique<PostgresEventStore>(*pool_);
    appender_ = std::make_unique<Appender>(*store_, clock_, nullptr);
    log_ = std::make_unique<AuditLog>(*store_, *appender_, *signer_, clock_, nullptr);
  }

  absl::Status Sql(const std::string& sql) {
    return pool_->RunInTransaction([&](pqxx::work& txn) {
      txn.exec(sql);
      return absl::OkStatus();
    });
  }

  std::vector<AppendResult> AppendMany(int n, const std::string& prefix) {
    std::vector<AppendResult> out;
    for (int i = 0; i < n; ++i) {
      auto r = log_->Append("planner", MakeEvent(absl::StrCat(prefix, i)));
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) out.push_back(*r);
    }
    return out;
  }

  v1::VerifyChainResponse Verify(int64_t from = 0, int64_t to = 0) {
    v1::VerifyChainRequest req;
    req.set_from_sequence(from);
    req.set_to_sequence(to);
    auto r = log_->VerifyChain(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::VerifyChainResponse();
  }

  // What someone who owns the database can do: disable the triggers,
  // rewrite every event from `first` (actor "mallory") with the hashes
  // recomputed by the project's own hasher, move the head, and, if asked,
  // delete every checkpoint. The chain is consistent again afterwards.
  void RewriteHistoryFrom(int64_t first, bool delete_checkpoints) {
    std::vector<v1::Event> events = QueryAll(v1::QueryRequest());
    ASSERT_GE(events.size(), static_cast<size_t>(first));
    std::string sql = "ALTER TABLE audit.events DISABLE TRIGGER events_append_only;";
    for (size_t i = first - 1; i < events.size(); ++i) {
      events[i].mutable_actor()->set_id("mallory");
      events[i].set_prev_hash(i == 0 ? ZeroHash() : events[i - 1].hash());
      events[i].set_hash(*ChainHash(events[i].prev_hash(), *CanonicalJson(events[i])));
      absl::StrAppend(&sql, "UPDATE audit.events SET actor_id = 'mallory', prev_hash = '", events[i].prev_hash(),
                      "', hash = '", events[i].hash(), "' WHERE sequence = ", events[i].sequence(), ";");
    }
    absl::StrAppend(&sql, "UPDATE audit.chain_head SET hash = '", events.back().hash(), "';");
    absl::StrAppend(&sql, "ALTER TABLE audit.events ENABLE TRIGGER events_append_only;");
    if (delete_checkpoints) {
      absl::StrAppend(&sql, "ALTER TABLE audit.checkpoints DISABLE TRIGGER checkpoints_append_only;"
                            "DELETE FROM audit.checkpoints;"
                            "ALTER TABLE audit.checkpoints ENABLE TRIGGER checkpoints_append_only;");
    }
    ASSERT_TRUE(Sql(sql).ok());
  }

  std::unique_ptr<AuditLog> NewLog(const CheckpointSigner& signer, CheckpointTrust trust) {
    return std::make_unique<AuditLog>(*store_, *appender_, signer, clock_, nullptr, ChainVerifierOptions{}, trust);
  }

  std::vector<v1::Event> QueryAll(v1::QueryRequest req) {
    std::vector<v1::Event> out;
    for (;;) {
      auto page = log_->Query(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) return out;
      for (const auto& e : page->events()) out.push_back(e);
      if (page->next_page_token().empty()) return out;
      req.set_page_token(page->next_page_token());
    }
  }

  testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::string key_dir_;
  SystemClock clock_;
  std::unique_ptr<CheckpointSigner> signer_;
  std::unique_ptr<PostgresEventStore> store_;
  std::unique_ptr<Appender> appender_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, AppendsAGapFreeChainFromZeros) {
  std::vector<AppendResult> r = AppendMany(5, "k");
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].event.prev_hash(), ZeroHash());
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].event.sequence(), static_cast<int64_t>(i + 1));
    EXPECT_FALSE(r[i].duplicate);
    if (i > 0) {
      EXPECT_EQ(r[i].event.prev_hash(), r[i - 1].event.hash());
    }
    EXPECT_EQ(r[i].event.hash(), *ChainHash(r[i].event.prev_hash(), *CanonicalJson(r[i].event)));
    EXPECT_TRUE(r[i].event.has_time());
    EXPECT_TRUE(r[i].event.has_append_time());
  }
  v1::VerifyChainResponse v = Verify();
  EXPECT_TRUE(v.ok()) << v.reason();
  EXPECT_EQ(v.events_verified(), 5);
  EXPECT_EQ(v.head_hash(), r.back().event.hash());
}

TEST_F(AuditLogTest, StoredEventsReadBackExactlyAsChained) {
  v1::Event e = MakeEvent("rich");
  e.mutable_time()->set_seconds(1767225600);
  e.mutable_time()->set_nanos(123456789);  // kept to the microsecond
  e.mutable_subject()->set_commit_sha(std::string(40, 'f'));
  e.mutable_subject()->set_ref("refs/heads/main");
  auto& fields = *e.mutable_details()->mutable_fields();
  fields["big"].set_number_value(1e21);
  fields["small"].set_number_value(1e-7);
  fields["frac"].set_number_value(0.1);
  fields["int"].set_number_value(12345678);
  fields["text"].set_string_value("żółw \"quoted\" \t tab \x01 ctl");
  fields["list"].mutable_list_value()->add_values()->set_bool_value(true);
  fields["nothing"].set_null_value(google::protobuf::NULL_VALUE);
  auto r = log_->Append("planner", e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->event.time().nanos(), 123456000);
  v1::QueryRequest q;
  auto page = log_->Query(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events_size(), 1);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(page->events(0), r->event))
      << page->events(0).DebugString() << "\nvs\n" << r->event.DebugString();
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, ConcurrentAppendsKeepOneTotalOrderAndTheChainVerifies) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 150;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 10 == 0) {  // some batches too
          std::vector<v1::Event> batch = {MakeEvent(absl::StrCat("t", t, "-", i, "a")),
                                          MakeEvent(absl::StrCat("t", t, "-", i, "b"))};
          auto r = log_->AppendBatch("planner", batch);
          ASSERT_TRUE(r.ok()) << r.status();
          ASSERT_EQ((*r)[1].event.sequence(), (*r)[0].event.sequence() + 1) << "a batch is contiguous";
          for (const auto& one : *r) seqs[t].push_back(one.event.sequence());
        } else {
          auto r = log_->Append("planner", MakeEvent(absl::StrCat("t", t, "-", i)));
          ASSERT_TRUE(r.ok()) << r.status();
          seqs[t].push_back(r->event.sequence());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (const auto& s : seqs) {
    for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i - 1], s[i]) << "each client's events stay in its order";
    all.insert(s.begin(), s.end());
  }
  const int64_t total = kThreads * (kPerThread + kPerThread / 10);
  ASSERT_EQ(static_cast<int64_t>(all.size()), total);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), total) << "sequences are gap-free";
  v1::VerifyChainResponse v = Verify();
  EXPECT_TRUE(v.ok()) << v.first_broken_sequence() << ": " << v.reason();
  EXPECT_EQ(v.events_verified(), total);
}

TEST_F(AuditLogTest, IdempotentRetryReturnsTheStoredEventAndAppendsNothing) {
  auto first = log_->Append("planner", MakeEvent("once"));
  ASSERT_TRUE(first.ok()) << first.status();
  v1::Event retry = MakeEvent("once");
  retry.set_message("a retry may differ; the stored event wins");
  auto second = log_->Append("planner", retry);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->event.SerializeAsString(), first->event.SerializeAsString());
  // The same key from another service is a different event.
  auto third = log_->Append("deployer", MakeEvent("once"));
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->duplicate);
  // Repeats inside one batch, and concurrent retries, append once.
  auto batch = log_->AppendBatch("planner", {MakeEvent("b1"), MakeEvent("b1"), MakeEvent("once")});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_FALSE((*batch)[0].duplicate);
  EXPECT_TRUE((*batch)[1].duplicate);
  EXPECT_EQ((*batch)[1].event.sequence(), (*batch)[0].event.sequence());
  EXPECT_TRUE((*batch)[2].duplicate);
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto r = log_->Append("planner", MakeEvent("raced"));
      ASSERT_TRUE(r.ok()) << r.status();
      if (!r->duplicate) ++fresh;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(fresh.load(), 1);
  v1::QueryRequest all;
  EXPECT_EQ(QueryAll(all).size(), 4u);  // once, once@deployer, b1, raced
  EXPECT_TRUE(Verify().ok());
}

// #16: an event's service is the caller's identity, never what the request
// says, so idempotency keys are namespaced by the real caller.
TEST_F(AuditLogTest, TheStoredServiceIsTheCallersWhateverTheRequestSays) {
  v1::Event forged = MakeEvent("forged");
  forged.set_service("deployer");
  auto one = log_->Append("repo-watcher", forged);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->event.service(), "repo-watcher");
  v1::Event batch_forged = MakeEvent("batch-forged");
  batch_forged.set_service("deployer");
  auto batch = log_->AppendBatch("repo-watcher", {MakeEvent("batch-fine"), batch_forged});
  ASSERT_TRUE(batch.ok()) << batch.status();
  for (const AppendResult& r : *batch) EXPECT_EQ(r.event.service(), "repo-watcher");
  v1::QueryRequest as_deployer;
  as_deployer.mutable_filter()->set_service("deployer");
  EXPECT_TRUE(QueryAll(as_deployer).empty()) << "nothing is stored under the service the request named";
  v1::QueryRequest as_caller;
  as_caller.mutable_filter()->set_service("repo-watcher");
  EXPECT_EQ(QueryAll(as_caller).size(), 3u);
  EXPECT_TRUE(Verify().ok()) << "the caller's service is what the chain hashes";
  EXPECT_EQ(log_->Append("", MakeEvent("nobody")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AuditLogTest, AKeyClaimedByOneServiceDoesNotDropAnothersEvent) {
  // A caller that is not the planner sends, ahead of it, the key the planner
  // will use, naming the planner as the event's service.
  v1::Event claim = MakeEvent("plan-approved/plan-7");
  claim.set_message("pre-claimed");
  auto early = log_->Append("repo-watcher", claim);
  ASSERT_TRUE(early.ok()) << early.status();
  auto real = log_->Append("planner", MakeEvent("plan-approved/plan-7"));
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_FALSE(real->duplicate) << "the planner's own event lands";
  EXPECT_EQ(real->event.service(), "planner");
  EXPECT_EQ(real->event.message(), "event plan-approved/plan-7");
  // Two services using the same key both land, in batches too; each one's
  // retry is still a duplicate of its own event only.
  auto a = log_->AppendBatch("deployer", {MakeEvent("shared")});
  auto b = log_->AppendBatch("planner", {MakeEvent("shared")});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE((*a)[0].duplicate);
  EXPECT_FALSE((*b)[0].duplicate);
  EXPECT_NE((*a)[0].event.sequence(), (*b)[0].event.sequence());
  auto retry = log_->Append("deployer", MakeEvent("shared"));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->event.sequence(), (*a)[0].event.sequence());
  EXPECT_EQ(QueryAll(v1::QueryRequest()).size(), 4u);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, BadEventsAreRejectedNamingTheFieldAndABatchIsAllOrNothing) {
  v1::Event no_action = MakeEvent("x", v1::AUDIT_ACTION_UNSPECIFIED);
  auto r = log_->Append("planner", no_action);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("event.action"), absl::string_view::npos) << r.status();
  v1::Event no_key = MakeEvent("");
  EXPECT_NE(log_->Append("planner", no_key).status().message().find("event.idempotency_key"), absl::string_view::npos);
  v1::Event unknown = MakeEvent("y", static_cast<v1::AuditAction>(99));
  auto b = log_->AppendBatch("planner", {MakeEvent("ok"), unknown});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("events[1].action"), absl::string_view::npos) << b.status();
  EXPECT_TRUE(QueryAll(v1::QueryRequest()).empty()) << "nothing of the bad batch was appended";
}

// PostgreSQL text cannot hold U+0000: such an event is refused up front,
// naming the field, instead of failing its whole group in the database.
TEST_F(AuditLogTest, NulCharactersAreRejectedNamingTheFieldAndFailNoOtherCaller) {
  const std::string nul("a\0b", 3);
  struct Case {
    v1::Event event;
    std::string field;
  };
  std::vector<Case> cases(5);
  cases[0].event = MakeEvent("nul-message");
  cases[0].event.set_message(nul);
  cases[0].field = "event.message";
  cases[1].event = MakeEvent(nul);
  cases[1].field = "event.idempotency_key";
  cases[2].event = MakeEvent("nul-app");
  cases[2].event.mutable_subject()->set_application_id(nul);
  cases[2].field = "event.subject.application_id";
  cases[3].event = MakeEvent("nul-key");
  (*cases[3].event.mutable_details()->mutable_fields())[nul].set_string_value("v");
  cases[3].field = "event.details.fields (a key)";
  cases[4].event = MakeEvent("nul-nested");
  (*cases[4].event.mutable_details()->mutable_fields())["list"].mutable_list_value()->add_values()->set_string_value(nul);
  cases[4].field = "event.details.fields[list].list_value.values[0].string_value";
  // Each bad event races a good one, which may share its group.
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    absl::StatusOr<AppendResult> good;
    std::thread other([&] { good = log_->Append("planner", MakeEvent(absl::StrCat("good-", i))); });
    auto r = log_->Append("planner", c.event);
    other.join();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field << ": " << r.status();
    EXPECT_EQ(r.status().message().rfind(c.field + ": contains a NUL", 0), 0u) << r.status();
    EXPECT_TRUE(good.ok()) << c.field << ": " << good.status();
  }
  EXPECT_EQ(QueryAll(v1::QueryRequest()).size(), cases.size());
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, TheServiceRoleCannotUpdateDeleteOrTruncate) {
  AppendMany(2, "k");
  for (const char* sql : {"UPDATE audit.events SET actor_id = 'mallory' WHERE sequence = 1",
                          "DELETE FROM audit.events WHERE sequence = 2", "TRUNCATE audit.events",
                          "UPDATE audit.checkpoints SET head_hash = 'x'", "DELETE FROM audit.checkpoints",
                          "ALTER TABLE audit.events DISABLE TRIGGER events_append_only"}) {
    absl::Status s = Sql(absl::StrCat("SET LOCAL ROLE ", kWriterRole, "; ", sql));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << sql << ": " << s;
  }
  // What the role may do, it can: read and insert (the service appended through it above).
  EXPECT_TRUE(Sql(absl::StrCat("SET LOCAL ROLE ", kWriterRole, "; SELECT count(*) FROM audit.events")).ok());
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, TheTriggerRefusesChangesEvenFromTheOwner) {
  AppendMany(2, "k");
  for (const char* sql : {"UPDATE audit.events SET actor_id = 'mallory' WHERE sequence = 1",
                          "DELETE FROM audit.events WHERE sequence = 2", "TRUNCATE audit.events"}) {
    absl::Status s = Sql(sql);  // as the superuser that owns the tables
    EXPECT_FALSE(s.ok()) << sql;
    EXPECT_NE(s.message().find("append-only"), absl::string_view::npos) << s;
  }
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, VerifyChainNamesARowRewrittenByASuperuserWithTheTriggerDisabled) {
  AppendMany(10, "k");
  ASSERT_TRUE(Sql("ALTER TABLE audit.events DISABLE TRIGGER events_append_only;"
                  "UPDATE audit.events SET actor_id = 'mallory' WHERE sequence = 7;"
                  "ALTER TABLE audit.events ENABLE TRIGGER events_append_only")
                  .ok());
  v1::VerifyChainResponse v = Verify();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 7);
  EXPECT_NE(v.reason().find("hash mismatch"), std::string::npos) << v.reason();
  // A range that ends before the tampered row still verifies.
  EXPECT_TRUE(Verify(1, 6).ok());
  v1::VerifyChainResponse tail = Verify(8, 10);
  EXPECT_TRUE(tail.ok()) << "from 8 on, the stored prev_hash of 8 is trusted: " << tail.reason();
}

TEST_F(AuditLogTest, HistoryRewrittenWithRecomputedHashesIsCaughtByTheSignedCheckpoint) {
  AppendMany(10, "k");
  auto cp = log_->MakeCheckpoint();
  ASSERT_TRUE(cp.ok()) << cp.status();
  ASSERT_TRUE(cp->has_value());
  EXPECT_EQ((*cp)->sequence(), 10);
  AppendMany(2, "later");
  // The attacker rewrites event 4 and recomputes every later hash so the
  // chain itself is consistent again.
  std::vector<v1::Event> events = QueryAll(v1::QueryRequest());
  ASSERT_EQ(events.size(), 12u);
  events[3].mutable_actor()->set_id("mallory");
  std::string sql = "ALTER TABLE audit.events DISABLE TRIGGER events_append_only;";
  for (size_t i = 3; i < events.size(); ++i) {
    events[i].set_prev_hash(events[i - 1].hash());
    events[i].set_hash(*ChainHash(events[i].prev_hash(), *CanonicalJson(events[i])));
    absl::StrAppend(&sql, "UPDATE audit.events SET actor_id = '", events[i].actor().id(), "', prev_hash = '",
                    events[i].prev_hash(), "', hash = '", events[i].hash(), "' WHERE sequence = ",
                    events[i].sequence(), ";");
  }
  absl::StrAppend(&sql, "UPDATE audit.chain_head SET hash = '", events.back().hash(), "';");
  absl::StrAppend(&sql, "ALTER TABLE audit.events ENABLE TRIGGER events_append_only;");
  ASSERT_TRUE(Sql(sql).ok());
  v1::VerifyChainResponse v = Verify();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 10);
  EXPECT_NE(v.reason().find("checkpoint"), std::string::npos) << v.reason();
  // And the checkpointer refuses to sign over it... the new events verify
  // from the old checkpoint's head only if history is intact.
  auto next = log_->MakeCheckpoint();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition) << next.status();
}

TEST_F(AuditLogTest, CheckpointsOfARotatedOutKeyVerifyWithTheKeyRingAndAnUntrustedKeyIsABreak) {
  AppendMany(3, "old");
  ASSERT_TRUE(log_->MakeCheckpoint().ok());
  // The key is rotated: a new key signs from now on, the old public key is
  // listed in --trusted-checkpoint-keys.
  bool generated = false;
  auto rotated = CheckpointSigner::LoadOrGenerate(key_dir_ + "/new.pem", &generated);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  CheckpointKeyRing keys(**rotated);
  ASSERT_TRUE(keys.AddFromPath(key_dir_ + "/key.pem.pub").ok());
  auto after = NewLog(**rotated, {.keys = &keys});
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(after->Append("planner", MakeEvent(absl::StrCat("new", i))).ok());
  auto signed_by_new = after->MakeCheckpoint();
  ASSERT_TRUE(signed_by_new.ok() && signed_by_new->has_value()) << signed_by_new.status();
  EXPECT_EQ((*signed_by_new)->public_key_id(), (*rotated)->public_key_id());
  v1::VerifyChainResponse v = *after->VerifyChain(v1::VerifyChainRequest());
  EXPECT_TRUE(v.ok()) << v.reason();
  EXPECT_EQ(v.checkpoints_verified(), 2) << "the old key's checkpoint and the new one's";

  // Without the old public key, the old checkpoint is a break naming its key,
  // and no checkpoint is signed on top of it.
  auto forgetful = NewLog(**rotated, {});
  v1::VerifyChainResponse untrusted = *forgetful->VerifyChain(v1::VerifyChainRequest());
  EXPECT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.first_broken_sequence(), 3);
  EXPECT_NE(untrusted.reason().find("untrusted key " + signer_->public_key_id()), std::string::npos)
      << untrusted.reason();
  ASSERT_TRUE(forgetful->Append("planner", MakeEvent("more")).ok());
  auto refused = NewLog(*signer_, {})->MakeCheckpoint();  // the old key alone trusts not the new one's
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("untrusted key " + (*rotated)->public_key_id()), std::string::npos)
      << refused.status();
}

TEST_F(AuditLogTest, HistoryRewrittenFromOneWithCheckpointsDeletedIsNamedByTheWitnessAndNeverSigned) {
  const std::string witness_dir = testing::MakeTempDir("ferry-audit-witness");
  CheckpointWitness witness(witness_dir);
  ASSERT_TRUE(witness.Open().ok());
  auto log = NewLog(*signer_, {.witness = &witness});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append("planner", MakeEvent(absl::StrCat("a", i))).ok());
  ASSERT_TRUE(log->MakeCheckpoint().ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append("planner", MakeEvent(absl::StrCat("b", i))).ok());
  ASSERT_TRUE(log->MakeCheckpoint().ok());
  auto witnessed = witness.Read(1, 100);
  ASSERT_TRUE(witnessed.ok()) << witnessed.status();
  ASSERT_EQ(witnessed->size(), 2u);
  EXPECT_EQ((*witnessed)[0].sequence(), 3);
  EXPECT_EQ((*witnessed)[1].sequence(), 6);
  v1::VerifyChainResponse before = *log->VerifyChain(v1::VerifyChainRequest());
  ASSERT_TRUE(before.ok()) << before.reason();

  RewriteHistoryFrom(1, /*delete_checkpoints=*/true);
  // Without a witness the database alone looks consistent: that is the attack.
  EXPECT_TRUE(Verify().ok());
  v1::VerifyChainResponse v = *log->VerifyChain(v1::VerifyChainRequest());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 3) << v.reason();
  EXPECT_NE(v.reason().find("witness mismatch"), std::string::npos) << v.reason();
  EXPECT_NE(v.reason().find("events 1 to 3"), std::string::npos) << v.reason();

  // Neither this log (which remembers its last checkpoint) nor a restarted
  // one (which has only the witness) signs the forged chain.
  ASSERT_TRUE(log->Append("planner", MakeEvent("c")).ok());
  auto same = log->MakeCheckpoint();
  EXPECT_EQ(same.status().code(), absl::StatusCode::kFailedPrecondition) << same.status();
  auto restarted = NewLog(*signer_, {.witness = &witness})->MakeCheckpoint();
  EXPECT_EQ(restarted.status().code(), absl::StatusCode::kFailedPrecondition) << restarted.status();
  EXPECT_NE(restarted.status().message().find("checkpoint at 6"), std::string::npos) << restarted.status();
  EXPECT_EQ(witness.Read(1, 100)->size(), 2u) << "nothing new witnessed";
  EXPECT_EQ(log->GetCheckpoint(0).status().code(), absl::StatusCode::kNotFound) << "nothing new signed";
}

TEST_F(AuditLogTest, TheWitnessNamesTheFirstCheckpointARewriteContradicts) {
  const std::string witness_dir = testing::MakeTempDir("ferry-audit-witness");
  CheckpointWitness witness(witness_dir);
  auto log = NewLog(*signer_, {.witness = &witness});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append("planner", MakeEvent(absl::StrCat("a", i))).ok());
  ASSERT_TRUE(log->MakeCheckpoint().ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append("planner", MakeEvent(absl::StrCat("b", i))).ok());
  ASSERT_TRUE(log->MakeCheckpoint().ok());
  RewriteHistoryFrom(5, /*delete_checkpoints=*/true);
  v1::VerifyChainResponse v = *log->VerifyChain(v1::VerifyChainRequest());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 6) << v.reason();
  EXPECT_NE(v.reason().find("events 4 to 6"), std::string::npos) << "the checkpoint at 3 still matches: "
                                                                  << v.reason();
  // The witnessed checkpoint at 3 is intact but gone from the database: that is named too.
  v1::VerifyChainRequest first_part;
  first_part.set_to_sequence(4);
  v1::VerifyChainResponse early = *log->VerifyChain(first_part);
  EXPECT_FALSE(early.ok());
  EXPECT_EQ(early.first_broken_sequence(), 3);
  EXPECT_NE(early.reason().find("missing from the database"), std::string::npos) << early.reason();
}

TEST_F(AuditLogTest, NewestEventsDeletedWithTheirCheckpointAndTheHeadMovedBackAreNamedByTheWitness) {
  const std::string witness_dir = testing::MakeTempDir("ferry-audit-witness");
  CheckpointWitness witness(witness_dir);
  auto log = NewLog(*signer_, {.witness = &witness});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append("planner", MakeEvent(absl::StrCat("a", i))).ok());
  ASSERT_TRUE(log->MakeCheckpoint().ok());
  std::vector<v1::Event> events = QueryAll(v1::QueryRequest());
  ASSERT_TRUE(Sql("ALTER TABLE audit.events DISABLE TRIGGER events_append_only;"
                  "ALTER TABLE audit.checkpoints DISABLE TRIGGER checkpoints_append_only;"
                  "DELETE FROM audit.events WHERE sequence > 3; DELETE FROM audit.checkpoints;"
                  "UPDATE audit.chain_head SET sequence = 3, hash = '" + events[2].hash() + "';")
                  .ok());
  EXPECT_TRUE(Verify().ok()) << "the database alone is consistent";
  v1::VerifyChainResponse v = *log->VerifyChain(v1::VerifyChainRequest());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 4);
  EXPECT_NE(v.reason().find("witnessed at 5 but the chain ends at 3"), std::string::npos) << v.reason();
  ASSERT_TRUE(log->Append("planner", MakeEvent("b")).ok());
  EXPECT_EQ(NewLog(*signer_, {.witness = &witness})->MakeCheckpoint().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(AuditLogTest, MakeCheckpointRefusesAChainThatContradictsItsLastCheckpointEvenWithTheCheckpointsDeleted) {
  AppendMany(4, "k");
  ASSERT_TRUE(log_->MakeCheckpoint().ok());
  RewriteHistoryFrom(1, /*delete_checkpoints=*/true);
  AppendMany(1, "later");
  auto next = log_->MakeCheckpoint();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition) << next.status();
  EXPECT_NE(next.status().message().find("checkpoint at 4"), std::string::npos) << next.status();
}

TEST_F(AuditLogTest, AStoredCheckpointTheWitnessMissedIsWrittenAtTheNextCall) {
  AppendMany(2, "k");
  ASSERT_TRUE(log_->MakeCheckpoint().ok());  // no witness yet
  const std::string witness_dir = testing::MakeTempDir("ferry-audit-witness");
  CheckpointWitness witness(witness_dir);
  auto log = NewLog(*signer_, {.witness = &witness});
  auto nothing_new = log->MakeCheckpoint();
  ASSERT_TRUE(nothing_new.ok()) << nothing_new.status();
  EXPECT_FALSE(nothing_new->has_value());
  auto witnessed = witness.Latest();
  ASSERT_TRUE(witnessed.ok() && witnessed->has_value());
  EXPECT_EQ((*witnessed)->sequence(), 2);
  EXPECT_TRUE(log->VerifyChain(v1::VerifyChainRequest())->ok());
}

TEST_F(AuditLogTest, AMalformedHashInsertedThroughTheWriterRoleIsABreak) {
  // The hash columns have no CHECK (schema 003): VerifyChain is what rejects
  // a hash that is not 64 lowercase hex characters.
  AppendMany(3, "k");
  std::vector<v1::Event> events = QueryAll(v1::QueryRequest());
  ASSERT_EQ(events.size(), 3u);
  ASSERT_TRUE(Sql(absl::StrCat("SET LOCAL ROLE ", kWriterRole,
                               "; INSERT INTO audit.events (sequence, event_time, append_time, service, actor_id,"
                               " action, idempotency_key, prev_hash, hash) VALUES (4, now(), now(), 'planner',"
                               " 'mallory', 'AUDIT_ACTION_PLAN_CREATED', 'forged', '",
                               events[2].hash(), "', 'NOT-A-HASH')"))
                  .ok());
  v1::VerifyChainResponse v = Verify();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 4);
  EXPECT_NE(v.reason().find("hash mismatch"), std::string::npos) << v.reason();
}

// Events chained from `from` as the Appender would chain them.
std::vector<v1::Event> ChainedEvents(const ChainHead& from, const std::vector<std::string>& keys) {
  std::vector<v1::Event> out;
  ChainHead tip = from;
  for (const std::string& key : keys) {
    v1::Event e = MakeEvent(key);
    *e.mutable_time() = TimeUtil::GetCurrentTime();
    *e.mutable_append_time() = e.time();
    e.set_sequence(tip.sequence + 1);
    e.set_prev_hash(tip.hash);
    auto canonical = CanonicalJson(e);
    EXPECT_TRUE(canonical.ok()) << canonical.status();
    auto hash = ChainHash(tip.hash, *canonical);
    EXPECT_TRUE(hash.ok()) << hash.status();
    e.set_hash(*hash);
    tip = {e.sequence(), e.hash()};
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<const v1::Event*> Pointers(const std::vector<v1::Event>& events) {
  std::vector<const v1::Event*> out;
  for (const v1::Event& e : events) out.push_back(&e);
  return out;
}

ChainHead Tip(const std::vector<v1::Event>& events) { return {events.back().sequence(), events.back().hash()}; }

TEST_F(AuditLogTest, PipelinedGroupsCommitInOrderAndAFailedGroupFailsTheOneBehindIt) {
  const ChainHead genesis{0, std::string(64, '0')};
  std::vector<v1::Event> a = ChainedEvents(genesis, {"a1", "a2"});
  std::vector<v1::Event> b = ChainedEvents(Tip(a), {"b1"});
  store_->SendInsert(genesis, Pointers(a));
  ASSERT_TRUE(store_->AwaitInserted().ok());
  store_->SendInsert(Tip(a), Pointers(b));  // runs after a's commit
  ASSERT_TRUE(store_->AwaitCommitted().ok());
  ASSERT_TRUE(store_->AwaitCommitted().ok());
  auto head = store_->StoredHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->sequence, 3);
  EXPECT_EQ(head->hash, b.back().hash());

  // c reuses a stored idempotency key: it fails, and d, chained after it,
  // finds the head where c did not move it. Nothing of either is stored.
  std::vector<v1::Event> c = ChainedEvents(Tip(b), {"c1", "a1"});
  std::vector<v1::Event> d = ChainedEvents(Tip(c), {"d1"});
  store_->SendInsert(Tip(b), Pointers(c));
  absl::Status inserted = store_->AwaitInserted();
  EXPECT_EQ(inserted.code(), absl::StatusCode::kAlreadyExists) << inserted;
  store_->SendInsert(Tip(c), Pointers(d));
  EXPECT_EQ(store_->AwaitCommitted().code(), absl::StatusCode::kAlreadyExists);
  absl::Status second = store_->AwaitCommitted();
  EXPECT_EQ(second.code(), absl::StatusCode::kAborted) << second;
  EXPECT_EQ(QueryAll(v1::QueryRequest()).size(), 3u);
  EXPECT_TRUE(Verify().ok());

  // The pipeline is usable after the failures.
  std::vector<v1::Event> e = ChainedEvents(Tip(b), {"e1"});
  EXPECT_TRUE(store_->InsertChained(Tip(b), Pointers(e)).ok());
  EXPECT_EQ(QueryAll(v1::QueryRequest()).size(), 4u);
}

TEST_F(AuditLogTest, AWriterConnectionKilledMidPipelineIsUnavailableThenReopened) {
  const ChainHead genesis{0, std::string(64, '0')};
  std::vector<v1::Event> a = ChainedEvents(genesis, {"a1"});
  ASSERT_TRUE(store_->InsertChained(genesis, Pointers(a)).ok());
  // Kill the writer's backend (the one that ran the insert), in this test's
  // database only: tests run in parallel on one cluster.
  ASSERT_TRUE(Sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND query LIKE '%INSERT INTO audit.events%'"
                  " AND pid <> pg_backend_pid()")
                  .ok());
  std::vector<v1::Event> b = ChainedEvents(Tip(a), {"b1"});
  store_->SendInsert(Tip(a), Pointers(b));
  absl::Status lost = store_->AwaitCommitted();
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable) << lost;
  // The next insert opens a new writer connection.
  absl::Status again = store_->InsertChained(Tip(a), Pointers(b));
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_EQ(QueryAll(v1::QueryRequest()).size(), 2u);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, DeletedNewestEventsAreAGap) {
  AppendMany(5, "k");
  ASSERT_TRUE(Sql("ALTER TABLE audit.events DISABLE TRIGGER events_append_only;"
                  "DELETE FROM audit.events WHERE sequence >= 4;"
                  "ALTER TABLE audit.events ENABLE TRIGGER events_append_only")
                  .ok());
  v1::VerifyChainResponse v = Verify();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 4);
  EXPECT_NE(v.reason().find("gap"), std::string::npos) << v.reason();
}

TEST_F(AuditLogTest, CheckpointVerifiesOfflineWithOpensslAndThePublicKeyOnly) {
  AppendMany(3, "k");
  auto made = log_->MakeCheckpoint();
  ASSERT_TRUE(made.ok() && made->has_value()) << made.status();
  auto again = log_->MakeCheckpoint();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "no new checkpoint while the head has not moved";
  auto cp = log_->GetCheckpoint(0);
  ASSERT_TRUE(cp.ok()) << cp.status();
  EXPECT_EQ(cp->sequence(), 3);
  EXPECT_EQ(cp->algorithm(), v1::SIGNING_ALGORITHM_ED25519);
  EXPECT_EQ(cp->public_key_id(), signer_->public_key_id());
  std::ofstream(key_dir_ + "/msg", std::ios::binary) << CheckpointMessage(cp->sequence(), cp->head_hash());
  std::ofstream(key_dir_ + "/sig", std::ios::binary) << cp->signature();
  testing::CommandResult ok = testing::RunCommand({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                                                   key_dir_ + "/key.pem.pub", "-rawin", "-in", key_dir_ + "/msg",
                                                   "-sigfile", key_dir_ + "/sig"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("Signature Verified Successfully"), std::string::npos) << ok.output;
  std::ofstream(key_dir_ + "/msg", std::ios::binary) << CheckpointMessage(cp->sequence() + 1, cp->head_hash());
  testing::CommandResult bad = testing::RunCommand({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                                                    key_dir_ + "/key.pem.pub", "-rawin", "-in", key_dir_ + "/msg",
                                                    "-sigfile", key_dir_ + "/sig"});
  EXPECT_NE(bad.exit_code, 0) << bad.output;
  EXPECT_EQ(log_->GetCheckpoint(2).status().code(), absl::StatusCode::kNotFound);
  v1::VerifyChainResponse v = Verify();
  EXPECT_TRUE(v.ok()) << v.reason();
  EXPECT_EQ(v.checkpoints_verified(), 1);
}

TEST_F(AuditLogTest, CheckpointerSignsAtEachTickAndOnceMoreAtStop) {
  testing::FakeClock ticks;
  AppendMany(2, "a");
  Checkpointer checkpointer(*log_, absl::Minutes(5), &ticks);
  checkpointer.Start();
  ticks.AwaitSleeps(1);
  EXPECT_EQ(ticks.SleepingUntil(), ticks.Now() + absl::Minutes(5)) << "the first tick is one interval away";
  EXPECT_EQ(log_->GetCheckpoint(0).status().code(), absl::StatusCode::kNotFound);
  ticks.Advance(absl::Minutes(5));
  ticks.AwaitSleeps(2);  // the tick ran and the next one waits
  auto first = log_->GetCheckpoint(0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->sequence(), 2);
  AppendMany(1, "b");
  checkpointer.Stop();
  auto last = log_->GetCheckpoint(0);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->sequence(), 3) << "Stop() signs the head";
  checkpointer.Stop();  // idempotent
}

TEST_F(AuditLogTest, ACheckpointWithAForgedSignatureFailsVerification) {
  AppendMany(3, "k");
  ASSERT_TRUE(Sql("INSERT INTO audit.checkpoints VALUES (2, repeat('0', 64), decode(repeat('00', 64), 'hex'), '" +
                  signer_->public_key_id() + "', 'SIGNING_ALGORITHM_ED25519', now())")
                  .ok());
  v1::VerifyChainResponse v = Verify();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 2);
  EXPECT_NE(v.reason().find("signature"), std::string::npos) << v.reason();
}

TEST_F(AuditLogTest, QueryFiltersOrdersAndPages) {
  v1::Event early = MakeEvent("early", v1::AUDIT_ACTION_DEPLOYMENT_STARTED, "api", "bob");
  *early.mutable_time() = TimeUtil::SecondsToTimestamp(1767225600);  // 2026-01-01
  ASSERT_TRUE(log_->Append("planner", early).ok());
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(log_->Append("planner", MakeEvent(absl::StrCat("w", i), i % 2 ? v1::AUDIT_ACTION_DEPLOYMENT_FAILED
                                                                   : v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED))
                    .ok());
  }
  ASSERT_TRUE(log_->Append("planner", MakeEvent("api2", v1::AUDIT_ACTION_PINNED, "api", "bob")).ok());

  v1::QueryRequest last;
  last.mutable_filter()->set_application_id("web");
  last.set_order(v1::SORT_ORDER_DESCENDING);
  last.set_page_size(20);
  auto page = log_->Query(last);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events_size(), 20);
  EXPECT_EQ(page->events(0).idempotency_key(), "w24");
  EXPECT_EQ(page->events(19).idempotency_key(), "w5");
  EXPECT_FALSE(page->next_page_token().empty());
  std::vector<v1::Event> all_web = QueryAll(last);
  EXPECT_EQ(all_web.size(), 25u);

  v1::QueryRequest actor;
  actor.mutable_filter()->set_actor("bob");
  *actor.mutable_filter()->mutable_start_time() = TimeUtil::SecondsToTimestamp(1767225600 - 60);
  *actor.mutable_filter()->mutable_end_time() = TimeUtil::SecondsToTimestamp(1767225600 + 60);
  std::vector<v1::Event> bob = QueryAll(actor);
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_EQ(bob[0].idempotency_key(), "early");

  v1::QueryRequest failed;
  failed.mutable_filter()->add_actions(v1::AUDIT_ACTION_DEPLOYMENT_FAILED);
  failed.mutable_filter()->add_actions(v1::AUDIT_ACTION_PINNED);
  failed.set_page_size(5);
  std::vector<v1::Event> f = QueryAll(failed);
  EXPECT_EQ(f.size(), 13u);  // 12 failed + 1 pinned
  for (size_t i = 1; i < f.size(); ++i) EXPECT_LT(f[i - 1].sequence(), f[i].sequence());

  // A token only continues the query it came from.
  auto first = log_->Query(failed);
  ASSERT_TRUE(first.ok());
  v1::QueryRequest changed = failed;
  changed.set_page_token(first->next_page_token());
  changed.mutable_filter()->set_actor("bob");
  auto refused = log_->Query(changed);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("page_token"), absl::string_view::npos) << refused.status();
}

// Each field has a limit; an event padded with unknown fields (kept by
// proto3) had none. The whole event is now capped too.
TEST_F(AuditLogTest, AnEventPaddedPastTheEventLimitIsRefusedNamingIt) {
  v1::Event padded = MakeEvent("padded");
  padded.GetReflection()->MutableUnknownFields(&padded)->AddLengthDelimited(9999, std::string(200 * 1024, 'x'));
  auto r = log_->AppendBatch("planner", {MakeEvent("fine"), padded});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("events[1]: is 2", 0), 0u) << r.status();
  EXPECT_NE(r.status().message().find("larger than the 98304 bytes the audit log takes per event"),
            absl::string_view::npos)
      << r.status();
  EXPECT_TRUE(QueryAll(v1::QueryRequest()).empty());
}

// 1000 events of 64 KiB details made a 64 MiB Query page, past a client's
// 4 MiB receive limit. A page now also ends by bytes, with a token.
TEST_F(AuditLogTest, AQueryPageEndsBeforeItsBytesPassTheLimit) {
  std::vector<v1::Event> big;
  for (int i = 0; i < 80; ++i) {
    v1::Event e = MakeEvent(absl::StrCat("big", i));
    (*e.mutable_details()->mutable_fields())["blob"].set_string_value(std::string(60 * 1024, 'b'));
    big.push_back(e);
  }
  ASSERT_TRUE(log_->AppendBatch("planner", big).ok());
  v1::QueryRequest req;
  req.set_page_size(1000);
  auto page = log_->Query(req);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_LT(page->events_size(), 80);
  EXPECT_GT(page->events_size(), 40);
  EXPECT_LE(page->ByteSizeLong(), kMaxQueryResponseBytes + 1024);
  EXPECT_FALSE(page->next_page_token().empty());
  EXPECT_EQ(QueryAll(req).size(), 80u) << "the following pages carry the rest";
}

TEST_F(AuditLogTest, BadQueriesAreInvalidArgumentNamingTheField) {
  struct Case {
    v1::QueryRequest req;
    std::string field;
  };
  std::vector<Case> cases(5);
  *cases[0].req.mutable_filter()->mutable_start_time() = TimeUtil::SecondsToTimestamp(2000);
  *cases[0].req.mutable_filter()->mutable_end_time() = TimeUtil::SecondsToTimestamp(1000);
  cases[0].field = "filter.end_time";
  cases[1].req.mutable_filter()->add_actions(v1::AUDIT_ACTION_PINNED);
  cases[1].req.mutable_filter()->add_actions(static_cast<v1::AuditAction>(999));
  cases[1].field = "filter.actions[1]";
  cases[2].req.set_page_size(1001);
  cases[2].field = "page_size";
  cases[3].req.set_page_token("not-a-token");
  cases[3].field = "page_token";
  cases[4].req.mutable_filter()->set_application_id(std::string("web\0x", 5));
  cases[4].field = "filter.application_id";
  for (const Case& c : cases) {
    auto r = log_->Query(c.req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(r.status().message().rfind(c.field, 0), 0u) << r.status();
  }
  v1::QueryRequest max;
  max.set_page_size(1000);
  EXPECT_TRUE(log_->Query(max).ok());
}

TEST_F(AuditLogTest, TailSendsTheBacklogThenLiveEventsAndStopsWhenTold) {
  AppendMany(3, "old");
  Mutex mu;
  std::vector<int64_t> got;  // under mu
  absl::Status tail_status;
  std::thread tail([&] {
    v1::TailRequest req;
    req.set_after_sequence(1);
    req.mutable_filter()->set_application_id("web");
    tail_status = log_->Tail(
        req,
        [&](const v1::Event& e) {
          MutexLock lock(&mu);
          got.push_back(e.sequence());
          return true;
        },
        [] { return false; });
  });
  auto count = [&] {
    MutexLock lock(&mu);
    return got.size();
  };
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (count() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(log_->Append("planner", MakeEvent("other", v1::AUDIT_ACTION_PINNED, "api")).ok());
  absl::Time appended = absl::Now();
  ASSERT_TRUE(log_->Append("planner", MakeEvent("live")).ok());
  while (count() < 3 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_LT(absl::Now() - appended, absl::Milliseconds(500)) << "live events arrive on commit, not by polling";
  absl::Time stop = absl::Now();
  log_->StopStreams();
  tail.join();
  EXPECT_LT(absl::Now() - stop, absl::Milliseconds(500));
  EXPECT_EQ(tail_status.code(), absl::StatusCode::kUnavailable) << tail_status;
  EXPECT_EQ(got, (std::vector<int64_t>{2, 3, 5}));
}

// VerifyChain split into parallel stretches (each streaming from its own
// connection) over events whose details jsonb re-orders and re-formats:
// intact it verifies; each break is named at its sequence with its reason,
// also where it sits on a stretch boundary, exactly as one sequential pass
// names it.
TEST_F(AuditLogTest, ParallelStretchesOverPostgresNameTheFirstBreakAsOnePassWould) {
  AuditLog split(*store_, *appender_, *signer_, clock_, nullptr, ChainVerifierOptions{4, 5});
  std::vector<v1::Event> batch;
  for (int i = 0; i < 60; ++i) {
    v1::Event e = MakeEvent(absl::StrCat("p", i), v1::AUDIT_ACTION_DEPLOYMENT_STARTED, i % 3 ? "web" : "");
    auto& f = *e.mutable_details()->mutable_fields();
    f["zz"].set_number_value(i);
    auto& nested = *f["a"].mutable_struct_value()->mutable_fields();
    auto* list = nested["long_key"].mutable_list_value();
    list->add_values()->set_number_value(1.5);
    list->add_values()->set_string_value("é");
    list->add_values()->set_null_value(google::protobuf::NULL_VALUE);
    auto& inner = *list->add_values()->mutable_struct_value()->mutable_fields();
    inner["y"].set_bool_value(true);
    inner["x"].set_number_value(1e-7);
    nested["k"].set_string_value("");
    f["é"].set_string_value("\u2028 \x01 \"q\" \\ 😀 /");
    f["Z"].set_number_value(5e-324);
    f["big"].set_number_value(1e21);
    f["neg0"].set_number_value(-0.0);
    f["max"].set_number_value(1.7976931348623157e308);
    f["odd"].set_number_value(9007199254740993.0);
    f["empty"].mutable_struct_value();
    f["list"].mutable_list_value();
    batch.push_back(e);
  }
  auto appended = log_->AppendBatch("planner", batch);
  ASSERT_TRUE(appended.ok()) << appended.status();
  auto both = [&](int64_t from, int64_t to) {
    v1::VerifyChainRequest req;
    req.set_from_sequence(from);
    req.set_to_sequence(to);
    auto parallel = split.VerifyChain(req);
    auto sequential = log_->VerifyChain(req);
    EXPECT_TRUE(parallel.ok()) << parallel.status();
    EXPECT_TRUE(sequential.ok()) << sequential.status();
    if (!parallel.ok() || !sequential.ok()) return v1::VerifyChainResponse();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*parallel, *sequential))
        << parallel->DebugString() << "\nvs one pass\n" << sequential->DebugString();
    return *parallel;
  };
  v1::VerifyChainResponse v = both(0, 0);
  EXPECT_TRUE(v.ok()) << v.reason();
  EXPECT_EQ(v.events_verified(), 60);
  EXPECT_EQ(v.head_hash(), appended->back().event.hash());
  EXPECT_TRUE(both(20, 50).ok());
  auto cp = split.MakeCheckpoint();
  ASSERT_TRUE(cp.ok()) << cp.status();
  EXPECT_TRUE(cp->has_value());
  EXPECT_EQ(both(0, 0).checkpoints_verified(), 1);

  // Stretches of 60 in 4: 1-15, 16-30, 31-45, 46-60.
  auto tamper = [&](const std::string& change) {
    ASSERT_TRUE(Sql("ALTER TABLE audit.events DISABLE TRIGGER events_append_only;" + change +
                    ";ALTER TABLE audit.events ENABLE TRIGGER events_append_only")
                    .ok());
  };
  tamper("UPDATE audit.events SET details = jsonb_set(details, '{zz}', '1000') WHERE sequence = 40");
  v = both(0, 0);
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 40);
  EXPECT_EQ(v.reason().rfind("hash mismatch: event 40 ", 0), 0u) << v.reason();
  EXPECT_EQ(v.events_verified(), 39);
  EXPECT_TRUE(both(41, 60).ok());

  tamper("UPDATE audit.events SET prev_hash = repeat('f', 64) WHERE sequence = 31");
  v = both(0, 0);
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.first_broken_sequence(), 31);
  EXPECT_EQ(v.reason().rfind("prev_hash mismatch: event 31 says ffff", 0), 0u) << v.reason();

  tamper("UPDATE audit.events SET service = 'evil' WHERE sequence = 16");
  v = both(0, 0);
  EXPECT_EQ(v.first_broken_sequence(), 16);
  EXPECT_EQ(v.reason().rfind("hash mismatch: event 16 ", 0), 0u) << v.reason();

  tamper("DELETE FROM audit.events WHERE sequence = 3");
  v = both(0, 0);
  EXPECT_EQ(v.first_broken_sequence(), 3);
  EXPECT_EQ(v.reason(), "gap: event 3 is missing");

  tamper("UPDATE audit.events SET event_time = 'infinity' WHERE sequence = 2");
  v = both(0, 0);
  EXPECT_EQ(v.first_broken_sequence(), 2);
  EXPECT_EQ(v.reason().rfind("unreadable event: ", 0), 0u) << v.reason();
}

TEST_F(AuditLogTest, AnExportReverifiesWithThePythonRecipeFromTheDocs) {
  v1::Event e = MakeEvent("tricky");
  auto& fields = *e.mutable_details()->mutable_fields();
  for (double d : {0.1, 1e21, 1e-7, 1e15, 1e16, 123456789012.5, -0.0, 3.0, 2.5e-5, 1.7976931348623157e308,
                   9007199254740993.0, 1e-5, 0.0001, -123.456, -1.5e-10, 5e-324, 4503599627370497.5, 1e300}) {
    fields[absl::StrCat("n", fields.size())].set_number_value(d);
  }
  fields["unicode"].set_string_value("żółw ✓ 🐢 \u00e9 \u2028 \x7f");
  fields["escapes"].set_string_value("quote \" backslash \\ slash / ctl \x01\x1f nl \n");
  fields["Zupper"].set_string_value("sorted before lowercase");
  ASSERT_TRUE(log_->Append("planner", e).ok());
  AppendMany(20, "k");
  v1::VerifyChainResponse v = Verify();
  EXPECT_TRUE(v.ok()) << "re-encoded from the stored row: " << v.reason();
  v1::ExportRequest req;
  std::string path = key_dir_ + "/export.jsonl";
  {
    std::ofstream out(path);
    absl::Status s = log_->Export(req, [&](const std::string& line) {
      out << line << "\n";
      return true;
    });
    ASSERT_TRUE(s.ok()) << s;
  }
  testing::CommandResult r = testing::RunCommand(
      {"/bin/sh", "-c", absl::StrCat("/usr/bin/python3 ", FERRY_AUDIT_TEST_DIR, "/verify_export.py < ", path)});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok: 21 events"), std::string::npos) << r.output;
  // The recipe fails a tampered export.
  testing::CommandResult t = testing::RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("sed 's/\"alice\"/\"mallory\"/' ", path, " | /usr/bin/python3 ", FERRY_AUDIT_TEST_DIR,
                    "/verify_export.py")});
  EXPECT_NE(t.exit_code, 0) << t.output;
  EXPECT_NE(t.output.find("sequence 1: hash mismatch"), std::string::npos) << t.output;
}

// ANALYZE (autovacuum's, five times in a commit touching 10,000
// applications) samples only the columns queries filter, join or group on:
// not the hashes, the idempotency key (read through its unique index), the
// message, the details, the display name or the ref (issue #23).
TEST_F(AuditLogTest, AnalyzeKeepsNoStatisticsOfColumnsNoQueryFiltersOn) {
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "audit.events"),
            (std::set<std::string>{"actor_display_name", "details", "hash", "idempotency_key", "message", "prev_hash",
                                   "ref"}));
}

}  // namespace
}  // namespace ferry::audit
