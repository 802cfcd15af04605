// The revision stream consumer over in-memory fakes: no PostgreSQL. The
// consumer's waits run on a fake clock, so backoffs are checked, not slept.
#include "services/planner/revision_consumer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/planner/planner_fakes.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;
using LoopClock = ferry::testing::FakeClock;

// Audit events of `kind` ("failed", "quarantined") about revisions.
std::vector<v1::Event> RevisionEvents(PlannerOverFakes& f, const std::string& kind) {
  std::vector<v1::Event> out;
  for (const v1::Event& e : f.store.Events()) {
    auto it = e.details().fields().find("revision");
    if (it != e.details().fields().end() && it->second.string_value() == kind) out.push_back(e);
  }
  return out;
}

// Local (automatic) and applications `ids` under apps/<id>.
void AddApps(PlannerOverFakes& f, const std::vector<std::string>& ids) {
  ASSERT_TRUE(f.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  for (const std::string& id : ids)
    ASSERT_TRUE(f.planner.CreateApplication(AppSpec(id, "apps/" + id, {"local"}), User("alice")).ok());
}

testing::FakeTree Tree(const std::vector<std::string>& ids, const std::string& version) {
  testing::FakeTree tree;
  for (const std::string& id : ids) tree["apps/" + id + "/cm.yaml"] = {ConfigMap(id, version), ""};
  return tree;
}

TEST(RevisionConsumerTest, AFailedRevisionIsRetriedAfterABackoffAndTheCursorMovesOnlyAfterIt) {
  PlannerOverFakes f;
  ASSERT_TRUE(f.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("a", "apps/a", {"local"}), User("alice")).ok());
  f.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  f.live.FailWith(absl::InternalError("deployer broken"));
  LoopClock clock;
  // INTERNAL counts against the revision: a quarantine limit above the two
  // failures here (RevisionConsumerTest.*Quarantined* test the limit).
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock, /*quarantine_attempts=*/3);
  consumer.Start();
  clock.AwaitSleeps(1);  // the revision failed: backing off
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500));
  EXPECT_TRUE(f.Plans("a").empty());
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "") << "a failed revision does not move the cursor";
  clock.Advance(absl::Milliseconds(500));
  clock.AwaitSleeps(2);  // failed again: the backoff doubles
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Seconds(1));
  EXPECT_TRUE(f.Plans("a").empty());
  f.live.FailWith(absl::OkStatus());
  clock.Advance(absl::Seconds(1));
  f.repo.AwaitWaitingStream();  // planned, and waiting for the next revision
  EXPECT_EQ(f.Plans("a").size(), 1u) << "retried";
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "1");
  consumer.Stop();
  EXPECT_EQ(f.repo.watches(), 3);
  consumer.Stop();  // idempotent
}

TEST(RevisionConsumerTest, AStreamThatEndsQuicklyIsReopenedWithBackoffAndAHealthyOneAtOnce) {
  PlannerOverFakes f;
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  f.repo.AwaitWaitingStream();
  f.repo.DropStreams();
  clock.AwaitSleeps(1);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500));
  clock.Advance(absl::Milliseconds(500));
  f.repo.AwaitWaitingStream();
  f.repo.DropStreams();
  clock.AwaitSleeps(2);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Seconds(1)) << "ended quickly again: the backoff doubles";
  clock.Advance(absl::Seconds(1));
  f.repo.AwaitWaitingStream();
  clock.Advance(RevisionConsumer::kHealthyStream + absl::Seconds(1));
  f.repo.DropStreams();
  clock.AwaitSleeps(3);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500)) << "a healthy stream reconnects at once";
  clock.Advance(absl::Milliseconds(500));
  f.repo.AwaitWaitingStream();
  f.repo.DropStreams();
  clock.AwaitSleeps(4);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500)) << "and the backoff started over";
  consumer.Stop();
  EXPECT_EQ(f.repo.watches(), 4);
}

TEST(RevisionConsumerTest, StopCancelsTheOpenStream) {
  PlannerOverFakes f;
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  f.repo.AwaitWaitingStream();
  consumer.Stop();  // returns: the stream blocked in Next was cancelled
  EXPECT_EQ(f.repo.watches(), 1) << "no stream was opened again";
  // The cancelled stream may end the step before the loop learns it is
  // stopping, so one backoff may begin (and is cut short by Stop).
  EXPECT_LE(clock.sleeps(), 1u);
}

