#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "common/auth/authenticator.h"
#include "common/auth/policy.h"
#include "common/auth/principal.h"

namespace ferry::auth {

// Where a request acts, for scoped permissions: from its own fields, or
// looked up (a plan id → the plan's application and environment). NOT_FOUND
// and other errors are returned to the caller as they are.
using ScopeOf = std::function<absl::StatusOr<Scope>(const google::protobuf::Message& request)>;

// The access rule of one RPC, keyed by its request type
// ("ferry.v1.ApprovePlanRequest"; every RPC of the suite has its own).
struct Rule {
  // Public: anyone, even unauthenticated (none of the suite's RPCs today;
  // health and reflection are not Ferry RPCs and are always open).
  bool open = false;
  // Any authenticated principal, whatever its bindings (WhoAmI).
  bool any_authenticated = false;
  // The permission a user needs, at the scope `scope` gives; ignored when
  // `services_only`.
  Permission permission = Permission::kAdmin;
  ScopeOf scope;  // null: Scope::Any() for kView, Scope::Global() otherwise
  // Ferry services that may call it whatever the policy says
  // ("deployer", ...).
  std::vector<std::string> services;
  // Only `services` may call it; no user role grants it.
  bool services_only = false;
};

// Records refusals: an ACCESS_DENIED audit event (rate-limited per principal
// by the implementation) and a metric. Thread-safe.
class DenialRecorder {
 public:
  virtual ~DenialRecorder() = default;
  virtual void Denied(const Principal& who, const std::string& rpc, const absl::Status& refusal) = 0;
};

// The decision every Ferry RPC goes through (server::Handle calls it):
// authenticate, find the request type's rule, check it against the policy in
// force, and record refusals. Default deny: a request type without a rule is
// refused (PERMISSION_DENIED "no access rule for ...").
//
// Refusals are UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED
// naming the permission and scope that were missing ("operate on application
// web in environment prod"), never a secret.
//
// Disabled() makes the access control of --insecure-no-auth: every call is
// allowed, as the user "anonymous" (or the service its certificate names).
class AccessControl {
 public:
  AccessControl(const Authenticator* authenticator, const PolicySource* policy, DenialRecorder* denials,
                prometheus::Registry* registry);
  static std::unique_ptr<AccessControl> Disabled(const Authenticator* authenticator = nullptr);

  // Adds (or replaces) the rule of one request type. Call before serving.
  void AddRule(const std::string& request_type, Rule rule);

  // The principal the call acts as, or the refusal.
  absl::StatusOr<Principal> Authorize(const CallCredentials& call, const google::protobuf::Message& request) const;

  // A scoped check inside a handler, where the scope is known only then.
  // PERMISSION_DENIED as above (and recorded) when not allowed.
  absl::Status Check(const Principal& who, Permission permission, const Scope& scope, const std::string& rpc) const;

  // The policy in force (separation of duties); null when disabled.
  std::shared_ptr<const Policy> policy() const;

  bool enabled() const { return enabled_; }

 private:
  AccessControl() = default;
  absl::Status Deny(const Principal& who, const std::string& rpc, absl::Status refusal) const;

  bool enabled_ = false;
  const Authenticator* authenticator_ = nullptr;
  const PolicySource* policy_ = nullptr;
  DenialRecorder* denials_ = nullptr;
  prometheus::Family<prometheus::Counter>* decisions_ = nullptr;
  std::map<std::string, Rule> rules_;
};

}  // namespace ferry::auth
