#include "common/server/handler.h"

#include <gtest/gtest.h>
#include <grpcpp/test/server_context_test_spouse.h>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "ferry/v1/audit.pb.h"

namespace ferry::server {
namespace {

TEST(CallerOfTest, TheActorMetadataNamesTheUser) {
  grpc::ServerContext ctx;
  // The context keeps pointers into the spouse's metadata: it must outlive
  // every read of the context.
  grpc::testing::ServerContextTestSpouse spouse(&ctx);
  spouse.AddClientMetadata("x-ferry-actor", "alice");
  v1::Actor actor = CallerOf(ctx);
  EXPECT_EQ(actor.id(), "alice");
  EXPECT_EQ(actor.kind(), v1::ACTOR_KIND_USER);
}

TEST(CallerOfTest, WithoutMetadataTheCallerIsAnonymous) {
  grpc::ServerContext ctx;
  v1::Actor actor = CallerOf(ctx);
  EXPECT_EQ(actor.id(), "anonymous");
  EXPECT_EQ(actor.kind(), v1::ACTOR_KIND_USER);
}

TEST(CallerOfTest, EmptyMetadataIsAnonymousToo) {
  grpc::ServerContext ctx;
  grpc::testing::ServerContextTestSpouse spouse(&ctx);
  spouse.AddClientMetadata("x-ferry-actor", "");
  EXPECT_EQ(CallerOf(ctx).id(), "anonymous");
}

v1::QueryRequest WithNul() {
  v1::QueryRequest req;
  req.mutable_filter()->set_actor(std::string("a\0b", 3));
  return req;
}

TEST(HandleTest, RefusesARequestWithNulBeforeRunningAnything) {
  bool ran = false;
  v1::QueryResponse out;
  grpc::Status s = Handle(WithNul(), &out, [&]() -> absl::StatusOr<v1::QueryResponse> {
    ran = true;
    return v1::QueryResponse();
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("filter.actor"), std::string::npos) << s.error_message();
  EXPECT_FALSE(ran);
  EXPECT_EQ(Handle(WithNul(), [&] { return absl::OkStatus(); }).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(HandleTest, RepliesWithTheResult) {
  v1::QueryResponse out;
  grpc::Status s = Handle(v1::QueryRequest(), &out, [] {
    v1::QueryResponse r;
    r.set_next_page_token("next");
    return absl::StatusOr<v1::QueryResponse>(r);
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(out.next_page_token(), "next");
}

TEST(HandleTest, MapsTheStatusCodeAndMessage) {
  v1::QueryResponse out;
  grpc::Status s = Handle(v1::QueryRequest(), &out,
                          [] { return absl::StatusOr<v1::QueryResponse>(absl::NotFoundError("plan p not found")); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "plan p not found");
  EXPECT_EQ(Handle(v1::QueryRequest(), [] { return absl::FailedPreconditionError("held"); }).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// A handler that throws replies INTERNAL naming the method's request type,
// and the process lives on (before RunGuarded: std::terminate).
TEST(HandleTest, AThrowingHandlerRepliesInternalInsteadOfTerminating) {
  auto json_type_error = [] {
    nlohmann::json j = std::string("\xff");
    return j.dump();  // type_error.316: invalid UTF-8 byte
  };
  v1::QueryResponse out;
  out.set_next_page_token("kept");
  grpc::Status a = Handle(v1::QueryRequest(), &out, []() -> absl::StatusOr<v1::QueryResponse> {
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(a.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(a.error_message().find("ferry.v1.QueryRequest"), std::string::npos) << a.error_message();
  EXPECT_NE(a.error_message().find("boom"), std::string::npos) << a.error_message();
  EXPECT_EQ(out.next_page_token(), "kept");
  grpc::Status b = Handle(v1::QueryRequest(), []() -> absl::Status { throw 42; });
  EXPECT_EQ(b.error_code(), grpc::StatusCode::INTERNAL);
  grpc::Status c = Handle(v1::QueryRequest(), &out, [&]() -> absl::StatusOr<v1::QueryResponse> {
    v1::QueryResponse r;
    r.set_next_page_token(json_type_error());
    return r;
  });
  EXPECT_EQ(c.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(c.error_message().find("type_error.316"), std::string::npos) << c.error_message();
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
