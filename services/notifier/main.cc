// ferry-notifier: notifications and commit statuses from the audit trail

#include <CLI/CLI.hpp>

#include <fstream>
#include <optional>
#include <sstream>

#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/outbox/audit_outbox.h"
#include "common/secrets/secret_sources.h"
#include "common/secrets/vault_flags.h"
#include "common/server/access_setup.h"
#include "common/server/service_bootstrap.h"
#include "notifier_migrations.h"
#include "services/notifier/audit_follower.h"
#include "services/notifier/curl_transports.h"
#include "services/notifier/delivery_sender.h"
#include "services/notifier/delivery_worker.h"
#include "services/notifier/event_ingester.h"
#include "services/notifier/grpc_repository_source.h"
#include "services/notifier/notifier_access.h"
#include "services/notifier/notifier_metrics.h"
#include "services/notifier/notifier_service.h"
#include "services/notifier/postgres_notifier_store.h"
#include "services/notifier/subscription_file.h"
#include "services/notifier/subscription_manager.h"

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError("--subscriptions-file: cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().size() > (1 << 20)) return absl::InvalidArgumentError("--subscriptions-file: larger than 1 MiB");
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ferry;
  server::BlockTerminationSignals();
  config::ServiceConfig config = config::DefaultsFor("notifier", 7005, 9105);
  CLI::App app{"ferry-notifier: notifications and commit statuses from the audit trail"};
  config::AddServiceFlags(app, config);
  std::string repo_watcher_address = "127.0.0.1:7001";
  std::string subscriptions_file;
  notifier::DeliveryOptions delivery;
  bool no_commit_statuses = false;
  config::AddFlag(app, "--repo-watcher-address", repo_watcher_address,
                  "the repo-watcher, asked for a repository's git_host (commit statuses)");
  app.add_flag("--no-commit-statuses", no_commit_statuses,
               "set no commit statuses (and do not ask the repo-watcher for anything)")
      ->envname(config::EnvNameFor("--no-commit-statuses"));
  config::AddFlag(app, "--subscriptions-file", subscriptions_file,
                  "YAML file of subscriptions (docs/notifier.md), applied at start: its subscriptions replace the "
                  "previous file's; API subscriptions are kept");
  config::AddFlag(app, "--max-attempts", delivery.max_attempts, "delivery attempts before a delivery is FAILED")
      ->check(CLI::Range(1, 1000));
  config::AddDurationFlag(app, "--retry-initial", delivery.retry.initial, "wait before the first retry (then doubled)");
  config::AddDurationFlag(app, "--retry-max", delivery.retry.max, "longest wait between retries");
  config::AddDurationFlag(app, "--delivery-lease", delivery.lease,
                          "how long a delivery being sent is hidden from other attempts (a notifier killed while "
                          "sending leaves it to be sent again after this)");
  config::AddDurationFlag(app, "--delivery-poll", delivery.poll, "how often due deliveries are looked for");
  secrets::SecretSourceOptions secret_options;
  secret_options.service = "notifier";
  config::AddFlag(app, "--secrets-dir", secret_options.secrets_dir,
                  "directory holding the files secret references may name (webhook URLs, HMAC keys, SMTP "
                  "passwords, Git host tokens). Empty: file references are refused");
  config::AddFlag(app, "--secret-env-prefix", secret_options.env_prefix,
                  "environment references must name a variable starting with this prefix. Empty: environment "
                  "references are refused");
  secrets::VaultFlags vault_flags;
  secrets::AddVaultFlags(app, vault_flags);
  CLI11_PARSE(app, argc, argv);
  logging::Init("notifier", config.log_level);
  if (config.migrate_only) return server::MigrateOnly(config, NotifierMigrations());
  if (delivery.retry.initial <= absl::ZeroDuration() || delivery.retry.max < delivery.retry.initial ||
      delivery.lease <= absl::ZeroDuration() || delivery.poll <= absl::ZeroDuration()) {
    logging::Error("cannot start", {{"error", "--retry-initial, --delivery-lease and --delivery-poll must be "
                                              "positive and --retry-max at least --retry-initial"}});
    return 1;
  }
  std::vector<v1::Subscription> configured;
  if (!subscriptions_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(subscriptions_file);
    absl::StatusOr<std::vector<v1::Subscription>> parsed =
        text.ok() ? notifier::ParseSubscriptionFile(*text, subscriptions_file)
                  : absl::StatusOr<std::vector<v1::Subscription>>(text.status());
    if (!parsed.ok()) {
      logging::Error("cannot start", {{"error", parsed.status().ToString()}});
      return 1;
    }
    configured = *std::move(parsed);
  }
  absl::StatusOr<server::Infrastructure> infra = server::Bootstrap(config, NotifierMigrations());
  if (!infra.ok()) {
    logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  SystemClock clock;
  absl::StatusOr<std::unique_ptr<secrets::VaultKvClient>> vault = secrets::MakeVaultClient(vault_flags, &clock);
  if (!vault.ok()) {
    logging::Error("cannot start", {{"error", vault.status().ToString()}});
    return 1;
  }
  secret_options.vault = secrets::LookupOf(vault->get());
  absl::StatusOr<secrets::SecretSources> secrets = secrets::SecretSources::Create(secret_options);
  if (!secrets.ok()) {
    logging::Error("cannot start", {{"error", secrets.status().ToString()}});
    return 1;
  }

  auto audit = outbox::AuditOutbox::Create(infra->pool.get(), "notifier", "notifier", config.audit_address,
                                           *infra->runner, {.max_batch_bytes = config.outbox_max_batch_bytes});
  notifier::PostgresNotifierStore store(*infra->pool, audit->store());
  if (absl::Status replaced = store.ReplaceConfigSubscriptions(configured); !replaced.ok()) {
    logging::Error("cannot start", {{"error", replaced.ToString()}});
    return 1;
  }
  if (!subscriptions_file.empty()) {
    logging::Info("subscriptions from file", {{"file", subscriptions_file}, {"count", configured.size()}});
  }
  absl::StatusOr<std::unique_ptr<server::AccessSetup>> access_setup =
      server::AccessSetup::Create(config, infra->pool.get(), &clock, &infra->runner->registry(),
                                  [&audit](v1::Event e) { return audit->Record(std::move(e)); });
  if (!access_setup.ok()) {
    logging::Error("cannot start", {{"error", access_setup.status().ToString()}});
    return 1;
  }
  notifier::AddNotifierRules(*(*access_setup)->access);

  notifier::NotifierMetrics metrics(infra->runner->registry());
  std::optional<notifier::GrpcRepositorySource> repositories;
  if (!no_commit_statuses) {
    repositories.emplace(infra->tls->Channel(repo_watcher_address, "repo-watcher"));
  }
  notifier::EventIngester ingester(store, repositories.has_value() ? &*repositories : nullptr, &metrics);
  notifier::AuditFollower follower(infra->tls->Channel(config.audit_address, "audit"), store, ingester);
  notifier::CurlHttpTransport http;
  notifier::CurlMailTransport mail;
  const secrets::SecretSources& sources = *secrets;
  notifier::DeliverySender sender(http, mail, [&sources](const v1::SecretRef& ref, const std::string& field) {
    return sources.Read(ref, field);
  });
  notifier::DeliveryWorker worker(store, sender, delivery, &metrics);
  concurrency::BackgroundLoop delivery_loop("notifier-delivery", [&worker] { return worker.RunOnce(); });
  notifier::SubscriptionManager manager(store);
  notifier::NotifierService service(manager);
  infra->runner->AddService(&service);
  infra->runner->OnShutdown([&] {
    follower.Stop();
    delivery_loop.Stop();
  });
  follower.Start();
  delivery_loop.Start();
  return server::ServeUntilSignal(*infra->runner, [&] { (*access_setup)->ReloadPolicy(); });
}
