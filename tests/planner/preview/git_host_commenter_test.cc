// GitHostCommenter against a local HTTP server that speaks each host's
// documented comment API: GitHub (POST /repos/{owner}/{repo}/issues/{n}/comments,
// PATCH /repos/{owner}/{repo}/issues/comments/{id}, "Authorization: Bearer"),
// GitLab (POST /projects/{id}/merge_requests/{iid}/notes, PUT .../notes/{id},
// "PRIVATE-TOKEN"), Gitea (as GitHub, "Authorization: token"). One comment,
// created once and edited in place; recreated when deleted on the host.
#include "services/planner/preview/git_host_commenter.h"

#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "gtest/gtest.h"

namespace ferry::planner {
namespace {

constexpr char kToken[] = "tok-3141592653";

GitHostCommenterOptions LoopbackOptions() {
  GitHostCommenterOptions o;
  o.allow_http_to_loopback = true;
  return o;
}

secrets::SecretSourceOptions PlannerSecrets() {
  secrets::SecretSourceOptions o;
  o.service = "planner";
  return o;
}

// A fake Git host: stores comments by id; checks the auth header of its kind.
class FakeHost {
 public:
  explicit FakeHost(v1::GitHostKind kind) : kind_(kind) {
    auto create = [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authorized(req)) return Refuse(res);
      std::lock_guard<std::mutex> lock(mu_);
      absl::StatusOr<nlohmann::json> j = ParseJson(req.body);
      int id = ++next_;
      comments_[id] = (*j)["body"].get<std::string>();
      requests_.push_back(absl::StrCat("POST ", req.target));
      res.status = 201;
      res.set_content(absl::StrCat("{\"id\": ", id, ", \"body\": \"...\"}"), "application/json");
    };
    auto edit = [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authorized(req)) return Refuse(res);
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(absl::StrCat(req.method, " ", req.target));
      int id = std::stoi(req.matches[1]);
      if (!comments_.count(id)) {
        res.status = 404;
        res.set_content("{\"message\": \"Not Found\"}", "application/json");
        return;
      }
      absl::StatusOr<nlohmann::json> j = ParseJson(req.body);
      comments_[id] = (*j)["body"].get<std::string>();
      res.status = 200;
      res.set_content(absl::StrCat("{\"id\": ", id, "}"), "application/json");
    };
    if (kind == v1::GIT_HOST_KIND_GITLAB) {
      // The project path URL-encoded (group%2Fapp), as GitLab documents it.
      // (cpp-httplib matches the decoded path; requests() keeps the raw target.)
      server_.Post("/api/v4/projects/group/app/merge_requests/7/notes", create);
      server_.Put(R"(/api/v4/projects/group/app/merge_requests/7/notes/(\d+))", edit);
    } else {
      const std::string base = kind == v1::GIT_HOST_KIND_GITHUB ? "" : "/api/v1";
      server_.Post(base + "/repos/acme/app/issues/7/comments", create);
      server_.Patch(base + R"(/repos/acme/app/issues/comments/(\d+))", edit);
    }
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeHost() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  v1::GitHost Host() const {
    v1::GitHost h;
    h.set_kind(kind_);
    switch (kind_) {
      case v1::GIT_HOST_KIND_GITLAB:
        h.set_api_url(absl::StrCat("http://127.0.0.1:", port_, "/api/v4"));
        h.set_project("group/app");
        break;
      case v1::GIT_HOST_KIND_GITEA:
        h.set_api_url(absl::StrCat("http://127.0.0.1:", port_, "/api/v1"));
        h.set_project("acme/app");
        break;
      default:
        h.set_api_url(absl::StrCat("http://127.0.0.1:", port_));
        h.set_project("acme/app");
    }
    h.mutable_token()->set_env("FERRY_SECRET_GIT_HOST_TOKEN");
    return h;
  }
  std::map<int, std::string> comments() {
    std::lock_guard<std::mutex> lock(mu_);
    return comments_;
  }
  void DeleteAll() {
    std::lock_guard<std::mutex> lock(mu_);
    comments_.clear();
  }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  bool Authorized(const httplib::Request& req) const {
    switch (kind_) {
      case v1::GIT_HOST_KIND_GITLAB:
        return req.get_header_value("PRIVATE-TOKEN") == kToken;
      case v1::GIT_HOST_KIND_GITEA:
        return req.get_header_value("Authorization") == absl::StrCat("token ", kToken);
      default:
        return req.get_header_value("Authorization") == absl::StrCat("Bearer ", kToken);
    }
  }
  static void Refuse(httplib::Response& res) {
    res.status = 401;
    res.set_content("{\"message\": \"Bad credentials\"}", "application/json");
  }

