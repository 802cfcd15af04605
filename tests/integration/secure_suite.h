#pragma once

// The four real Ferry binaries with access control on, as `make up` runs
// them: TLS on every port with scripts/ferry-certs' certificates, a token
// key, an access policy file and a bootstrap admin token. For the tests of
// docs/security.md (access_matrix_test, access_attacks_test).

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ferry/v1/access.grpc.pb.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "ferry/v1/notifier.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::testing {

// Bindings of the principals the tests use: viewer, operator, admin
// everywhere; approver and prod-admin (role admin) of `prod` only;
// glob-admin (role admin) of environments and applications "?*", which match
// every name but do not cover what belongs to none; anyone else ("nobody")
// nothing.
extern const char kBasePolicy[];

class SecureSuite {
 public:
  SecureSuite();
  ~SecureSuite();

  // Writes `policy` (YAML) to the policy file, atomically (new file renamed
  // over the old one).
  void WritePolicy(const std::string& policy);
  const std::string& policy_path() const { return policy_path_; }
  const std::string& dir() const { return dir_; }

  // Starts audit, repo-watcher, planner, deployer and notifier; false (and test
  // failures) when one does not come up. Writes kBasePolicy first unless
  // WritePolicy was called.
  bool Start();

  // Stops the planner and starts it again with the same flags (same port).
  bool RestartPlanner();

  // The services, by name ("planner").
  ServiceProcess& process(const std::string& service);

  // A channel as a person's tool: the suite's CA, no client certificate.
  std::shared_ptr<grpc::Channel> UserChannel(const std::string& service);
  // A channel presenting `cert_of`'s certificate (a Ferry service's).
  std::shared_ptr<grpc::Channel> ServiceChannel(const std::string& service, const std::string& cert_of);

  // A client context carrying `authorization: Bearer <token>` (none when
  // empty) and a deadline.
  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token,
                                                      absl::Duration deadline = absl::Seconds(20));

  const std::string& admin_token() const { return admin_token_; }
  // A token created by ferry.v1.Access/CreateToken as admin; "" (and a test
  // failure) on error.
  std::string CreateToken(const std::string& subject, const std::vector<std::string>& groups = {},
                          int64_t ttl_seconds = 0, v1::Token* token = nullptr);

  // A Git repository `config` registered as admin, with environments
  // `staging` and `prod` (manual approval, host targets under dir()) and the
  // application `web` in both, applied from its ferry.yaml; then one PENDING
  // plan of `web` per environment, requested by admin. False on failure.
  bool Seed();
  // Commits a new greeting for `web` (after Seed), pushes it and waits until
  // the repo-watcher has it; returns the commit.
  std::string CommitGreeting(const std::string& text);
  // Commits `files` (path -> content) after Seed, pushes and waits until the
  // repo-watcher has it; returns the commit.
  std::string CommitFiles(const std::map<std::string, std::string>& files, const std::string& message);
  // The file holding the admin token.
  const std::string& admin_token_path() const { return admin_token_path_; }
  // Waits until the plan reaches `state`; false on timeout.
  bool WaitForPlan(const std::string& id, v1::PlanState state, absl::Duration timeout = absl::Seconds(60));
  const std::string& head() const { return head_; }
  const std::string& staging_plan() const { return staging_plan_; }
  const std::string& prod_plan() const { return prod_plan_; }

  // A plan, read as admin.
  v1::Plan GetPlan(const std::string& id);
  // Audit events of `action`, read as admin.
  std::vector<v1::Event> Events(v1::AuditAction action);
  // Waits up to `timeout` until `done()`; returns its last value.
  static bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20));

  // Stubs as admin would use them (user channel).
  std::unique_ptr<v1::RepoWatcher::Stub> RepoWatcher() { return v1::RepoWatcher::NewStub(UserChannel("repo-watcher")); }
  std::unique_ptr<v1::Planner::Stub> Planner() { return v1::Planner::NewStub(UserChannel("planner")); }
  std::unique_ptr<v1::Access::Stub> Access() { return v1::Access::NewStub(UserChannel("planner")); }
  std::unique_ptr<v1::Deployer::Stub> Deployer() { return v1::Deployer::NewStub(UserChannel("deployer")); }
  std::unique_ptr<v1::Audit::Stub> Audit() { return v1::Audit::NewStub(UserChannel("audit")); }

  // The logs of the services, for failure messages.
  std::string Logs();

 private:
  TestDatabase db_;
  std::string dir_;
  std::string policy_path_;
  bool policy_written_ = false;
  std::string token_key_path_;
  std::string admin_token_path_;
  std::string admin_token_;
  std::unique_ptr<ServiceProcess> audit_, watcher_, planner_, deployer_, notifier_;
  std::function<std::unique_ptr<ServiceProcess>()> start_planner_;
  std::unique_ptr<GitTestRepo> repo_;
  std::string head_, staging_plan_, prod_plan_;
};

// A status for failure messages: "CODE: message".
std::string Describe(const grpc::Status& s);

}  // namespace ferry::testing
