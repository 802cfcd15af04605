// docs/security.md, "Authorization: what each call needs", checked row by row
// against the five real services over real TLS: every RPC of RepoWatcher,
// Planner, Access, Deployer, Audit and Notifier (enumerated from the generated service
// descriptors, so a new RPC without a row here fails this test) is called
// as each role of the policy, as a user with a valid token and no binding,
// unauthenticated, with a token that does not verify, and with each Ferry
// service's client certificate. An allowed call may fail for other reasons
// (NOT_FOUND, INVALID_ARGUMENT on a minimal request) but never with
// UNAUTHENTICATED or PERMISSION_DENIED; a refused one is exactly
// UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <fnmatch.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/integration/secure_suite.h"

namespace ferry {
namespace {

using testing::Describe;
using testing::SecureSuite;

// What a row of the table needs.
struct Need {
  // "view", "operate", "approve", "report-checks", "admin"; "authenticated" (anyone but the
  // anonymous caller); "" for calls only the listed services may make.
  std::string permission;
  // Where: "" is anywhere (the permission held at any scope); "*" every
  // application and environment (only bindings without environment or
  // application globs cover it); otherwise the environment of the request
  // (the application is always `web`).
  std::string environment;
  // Ferry services allowed besides (or, with permission "", instead of) the roles.
  std::vector<std::string> services;
  // PlanRevision with approve: the approve permission too, for people.
  bool also_approve = false;
  // "*": every application of that environment (environments' admin calls);
  // otherwise the application `web` (or none, with environment "" or "*").
  std::string application = "";
};

// One call: an RPC, a minimal request (text format; $HEAD, $STAGING_PLAN and
// $PROD_PLAN are replaced by the seeded commit and plans) and what it needs.
struct Row {
  std::string service;  // full name, e.g. "ferry.v1.Planner"
  std::string rpc;
  std::string request;
  Need need;
};

const std::vector<std::string> kPlannerDeployer = {"planner", "deployer"};

// The table of docs/security.md.
std::vector<Row> Table() {
  const std::string rw = v1::RepoWatcher::service_full_name();
  const std::string pl = v1::Planner::service_full_name();
  const std::string ac = v1::Access::service_full_name();
  const std::string de = v1::Deployer::service_full_name();
  const std::string au = v1::Audit::service_full_name();
  const std::string no = v1::Notifier::service_full_name();
  const Need admin_all{"admin", "*", {}};
  const Need rw_view{"view", "", kPlannerDeployer};
  const Need pl_view{"view", "", {"deployer"}};
  const Need de_view{"view", "", {"planner"}};
  const Need au_view{"view", "", {}};
  const Need operate_staging{"operate", "staging", {}};
  return {
      // RepoWatcher
      {rw, "CreateRepository", "", admin_all},
      {rw, "UpdateRepository", "", admin_all},
      {rw, "DeleteRepository", "id: 'no-such-repository'", admin_all},
      // The notifier reads git_host for commit statuses.
      {rw, "GetRepository", "id: 'config'", {"view", "", {"planner", "deployer", "notifier"}}},
      {rw, "ListRepositories", "", rw_view},
      {rw, "GetRepositoryStatus", "repository_id: 'config'", rw_view},
      {rw, "ListRevisions", "repository_id: 'config'", rw_view},
      {rw, "WatchRevisions", "repository_ids: 'config'", rw_view},
      {rw, "CheckRevision", "repository_id: 'config' revision: '$HEAD'", rw_view},
      {rw, "RefreshRepository", "repository_id: 'config'", {"operate", "", {}}},
      {rw, "ReadContent", "", {"", "", kPlannerDeployer}},
      // A check result belongs to a commit, not to an application: the ci
      // role's report-checks, unscoped.
      {rw, "ReportCheck", "repository_id: 'config' sha: '$HEAD' name: 'matrix' state: CHECK_STATE_SUCCESS",
       {"report-checks", "*", {}}},
      {rw, "ListChecks", "repository_id: 'config' sha: '$HEAD'", rw_view},
      {rw, "ListPullRequests", "", rw_view},
      {rw, "WatchReviewEvents", "", rw_view},
      // Planner
      {pl, "CreateApplication", "", {"admin", "*", {}}},
      {pl, "UpdateApplication", "", {"admin", "*", {}}},
      {pl, "DeleteApplication", "", {"admin", "*", {}}},
      // An admin of prod only changes prod's environment, but no application
      // (which spans every environment).
      {pl, "UpdateApplication", "application { id: 'web' } update_mask { paths: 'depends_on' }",
       {"admin", "*", {}}},
      {pl, "UpdateEnvironment", "environment { id: 'prod' } update_mask { paths: 'sync_windows' }",
       {"admin", "prod", {}, false, "*"}},
      {pl, "UpdateEnvironment", "environment { id: 'staging' } update_mask { paths: 'sync_windows' }",
       {"admin", "staging", {}, false, "*"}},
      {pl, "CreateEnvironment", "", {"admin", "*", {}}},
      {pl, "UpdateEnvironment", "", {"admin", "*", {}}},
      {pl, "DeleteEnvironment", "", {"admin", "*", {}}},
      {pl, "ApplyDeclarativeConfig", "source { repository_id: 'config' ref: 'main' } dry_run: true", admin_all},
      {pl, "GetApplication", "id: 'web'", pl_view},
      // The notifier reads the subscriptions applications declare.
      {pl, "ListApplications", "", {"view", "", {"deployer", "notifier"}}},
      {pl, "GetEnvironment", "id: 'prod'", pl_view},
      {pl, "ListEnvironments", "", pl_view},
      {pl, "GetPlan", "plan_id: '$PROD_PLAN' view: PLAN_VIEW_BASIC", pl_view},
      {pl, "ListPlans", "application_id: 'web'", pl_view},
      {pl, "ListPlanManifests", "plan_id: '$STAGING_PLAN'", pl_view},
      {pl, "ListPullRequestPreviews", "repository_id: 'config'", pl_view},
      {pl, "GetPullRequestPreview", "repository_id: 'config' number: 1", pl_view},
      // The plan's scope: an approver of prod approves prod's plan, not staging's.
      {pl, "ApprovePlan", "plan_id: '$PROD_PLAN' actor { id: 'cto' }", {"approve", "prod", {}}},
      {pl, "ApprovePlan", "plan_id: '$STAGING_PLAN'", {"approve", "staging", {}}},
      {pl, "RejectPlan", "plan_id: '$STAGING_PLAN'", {"approve", "staging", {}}},
      {pl, "RejectPlan", "plan_id: '$PROD_PLAN'", {"approve", "prod", {}}},
      {pl, "PreviewPlan",
       "application_id: 'web' environment_id: 'staging' revision { sha: '$HEAD' }", operate_staging},
      {pl, "PlanRevision",
       "application_id: 'web' environment_id: 'staging' trigger: PLAN_TRIGGER_EXPLICIT_REVISION "
       "revision { sha: '0000000000000000000000000000000000000000' }",
       {"operate", "staging", {"deployer"}}},
      {pl, "PlanRevision",
       "application_id: 'web' environment_id: 'prod' trigger: PLAN_TRIGGER_EXPLICIT_REVISION approve: true "
       "revision { sha: '0000000000000000000000000000000000000000' }",
       {"operate", "prod", {"deployer"}, /*also_approve=*/true}},
      // The deployer refreshes after a person's Unpin.
      {pl, "RefreshApplication", "application_id: 'web' environment_id: 'staging'", {"operate", "staging", {"deployer"}}},
      {pl, "RefreshApplication", "application_id: 'web' environment_id: 'prod'", {"operate", "prod", {"deployer"}}},
      {pl, "WatchApprovedPlans", "", {"", "", {"deployer"}}},
      {pl, "AcknowledgePlan", "", {"", "", {"deployer"}}},
      {pl, "ReportPlanResult", "", {"", "", {"deployer"}}},
      {pl, "ReportPlanResults", "", {"", "", {"deployer"}}},
      // Access (in the planner)
      {ac, "CreateToken", "", admin_all},
      {ac, "ListTokens", "", admin_all},
      {ac, "RevokeToken", "token_id: '000000000000'", admin_all},
      {ac, "WhoAmI", "", {"authenticated", "", {}}},
      // Deployer
      {de, "GetDeployment", "deployment_id: 'no-such-deployment'", de_view},
      {de, "ListDeployments", "", de_view},
      {de, "DiffDeployments", "to_deployment_id: 'no-such-deployment'", de_view},
      {de, "WatchDeployment", "deployment_id: 'no-such-deployment'", de_view},
      {de, "GetLiveState", "application_id: 'web' environment_id: 'staging'", de_view},
      {de, "GetDriftSettings", "application_id: 'web' environment_id: 'staging'", de_view},
      {de, "Rollback", "application_id: 'web' environment_id: 'staging'", operate_staging},
      {de, "Pin", "application_id: 'web' environment_id: 'staging' reason: 'matrix'", operate_staging},
      {de, "Unpin", "application_id: 'web' environment_id: 'staging'", operate_staging},
      {de, "UpdateDriftSettings", "settings { application_id: 'web' environment_id: 'staging' }", operate_staging},
      {de, "UpdateDriftSettings", "settings { application_id: 'web' environment_id: 'prod' }", {"operate", "prod", {}}},
      // The global drift defaults belong to no application or environment.
      {de, "UpdateDriftSettings", "settings { }", {"operate", "*", {}}},
      {de, "ObserveLiveState", "", {"", "", {"planner"}}},
      // Audit
      {au, "Append", "", {"", "", {"repo-watcher", "planner", "deployer", "audit", "notifier"}}},
      {au, "AppendBatch", "", {"", "", {"repo-watcher", "planner", "deployer", "audit", "notifier"}}},
      {au, "Query", "page_size: 1", au_view},
      // The notifier follows the trail.
      {au, "Tail", "", {"view", "", {"notifier"}}},
      {au, "VerifyChain", "", au_view},
      {au, "GetCheckpoint", "", au_view},
      {au, "Export", "", au_view},
      {au, "GetDoraMetrics", "start_time { seconds: 1 }", au_view},
      {au, "GetDeployedState", "", au_view},
      {au, "ListChanges", "start_time { seconds: 1 }", au_view},
      // Notifier
      {no, "CreateSubscription", "", admin_all},
      {no, "DeleteSubscription", "name: 'no-such-subscription'", admin_all},
      {no, "ListSubscriptions", "", au_view},
      {no, "ListDeliveries", "", au_view},
      {no, "TestSubscription", "name: 'no-such-subscription'", admin_all},
  };
}

// A caller of the matrix.
struct Caller {
  std::string name;
  std::string token;    // bearer token; "" for none
  std::string service;  // client certificate of this Ferry service; "" for none
  std::string role;     // policy role ("" for none)
  // The glob of the role's environments; "" = every environment.
  std::string role_environment = "";
  // The glob of the role's applications; "" = every application.
  std::string role_application = "";
};

const char* grpc_status_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "?";
  }
}

