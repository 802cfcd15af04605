#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"

// The access policy: who may do what, where. A YAML file the operator owns
// (--access-policy-file), never read from the repositories Ferry deploys.
// docs/security.md describes the format; in short:
//
//   bindings:
//     - subjects: ["user:alice", "group:platform"]   # user:, group:, service:
//       role: approver            # viewer, operator, approver or admin
//       environments: ["prod"]    # globs; absent or ["*"]: every environment
//       applications: ["*"]       # globs; absent or ["*"]: every application
//   approvals:                    # separation of duties, per environment
//     prod:
//       required: 2               # distinct approvals before a plan is approved
//       distinct_from_author: true     # the commit's author may not approve
//       distinct_from_requester: true  # whoever requested the plan may not approve
//   oidc:                         # issuers whose JWTs are accepted
//     - issuer: https://idp.example.com
//       audience: ferry
//       jwks_file: /etc/ferry/jwks.json   # or jwks_url: https://.../jwks
//       username_claim: email     # default "sub"
//       groups_claim: groups      # default "groups"
//       clock_skew: 60s           # default 60s
//
// Default deny: a principal may do only what a binding grants it.
namespace ferry::auth {

// What an RPC needs. Roles grant permissions:
//   viewer   kView
//   operator kView, kOperate (sync, refresh, rollback, pin, unpin, drift settings)
//   approver kView, kApprove (approve or reject plans)
//   ci       kView, kReportChecks (a CI system reporting check results)
//   admin    every permission (repositories, environments, applications,
//            declarative config, tokens, policy)
enum class Permission { kView, kOperate, kApprove, kReportChecks, kAdmin };

// "view", "operate", "approve", "report-checks", "admin": how refusals and docs name them.
const char* PermissionName(Permission p);

// Where an action applies. An empty field is a resource that belongs to no
// application (or environment), such as a repository: only a binding whose
// globs for that field are "*" covers it. `any` asks whether the principal
// has the permission anywhere at all (list calls, whose results are not
// filtered per item).
struct Scope {
  std::string application;
  std::string environment;
  bool any = false;

  static Scope Any() {
    Scope s;
    s.any = true;
    return s;
  }
  static Scope Global() { return Scope{}; }
};

// Separation of duties for one environment.
struct ApprovalRule {
  int required = 1;
  bool distinct_from_author = false;
  bool distinct_from_requester = false;
};

// One trusted OIDC issuer.
struct OidcIssuer {
  std::string issuer;
  std::string audience;
  std::string jwks_file;  // exactly one of jwks_file and jwks_url
  std::string jwks_url;
  std::string username_claim = "sub";
  std::string groups_claim = "groups";
  absl::Duration clock_skew = absl::Seconds(60);
};

struct Binding {
  std::vector<std::string> subjects;  // "user:alice", "group:platform", "service:ci"
  std::string role;                   // viewer, operator, approver, ci, admin
  std::vector<std::string> applications;  // globs (* and ?); empty means ["*"]
  std::vector<std::string> environments;  // globs; empty means ["*"]
};

// The largest policy file accepted, in bytes.
inline constexpr size_t kMaxPolicyBytes = 1 << 20;

// A parsed policy. Immutable; a reload makes a new one.
class Policy {
 public:
  // Parses the YAML text; INVALID_ARGUMENT naming the file (`source`), the
  // line and the problem (unknown role, key or subject form, bad glob, a
  // required count below 1, an issuer without a JWKS, ...).
  static absl::StatusOr<std::shared_ptr<const Policy>> Parse(const std::string& text, const std::string& source);

  // Whether `p` has `permission` at `scope` through some binding (its
  // user/service subject or one of its groups). Anonymous principals have
  // nothing.
  bool Allows(const Principal& p, Permission permission, const Scope& scope) const;

  // The environment's separation-of-duties rule (required 1, no distinctness
  // when the policy names none).
  ApprovalRule ApprovalRuleFor(const std::string& environment) const;

  const std::vector<OidcIssuer>& issuers() const { return issuers_; }
  const std::vector<Binding>& bindings() const { return bindings_; }

 private:
  std::vector<Binding> bindings_;
  std::map<std::string, ApprovalRule> approvals_;
  std::vector<OidcIssuer> issuers_;
};

// The policy in force, read from a file and re-read when the file changes
// (checked every `poll`) or on Reload() (SIGHUP). A file that fails to parse
// keeps the previous policy in force and is logged with its error; at start
// (Load) it is an error. Thread-safe.
class PolicySource {
 public:
  virtual ~PolicySource() = default;
  virtual std::shared_ptr<const Policy> Current() const = 0;
};

}  // namespace ferry::auth