  const v1::GitHostKind kind_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<int, std::string> comments_;
  std::vector<std::string> requests_;
  int next_ = 100;
};

class GitHostCommenterTest : public ::testing::TestWithParam<v1::GitHostKind> {
 protected:
  void SetUp() override {
    ::setenv("FERRY_SECRET_GIT_HOST_TOKEN", kToken, 1);
    secrets::SecretSourceOptions o;
    o.service = "planner";
    absl::StatusOr<secrets::SecretSources> s = secrets::SecretSources::Create(o);
    ASSERT_TRUE(s.ok()) << s.status();
    sources_.emplace(std::move(*s));
  }
  std::optional<secrets::SecretSources> sources_;
};

TEST_P(GitHostCommenterTest, CreatesOnceThenEditsInPlaceAndRecreatesWhenDeleted) {
  FakeHost host(GetParam());
  GitHostCommenter commenter([&](const std::string&) { return host.Host(); }, &*sources_,
                             LoopbackOptions());
  absl::StatusOr<std::string> id = commenter.Upsert("repo", 7, "", "first body");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "101");
  absl::StatusOr<std::string> again = commenter.Upsert("repo", 7, *id, "second body");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, "101");
  EXPECT_EQ(host.comments(), (std::map<int, std::string>{{101, "second body"}}));

  host.DeleteAll();  // someone deleted it on the host
  absl::StatusOr<std::string> recreated = commenter.Upsert("repo", 7, "101", "third body");
  ASSERT_TRUE(recreated.ok()) << recreated.status();
  EXPECT_EQ(*recreated, "102");
  EXPECT_EQ(host.comments(), (std::map<int, std::string>{{102, "third body"}}));
  ASSERT_EQ(host.requests().size(), 4u);
  EXPECT_EQ(host.requests()[0].substr(0, 5), "POST ");
  if (GetParam() == v1::GIT_HOST_KIND_GITLAB) {
    EXPECT_EQ(host.requests()[0], "POST /api/v4/projects/group%2Fapp/merge_requests/7/notes");
    EXPECT_EQ(host.requests()[1], "PUT /api/v4/projects/group%2Fapp/merge_requests/7/notes/101");
  } else {
    const std::string base = GetParam() == v1::GIT_HOST_KIND_GITHUB ? "" : "/api/v1";
    EXPECT_EQ(host.requests()[0], "POST " + base + "/repos/acme/app/issues/7/comments");
    EXPECT_EQ(host.requests()[1], "PATCH " + base + "/repos/acme/app/issues/comments/101");
  }
}

TEST_P(GitHostCommenterTest, AWrongTokenIsRefusedWithoutShowingIt) {
  FakeHost host(GetParam());
  ::setenv("FERRY_SECRET_GIT_HOST_TOKEN", "wrong-token-value", 1);
  GitHostCommenter commenter([&](const std::string&) { return host.Host(); }, &*sources_,
                             LoopbackOptions());
  absl::StatusOr<std::string> id = commenter.Upsert("repo", 7, "", "body");
  EXPECT_TRUE(absl::IsPermissionDenied(id.status())) << id.status();
  EXPECT_EQ(id.status().ToString().find("wrong-token-value"), std::string::npos);
  EXPECT_TRUE(host.comments().empty());
}

INSTANTIATE_TEST_SUITE_P(Hosts, GitHostCommenterTest,
                         ::testing::Values(v1::GIT_HOST_KIND_GITHUB, v1::GIT_HOST_KIND_GITLAB, v1::GIT_HOST_KIND_GITEA),
                         [](const ::testing::TestParamInfo<v1::GitHostKind>& info) {
                           return std::string(v1::GitHostKind_Name(info.param)).substr(14);
                         });

TEST(GitHostCommenterRefusals, PlainHttpAndMissingHostAreRefusedBeforeAnyCall) {
  ::setenv("FERRY_SECRET_GIT_HOST_TOKEN", kToken, 1);
  absl::StatusOr<secrets::SecretSources> sources = secrets::SecretSources::Create(PlannerSecrets());
  ASSERT_TRUE(sources.ok());
  v1::GitHost host;
  host.set_kind(v1::GIT_HOST_KIND_GITHUB);
  host.set_api_url("http://api.example.com");
  host.set_project("acme/app");
  host.mutable_token()->set_env("FERRY_SECRET_GIT_HOST_TOKEN");
  GitHostCommenter commenter([&](const std::string&) { return host; }, &*sources, LoopbackOptions());
  absl::StatusOr<std::string> id = commenter.Upsert("repo", 7, "", "body");
  EXPECT_TRUE(absl::IsInvalidArgument(id.status())) << id.status();
  EXPECT_NE(id.status().message().find("https"), std::string::npos);
  host.set_kind(v1::GIT_HOST_KIND_UNSPECIFIED);
  EXPECT_TRUE(absl::IsFailedPrecondition(commenter.Upsert("repo", 7, "", "body").status()));
  host.set_kind(v1::GIT_HOST_KIND_GITEA);
  host.set_api_url("https://gitea.example.com/api/v1");
  host.set_project("not-owner-name");
  EXPECT_TRUE(absl::IsInvalidArgument(commenter.Upsert("repo", 7, "", "body").status()));
}

}  // namespace
}  // namespace ferry::planner