enum class Expect { kAllowed, kUnauthenticated, kPermissionDenied };

bool RoleGrants(const std::string& role, const std::string& permission) {
  if (role == "admin") return true;
  if (permission == "view") return role == "viewer" || role == "operator" || role == "approver" || role == "ci";
  if (permission == "operate") return role == "operator";
  if (permission == "report-checks") return role == "ci";
  if (permission == "approve") return role == "approver";
  return false;
}

Expect Expected(const Caller& c, const Need& need) {
  if (c.token.empty() && c.service.empty()) return Expect::kUnauthenticated;
  if (c.name == "bad-token") return Expect::kUnauthenticated;
  if (need.permission == "authenticated") return Expect::kAllowed;
  if (!c.service.empty()) {
    bool listed = std::find(need.services.begin(), need.services.end(), c.service) != need.services.end();
    return listed ? Expect::kAllowed : Expect::kPermissionDenied;
  }
  if (need.permission.empty() || c.role.empty()) return Expect::kPermissionDenied;
  if (!RoleGrants(c.role, need.permission)) return Expect::kPermissionDenied;
  if (need.also_approve && !RoleGrants(c.role, "approve")) return Expect::kPermissionDenied;
  // Globs, even one matching every name, do not cover a scope with no
  // environment or no application.
  if (!c.role_application.empty()) {
    if (need.environment == "*" || need.application == "*") return Expect::kPermissionDenied;
    if (!need.environment.empty() && ::fnmatch(c.role_application.c_str(), "web", 0) != 0) {
      return Expect::kPermissionDenied;
    }
  }
  if (!c.role_environment.empty()) {
    if (need.environment == "*") return Expect::kPermissionDenied;
    if (!need.environment.empty() && ::fnmatch(c.role_environment.c_str(), need.environment.c_str(), 0) != 0) {
      return Expect::kPermissionDenied;
    }
  }
  return Expect::kAllowed;
}

