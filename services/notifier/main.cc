// ferry-notifier: notifications and commit statuses from the audit trail

#include <CLI/CLI.hpp>

#include <algorithm>
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
#include "services/notifier/declared_subscription_sync.h"
#include "services/notifier/delivery_worker.h"
#include "services/notifier/event_ingester.h"
#include "services/notifier/grpc_application_source.h"
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
  std::string planner_address = "127.0.0.1:7002";
  bool no_declared_subscriptions = false;
  absl::Duration declared_sync_interval = absl::Minutes(1);
  std::string subscriptions_file;
  notifier::DeliveryOptions delivery;
  bool no_commit_statuses = false;
  config::AddFlag(app, "--repo-watcher-address", repo_watcher_address,
                  "the repo-watcher, asked for a repository's git_host (commit statuses)");
  app.add_flag("--no-commit-statuses", no_commit_statuses,
               "set no commit statuses (and do not ask the repo-watcher for anything)")
      ->envname(config::EnvNameFor("--no-commit-statuses"));
  config::AddFlag(app, "--planner-address", planner_address,
                  "the planner, asked for the subscriptions applications declare in ferry.yaml");
  app.add_flag("--no-declared-subscriptions", no_declared_subscriptions,
               "ignore the subscriptions applications declare in ferry.yaml (and do not ask the planner)")
      ->envname(config::EnvNameFor("--no-declared-subscriptions"));
  config::AddDurationFlag(app, "--declared-sync-interval", declared_sync_interval,
                          "how often the declared subscriptions are read again besides at each application change");
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
  // Secrets of subscriptions declared in ferry.yaml: sources of their own,
  // so that whoever can push cannot name the Git host tokens.
  secrets::SecretSourceOptions declared_secret_options;
  declared_secret_options.service = "notifier";
  declared_secret_options.env_prefix = "";
  config::AddFlag(app, "--declared-secrets-dir", declared_secret_options.secrets_dir,
                  "directory holding the files the secret references of subscriptions declared in ferry.yaml may "
                  "name (keep there only what every committer may have sent where they choose). Empty: refused");
  config::AddFlag(app, "--declared-secret-env-prefix", declared_secret_options.env_prefix,
                  "environment references of subscriptions declared in ferry.yaml must start with this prefix "
                  "(e.g. FERRY_SECRET_DECLARED_). Empty: refused");
  secrets::VaultFlags vault_flags;
  secrets::AddVaultFlags(app, vault_flags);
  CLI11_PARSE(app, argc, argv);
  logging::Init("notifier", config.log_level);
  if (config.migrate_only) return server::MigrateOnly(config, NotifierMigrations());
  if (delivery.retry.initial <= absl::ZeroDuration() || delivery.retry.max < delivery.retry.initial ||
      delivery.lease <= absl::ZeroDuration() || delivery.poll <= absl::ZeroDuration() ||
      declared_sync_interval <= absl::ZeroDuration()) {
    logging::Error("cannot start", {{"error", "--retry-initial, --delivery-lease, --delivery-poll and "
                                              "--declared-sync-interval must be positive and --retry-max at least --retry-initial"}});
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
  absl::StatusOr<secrets::SecretSources> declared_secrets = secrets::SecretSources::Create(declared_secret_options);
  if (!declared_secrets.ok()) {
    logging::Error("cannot start", {{"error", "--declared-secrets-dir: " + declared_secrets.status().ToString()}});
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
  std::optional<notifier::GrpcApplicationSource> applications;
  std::optional<notifier::DeclaredSubscriptionSync> declared;
  if (!no_declared_subscriptions) {
    applications.emplace(infra->tls->Channel(planner_address, "planner"));
    declared.emplace(store, *applications);
  }
  notifier::EventIngester ingester(store, repositories.has_value() ? &*repositories : nullptr, &metrics,
                                   declared.has_value() ? &*declared : nullptr);
  notifier::AuditFollower follower(infra->tls->Channel(config.audit_address, "audit"), store, ingester);
  notifier::CurlHttpTransport http;
  notifier::CurlMailTransport mail;
  const secrets::SecretSources& sources = *secrets;
  const secrets::SecretSources& declared_sources = *declared_secrets;
  notifier::DeliverySender sender(
      http, mail, [&sources](const v1::SecretRef& ref, const std::string& field) { return sources.Read(ref, field); },
      [&declared_sources](const v1::SecretRef& ref, const std::string& field) -> absl::StatusOr<std::string> {
        if (ref.has_vault()) {
          return absl::InvalidArgumentError(field + ".vault: subscriptions declared in ferry.yaml read no Vault "
                                                    "secret (--declared-secrets-dir, --declared-secret-env-prefix)");
        }
        absl::StatusOr<std::string> value = declared_sources.Read(ref, field);
        if (!value.ok()) {
          return absl::Status(value.status().code(),
                              std::string(value.status().message()) +
                                  " (subscriptions declared in ferry.yaml: --declared-secrets-dir, "
                                  "--declared-secret-env-prefix)");
        }
        return value;
      });
  notifier::DeliveryWorker worker(store, sender, delivery, &metrics);
  concurrency::BackgroundLoop delivery_loop("notifier-delivery", [&worker] { return worker.RunOnce(); });
  // Declared subscriptions at start and now and then in full; within a
  // second of an application event (which marks them stale: EventIngester)
  // otherwise.
  absl::Time last_full_sync = absl::InfinitePast();
  concurrency::BackgroundLoop declared_loop(
      "notifier-declared",
      [&declared, &last_full_sync, declared_sync_interval]() -> absl::StatusOr<absl::Duration> {
        if (!declared.has_value()) return absl::InfiniteDuration();
        const absl::Time now = absl::Now();
        const bool full = now - last_full_sync >= declared_sync_interval;
        absl::StatusOr<int> synced = full ? declared->Sync() : declared->SyncIfStale();
        if (!synced.ok()) return synced.status();
        if (full) last_full_sync = now;
        return std::min(absl::Seconds(1), declared_sync_interval);
      });
  notifier::SubscriptionManager manager(store, &sender, &clock);
  notifier::NotifierService service(manager);
  infra->runner->AddService(&service);
  infra->runner->OnShutdown([&] {
    follower.Stop();
    delivery_loop.Stop();
    declared_loop.Stop();
  });
  follower.Start();
  delivery_loop.Start();
  declared_loop.Start();
  return server::ServeUntilSignal(*infra->runner, [&] { (*access_setup)->ReloadPolicy(); });
}
