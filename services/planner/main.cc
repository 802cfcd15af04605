// ferry-planner: renders desired state from Git, diffs it and persists plans

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <semaphore>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/access_service.h"
#include "common/auth/postgres_token_store.h"
#include "common/auth/token.h"
#include "common/auth/token_admin.h"
#include "common/clock/clock.h"
#include "common/concurrency/change_signal.h"
#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/outbox/grpc_audit_sink.h"
#include "common/outbox/outbox_forwarder.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/notification_listener.h"
#include "common/server/access_setup.h"
#include "common/server/service_bootstrap.h"
#include "planner_migrations.h"
#include "services/planner/check_runner.h"
#include "services/planner/grpc_check_source.h"
#include "services/planner/grpc_live_state_source.h"
#include "services/planner/grpc_repo_source.h"
#include "services/planner/approval_wait_monitor.h"
#include "services/planner/hold_releaser.h"
#include "services/planner/postgres_planner_store.h"
#include "common/secrets/secret_sources.h"
#include "services/planner/preview/blast_radius.h"
#include "services/planner/preview/git_host_commenter.h"
#include "services/planner/preview/grpc_git_host_lookup.h"
#include "services/planner/preview/grpc_review_event_source.h"
#include "services/planner/preview/postgres_preview_store.h"
#include "services/planner/preview/preview_consumer.h"
#include "services/planner/preview/pull_request_previews.h"
#include "services/planner/preview/snapshot_repo_source.h"
#include "services/planner/planner.h"
#include "services/planner/planner_access.h"
#include "services/planner/planner_service.h"
#include "services/planner/render_cache_evictor.h"
#include "services/planner/renderer.h"
#include "services/planner/review_event_consumer.h"
#include "services/planner/revision_consumer.h"
#include "services/planner/sync_window.h"

