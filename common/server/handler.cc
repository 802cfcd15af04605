#include "common/server/handler.h"

#include <atomic>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/auth/tls.h"
#include "common/status/nul_free.h"

namespace ferry::server {
namespace {

std::atomic<const auth::AccessControl*> installed{nullptr};

std::string Metadata(const grpc::ServerContextBase& context, const char* key) {
  auto it = context.client_metadata().find(key);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

void InstallAccessControl(const auth::AccessControl* access) { installed.store(access); }

const auth::AccessControl* InstalledAccessControl() { return installed.load(); }

auth::CallCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  auth::CallCredentials call;
  std::shared_ptr<const grpc::AuthContext> auth_context = context.auth_context();
  if (auth_context != nullptr) call.peer_service = auth::PeerServiceOf(*auth_context);
  std::string authorization = Metadata(context, "authorization");
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.size() > 7 && absl::StartsWithIgnoreCase(value, "bearer ")) {
    call.bearer = std::string(absl::StripAsciiWhitespace(value.substr(7)));
  }
  call.on_behalf_of = Metadata(context, "x-ferry-on-behalf-of");
  return call;
}

absl::StatusOr<auth::Principal> Authorize(const grpc::ServerContextBase& context,
                                          const google::protobuf::Message& request) {
  const auth::AccessControl* access = installed.load();
  if (access == nullptr) return auth::UserPrincipal("anonymous");
  return access->Authorize(CredentialsOf(context), request);
}

absl::Status CheckPermission(const auth::Principal& caller, auth::Permission permission, const auth::Scope& scope,
                             const std::string& rpc) {
  const auth::AccessControl* access = installed.load();
  if (access == nullptr) return absl::OkStatus();
  return access->Check(caller, permission, scope, rpc);
}

absl::Status CheckRequest(const google::protobuf::Message& request) { return RejectNulInStrings(request); }

std::string HandlerName(const google::protobuf::Message& request) {
  return "handler " + request.GetDescriptor()->full_name();
}

}  // namespace ferry::server