const char* Name(Expect e) {
  switch (e) {
    case Expect::kAllowed: return "allowed";
    case Expect::kUnauthenticated: return "UNAUTHENTICATED";
    case Expect::kPermissionDenied: return "PERMISSION_DENIED";
  }
  return "?";
}

std::string ProcessOf(const std::string& service) {
  if (service == v1::RepoWatcher::service_full_name()) return "repo-watcher";
  if (service == v1::Deployer::service_full_name()) return "deployer";
  if (service == v1::Audit::service_full_name()) return "audit";
  if (service == v1::Notifier::service_full_name()) return "notifier";
  return "planner";  // Planner and Access
}

// Calls `method` with `request` on `channel`: a unary call, or a server
// stream read up to its first message (then OK) or its status. An allowed
// stream may stay open without a message, so it is given `stream_deadline`
// (DEADLINE_EXCEEDED is neither refusal; a late refusal still shows in the
// denial counters checked below); a call expected to be refused gets the
// unary deadline, since a loaded machine may take longer than a short
// deadline to answer it.
grpc::Status Call(grpc::Channel* channel, const google::protobuf::MethodDescriptor* method,
                  const google::protobuf::Message& request, const std::string& token,
                  absl::Duration stream_deadline) {
  const std::string path = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  google::protobuf::MessageFactory* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<google::protobuf::Message> response(factory->GetPrototype(method->output_type())->New());
  if (!method->server_streaming()) {
    auto ctx = SecureSuite::Context(token, absl::Seconds(30));
    return grpc::internal::BlockingUnaryCall<google::protobuf::Message, google::protobuf::Message>(
        channel, grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC), ctx.get(), request,
        response.get());
  }
  auto ctx = SecureSuite::Context(token, stream_deadline);
  std::unique_ptr<grpc::ClientReader<google::protobuf::Message>> reader(
      grpc::internal::ClientReaderFactory<google::protobuf::Message>::Create(
          channel, grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING), ctx.get(),
          request));
  if (reader->Read(response.get())) {
    ctx->TryCancel();
    (void)reader->Finish();
    return grpc::Status::OK;
  }
  return reader->Finish();
}