// One application whose inputs are bad (an input error) and one whose
// planning throws fail alone, as FAILED plans with the reason; the third is
// planned and the cursor moves on. Before: the consumer retried the revision
// forever and nothing behind it was planned.
TEST(RevisionConsumerTest, ApplicationsWhosePlanningFailsFailAloneAndTheOthersArePlanned) {
  PlannerOverFakes f;
  AddApps(f, {"bad", "boom", "good"});
  f.live.FailAppWith("bad", absl::InvalidArgumentError("manifest apps/bad/cm.yaml: invalid UTF-8 at byte 12"));
  f.live.ThrowFor("boom");
  v1::Revision rev = f.repo.Commit("repo", kRef, Tree({"bad", "boom", "good"}, "1"));
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  f.repo.AwaitWaitingStream();
  consumer.Stop();
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "1");
  ASSERT_EQ(f.Plans("bad").size(), 1u);
  EXPECT_EQ(f.Plans("bad")[0].state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(f.Plans("bad")[0].failure().message().find("invalid UTF-8"), std::string::npos);
  ASSERT_EQ(f.Plans("boom").size(), 1u);
  EXPECT_EQ(f.Plans("boom")[0].state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(f.Plans("boom")[0].failure().message().find("blew up"), std::string::npos)
      << f.Plans("boom")[0].failure().message();
  ASSERT_EQ(f.Plans("good").size(), 1u);
  EXPECT_NE(f.Plans("good")[0].state(), v1::PLAN_STATE_FAILED);
  EXPECT_EQ(f.Plans("good")[0].target_revision().sha(), rev.sha());
  EXPECT_EQ(f.store.CountEvents(v1::AUDIT_ACTION_RENDER_FAILED), 2);
}

// A revision whose handling fails with an input error is recorded as failed
// (an audit event naming it and the reason) and the cursor moves past it.
TEST(RevisionConsumerTest, ARevisionThatFailsWithAnInputErrorIsRecordedAndPassed) {
  PlannerOverFakes f;
  AddApps(f, {"a"});
  std::atomic<int> calls{0};
  f.store.OnListApplications([&] {
    return ++calls == 1 ? absl::OutOfRangeError("ferry.yaml: 10001 applications, the limit is 10000") : absl::OkStatus();
  });
  v1::Revision first = f.repo.Commit("repo", kRef, Tree({"a"}, "1"));
  v1::Revision second = f.repo.Commit("repo", kRef, Tree({"a"}, "2"));
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  f.repo.AwaitWaitingStream();
  consumer.Stop();
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "2");
  std::vector<v1::Event> failed = RevisionEvents(f, "failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].subject().commit_sha(), first.sha());
  EXPECT_NE(failed[0].message().find("10001 applications"), std::string::npos) << failed[0].message();
  ASSERT_EQ(f.Plans("a").size(), 1u);
  EXPECT_EQ(f.Plans("a")[0].target_revision().sha(), second.sha()) << "the revision behind it was planned";
  EXPECT_EQ(f.store.Attempts(RevisionConsumer::kCursorName), 0);
}

// A handler that throws on a revision twice gets it quarantined: an audit
// event names the revision, the attempts, the flag and the last error, and
// the revisions behind it are planned. Before: std::terminate, and the
// restarted planner replayed the same revision and died again.
TEST(RevisionConsumerTest, ARevisionWhoseHandlerThrowsTwiceIsQuarantined) {
  PlannerOverFakes f;
  AddApps(f, {"a"});
  std::atomic<int> calls{0};
  f.store.OnListApplications([&]() -> absl::Status {
    if (++calls <= 2) throw std::runtime_error("type_error.316: invalid UTF-8 byte");
    return absl::OkStatus();
  });
  v1::Revision poison = f.repo.Commit("repo", kRef, Tree({"a"}, "1"));
  v1::Revision next = f.repo.Commit("repo", kRef, Tree({"a"}, "2"));
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  clock.AwaitSleeps(1);  // threw once: retried after a backoff
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "");
  EXPECT_EQ(f.store.Attempts(RevisionConsumer::kCursorName), 1);
  clock.Advance(absl::Milliseconds(500));
  f.repo.AwaitWaitingStream();  // threw again: quarantined, and the next one planned
  consumer.Stop();
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "2");
  std::vector<v1::Event> quarantined = RevisionEvents(f, "quarantined");
  ASSERT_EQ(quarantined.size(), 1u);
  EXPECT_EQ(quarantined[0].subject().commit_sha(), poison.sha());
  EXPECT_EQ(quarantined[0].subject().repository_id(), "repo");
  for (const char* part : {"quarantined after 2 attempts", "--revision-quarantine-attempts", "invalid UTF-8"})
    EXPECT_NE(quarantined[0].message().find(part), std::string::npos) << part << " in " << quarantined[0].message();
  ASSERT_EQ(f.Plans("a").size(), 1u);
  EXPECT_EQ(f.Plans("a")[0].target_revision().sha(), next.sha());
}

