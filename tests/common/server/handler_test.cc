#include "common/server/handler.h"

#include <gtest/gtest.h>
#include <grpcpp/test/server_context_test_spouse.h>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "common/auth/policy.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::server {
namespace {

TEST(CredentialsOfTest, ReadsTheBearerTokenAndOnBehalfOf) {
  grpc::ServerContext ctx;
  // The context keeps pointers into the spouse's metadata: it must outlive
  // every read of the context.
  grpc::testing::ServerContextTestSpouse spouse(&ctx);
  spouse.AddClientMetadata("authorization", "Bearer ferry_0123456789ab_secret");
  spouse.AddClientMetadata("x-ferry-on-behalf-of", "alice");
  auth::CallCredentials call = CredentialsOf(ctx);
  EXPECT_EQ(call.bearer, "ferry_0123456789ab_secret");
  EXPECT_EQ(call.on_behalf_of, "alice");
  EXPECT_EQ(call.peer_service, "");  // no TLS: no certificate
}

TEST(CredentialsOfTest, TheSchemeIsCaseInsensitiveAndOtherSchemesAreNoBearer) {
  grpc::ServerContext a;
  grpc::testing::ServerContextTestSpouse sa(&a);
  sa.AddClientMetadata("authorization", "bearer  tok ");
  EXPECT_EQ(CredentialsOf(a).bearer, "tok");
  grpc::ServerContext b;
  grpc::testing::ServerContextTestSpouse sb(&b);
  sb.AddClientMetadata("authorization", "Basic YWxpY2U6cHc=");
  EXPECT_EQ(CredentialsOf(b).bearer, "");
}

// x-ferry-actor named the caller before access control; it is ignored now.
TEST(AuthorizeTest, TheOldActorMetadataNamesNobody) {
  grpc::ServerContext ctx;
  grpc::testing::ServerContextTestSpouse spouse(&ctx);
  spouse.AddClientMetadata("x-ferry-actor", "cto");
  absl::StatusOr<auth::Principal> caller = Authorize(ctx, v1::QueryRequest());
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->id, "anonymous");
}

v1::QueryRequest WithNul() {
  v1::QueryRequest req;
  req.mutable_filter()->set_actor(std::string("a\0b", 3));
  return req;
}