TEST(AccessMatrixTest, EveryRpcAnswersEveryCallerAsDocsSecurityMdSays) {
  const absl::Time started = absl::Now();
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  ASSERT_TRUE(suite.Seed()) << suite.Logs();

  std::vector<Caller> callers = {
      {"anonymous", "", "", ""},
      {"bad-token", "ferry_0123456789ab_" + std::string(43, 'A'), "", ""},
      {"nobody", suite.CreateToken("nobody"), "", ""},
      {"viewer", suite.CreateToken("viewer"), "", "viewer"},
      {"operator", suite.CreateToken("operator"), "", "operator"},
      {"approver", suite.CreateToken("approver"), "", "approver", "prod"},
      {"admin", suite.admin_token(), "", "admin"},
      {"ci", suite.CreateToken("ci"), "", "ci"},
      {"prod-admin", suite.CreateToken("prod-admin"), "", "admin", "prod"},
      {"glob-admin", suite.CreateToken("glob-admin"), "", "admin", "?*", "?*"},
  };
  for (const char* s : {"repo-watcher", "planner", "deployer", "audit", "notifier"}) {
    callers.push_back({absl::StrCat("service:", s), "", s, ""});
  }
  for (const Caller& c : callers) {
    if (c.name != "anonymous" && c.service.empty()) {
      ASSERT_FALSE(c.token.empty()) << c.name;
    }
  }

  // Every RPC of the six services has a row, and every row an RPC.
  const std::vector<Row> table = Table();
  // (Touching a message of each file links its descriptors into the pool.)
  for (const google::protobuf::Descriptor* d :
       {v1::CreateRepositoryRequest::descriptor(), v1::CreateApplicationRequest::descriptor(),
        v1::WhoAmIRequest::descriptor(), v1::GetDeploymentRequest::descriptor(), v1::AppendRequest::descriptor(),
        v1::ListDeliveriesRequest::descriptor()}) {
    ASSERT_NE(d, nullptr);
  }
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  std::set<std::string> rows;
  for (const Row& r : table) rows.insert(r.service + "/" + r.rpc);
  std::set<std::string> rpcs;
  for (const std::string name : {v1::RepoWatcher::service_full_name(), v1::Planner::service_full_name(),
                                  v1::Access::service_full_name(), v1::Deployer::service_full_name(),
                                  v1::Audit::service_full_name(), v1::Notifier::service_full_name()}) {
    const google::protobuf::ServiceDescriptor* svc = pool->FindServiceByName(name);
    ASSERT_NE(svc, nullptr) << name;
    for (int i = 0; i < svc->method_count(); ++i) rpcs.insert(name + "/" + svc->method(i)->name());
  }
  for (const std::string& rpc : rpcs) EXPECT_TRUE(rows.count(rpc)) << rpc << " has no row in the table";
  for (const std::string& row : rows) EXPECT_TRUE(rpcs.count(row)) << row << " is not an RPC";

  // The requests.
  struct Prepared {
    const Row* row;
    const google::protobuf::MethodDescriptor* method;
    std::unique_ptr<google::protobuf::Message> request;
  };
  std::vector<Prepared> calls;
  for (const Row& r : table) {
    const google::protobuf::MethodDescriptor* m = pool->FindMethodByName(r.service + "." + r.rpc);
    ASSERT_NE(m, nullptr) << r.service << "." << r.rpc;
    std::unique_ptr<google::protobuf::Message> req(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(m->input_type())->New());
    std::string text = absl::StrReplaceAll(
        r.request,
        {{"$HEAD", suite.head()}, {"$STAGING_PLAN", suite.staging_plan()}, {"$PROD_PLAN", suite.prod_plan()}});
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, req.get())) << r.rpc << ": " << text;
    calls.push_back({&r, m, std::move(req)});
  }

  // Each caller in its own thread, through its own channels.
  struct Outcome {
    std::string caller, rpc, request;
    Expect expected;
    grpc::Status status;
  };
  std::vector<std::vector<Outcome>> outcomes(callers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < callers.size(); ++i) {
    threads.emplace_back([&, i] {
      const Caller& c = callers[i];
      std::map<std::string, std::shared_ptr<grpc::Channel>> channels;
      for (const char* p : {"repo-watcher", "planner", "deployer", "audit", "notifier"}) {
        channels[p] = c.service.empty() ? suite.UserChannel(p) : suite.ServiceChannel(p, c.service);
      }
      for (const Prepared& call : calls) {
        const Expect expected = Expected(c, call.row->need);
        grpc::Status s = Call(channels[ProcessOf(call.row->service)].get(), call.method, *call.request, c.token,
                              expected == Expect::kAllowed ? absl::Milliseconds(1500) : absl::Seconds(30));
        outcomes[i].push_back({c.name, call.row->service + "/" + call.row->rpc, call.request->ShortDebugString(),
                               expected, s});
      }
    });
  }
  for (std::thread& t : threads) t.join();

  int checked = 0;
  for (const auto& per_caller : outcomes) {
    for (const Outcome& o : per_caller) {
      ++checked;
      const grpc::StatusCode code = o.status.error_code();
      const std::string where =
          absl::StrCat(o.caller, " calling ", o.rpc, " {", o.request, "}: expected ", Name(o.expected), ", got ",
                       Describe(o.status));
      switch (o.expected) {
        case Expect::kAllowed:
          EXPECT_NE(code, grpc::StatusCode::UNAUTHENTICATED) << where;
          EXPECT_NE(code, grpc::StatusCode::PERMISSION_DENIED) << where;
          break;
        case Expect::kUnauthenticated:
          EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED) << where;
          break;
        case Expect::kPermissionDenied:
          EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED) << where;
          // A refusal names what was missing and never a secret.
          for (const Caller& c : callers) {
            if (!c.token.empty()) {
              EXPECT_EQ(o.status.error_message().find(c.token.substr(19)), std::string::npos) << where;
            }
          }
          break;
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(callers.size() * table.size()));

  // Every refusal is counted in ferry_access_denied_total{rpc,code} of the
  // service that refused it (and nothing else was refused meanwhile: the
  // services' own calls to each other are all allowed).
  std::map<std::string, std::map<std::string, double>> expected_denials;  // process -> "rpc code" -> count
  for (const auto& per_caller : outcomes) {
    for (size_t r = 0; r < per_caller.size(); ++r) {
      const Outcome& o = per_caller[r];
      if (o.expected == Expect::kAllowed) continue;
      expected_denials[ProcessOf(table[r].service)]
                      [absl::StrCat(table[r].rpc, " ", grpc_status_name(o.status.error_code()))] += 1;
    }
  }
  for (const char* p : {"repo-watcher", "planner", "deployer", "audit", "notifier"}) {
    httplib::Client metrics("127.0.0.1", suite.process(p).metrics_port());
    auto res = metrics.Get("/metrics");
    ASSERT_TRUE(res) << p;
    std::map<std::string, double> counted;
    for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
      if (!absl::StartsWith(line, "ferry_access_denied_total{")) continue;
      double v = 0;
      ASSERT_TRUE(absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) << line;
      auto label = [&](const std::string& name) {
        size_t at = line.find(name + "=\"");
        if (at == absl::string_view::npos) return std::string();
        at += name.size() + 2;
        return std::string(line.substr(at, line.find('"', at) - at));
      };
      counted[absl::StrCat(label("rpc"), " ", label("code"))] += v;
    }
    EXPECT_EQ(counted, expected_denials[p]) << p << "'s ferry_access_denied_total";
    for (const auto& [key, n] : counted) {
      if (expected_denials[p][key] != n) ADD_FAILURE() << p << ": " << key << " counted " << n << ", refused " << expected_denials[p][key];
    }
  }

  // The matrix as run, for the log: a row per call, the status code each caller got.
  std::string header = "rpc";
  for (const Caller& c : callers) absl::StrAppend(&header, " | ", c.name);
  std::cerr << header << "\n";
  for (size_t r = 0; r < table.size(); ++r) {
    std::string line = absl::StrCat(table[r].service, "/", table[r].rpc);
    for (size_t i = 0; i < callers.size(); ++i) {
      absl::StrAppend(&line, " | ", grpc_status_name(outcomes[i][r].status.error_code()));
    }
    std::cerr << line << "\n";
  }
  std::cerr << "checked " << checked << " calls (" << table.size() << " rows x " << callers.size()
            << " callers) in " << absl::FormatDuration(absl::Now() - started) << "\n";
}

