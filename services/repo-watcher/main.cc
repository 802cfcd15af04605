// ferry-repo-watcher: Git mirrors, webhooks, signature checks and the revision stream

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <CLI/CLI.hpp>

#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/config/service_config.h"
#include "common/git/libgit2_client.h"
#include "common/logging/logger.h"
#include "common/outbox/audit_outbox.h"
#include "common/secrets/vault_flags.h"
#include "common/server/access_setup.h"
#include "services/repo-watcher/repo_watcher_access.h"
#include "common/postgres/notification_listener.h"
#include "common/server/service_bootstrap.h"
#include "services/repo-watcher/content_reader.h"
#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/poll_scheduler.h"
#include "services/repo-watcher/postgres_repository_store.h"
#include "services/repo-watcher/postgres_review_store.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repo_watcher_metrics.h"
#include "services/repo-watcher/repo_watcher_service.h"
#include "services/repo-watcher/repository_registry.h"
#include "services/repo-watcher/pull_request_tracker.h"
#include "services/repo-watcher/review_log.h"
#include "services/repo-watcher/revision_checker.h"
#include "services/repo-watcher/revision_feed.h"
#include "services/repo-watcher/revision_notifier.h"
#include "services/repo-watcher/signature_verifier.h"
#include "services/repo-watcher/webhook_handler.h"
#include "services/repo-watcher/webhook_server.h"
#include "repo_watcher_migrations.h"

