// ferry.v1.Access as the planner hosts it: a real ferry-planner on loopback
// with a real PostgreSQL, its --token-key-file and
// --bootstrap-admin-token-file, called through gRPC.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/auth/token.h"
#include "ferry/v1/access.grpc.pb.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::auth {
namespace {

std::string WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), 0600);
  return path;
}

class AccessServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("access-service");
    key_file_ = WriteFile(dir_ + "/token.key", std::string(64, 'e') + "\n");
    bootstrap_ = GenerateToken()->token;
    token_file_ = WriteFile(dir_ + "/admin.token", bootstrap_ + "\n");
    policy_file_ = WriteFile(dir_ + "/policy.yaml", "bindings:\n  - subjects: [\"user:admin\"]\n    role: admin\n");
  }

  std::vector<std::string> Flags() {
    return {"--database-url=" + db_.url(), "--repo-watcher-address=127.0.0.1:1", "--deployer-address=127.0.0.1:1",
            "--audit-address=127.0.0.1:1", "--token-key-file=" + key_file_,
            "--bootstrap-admin-token-file=" + token_file_, "--access-policy-file=" + policy_file_};
  }

  void StartPlanner() {
    auto p = ferry::testing::ServiceProcess::Start("ferry-planner", Flags());
    ASSERT_TRUE(p.ok()) << p.status();
    planner_ = std::move(*p);
    stub_ = v1::Access::NewStub(grpc::CreateChannel(planner_->grpc_target(), grpc::InsecureChannelCredentials()));
  }

  // A call with `token` as its bearer credential.
  std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }

  std::string Count(const std::string& where) {
    pqxx::connection c(db_.url());
    pqxx::work t(c);
    return t.exec1("SELECT count(*) FROM access.tokens WHERE " + where)[0].as<std::string>();
  }

  ferry::testing::TestDatabase db_;
  std::string dir_, key_file_, token_file_, policy_file_, bootstrap_;
  std::unique_ptr<ferry::testing::ServiceProcess> planner_;
  std::unique_ptr<v1::Access::Stub> stub_;
};

TEST_F(AccessServiceTest, PlannerServesTokensAndKeepsOneBootstrapTokenAcrossRestarts) {
  ASSERT_NO_FATAL_FAILURE(StartPlanner());
  const std::string bootstrap_id = *ParseTokenId(bootstrap_);
  EXPECT_EQ(Count("subject = 'admin' AND id = '" + bootstrap_id + "'"), "1");

  v1::CreateTokenRequest create;
  create.set_subject("ci-bot");
  create.add_groups("release");
  v1::CreateTokenResponse made;
  grpc::Status s = stub_->CreateToken(As(bootstrap_).get(), create, &made);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(made.token().created_by().id(), "admin");
  EXPECT_TRUE(ParseTokenId(made.secret()).ok());

  create.set_subject("no spaces please");
  v1::CreateTokenResponse refused;
  s = stub_->CreateToken(As(bootstrap_).get(), create, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().substr(0, 8), "subject:");

  v1::WhoAmIResponse me;
  s = stub_->WhoAmI(As(made.secret()).get(), v1::WhoAmIRequest(), &me);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(me.subject(), "user:ci-bot");
  // ci-bot has no binding: it may ask who it is, not create tokens.
  v1::CreateTokenResponse not_allowed;
  create.set_subject("ci-bot-2");
  s = stub_->CreateToken(As(made.secret()).get(), create, &not_allowed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_EQ(me.kind(), v1::PRINCIPAL_KIND_USER);

  ASSERT_TRUE(planner_->Stop().ok());
  ASSERT_NO_FATAL_FAILURE(StartPlanner());
  EXPECT_EQ(Count("subject = 'admin'"), "1");
  v1::ListTokensResponse listed;
  s = stub_->ListTokens(As(bootstrap_).get(), v1::ListTokensRequest(), &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(listed.tokens_size(), 2);
  EXPECT_EQ(listed.tokens(0).id(), made.token().id());
  EXPECT_EQ(listed.tokens(1).id(), bootstrap_id);
  EXPECT_FALSE(listed.tokens(1).has_expire_time());

  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(made.token().id());
  v1::RevokeTokenResponse revoked;
  s = stub_->RevokeToken(As(bootstrap_).get(), revoke, &revoked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(revoked.token().has_revoke_time());
  // No secret ever reaches the log.
  const std::string log = planner_->Log();
  EXPECT_EQ(log.find(bootstrap_.substr(19)), std::string::npos);
  EXPECT_EQ(log.find(made.secret().substr(19)), std::string::npos);
}

TEST_F(AccessServiceTest, MalformedBootstrapTokenFileStopsTheStartNamingTheFlag) {
  const std::string bad = bootstrap_.substr(0, 50);
  WriteFile(token_file_, bad + "\n");
  std::vector<std::string> argv = {ferry::testing::BinaryPath("ferry-planner")};
  for (const std::string& f : Flags()) argv.push_back(f);
  argv.push_back("--grpc-address=127.0.0.1:0");
  argv.push_back("--metrics-address=127.0.0.1:0");
  ferry::testing::CommandResult r = ferry::testing::RunCommand(argv, absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--bootstrap-admin-token-file " + token_file_), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("malformed API token"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(bad.substr(19)), std::string::npos) << r.output;
}

TEST_F(AccessServiceTest, BootstrapTokenWithoutAKeyStopsTheStartNamingTheKeyFlag) {
  std::vector<std::string> argv = {ferry::testing::BinaryPath("ferry-planner")};
  for (const std::string& f : Flags()) {
    if (f.rfind("--token-key-file", 0) != 0) argv.push_back(f);
  }
  argv.push_back("--grpc-address=127.0.0.1:0");
  argv.push_back("--metrics-address=127.0.0.1:0");
  ferry::testing::CommandResult r = ferry::testing::RunCommand(argv, absl::Seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--token-key-file"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(bootstrap_.substr(19)), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ferry::auth