// The deployer's own call after an operator's Unpin (Planner.RefreshApplication,
// on the operator's behalf) is allowed: it was refused with PERMISSION_DENIED
// and dropped with a log line, so the unpinned application was not refreshed.
TEST(AccessMatrixTest, TheDeployersRefreshAfterAnUnpinIsAllowed) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  ASSERT_TRUE(suite.Seed()) << suite.Logs();
  const std::string op = suite.CreateToken("operator");
  auto deployer = suite.Deployer();
  v1::PinRequest pin;
  pin.set_application_id("web");
  pin.set_environment_id("staging");
  pin.set_sha(suite.head());
  v1::PinResponse pinned;
  grpc::Status s = deployer->Pin(SecureSuite::Context(op).get(), pin, &pinned);
  ASSERT_TRUE(s.ok()) << Describe(s);
  v1::UnpinRequest unpin;
  unpin.set_application_id("web");
  unpin.set_environment_id("staging");
  v1::UnpinResponse unpinned;
  s = deployer->Unpin(SecureSuite::Context(op).get(), unpin, &unpinned);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // Unpin refreshes before it returns: nothing was refused meanwhile.
  httplib::Client metrics("127.0.0.1", suite.process("planner").metrics_port());
  auto res = metrics.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_FALSE(absl::StrContains(res->body, "ferry_access_denied_total{")) << res->body;
  EXPECT_FALSE(absl::StrContains(suite.process("deployer").Log(), "planner refresh after unpin failed"))
      << suite.Logs();
}

}  // namespace
}  // namespace ferry