namespace {

std::string DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/ferry/repo-watcher";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/tmp") + "/.cache/ferry/repo-watcher";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ferry;
  using namespace ferry::repo_watcher;
  server::BlockTerminationSignals();
  config::ServiceConfig config = config::DefaultsFor("repo-watcher", 7001, 9101);
  CLI::App app{"ferry-repo-watcher: Git mirrors, webhooks, signature checks and the revision stream"};
  config::AddServiceFlags(app, config);
  std::string cache_dir = DefaultCacheDir();
  std::string webhook_address = "127.0.0.1:7080";
  HttpLimits webhook_limits;
  WebhookTls webhook_tls;
  int poll_workers = 3;
  absl::Duration webhook_audit_interval = absl::Minutes(1);
  ContentLimits content_limits;
  config::AddFlag(app, "--cache-dir", cache_dir, "directory holding one bare mirror per repository");
  config::AddFlag(app, "--webhook-address", webhook_address, "host:port for push webhooks; port 0 picks one");
  config::AddFlag(app, "--webhook-tls-cert-file", webhook_tls.cert_file,
                  "PEM certificate of the webhook listener: serve webhooks over HTTPS (with --webhook-tls-key-file)");
  config::AddFlag(app, "--webhook-tls-key-file", webhook_tls.key_file, "PEM private key of the webhook listener");
  config::AddFlag(app, "--webhook-max-body-bytes", webhook_limits.max_body_bytes,
                  "largest webhook body accepted (413 above)")
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20));
  config::AddFlag(app, "--webhook-max-header-bytes", webhook_limits.max_head_bytes,
                  "largest webhook request line and headers; the connection is closed past it")
      ->check(CLI::Range(size_t{4096}, size_t{16} << 20));
  config::AddDurationFlag(app, "--webhook-request-timeout", webhook_limits.request_timeout,
                          "longest time one webhook request may take to arrive");
  config::AddFlag(app, "--webhook-max-pending-connections", webhook_limits.max_pending,
                  "webhook connections waiting for one of the 8 workers; more are answered 503")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  config::AddDurationFlag(app, "--webhook-rejection-audit-interval", webhook_audit_interval,
                          "at most one audit event per repository and rejection reason per interval, counting "
                          "the rejections since the last one (0: audit every rejection)");
  config::AddFlag(app, "--read-content-max-file-bytes", content_limits.max_file_bytes,
                  "largest file one ReadContent returns; callers may only ask for less")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  config::AddFlag(app, "--read-content-max-total-bytes", content_limits.max_total_bytes,
                  "largest total of file contents one ReadContent returns; callers may only ask for less")
      ->check(CLI::Range(int64_t{1}, int64_t{16} << 30));
  config::AddFlag(app, "--read-content-max-entries", content_limits.max_entries,
                  "most entries (files, symlinks, submodules) one ReadContent lists")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  // A repository that sends without end must not fill the cache's disk.
  git::FetchLimits fetch_limits{.max_bytes = int64_t{4} << 30, .max_objects = 10'000'000};
  config::AddFlag(app, "--max-fetch-bytes", fetch_limits.max_bytes,
                  "most bytes one fetch may receive; past it the fetch stops, keeps nothing and fails "
                  "(audited as FETCH_FAILED). 0: unbounded")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  config::AddFlag(app, "--max-fetch-objects", fetch_limits.max_objects,
                  "most objects one fetch may receive (the remote's pack says how many before sending them). "
                  "0: unbounded")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  secrets::SecretSourceOptions secret_options;
  config::AddFlag(app, "--secrets-dir", secret_options.secrets_dir,
                  "directory holding the files secret references may name (tokens, SSH keys, webhook secrets); "
                  "a reference must resolve, after symlinks, to a regular file beneath it. Empty: file "
                  "references are refused");
  config::AddFlag(app, "--secret-env-prefix", secret_options.env_prefix,
                  "environment references must name a variable starting with this prefix. Empty: environment "
                  "references are refused");
  // No environment fallback: a test-only switch is given on the command line.
  app.add_flag("--test-only-allow-http-token-to-loopback", secret_options.allow_http_token_to_loopback,
               "TESTS ONLY: allow an https_token with an http:// URL on 127.0.0.0/8, [::1] or localhost "
               "(otherwise a token is never sent over plain HTTP)");
  secrets::VaultFlags vault_flags;
  secrets::AddVaultFlags(app, vault_flags);
  config::AddFlag(app, "--poll-workers", poll_workers, "repositories checked concurrently")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);
  logging::Init("repo-watcher", config.log_level);
  if (config.migrate_only) return server::MigrateOnly(config, RepoWatcherMigrations());
  if (absl::Status s = WebhookServer::CheckTls(webhook_tls); !s.ok()) {
    logging::Error("cannot start", {{"error", s.ToString()}});
    return 1;
  }
  SystemClock clock;
  absl::StatusOr<std::unique_ptr<secrets::VaultKvClient>> vault = secrets::MakeVaultClient(vault_flags, &clock);
  if (!vault.ok()) {
    logging::Error("cannot start", {{"error", vault.status().ToString()}});
    return 1;
  }
  secret_options.vault = secrets::LookupOf(vault->get());
  if (*vault != nullptr) {
    logging::Info("Vault secret references enabled",
                  {{"vault_address", vault_flags.address},
                   {"vault_kv_mount", vault_flags.kv_mount},
                   {"vault_auth", vault_flags.token_file.empty() ? "approle" : "token"}});
  }
  if (vault_flags.test_only_allow_http_to_loopback) {
    logging::Warn("--test-only-vault-allow-http-to-loopback is set: the Vault token may go over plain HTTP", {});
  }
  absl::StatusOr<secrets::SecretSources> secrets = secrets::SecretSources::Create(secret_options);
  if (!secrets.ok()) {
    logging::Error("cannot start", {{"error", secrets.status().ToString()}});
    return 1;
  }
  if (secret_options.allow_http_token_to_loopback) {
    logging::Warn("--test-only-allow-http-token-to-loopback is set: tokens may go over plain HTTP to loopback", {});
  }

  absl::StatusOr<server::Infrastructure> infra = server::Bootstrap(config, RepoWatcherMigrations());
  if (!infra.ok()) {
    logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  server::ServerRunner& runner = *infra->runner;
  auto audit = outbox::AuditOutbox::Create(infra->pool.get(), "repo_watcher", "repo-watcher", config.audit_address,
                                           runner, {.max_batch_bytes = config.outbox_max_batch_bytes});
  RepoWatcherMetrics metrics(runner.registry());
  PostgresRepositoryStore store(infra->pool.get(), audit->store());
  git::Libgit2Client git(fetch_limits);
  MirrorSet mirrors(&git, cache_dir);
  GpgmeSshSignatureVerifier verifier;
  RevisionNotifier notifier;
  // Other replicas' commits reach the notifier through LISTEN.
  std::unique_ptr<postgres::NotificationListener> revision_listener = postgres::NotificationListener::ForSignal(
      infra->pool.get(), PostgresRepositoryStore::kRevisionChannel, notifier.signal());
  // Review events (#20): their own log, stream and wake-up.
  PostgresReviewStore review_store(infra->pool.get(), audit->store());
  RevisionNotifier review_notifier;
  std::unique_ptr<postgres::NotificationListener> review_listener = postgres::NotificationListener::ForSignal(
      infra->pool.get(), PostgresReviewStore::kReviewChannel, review_notifier.signal());
  ReviewLog reviews(&review_store, &review_notifier);
  // Uneventful scheduled checks are recorded together, once a second.
  CheckBatcher check_batcher(&store, &clock);
  RepoPoller poller(&store, &git, &mirrors, &verifier, &notifier, &metrics, &clock, &*secrets, PollOptions{},
                    &check_batcher);
  // Scheduled checks falling due within a second of each other read their
  // repositories in one statement (issue #23).
  PollScheduler scheduler(&store, &poller, &clock,
                          SchedulerOptions{.workers = poll_workers, .batch_window = absl::Seconds(1)});
  RevisionFeed feed(&store, &notifier);
  RevisionChecker checker(&store, &mirrors, &verifier);
  PullRequestTracker pull_requests(&reviews, &store, &git, &mirrors, &metrics, &*secrets);
  // A pull request's commits are fetched by the replica that received its
  // webhook; any other replica fetches them when asked (FetchForCommit).
  ContentReader content(&store, &mirrors, content_limits,
                        [&pull_requests](const ferry::v1::Repository& repo, const std::string& sha) {
                          return pull_requests.FetchForCommit(repo, sha);
                        },
                        &clock);
  RepositoryRegistry registry(&store, &*secrets, {.on_changed =
                                                      [&](const std::string& id) {
                                                        content.Forget(id);
                                                        scheduler.Trigger(id);
                                                      },
                                                  .on_deleted =
                                                      [&](const std::string& id) {
                                                        content.Forget(id);
                                                        scheduler.Forget(id);
                                                        mirrors.Remove(id);
                                                      }});
  WebhookHandler webhooks(
      &store, &metrics, &*secrets, [&](const std::string& id) { scheduler.Trigger(id); }, &clock, webhook_audit_interval,
      WebhookSinks{
          .poll_refs = [&](const std::string& id,
                           const std::vector<std::string>& refs) { scheduler.TriggerRefs(id, refs); },
          .report_check = [&](const v1::ReportCheckRequest& report, const v1::Actor& actor,
                              const std::string& source) { return reviews.ReportCheck(report, actor, source); },
          .pull_request = [&](const v1::Repository& repo, const PullRequestChange& change,
                              const v1::Actor& actor) { return pull_requests.Apply(repo, change, actor); },
      });
  // Audits the rest of a flood of rejected webhooks once it stops.
  const absl::Duration flush_every = std::max(webhook_audit_interval, absl::Seconds(1));
  concurrency::LoopOptions flush_options;
  flush_options.first_run_after = flush_every;
  concurrency::BackgroundLoop rejection_flusher(
      "webhook-rejection-audit",
      [&]() -> absl::StatusOr<absl::Duration> {
        webhooks.FlushRejections();
        return flush_every;
      },
      flush_options, &clock);
  WebhookServer webhook_server(&webhooks, webhook_limits, webhook_tls);

  absl::StatusOr<std::unique_ptr<server::AccessSetup>> access_setup =
      server::AccessSetup::Create(config, infra->pool.get(), &clock, &runner.registry(),
                                  [&audit](v1::Event e) { return audit->Record(std::move(e)); });
  if (!access_setup.ok()) {
    logging::Error("cannot start", {{"error", access_setup.status().ToString()}});
    return 1;
  }
  AddRepoWatcherRules(*(*access_setup)->access);
  RepoWatcherService service(&registry, &store, &scheduler, &feed, &content, &checker, &reviews,
                             {.watch_revisions = runner.NewStreamLimiter("WatchRevisions"),
                              .read_content = runner.NewStreamLimiter("ReadContent"),
                              .watch_review_events = runner.NewStreamLimiter("WatchReviewEvents")});
  runner.AddService(&service);
  runner.OnShutdown([&] {
    absl::Time t0 = absl::Now();
    notifier.Shutdown();  // ends WatchRevisions streams
    review_notifier.Shutdown();  // ends WatchReviewEvents streams
    revision_listener->Stop();
    review_listener->Stop();
    webhook_server.Stop();
    rejection_flusher.Stop();
    webhooks.FlushRejections(/*all=*/true);
    scheduler.Stop();
    check_batcher.Stop();  // writes the checks still waiting
    logging::Info("background work stopped", {{"ms", absl::ToInt64Milliseconds(absl::Now() - t0)}});
  });
  revision_listener->Start();
  review_listener->Start();
  check_batcher.Start();
  scheduler.Start();
  rejection_flusher.Start();
  if (absl::Status s = webhook_server.Start(webhook_address); !s.ok()) {
    // Keep serving gRPC and polling; only push webhooks are unavailable.
    logging::Error("webhooks disabled", {{"error", s.ToString()}});
  } else {
    logging::Info("serving webhooks", {{"webhook_port", webhook_server.port()},
                                       {"webhook_tls", webhook_server.tls() ? "on" : "off"},
                                       {"cache_dir", cache_dir}});
  }
  return server::ServeUntilSignal(runner, [&] { (*access_setup)->ReloadPolicy(); });
}
