#include "cli/connection.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"

namespace ferry::cli {
namespace {

std::string ReadAll(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::shared_ptr<grpc::Channel> Connection::ChannelFor(const std::string& service) {
  const std::string address = context_.config.AddressOf(service);
  auto it = channels_.find(address);
  if (it != channels_.end()) return it->second;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (context_.config.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions options;
    if (!context_.config.ca_file.empty()) {
      bool ok = false;
      options.pem_root_certs = ReadAll(context_.config.ca_file, &ok);
      // An unreadable CA file fails the handshake; Error() names the file.
    }
    creds = grpc::SslCredentials(options);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, creds, args);
  channels_[address] = channel;
  return channel;
}

v1::Planner::Stub& Connection::Planner() {
  if (!planner_) planner_ = v1::Planner::NewStub(ChannelFor("planner"));
  return *planner_;
}
v1::Access::Stub& Connection::Access() {
  if (!access_) access_ = v1::Access::NewStub(ChannelFor("planner"));
  return *access_;
}
v1::Deployer::Stub& Connection::Deployer() {
  if (!deployer_) deployer_ = v1::Deployer::NewStub(ChannelFor("deployer"));
  return *deployer_;
}
v1::RepoWatcher::Stub& Connection::RepoWatcher() {
  if (!repo_watcher_) repo_watcher_ = v1::RepoWatcher::NewStub(ChannelFor("repo-watcher"));
  return *repo_watcher_;
}
v1::Audit::Stub& Connection::Audit() {
  if (!audit_) audit_ = v1::Audit::NewStub(ChannelFor("audit"));
  return *audit_;
}
v1::Notifier::Stub& Connection::Notifier() {
  if (!notifier_) notifier_ = v1::Notifier::NewStub(ChannelFor("notifier"));
  return *notifier_;
}

std::unique_ptr<grpc::ClientContext> Connection::Call(absl::Duration deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!context_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + context_.token);
  absl::Duration d = deadline == absl::ZeroDuration() ? timeout_ : deadline;
  if (d != absl::InfiniteDuration()) ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
  return ctx;
}

absl::Status Connection::Error(const std::string& service, const std::string& what, const grpc::Status& status) const {
  const std::string address = context_.config.AddressOf(service);
  const std::string where = context_.name.empty() ? "" : absl::StrCat(" (context ", context_.name, ")");
  const std::string msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: {
      std::string hint = "is Ferry running there? `ferry context show` says where ferry connects; `make up` starts a local suite";
      if (absl::StrContains(msg, "ssl") || absl::StrContains(msg, "SSL") || absl::StrContains(msg, "handshake") ||
          absl::StrContains(msg, "certificate")) {
        hint = context_.config.ca_file.empty()
                   ? "the server's certificate is not trusted: give its CA with `ferry login --ca-file CA` or --ca-file"
                   : absl::StrCat("the TLS handshake failed: is ", context_.config.ca_file,
                                  " the CA that signed the server's certificate (and readable)?");
      }
      return absl::UnavailableError(absl::StrCat("cannot ", what, ": the ", service, " at ", address, where,
                                                 " does not answer (", msg, "): ", hint));
    }
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(absl::StrCat(
          "cannot ", what, ": the ", service, " at ", address, " did not accept ",
          context_.token.empty() ? "a call without a token" : "your token", where, " (", msg,
          "): run `ferry login ", context_.config.AddressOf("planner"),
          " --token-file FILE` with a valid token (an admin makes one with `ferry token create`)"));
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::PermissionDeniedError(
          absl::StrCat("cannot ", what, ": ", msg,
                       ". `ferry whoami` shows who the server takes you for; an admin grants a role in the access "
                       "policy (docs/security.md)"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat("cannot ", what, ": the ", service, " at ", address,
                                                      " did not answer in time (", msg,
                                                      "); try again, or a longer --request-timeout"));
    case grpc::StatusCode::CANCELLED:
      return absl::CancelledError(absl::StrCat(what, ": cancelled"));
    default:
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()), absl::StrCat("cannot ", what, ": ", msg));
  }
}

}  // namespace ferry::cli
