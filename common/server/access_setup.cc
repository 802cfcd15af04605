#include "common/server/access_setup.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/server/handler.h"

namespace ferry::server {

absl::StatusOr<std::unique_ptr<AccessSetup>> AccessSetup::Create(const config::ServiceConfig& config,
                                                                 postgres::ConnectionPool* pool,
                                                                 const WaitableClock* clock,
                                                                 prometheus::Registry* registry,
                                                                 auth::DenialAuditor::EventSink denials_sink,
                                                                 outbox::OutboxStore* token_outbox) {
  auto setup = std::make_unique<AccessSetup>();
  if (config.insecure_no_auth) {
    logging::Warn("ACCESS CONTROL IS OFF (--insecure-no-auth): every caller may call every RPC, as 'anonymous'; "
                  "for development only",
                  {});
    setup->authenticator = std::make_unique<auth::Authenticator>(std::vector<auth::BearerVerifier*>{});
    setup->access = auth::AccessControl::Disabled(setup->authenticator.get());
    InstallAccessControl(setup->access.get());
    return setup;
  }
  if (config.access_policy_file.empty()) {
    return absl::InvalidArgumentError(
        "--access-policy-file is required: the access policy (docs/security.md; make up writes "
        ".ferry/access-policy.yaml). For development only, --insecure-no-auth turns access control off");
  }
  absl::StatusOr<std::unique_ptr<auth::FilePolicySource>> policy =
      auth::FilePolicySource::Load(config.access_policy_file, absl::Seconds(2), clock, registry);
  if (!policy.ok()) {
    return absl::Status(policy.status().code(), absl::StrCat("--access-policy-file: ", policy.status().message()));
  }
  setup->policy = std::move(*policy);
  std::vector<auth::BearerVerifier*> verifiers;
  if (!config.token_key_file.empty()) {
    absl::StatusOr<auth::ApiTokens> tokens = auth::ApiTokens::Create(config.token_key_file, pool, clock, token_outbox);
    if (!tokens.ok()) return tokens.status();
    setup->tokens = std::move(*tokens);
    verifiers.push_back(setup->tokens->verifier.get());
  } else {
    logging::Warn("API tokens are off: no --token-key-file", {});
  }
  auth::FilePolicySource* source = setup->policy.get();
  setup->jwt = std::make_unique<auth::JwtVerifier>(
      [source] {
        std::shared_ptr<const auth::Policy> p = source->Current();
        return p == nullptr ? std::vector<auth::OidcIssuer>{} : p->issuers();
      },
      clock);
  verifiers.push_back(setup->jwt.get());
  setup->authenticator = std::make_unique<auth::Authenticator>(std::move(verifiers));
  setup->denials = std::make_unique<auth::DenialAuditor>(config.service_name, std::move(denials_sink), clock, registry);
  setup->access = std::make_unique<auth::AccessControl>(setup->authenticator.get(), setup->policy.get(),
                                                        setup->denials.get(), registry);
  setup->policy->Start();
  InstallAccessControl(setup->access.get());
  logging::Info("access control on", {{"policy", config.access_policy_file},
                                      {"api_tokens", setup->tokens.has_value()},
                                      {"oidc_issuers", static_cast<int64_t>(setup->policy->Current()->issuers().size())}});
  return setup;
}

void AccessSetup::ReloadPolicy() {
  if (policy == nullptr) return;
  absl::Status reloaded = policy->Reload();
  logging::Info("SIGHUP: policy re-read", {{"ok", reloaded.ok()}, {"error", reloaded.ok() ? "" : reloaded.ToString()}});
}

AccessSetup::~AccessSetup() {
  InstallAccessControl(nullptr);
  if (policy != nullptr) policy->Stop();
}

}  // namespace ferry::server