TEST(HandleTest, RefusesARequestWithNulBeforeRunningAnything) {
  grpc::ServerContext ctx;
  bool ran = false;
  v1::QueryResponse out;
  grpc::Status s = Handle(&ctx, WithNul(), &out, [&]() -> absl::StatusOr<v1::QueryResponse> {
    ran = true;
    return v1::QueryResponse();
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("filter.actor"), std::string::npos) << s.error_message();
  EXPECT_FALSE(ran);
  EXPECT_EQ(Handle(&ctx, WithNul(), [&] { return absl::OkStatus(); }).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(HandleTest, RepliesWithTheResult) {
  grpc::ServerContext ctx;
  v1::QueryResponse out;
  grpc::Status s = Handle(&ctx, v1::QueryRequest(), &out, [] {
    v1::QueryResponse r;
    r.set_next_page_token("next");
    return absl::StatusOr<v1::QueryResponse>(r);
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(out.next_page_token(), "next");
}

TEST(HandleTest, MapsTheStatusCodeAndMessage) {
  grpc::ServerContext ctx;
  v1::QueryResponse out;
  grpc::Status s = Handle(&ctx, v1::QueryRequest(), &out,
                          [] { return absl::StatusOr<v1::QueryResponse>(absl::NotFoundError("plan p not found")); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "plan p not found");
  EXPECT_EQ(Handle(&ctx, v1::QueryRequest(), [] { return absl::FailedPreconditionError("held"); }).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// A handler that throws replies INTERNAL naming the method's request type,
// and the process lives on (before RunGuarded: std::terminate).
TEST(HandleTest, AThrowingHandlerRepliesInternalInsteadOfTerminating) {
  grpc::ServerContext ctx;
  auto json_type_error = [] {
    nlohmann::json j = std::string("\xff");
    return j.dump();  // type_error.316: invalid UTF-8 byte
  };
  v1::QueryResponse out;
  out.set_next_page_token("kept");
  grpc::Status a = Handle(&ctx, v1::QueryRequest(), &out, []() -> absl::StatusOr<v1::QueryResponse> {
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(a.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(a.error_message().find("ferry.v1.QueryRequest"), std::string::npos) << a.error_message();
  EXPECT_NE(a.error_message().find("boom"), std::string::npos) << a.error_message();
  EXPECT_EQ(out.next_page_token(), "kept");
  grpc::Status b = Handle(&ctx, v1::QueryRequest(), []() -> absl::Status { throw 42; });
  EXPECT_EQ(b.error_code(), grpc::StatusCode::INTERNAL);
  grpc::Status c = Handle(&ctx, v1::QueryRequest(), &out, [&]() -> absl::StatusOr<v1::QueryResponse> {
    v1::QueryResponse r;
    r.set_next_page_token(json_type_error());
    return r;
  });
  EXPECT_EQ(c.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(c.error_message().find("type_error.316"), std::string::npos) << c.error_message();
}

// With access control installed, a refused caller never reaches the
// handler's function, and an allowed one is handed to it.
class StaticPolicy : public auth::PolicySource {
 public:
  explicit StaticPolicy(const std::string& yaml) : policy_(*auth::Policy::Parse(yaml, "test.yaml")) {}
  std::shared_ptr<const auth::Policy> Current() const override { return policy_; }

 private:
  std::shared_ptr<const auth::Policy> policy_;
};

class OneToken : public auth::BearerVerifier {
 public:
  bool Recognizes(std::string_view t) const override { return true; }
  absl::StatusOr<auth::Principal> Verify(std::string_view t) override {
    if (t == "alice-token") return auth::UserPrincipal("alice");
    return absl::UnauthenticatedError("unknown token");
  }
};

TEST(HandleTest, AccessControlDecidesBeforeTheHandlerRuns) {
  StaticPolicy policy("bindings:\n  - subjects: [\"user:alice\"]\n    role: viewer\n");
  OneToken tokens;
  auth::Authenticator authenticator({&tokens});
  auth::AccessControl access(&authenticator, &policy, nullptr, nullptr);
  auth::Rule read;
  read.permission = auth::Permission::kView;
  access.AddRule("ferry.v1.QueryRequest", read);
  InstallAccessControl(&access);
  v1::QueryResponse out;
  int ran = 0;
  {
    grpc::ServerContext ctx;
    grpc::Status s = Handle(&ctx, v1::QueryRequest(), &out, [&] {
      ++ran;
      return absl::StatusOr<v1::QueryResponse>(v1::QueryResponse());
    });
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  }
  {
    grpc::ServerContext ctx;
    grpc::testing::ServerContextTestSpouse spouse(&ctx);
    spouse.AddClientMetadata("authorization", "Bearer alice-token");
    std::string seen;
    grpc::Status s = Handle(&ctx, v1::QueryRequest(), &out, [&](const auth::Principal& caller) {
      ++ran;
      seen = caller.id;
      return absl::StatusOr<v1::QueryResponse>(v1::QueryResponse());
    });
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(seen, "alice");
  }
  {
    // No rule for the request type: refused (default deny).
    grpc::ServerContext ctx;
    grpc::testing::ServerContextTestSpouse spouse(&ctx);
    spouse.AddClientMetadata("authorization", "Bearer alice-token");
    grpc::Status s = Handle(&ctx, v1::TailRequest(), [&] {
      ++ran;
      return absl::OkStatus();
    });
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  }
  InstallAccessControl(nullptr);
  EXPECT_EQ(ran, 1);
}

TEST(ReplyTest, LeavesTheOutputAloneOnError) {
  v1::QueryResponse out;
  out.set_next_page_token("kept");
  grpc::Status s = Reply(absl::StatusOr<v1::QueryResponse>(absl::UnavailableError("down")), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(out.next_page_token(), "kept");
}

}  // namespace
}  // namespace ferry::server