// Transient failures (a peer or the database) never count: the revision is
// retried with backoff past the quarantine limit, then planned.
TEST(RevisionConsumerTest, TransientFailuresAreRetriedAndNeverQuarantine) {
  PlannerOverFakes f;
  AddApps(f, {"a"});
  f.live.FailWith(absl::AbortedError("deployer restarting"));
  f.repo.Commit("repo", kRef, Tree({"a"}, "1"));
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  for (size_t i = 1; i <= 4; ++i) {
    clock.AwaitSleeps(i);  // the i-th failure: backing off
    EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "");
    EXPECT_EQ(f.store.Attempts(RevisionConsumer::kCursorName), 0) << "a transient failure counted";
    if (i == 4) f.live.FailWith(absl::OkStatus());
    clock.AdvanceToNextDeadline();
  }
  f.repo.AwaitWaitingStream();
  consumer.Stop();
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "1");
  EXPECT_EQ(f.Plans("a").size(), 1u);
  EXPECT_TRUE(RevisionEvents(f, "quarantined").empty());
}

// A planner killed mid-revision (its attempt recorded, never ended) retries
// the revision once at the next start; killed on it twice, the restarted
// planner quarantines it without running it. Either way it converges on the
// newest revision by itself.
TEST(RevisionConsumerTest, APlannerKilledMidRevisionRetriesItThenQuarantinesItAndPlansTheNewest) {
  for (int kills : {1, 2}) {
    SCOPED_TRACE(kills);
    PlannerOverFakes f;
    AddApps(f, {"a"});
    v1::Revision interrupted = f.repo.Commit("repo", kRef, Tree({"a"}, "1"));
    v1::Revision newest = f.repo.Commit("repo", kRef, Tree({"a"}, "2"));
    // What each killed planner left: the attempt recorded before handling.
    for (int i = 0; i < kills; ++i) ASSERT_TRUE(f.store.BeginAttempt(RevisionConsumer::kCursorName, "1").ok());
    LoopClock clock;
    RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
    consumer.Start();
    f.repo.AwaitWaitingStream();
    consumer.Stop();
    EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "2");
    EXPECT_EQ(f.store.Attempts(RevisionConsumer::kCursorName), 0);
    std::vector<v1::Plan> plans = f.Plans("a");
    ASSERT_FALSE(plans.empty());
    EXPECT_EQ(plans[0].target_revision().sha(), newest.sha()) << "the newest revision is planned";
    std::vector<v1::Event> quarantined = RevisionEvents(f, "quarantined");
    if (kills == 1) {
      EXPECT_TRUE(quarantined.empty());
      EXPECT_EQ(plans.size(), 2u) << "the interrupted revision was retried";
    } else {
      ASSERT_EQ(quarantined.size(), 1u);
      EXPECT_EQ(quarantined[0].subject().commit_sha(), interrupted.sha());
      EXPECT_NE(quarantined[0].message().find("stopped mid-revision"), std::string::npos) << quarantined[0].message();
      EXPECT_EQ(plans.size(), 1u) << "the quarantined revision was not run again";
    }
  }
}

}  // namespace
}  // namespace ferry::planner
