#include "common/auth/access_control.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ferry::auth {
namespace {

// "ferry.v1.ApprovePlanRequest" -> "ApprovePlan": how refusals, metrics and
// audit events name the call (every request type belongs to one RPC).
std::string RpcOf(const google::protobuf::Message& request) {
  absl::string_view name = request.GetDescriptor()->name();
  absl::ConsumeSuffix(&name, "Request");
  return std::string(name);
}

std::string Describe(const Scope& scope) {
  if (scope.any) return "";
  std::string where;
  if (!scope.application.empty()) absl::StrAppend(&where, " on application '", scope.application, "'");
  if (!scope.environment.empty()) absl::StrAppend(&where, " in environment '", scope.environment, "'");
  if (where.empty()) where = " on every application and environment";
  return where;
}

}  // namespace

AccessControl::AccessControl(const Authenticator* authenticator, const PolicySource* policy, DenialRecorder* denials,
                             prometheus::Registry* registry)
    : enabled_(true), authenticator_(authenticator), policy_(policy), denials_(denials) {
  if (registry != nullptr) {
    decisions_ = &prometheus::BuildCounter()
                      .Name("ferry_access_decisions_total")
                      .Help("Access decisions by RPC and outcome (allowed, unauthenticated, denied).")
                      .Register(*registry);
  }
}

std::unique_ptr<AccessControl> AccessControl::Disabled(const Authenticator* authenticator) {
  std::unique_ptr<AccessControl> access(new AccessControl());
  access->authenticator_ = authenticator;
  return access;
}

void AccessControl::AddRule(const std::string& request_type, Rule rule) { rules_[request_type] = std::move(rule); }

std::shared_ptr<const Policy> AccessControl::policy() const {
  return policy_ == nullptr ? nullptr : policy_->Current();
}

absl::Status AccessControl::Deny(const Principal& who, const std::string& rpc, absl::Status refusal) const {
  if (decisions_ != nullptr) {
    decisions_->Add({{"rpc", rpc}, {"decision", absl::IsUnauthenticated(refusal) ? "unauthenticated" : "denied"}})
        .Increment();
  }
  if (denials_ != nullptr) denials_->Denied(who, rpc, refusal);
  return refusal;
}

absl::StatusOr<Principal> AccessControl::Authorize(const CallCredentials& call,
                                                   const google::protobuf::Message& request) const {
  if (!enabled_) {
    // --insecure-no-auth: everyone is let in; services are still told apart
    // by their certificates when TLS is on.
    if (!call.peer_service.empty()) {
      Principal p = ServicePrincipal(call.peer_service);
      p.acting_for = call.on_behalf_of;
      return p;
    }
    return UserPrincipal("anonymous");
  }
  const std::string rpc = RpcOf(request);
  absl::StatusOr<Principal> who = authenticator_->Authenticate(call);
  if (!who.ok()) {
    return Deny(Principal{}, rpc,
                absl::UnauthenticatedError(absl::StrCat(rpc, ": ", who.status().message())));
  }
  auto it = rules_.find(request.GetDescriptor()->full_name());
  if (it == rules_.end()) {
    return Deny(*who, rpc, absl::PermissionDeniedError(absl::StrCat(rpc, ": no access rule for this call")));
  }
  const Rule& rule = it->second;
  if (rule.open) return who;
  if (who->kind == PrincipalKind::kAnonymous) {
    return Deny(*who, rpc,
                absl::UnauthenticatedError(absl::StrCat(
                    rpc, " needs credentials: a bearer token (authorization: Bearer ...) or a Ferry service "
                         "certificate")));
  }
  if (rule.any_authenticated) return who;
  if (who->kind == PrincipalKind::kService) {
    for (const std::string& s : rule.services) {
      if (s == who->id) {
        if (decisions_ != nullptr) decisions_->Add({{"rpc", rpc}, {"decision", "allowed"}}).Increment();
        return who;
      }
    }
  }
  if (rule.services_only) {
    std::string allowed;
    for (const std::string& s : rule.services) absl::StrAppend(&allowed, allowed.empty() ? "" : ", ", s);
    return Deny(*who, rpc,
                absl::PermissionDeniedError(absl::StrCat(rpc, " is only for the Ferry services ", allowed, "; ",
                                                         SubjectOf(*who), " is not one of them")));
  }
  std::shared_ptr<const Policy> policy = policy_->Current();
  // The permission must be held somewhere before the scope is looked up, so
  // that a caller with no right at all learns nothing about what exists.
  if (policy == nullptr || !policy->Allows(*who, rule.permission, Scope::Any())) {
    return Deny(*who, rpc,
                absl::PermissionDeniedError(absl::StrCat(rpc, " needs permission '", PermissionName(rule.permission),
                                                         "'; ", SubjectOf(*who), " has it nowhere")));
  }
  Scope scope = rule.permission == Permission::kView ? Scope::Any() : Scope::Global();
  if (rule.scope) {
    absl::StatusOr<Scope> resolved = rule.scope(request);
    if (!resolved.ok()) return resolved.status();
    scope = std::move(*resolved);
  }
  if (!policy->Allows(*who, rule.permission, scope)) {
    return Deny(*who, rpc,
                absl::PermissionDeniedError(absl::StrCat(rpc, " needs permission '", PermissionName(rule.permission),
                                                         "'", Describe(scope), "; ", SubjectOf(*who),
                                                         " does not have it there")));
  }
  if (decisions_ != nullptr) decisions_->Add({{"rpc", rpc}, {"decision", "allowed"}}).Increment();
  return who;
}

absl::Status AccessControl::Check(const Principal& who, Permission permission, const Scope& scope,
                                  const std::string& rpc) const {
  if (!enabled_) return absl::OkStatus();
  std::shared_ptr<const Policy> policy = policy_->Current();
  if (policy != nullptr && policy->Allows(who, permission, scope)) return absl::OkStatus();
  return Deny(who, rpc,
              absl::PermissionDeniedError(absl::StrCat(rpc, " needs permission '", PermissionName(permission), "'",
                                                       Describe(scope), "; ", SubjectOf(who),
                                                       " does not have it there")));
}

}  // namespace ferry::auth
