#pragma once

// How the ferry command talks to Ferry: one channel per service address
// (TLS trusting the context's CA, or plaintext for insecure suites), the
// bearer token on every call, a deadline, and gRPC errors turned into
// messages that say what to do next.

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/cli_config.h"
#include "ferry/v1/access.grpc.pb.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "ferry/v1/notifier.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"

namespace ferry::cli {

class Connection {
 public:
  Connection(ResolvedContext context, absl::Duration timeout) : context_(std::move(context)), timeout_(timeout) {}

  const ResolvedContext& context() const { return context_; }

  v1::Planner::Stub& Planner();
  v1::Access::Stub& Access();
  v1::Deployer::Stub& Deployer();
  v1::RepoWatcher::Stub& RepoWatcher();
  v1::Audit::Stub& Audit();
  v1::Notifier::Stub& Notifier();

  // A context with the token and the command's deadline (`deadline` when
  // given; absl::InfiniteDuration() for streams that follow until stopped).
  std::unique_ptr<grpc::ClientContext> Call(absl::Duration deadline = absl::ZeroDuration()) const;

  // A failed call as an absl::Status whose message names the service, the
  // address and what to do (log in again, ask for a role, start Ferry).
  absl::Status Error(const std::string& service, const std::string& what, const grpc::Status& status) const;

 private:
  std::shared_ptr<grpc::Channel> ChannelFor(const std::string& service);

  ResolvedContext context_;
  absl::Duration timeout_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // by address
  std::unique_ptr<v1::Planner::Stub> planner_;
  std::unique_ptr<v1::Access::Stub> access_;
  std::unique_ptr<v1::Deployer::Stub> deployer_;
  std::unique_ptr<v1::RepoWatcher::Stub> repo_watcher_;
  std::unique_ptr<v1::Audit::Stub> audit_;
  std::unique_ptr<v1::Notifier::Stub> notifier_;
};

// RPC results: `RPC(conn, "planner", "get application hello", Planner().GetApplication(ctx, req, &out))`
// style helpers are spelled out in the commands; this one checks a status.
#define FERRY_RPC(conn, service, what, call)                                \
  do {                                                                      \
    ::grpc::Status ferry_rpc_status_ = (call);                              \
    if (!ferry_rpc_status_.ok()) return (conn).Error(service, what, ferry_rpc_status_); \
  } while (0)

}  // namespace ferry::cli
