#pragma once

#include <memory>
#include <optional>

#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "common/auth/access_control.h"
#include "common/auth/api_tokens.h"
#include "common/auth/authenticator.h"
#include "common/auth/denial_auditor.h"
#include "common/auth/jwt_verifier.h"
#include "common/auth/policy_file.h"
#include "common/clock/clock.h"
#include "common/config/service_config.h"
#include "common/postgres/connection_pool.h"

namespace ferry::server {

// One service's access control, built from the common flags in main.cc and
// installed for every handler (server::InstallAccessControl):
//
//   auto access = server::AccessSetup::Create(config, pool, &clock, &runner.registry(), sink);
//   planner::AddPlannerRules(*(*access)->access, &planner);
//
// With --insecure-no-auth it is the disabled access control, said loudly.
// Otherwise --access-policy-file is required (re-read when it changes and on
// SIGHUP); API tokens are verified when --token-key-file is given; OIDC
// issuers are the policy's. Refusals go to `denials_sink` as ACCESS_DENIED
// events, rate-limited per principal.
struct AccessSetup {
  std::unique_ptr<auth::FilePolicySource> policy;
  std::optional<auth::ApiTokens> tokens;
  std::unique_ptr<auth::JwtVerifier> jwt;
  std::unique_ptr<auth::Authenticator> authenticator;
  std::unique_ptr<auth::DenialAuditor> denials;
  std::unique_ptr<auth::AccessControl> access;

  static absl::StatusOr<std::unique_ptr<AccessSetup>> Create(const config::ServiceConfig& config,
                                                             postgres::ConnectionPool* pool, const WaitableClock* clock,
                                                             prometheus::Registry* registry,
                                                             auth::DenialAuditor::EventSink denials_sink,
                                                             outbox::OutboxStore* token_outbox = nullptr);

  // Re-reads the policy file now (SIGHUP). No-op when disabled.
  void ReloadPolicy();

  ~AccessSetup();
};

}  // namespace ferry::server