namespace {

// The project's tool folder (scripts/install-k8s-tools), else $PATH.
std::string DefaultTool(const std::string& name) {
  std::string local = std::string(FERRY_TOOLS_BIN_DIR) + "/" + name;
  if (::access(local.c_str(), X_OK) == 0) return local;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = std::string(dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return local;
}

// --check-user USER[:GROUP] (names or numbers; default the user's primary
// group): the uid and gid checks run as. Root is refused.
absl::Status ResolveCheckUser(const std::string& spec, ferry::planner::CheckRunnerOptions& options) {
  if (spec.empty()) return absl::OkStatus();
  std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits(':', 1));
  const std::string& user = parts[0];
  uid_t uid = 0;
  gid_t gid = 0;
  bool have_gid = false;
  std::vector<char> buf(16384);
  struct passwd pw;
  struct passwd* found = nullptr;
  if (uint32_t n = 0; absl::SimpleAtoi(user, &n)) {
    uid = n;
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
      gid = found->pw_gid;
      have_gid = true;
    }
  } else if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    uid = found->pw_uid;
    gid = found->pw_gid;
    have_gid = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--check-user: no user \"", user, "\""));
  }
  if (parts.size() > 1) {
    struct group gr;
    struct group* g = nullptr;
    if (uint32_t n = 0; absl::SimpleAtoi(parts[1], &n)) {
      gid = n;
    } else if (getgrnam_r(parts[1].c_str(), &gr, buf.data(), buf.size(), &g) == 0 && g != nullptr) {
      gid = g->gr_gid;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--check-user: no group \"", parts[1], "\""));
    }
    have_gid = true;
  }
  if (!have_gid) gid = uid;
  if (uid == 0 || gid == 0) return absl::InvalidArgumentError("--check-user: checks never run as root (uid or gid 0)");
  options.uid = uid;
  options.gid = gid;
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("planner", 7002, 9102);
  CLI::App app{"ferry-planner: renders desired state from Git, diffs it and persists plans"};
  ferry::config::AddServiceFlags(app, config);
  std::string repo_watcher_address = "127.0.0.1:7001";
  std::string deployer_address = "127.0.0.1:7003";
  ferry::planner::RendererOptions render;
  render.helm_path = DefaultTool("helm");
  render.kubectl_path = DefaultTool("kubectl");
  absl::Duration hold_interval = absl::Seconds(5);
  absl::Duration stream_poll = absl::Seconds(2);
  // Issue #23: 16 applications planned at once (8 before) took a commit
  // touching 10,000 from 81 to 78 s on 2 cores: a plan waits on the
  // repo-watcher, the deployer and PostgreSQL most of its time. The tools it
  // runs stay bounded by --tool-processes.
  int plan_concurrency = 16;
  int tool_processes = 8;
  ferry::config::AddFlag(app, "--repo-watcher-address", repo_watcher_address, "Where the repo-watcher listens");
  ferry::config::AddFlag(app, "--deployer-address", deployer_address, "Where the deployer listens (ObserveLiveState)");
  ferry::config::AddFlag(app, "--helm-path", render.helm_path, "helm binary");
  ferry::config::AddFlag(app, "--kubectl-path", render.kubectl_path, "kubectl binary (for kubectl kustomize)");
  ferry::config::AddFlag(app, "--render-scratch-dir", render.scratch_root, "Where render scratch folders are made");
  ferry::config::AddDurationFlag(app, "--render-timeout", render.timeout, "Timeout of one helm/kustomize run");
  ferry::config::AddFlag(app, "--plan-concurrency", plan_concurrency,
                         "Applications of one revision planned at once (those past --db-pool-size wait for a "
                         "database connection when they persist; their renders and reads go on meanwhile)");
  ferry::config::AddFlag(app, "--tool-processes", tool_processes,
                         "helm, kubectl kustomize and check commands run at once, whatever --plan-concurrency")
      ->check(CLI::Range(1, 256));
  ferry::config::AddDurationFlag(app, "--hold-check-interval", hold_interval,
                                 "How often held plans (sync windows, gates) are re-evaluated");
  ferry::config::AddDurationFlag(app, "--plan-stream-poll", stream_poll,
                                 "Safety re-check of WatchApprovedPlans streams when no notification arrives");
  ferry::config::AddFlag(app, "--render-memory-limit-mb", render.memory_limit_mb,
                         "Address-space limit of one helm/kustomize run in MiB (0: none)");
  ferry::config::AddFlag(app, "--render-cpu-seconds", render.cpu_seconds,
                         "CPU-time limit of one helm/kustomize run in seconds (0: none)");
  ferry::config::AddFlag(app, "--render-file-size-limit-mb", render.file_size_limit_mb,
                         "Largest file one helm/kustomize run may write, in MiB (0: none)");
  ferry::config::AddFlag(app, "--render-open-files", render.open_files,
                         "Descriptors one helm/kustomize run may have open (0: inherited)");
  ferry::config::AddFlag(app, "--render-isolate-network", render.isolate_network,
                         "Run helm/kustomize in a network namespace of their own where the kernel allows it");
  ferry::planner::RenderCacheEvictor::Options cache_eviction;
  ferry::config::AddDurationFlag(app, "--render-cache-max-age", cache_eviction.max_age,
                                 "Cached renders unused (not written or read) this long are deleted (checked hourly)");
  ferry::config::AddFlag(app, "--render-cache-max-entries", cache_eviction.max_entries,
                         "Also keep at most this many cached renders, the most recently used (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  // Pull-request previews posted to the Git host (docs/previews.md): the
  // host's API token is a SecretRef in the repository's git_host, read from
  // these sources.
  bool post_previews = true;
  ferry::config::AddFlag(app, "--post-previews", post_previews,
                         "Post each pull request's preview to its Git host (repositories with a git_host) as one "
                         "comment edited in place");
  ferry::secrets::SecretSourceOptions secret_options;
  secret_options.service = "planner";
  ferry::config::AddFlag(app, "--secrets-dir", secret_options.secrets_dir,
                         "directory holding the files secret references may name (Git host API tokens); empty: "
                         "file references are refused");
  ferry::config::AddFlag(app, "--secret-env-prefix", secret_options.env_prefix,
                         "environment references must name a variable starting with this prefix; empty: refused");
  ferry::planner::GitHostCommenterOptions commenter_options;
  // No environment fallback: a test-only switch is given on the command line.
  app.add_flag("--test-only-allow-http-git-host-to-loopback", commenter_options.allow_http_to_loopback,
               "TESTS ONLY: allow a git_host.api_url of http:// on 127.0.0.0/8, [::1] or localhost");
  int quarantine_attempts = ferry::planner::RevisionConsumer::kDefaultQuarantineAttempts;
  ferry::config::AddFlag(app, "--revision-quarantine-attempts", quarantine_attempts,
                         "A revision whose planning crashed, timed out or failed (not transiently) this many times "
                         "is quarantined: audited and skipped")
      ->check(CLI::PositiveNumber);
  // Bounded reading of repository content (docs/limits.md): each refusal
  // fails the application's plan naming the file, line, limit and flag.
  ferry::planner::ParseLimits& limits = render.parse_limits;
  ferry::planner::SyncWindowLimits window_limits;
  ferry::config::AddFlag(app, ferry::planner::kMaxYamlNodesFlag, limits.max_yaml_nodes,
                         "YAML nodes in one document of a manifest or ferry.yaml, aliases expanded")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  ferry::config::AddFlag(app, ferry::planner::kMaxDepthFlag, limits.max_depth,
                         "Nesting depth of YAML and JSON manifests and ferry.yaml")
      ->check(CLI::Range(2, 1000));
  ferry::config::AddFlag(app, ferry::planner::kMaxScalarBytesFlag, limits.max_scalar_bytes,
                         "Bytes of one YAML scalar")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  ferry::config::AddFlag(app, ferry::planner::kMaxDocumentsFlag, limits.max_documents,
                         "YAML documents in one file or tool output")
      ->check(CLI::Range(1, 1 << 30));
  ferry::config::AddFlag(app, ferry::planner::kMaxObjectsFlag, limits.max_objects,
                         "Objects one application renders to")
      ->check(CLI::Range(1, 1 << 30));
  ferry::config::AddFlag(app, ferry::planner::kMaxManifestBytesFlag, limits.max_manifest_bytes,
                         "Bytes of one application's rendered objects (compact JSON)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  ferry::config::AddFlag(app, ferry::planner::kMaxSyncWindowsFlag, window_limits.max_windows,
                         "Sync windows per environment")
      ->check(CLI::Range(1, 10000));
  ferry::config::AddFlag(app, ferry::planner::kMaxCronLengthFlag, window_limits.max_schedule_bytes,
                         "Bytes of one sync window's cron schedule")
      ->check(CLI::Range(9, 1 << 20));
  ferry::planner::PlanMessageLimits plan_limits;
  ferry::config::AddFlag(app, "--max-plan-message-bytes", plan_limits.max_plan_message_bytes,
                         "A plan larger than this is returned without manifests and diffs (fetch them with "
                         "ListPlanManifests)")
      ->check(CLI::Range(size_t{4096}, size_t{3} << 20));
  ferry::config::AddFlag(app, "--plan-page-bytes", plan_limits.page_bytes, "Bytes of one ListPlanManifests page")
      ->check(CLI::Range(size_t{4096}, size_t{3} << 20));
  // Checks Ferry runs itself (ferry.yaml `checks:`, docs/checks.md).
  ferry::planner::CheckRunnerOptions check_options;
  ferry::config::AddFlag(app, "--check-scratch-dir", check_options.scratch_root,
                         "Where the scratch folders of checks (ferry.yaml checks:) are made");
  ferry::config::AddFlag(app, "--check-max-output-bytes", check_options.max_output_bytes,
                         "Bytes of a check's output kept in the plan (the rest is dropped)")
      ->check(CLI::Range(size_t{256}, size_t{1} << 20));
  ferry::config::AddFlag(app, "--check-isolate-network", check_options.isolate_network,
                         "Run checks in a network namespace of their own where the kernel allows it");
  uint64_t check_file_size_mb = 256;
  ferry::config::AddFlag(app, "--check-file-size-limit-mb", check_file_size_mb,
                         "Largest file a check may write, in MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  app.add_flag("--checks-as-planner-user", check_options.run_as_self,
                         "Without --check-user, run checks as the planner's own user (they can then read what it "
                         "can: its TLS and token keys); otherwise checks are not run and fail saying so")
      ->envname("FERRY_CHECKS_AS_PLANNER_USER");
  std::string check_user;
  ferry::config::AddFlag(app, "--check-user", check_user,
                         "USER[:GROUP] checks run as (never root); empty: the planner's own user");
  std::string bootstrap_admin_token_file;
  ferry::config::AddFlag(app, "--bootstrap-admin-token-file", bootstrap_admin_token_file,
                         "A file holding an API token (ferry_<id>_<secret>) that is made to exist, for the subject "
                         "admin, at start (make up's first admin credential); needs --token-key-file");
  CLI11_PARSE(app, argc, argv);
  ferry::logging::Init("planner", config.log_level);
  if (config.migrate_only) return ferry::server::MigrateOnly(config, PlannerMigrations());
  // API tokens (the Access service): the key, and the bootstrap token if any.
  std::unique_ptr<const ferry::auth::TokenKey> token_key;
  if (plan_concurrency < 1 || plan_concurrency > 256) {
    ferry::logging::Error("cannot start", {{"error", "--plan-concurrency must be between 1 and 256"}});
    return 1;
  }
  if (!config.token_key_file.empty()) {
    absl::StatusOr<std::unique_ptr<const ferry::auth::TokenKey>> key =
        ferry::auth::TokenKey::FromFile(config.token_key_file);
    if (!key.ok()) {
      ferry::logging::Error("cannot start", {{"error", key.status().ToString()}});
      return 1;
    }
    token_key = std::move(*key);
  }
  std::string bootstrap_admin_token;
  if (!bootstrap_admin_token_file.empty()) {
    absl::StatusOr<std::string> token =
        ferry::auth::ReadTokenFile(bootstrap_admin_token_file, "--bootstrap-admin-token-file");
    if (!token.ok()) {
      ferry::logging::Error("cannot start", {{"error", token.status().ToString()}});
      return 1;
    }
    bootstrap_admin_token = std::move(*token);
    if (!bootstrap_admin_token.empty() && token_key == nullptr) {
      ferry::logging::Error("cannot start", {{"error", "--bootstrap-admin-token-file needs --token-key-file (the key "
                                                       "of API tokens' keyed hashes)"}});
      return 1;
    }
  }

  check_options.file_size_limit_bytes = check_file_size_mb << 20;
  if (check_options.run_as_self && check_user.empty()) {
    // Checks run as this user: at least its memory and environment (the
    // database URL) are not theirs to read through /proc.
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
      ferry::logging::Error("cannot start", {{"error", "prctl(PR_SET_DUMPABLE, 0) failed"}});
      return 1;
    }
    ferry::logging::Warn("--checks-as-planner-user: checks run as the planner's own user and can read its files",
                         {{"hint", "set --check-user to a user that cannot read the planner's keys"}});
  }
  if (absl::Status s = ResolveCheckUser(check_user, check_options); !s.ok()) {
    ferry::logging::Error("cannot start", {{"error", s.ToString()}});
    return 1;
  }
  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, PlannerMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  ferry::postgres::ConnectionPool* pool = infra->pool.get();
  ferry::SystemClock clock;
  ferry::outbox::PostgresOutboxStore outbox(pool, "planner", "planner");
  ferry::outbox::GrpcAuditSink audit_sink(infra->tls->Channel(config.audit_address, "audit"));
  ferry::outbox::OutboxForwarder forwarder("planner", ferry::outbox::PostgresOutboxStore::NotifyChannel("planner"),
                                           &outbox, &audit_sink, pool, &infra->runner->registry(),
                                           {.max_batch_bytes = config.outbox_max_batch_bytes});
  ferry::planner::PostgresPlannerStore store(pool, &outbox);
  ferry::planner::GrpcRepoSource repo(infra->tls->Channel(repo_watcher_address, "repo-watcher"));
  // Required checks' results (ListChecks, WatchReviewEvents), recorded by the repo-watcher.
  ferry::planner::GrpcCheckSource checks(infra->tls->Channel(repo_watcher_address, "repo-watcher"));
  ferry::planner::GrpcLiveStateSource live(infra->tls->Channel(deployer_address, "deployer"));
  // The tools renders and checks run, bounded together.
  std::counting_semaphore<> tool_slots(tool_processes);
  render.tool_slots = &tool_slots;
  ferry::planner::Renderer renderer(&repo, render);
  ferry::concurrency::ChangeSignal notifier;  // plans released or changed: wakes WatchApprovedPlans streams
  ferry::planner::PlannerMetrics metrics(&infra->runner->registry());
  // Access control (docs/security.md): who may call what; refusals are
  // audited through the outbox.
  absl::StatusOr<std::unique_ptr<ferry::server::AccessSetup>> access_setup = ferry::server::AccessSetup::Create(
      config, pool, &clock, &infra->runner->registry(),
      [&store](ferry::v1::Event e) { return store.RecordEvents({std::move(e)}); }, &outbox);
  if (!access_setup.ok()) {
    ferry::logging::Error("cannot start", {{"error", access_setup.status().ToString()}});
    return 1;
  }
  // Separation of duties per environment, from the policy in force.
  ferry::planner::PolicyApprovalRules approvals((*access_setup)->policy.get());
  check_options.tool_slots = &tool_slots;
  const ferry::planner::CheckRunner check_runner(&clock, check_options);
  ferry::planner::Planner planner(&store, &repo, &live, &renderer, &clock, &notifier, &metrics, plan_concurrency,
                                  render.parse_limits, window_limits, &approvals, &checks, &check_runner);
  ferry::planner::RevisionConsumer consumer(&repo, &store, planner.revision_planner(), nullptr, quarantine_attempts);
  ferry::planner::HoldReleaser releaser(planner.hold_evaluator(), hold_interval);
  // The gauges of plans waiting for approval (the FerryPlanAwaitingApproval alert).
  ferry::planner::ApprovalWaitMonitor approval_wait(&store, &metrics, &clock, absl::Seconds(15));
  ferry::planner::RenderCacheEvictor cache_evictor(&store, &clock, cache_eviction);
  // A check result re-evaluates the held plans of its commit at once.
  ferry::planner::ReviewEventConsumer review_consumer(&checks, &store, planner.hold_evaluator());
  // Pull-request previews (docs/previews.md): the blast radius of each open
  // pull request, from the repo-watcher's review events.
  ferry::planner::SnapshotRepoSource snapshot(&repo);
  ferry::planner::Renderer preview_renderer(&snapshot, render);
  ferry::planner::BlastRadius blast_radius(&store, &store, &snapshot, &preview_renderer, &approvals, &clock,
                                           {.concurrency = 8, .parse_limits = render.parse_limits,
                                            .window_limits = window_limits});
  ferry::planner::PostgresPreviewStore preview_store(pool);
  absl::StatusOr<ferry::secrets::SecretSources> secret_sources = ferry::secrets::SecretSources::Create(secret_options);
  if (!secret_sources.ok()) {
    ferry::logging::Error("cannot start", {{"error", secret_sources.status().ToString()}});
    return 1;
  }
  ferry::planner::GitHostCommenter commenter(
      ferry::planner::GrpcGitHostLookup(infra->tls->Channel(repo_watcher_address, "repo-watcher")), &*secret_sources,
      commenter_options);
  ferry::planner::PullRequestPreviews previews(&blast_radius, &preview_store, post_previews ? &commenter : nullptr);
  ferry::planner::GrpcReviewEventSource review_events(infra->tls->Channel(repo_watcher_address, "repo-watcher"));
  ferry::planner::PreviewConsumer preview_consumer(&review_events, &store, &previews);
  // Plans released by any replica (NOTIFYed by PostgresPlannerStore) wake this one's streams.
  std::unique_ptr<ferry::postgres::NotificationListener> listener =
      ferry::postgres::NotificationListener::ForSignal(pool, ferry::planner::PostgresPlannerStore::kPlansChannel, &notifier);
  ferry::planner::PlannerService service(&planner, &notifier, stream_poll,
                                         infra->runner->NewStreamLimiter("WatchApprovedPlans"), plan_limits,
                                         &previews);
  infra->runner->AddService(&service);
  ferry::planner::AddPlannerRules(*(*access_setup)->access, &planner);
  ferry::auth::AddAccessRules(*(*access_setup)->access);
  ferry::auth::PostgresTokenStore token_store(pool, &outbox);
  std::function<void(const std::string&)> forget_revoked;
  if ((*access_setup)->tokens.has_value()) forget_revoked = (*access_setup)->tokens->ForgetOnRevoke();
  ferry::auth::TokenAdmin token_admin(&token_store, token_key.get(), &clock, forget_revoked);
  if (!bootstrap_admin_token.empty()) {
    absl::StatusOr<bool> ensured = token_admin.EnsureBootstrapToken(bootstrap_admin_token);
    if (!ensured.ok()) {
      ferry::logging::Error("cannot start", {{"error", absl::StrCat("--bootstrap-admin-token-file ",
                                                                     bootstrap_admin_token_file, ": ",
                                                                     ensured.status().ToString())}});
      return 1;
    }
    std::fill(bootstrap_admin_token.begin(), bootstrap_admin_token.end(), '\0');  // no copy of the secret kept
  }
  ferry::auth::AccessService access(&token_admin);
  infra->runner->AddService(&access);
  infra->runner->OnShutdown([&] {
    notifier.Cancel();
    listener->Stop();
    consumer.Stop();
    review_consumer.Stop();
    preview_consumer.Stop();
    releaser.Stop();
    approval_wait.Stop();
    cache_evictor.Stop();
    forwarder.Stop();
  });
  forwarder.Start();
  consumer.Start();
  review_consumer.Start();
  preview_consumer.Start();
  releaser.Start();
  approval_wait.Start();
  cache_evictor.Start();
  listener->Start();
  ferry::logging::Info("planner wiring", {{"repo_watcher", repo_watcher_address},
                                          {"deployer", deployer_address},
                                          {"helm", render.helm_path},
                                          {"kubectl", render.kubectl_path},
                                          {"render_sandbox", renderer.SandboxStatus()}});
  int code = ferry::server::ServeUntilSignal(*infra->runner, [&] { (*access_setup)->ReloadPolicy(); });
  notifier.Cancel();
  listener->Stop();
  consumer.Stop();
  review_consumer.Stop();
  preview_consumer.Stop();
  releaser.Stop();
  approval_wait.Stop();
  cache_evictor.Stop();
  forwarder.Stop();
  return code;
}
