// AccessControl's decision and DenialAuditor's rate limit, with a policy
// parsed from text and a fake bearer verifier.
#include "common/auth/access_control.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/auth/denial_auditor.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/planner.pb.h"
#include "tests/support/fake_clock.h"

namespace ferry::auth {
namespace {

class StaticPolicy : public PolicySource {
 public:
  explicit StaticPolicy(const std::string& yaml) : policy_(*Policy::Parse(yaml, "test.yaml")) {}
  std::shared_ptr<const Policy> Current() const override { return policy_; }

 private:
  std::shared_ptr<const Policy> policy_;
};

// "<user>-token" proves the user.
class NamedTokens : public BearerVerifier {
 public:
  bool Recognizes(std::string_view t) const override { return true; }
  absl::StatusOr<Principal> Verify(std::string_view t) override {
    if (t.size() > 6 && t.substr(t.size() - 6) == "-token") return UserPrincipal(std::string(t.substr(0, t.size() - 6)));
    return absl::UnauthenticatedError("unknown token");
  }
};

class RecordingDenials : public DenialRecorder {
 public:
  void Denied(const Principal& who, const std::string& rpc, const absl::Status& refusal) override {
    seen.push_back(SubjectOf(who) + " " + rpc + " " + std::string(absl::StatusCodeToString(refusal.code())));
  }
  std::vector<std::string> seen;
};

class AccessControlTest : public ::testing::Test {
 protected:
  AccessControlTest()
      : policy_(
            "bindings:\n"
            "  - subjects: [\"user:ann\"]\n    role: approver\n    environments: [\"prod\"]\n"
            "  - subjects: [\"user:vic\"]\n    role: viewer\n"),
        authenticator_({&tokens_}),
        access_(&authenticator_, &policy_, &denials_, nullptr) {
    Rule approve;
    approve.permission = Permission::kApprove;
    approve.scope = [this](const google::protobuf::Message& m) -> absl::StatusOr<Scope> {
      ++lookups_;
      const auto& r = dynamic_cast<const v1::ApprovePlanRequest&>(m);
      if (r.plan_id() == "missing") return absl::NotFoundError("plan missing not found");
      Scope s;
      s.application = "web";
      s.environment = r.plan_id() == "prod-plan" ? "prod" : "staging";
      return s;
    };
    access_.AddRule("ferry.v1.ApprovePlanRequest", approve);
    Rule deployer_only;
    deployer_only.services = {"deployer"};
    deployer_only.services_only = true;
    access_.AddRule("ferry.v1.AcknowledgePlanRequest", deployer_only);
  }

  absl::StatusOr<Principal> Call(const std::string& bearer, const google::protobuf::Message& req,
                                 const std::string& peer = "") {
    CallCredentials c;
    c.bearer = bearer;
    c.peer_service = peer;
    return access_.Authorize(c, req);
  }

  static v1::ApprovePlanRequest Approve(const std::string& plan) {
    v1::ApprovePlanRequest r;
    r.set_plan_id(plan);
    return r;
  }

  StaticPolicy policy_;
  NamedTokens tokens_;
  Authenticator authenticator_;
  RecordingDenials denials_;
  AccessControl access_;
  int lookups_ = 0;
};

TEST_F(AccessControlTest, AScopedApproverMayApproveOnlyInItsEnvironment) {
  EXPECT_TRUE(Call("ann-token", Approve("prod-plan")).ok());
  absl::StatusOr<Principal> staging = Call("ann-token", Approve("staging-plan"));
  EXPECT_EQ(staging.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(staging.status().message().find("'approve' on application 'web' in environment 'staging'"),
            std::string::npos)
      << staging.status();
  EXPECT_EQ(denials_.seen, (std::vector<std::string>{"user:ann ApprovePlan PERMISSION_DENIED"}));
}

TEST_F(AccessControlTest, ACallerWithoutThePermissionAnywhereLearnsNothingAboutWhatExists) {
  absl::StatusOr<Principal> vic = Call("vic-token", Approve("missing"));
  EXPECT_EQ(vic.status().code(), absl::StatusCode::kPermissionDenied) << vic.status();
  EXPECT_EQ(lookups_, 0) << "the plan was looked up for someone who may approve nothing";
  // Someone who may approve somewhere learns that it is missing.
  EXPECT_EQ(Call("ann-token", Approve("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AccessControlTest, NoCredentialsBadCredentialsAndUnknownCallsAreRefused) {
  EXPECT_EQ(Call("", Approve("prod-plan")).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Call("forged", Approve("prod-plan")).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Call("ann-token", v1::RejectPlanRequest()).status().code(), absl::StatusCode::kPermissionDenied)
      << "a request type without a rule must be refused";
  EXPECT_EQ(denials_.seen.size(), 3u);
}

TEST_F(AccessControlTest, ServiceOnlyCallsAreForTheNamedServicesWhateverTheRoles) {
  EXPECT_TRUE(Call("", v1::AcknowledgePlanRequest(), "deployer").ok());
  EXPECT_EQ(Call("", v1::AcknowledgePlanRequest(), "planner").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Call("ann-token", v1::AcknowledgePlanRequest()).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AccessControlTest, OnBehalfOfCountsOnlyFromAService) {
  CallCredentials from_user;
  from_user.bearer = "ann-token";
  from_user.on_behalf_of = "cto";
  absl::StatusOr<Principal> ann = authenticator_.Authenticate(from_user);
  ASSERT_TRUE(ann.ok());
  EXPECT_EQ(ActorOf(*ann).id(), "ann");
  CallCredentials from_service;
  from_service.peer_service = "deployer";
  from_service.on_behalf_of = "ann";
  absl::StatusOr<Principal> deployer = authenticator_.Authenticate(from_service);
  ASSERT_TRUE(deployer.ok());
  EXPECT_EQ(ActorOf(*deployer).id(), "ann");
  EXPECT_EQ(ActorOf(*deployer).display_name(), "ann via deployer");
}

TEST(DenialAuditorTest, OneEventAtOnceThenOneSummaryPerIntervalPerPrincipal) {
  testing::FakeClock clock;
  std::vector<v1::Event> events;
  DenialAuditor auditor(
      "planner",
      [&](v1::Event e) {
        events.push_back(std::move(e));
        return absl::OkStatus();
      },
      &clock, nullptr, absl::Seconds(10));
  Principal bob = UserPrincipal("bob");
  for (int i = 0; i < 50; ++i) auditor.Denied(bob, "ApprovePlan", absl::PermissionDeniedError("no"));
  auditor.Denied(UserPrincipal("eve"), "GetPlan", absl::PermissionDeniedError("no"));
  ASSERT_EQ(events.size(), 2u) << "one event per principal at first";
  EXPECT_EQ(events[0].action(), v1::AUDIT_ACTION_ACCESS_DENIED);
  EXPECT_EQ(events[0].actor().id(), "bob");
  EXPECT_EQ(events[0].details().fields().at("rpc").string_value(), "ApprovePlan");
  clock.Advance(absl::Seconds(11));
  auditor.Denied(bob, "ApprovePlan", absl::PermissionDeniedError("no"));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].details().fields().at("count").number_value(), 50) << "49 held back + this one";
  EXPECT_NE(events[2].idempotency_key(), events[0].idempotency_key());
}

}  // namespace
}  // namespace ferry::auth
