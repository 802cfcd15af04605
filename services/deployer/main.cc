// ferry-deployer: executes plans against targets with health gates and rollback

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/clock/clock.h"
#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/outbox/audit_outbox.h"
#include "common/server/access_setup.h"
#include "services/deployer/deployer_access.h"
#include "common/server/service_bootstrap.h"
#include "deployer_migrations.h"
#include "services/deployer/deployer.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/deployer_service.h"
#include "services/deployer/grpc_plan_source.h"
#include "services/deployer/grpc_repo_file_fetcher.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/host/self_protection.h"
#include "services/deployer/host/workload_identity.h"
#include "services/deployer/host/workload_policy.h"
#include "services/deployer/ansible/ansible_target.h"
#include "services/deployer/postgres_saved_plan_store.h"
#include "services/deployer/terraform/saved_plan_store.h"
#include "services/deployer/terraform/terraform_target.h"
#include "services/deployer/kubernetes/kubernetes_target.h"
#include "services/deployer/target_router.h"
#include "services/deployer/lease_keeper.h"
#include "services/deployer/postgres_deployment_store.h"
#include "services/deployer/postgres_lease_store.h"
#include "common/secrets/vault_flags.h"
#include "services/deployer/secrets/secret_flags.h"

int main(int argc, char** argv) {
  // First of all: workloads run as this uid and must not read our
  // /proc/<pid>/environ (the database URL) nor ptrace us.
  absl::Status non_dumpable = ferry::deployer::host::MakeNonDumpable();
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("deployer", 7003, 9103);
  CLI::App app{"ferry-deployer: executes plans against targets with health gates and rollback"};
  ferry::config::AddServiceFlags(app, config);
  std::string planner_address = "127.0.0.1:7002";
  std::string repo_watcher_address = "127.0.0.1:7001";
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::string deployer_id = absl::StrCat(host, "-", getpid());
  ferry::deployer::DeployerOptions options;
  ferry::config::AddFlag(app, "--planner-address", planner_address, "Where the planner listens (plans in, results out)");
  ferry::config::AddFlag(app, "--repo-watcher-address", repo_watcher_address,
                         "Where the repo-watcher listens (ConfigFile contentFrom files)");
  app.add_option("--deployer-id", deployer_id, "Identity of this replica: recorded on deployments and naming it as an environment "
                 "lease holder (a stable one, such as a pod name, retakes its leases at once after a restart)")
      ->envname(ferry::config::EnvNameFor("--deployer-id"));
  ferry::config::AddFlag(app, "--deployer-group", options.deployer_group,
                         "Deployer group of this replica: it deploys only environments whose ferry.yaml `deployer:` "
                         "names this group (unset there: \"default\"); replicas of one group share them by lease");
  ferry::deployer::LeaseOptions lease_options;
  ferry::config::AddDurationFlag(app, "--lease-ttl", lease_options.ttl,
                                 "How long an environment lease lasts unrenewed (renewed every third of it): a dead "
                                 "or paused replica's environments are taken over after this");
  ferry::config::AddDurationFlag(app, "--drift-interval", options.drift_interval,
                                 "How often live state is compared with the last applied state");
  size_t live_state_page_bytes = ferry::deployer::LiveStateObserver::kDefaultPageBytes;
  ferry::config::AddFlag(app, "--live-state-page-bytes", live_state_page_bytes,
                         "Bytes of one ObserveLiveState page (objects past it go in the next page)")
      ->check(CLI::Range(size_t{4096}, size_t{3} << 20));
  int kube_max_watches = static_cast<int>(ferry::deployer::kubernetes::WatchCache::kDefaultMaxWatches);
  ferry::config::AddFlag(app, "--kube-max-watches", kube_max_watches,
                         "Watches (each a thread and an API-server connection) per cluster: one per kind and "
                         "namespace Ferry applied to; past this, objects are read by GET and their drift found by "
                         "the periodic pass")
      ->check(CLI::Range(0, 10000));
  ferry::config::AddDurationFlag(app, "--default-health-timeout", options.runner.default_health_timeout,
                                 "Health timeout per wave when the plan has none");
  ferry::config::AddFlag(app, "--max-recovery-attempts", options.runner.max_attempts_without_progress,
                         "Attempts in a row without a completed step (an interrupted deployment's first run "
                         "counts) after which an unfinished deployment is quarantined (FAILED, not rolled back) "
                         "instead of resumed again; 0 never quarantines");
  ferry::config::AddFlag(app, "--intake-concurrency", options.intake_concurrency,
                         "Released plans handed off at once (each acknowledged to the planner and recorded as a "
                         "deployment; one at a time per application and environment)")
      ->check(CLI::Range(1, 256));
  ferry::config::AddFlag(app, "--max-concurrent-deployments", options.max_concurrent_deployments,
                         "Deployments this replica runs at once; more wait to start (each holds a database "
                         "connection while it records a step: keep --db-pool-size in proportion)")
      ->check(CLI::Range(1, 1024));
  ferry::config::AddFlag(app, "--plan-attempts", options.plan_attempts,
                         "Tries of a released plan that fails other than for an outage (not acknowledged, not "
                         "recorded) before it is reported FAILED and the plans behind it are taken");
  std::vector<std::string> allowed_roots;
  app.add_option("--allowed-roots", allowed_roots,
                 "Directories an environment's rootDir must resolve beneath (comma-separated); unset: any "
                 "directory but / (a warning at start)")
      ->delimiter(',')
      ->envname(ferry::config::EnvNameFor("--allowed-roots"));
  std::string workload_user;
  ferry::config::AddFlag(app, "--workload-user", workload_user,
                         "USER[:GROUP] (names or numbers) that the Process instances, validate and reload commands "
                         "and exec probes of environments without runAs run as (never root); unset: a root deployer "
                         "refuses such environments, a non-root one runs them as its own uid");
  ferry::deployer::host::WorkloadPolicyOptions workload_options;
  app.add_option("--allowed-run-as", workload_options.allowed_run_as,
                 "Users (names or uids, comma-separated) an environment's runAs may name; unset: any user but root")
      ->delimiter(',')
      ->envname(ferry::config::EnvNameFor("--allowed-run-as"));
  app.add_flag("--allow-root-workloads", workload_options.allow_root,
               "An environment whose runAs names root (uid or gid 0) and sets allowRoot may run its workloads as root");
  app.add_flag("--insecure-workloads-as-root", workload_options.root_deployer_runs_workloads_as_itself,
               "Tests and throwaway trials only: a root deployer runs the workloads of environments without runAs as "
               "root when --workload-user is unset (otherwise they are refused)");
  ferry::deployer::ansible::PlaybookOptions ansible_options;
  ferry::config::AddFlag(app, "--ansible-playbook-path", ansible_options.ansible_playbook_path,
                         "ansible-playbook of the Ansible target (Debian's ansible package)");
  ferry::config::AddFlag(app, "--ansible-scratch-dir", ansible_options.scratch_root,
                         "Directory under which each Ansible run gets (and loses) its scratch folder");
  ferry::config::AddDurationFlag(app, "--ansible-timeout", ansible_options.timeout,
                                 "Longest one ansible-playbook run (check or apply) may take before it is killed");
  ferry::config::AddFlag(app, "--ansible-memory-limit-mb", ansible_options.memory_limit_mb,
                         "Address-space limit of an ansible-playbook run and each of its processes, MiB (0: none)");
  ferry::config::AddFlag(app, "--ansible-cpu-seconds", ansible_options.cpu_seconds,
                         "CPU-time limit of an ansible-playbook run's processes, seconds (0: none)");
  ferry::config::AddFlag(app, "--ansible-file-size-limit-mb", ansible_options.file_size_limit_mb,
                         "Largest file an ansible-playbook run may write, MiB (0: none)");
  size_t ansible_max_output_mb = ansible_options.max_output_bytes >> 20;
  ferry::config::AddFlag(app, "--ansible-max-output-mb", ansible_max_output_mb,
                         "Largest JSON result of one ansible-playbook run kept, MiB; more fails the run");
  ferry::config::AddFlag(app, "--ansible-forks", ansible_options.forks, "Hosts one ansible-playbook run works on at once")
      ->check(CLI::Range(1, 256));
  // The Terraform / OpenTofu target (docs/terraform.md): on when
  // --terraform-plan-dir is set.
  std::string terraform_binary, terraform_plan_dir, terraform_state_url, terraform_state_url_file;
  ferry::deployer::terraform::RunnerSettings terraform_settings;
  ferry::config::AddFlag(app, "--terraform-plan-dir", terraform_plan_dir,
                         "Directory (made 0700) where saved Terraform plans are kept between planning and the approved "
                         "apply; unset: this deployer has no Terraform target");
  bool terraform_plans_in_database = false;
  ferry::config::AddFlag(app, "--terraform-plans-in-database", terraform_plans_in_database,
                         "Keep saved Terraform plans in the deployer's database (shared by the replicas of a group) "
                         "instead of --terraform-plan-dir (one replica)");
  ferry::config::AddFlag(app, "--terraform-binary", terraform_binary,
                         "terraform or tofu of the Terraform target; empty: terraform on the default PATH, else "
                         "OpenTofu built by scripts/install-terraform");
  ferry::config::AddFlag(app, "--terraform-scratch-dir", terraform_settings.scratch_root,
                         "Directory under which each terraform run gets (and loses) its scratch copy; must let the "
                         "run-as users through (0711)");
  app.add_option("--terraform-state-url", terraform_state_url,
                 "PostgreSQL URL of the Terraform state database (the pg backend of environments with state: pg); "
                 "it holds a password: give it by FERRY_TERRAFORM_STATE_URL or --terraform-state-url-file")
      ->envname("FERRY_TERRAFORM_STATE_URL");
  ferry::config::AddFlag(app, "--terraform-state-url-file", terraform_state_url_file,
                         "File (mode 0600) holding the PostgreSQL URL of the Terraform state database");
  ferry::config::AddFlag(app, "--terraform-memory-limit-mb", terraform_settings.memory_limit_mb,
                         "Address-space limit of each terraform run, MiB (an environment's memoryLimitMb wins)");
  ferry::config::AddFlag(app, "--terraform-cpu-seconds", terraform_settings.cpu_seconds,
                         "CPU-time limit of each terraform run, seconds (an environment's cpuLimitSeconds wins)");
  ferry::config::AddDurationFlag(app, "--terraform-timeout", terraform_settings.timeout,
                                 "Longest one terraform run may take before it is killed (an environment's timeout wins)");
  ferry::deployer::secrets::SecretFlags secret_flags;
  ferry::config::AddFlag(app, "--secrets-key-file", secret_flags.secrets_key_file,
                         "The deployer's secrets key (`ferry-secrets keygen`, mode 0600): opens values sealed to it "
                         "in Git and keys the digests shown instead of secret values; unset: every secretRef fails");
  ferry::config::AddFlag(app, "--age-identity-file", secret_flags.age_identity_file,
                         "age identity (mode 0600) that decrypts age-encrypted secret files in Git (age -d -i)");
  ferry::config::AddFlag(app, "--secrets-dir", secret_flags.secrets_dir,
                         "Directory whose files secretRef {file: ...} may name; unset: such references are refused");
  ferry::config::AddFlag(app, "--secret-env-prefix", secret_flags.env_prefix,
                         "Prefix of the deployer's variables secretRef {env: ...} may name; empty: refused");
  ferry::secrets::VaultFlags vault_flags;
  ferry::secrets::AddVaultFlags(app, vault_flags);
  CLI11_PARSE(app, argc, argv);
  // Test only (docs/development.md): die by SIGKILL right after the Nth saved step.
  if (const char* crash = std::getenv("FERRY_TEST_CRASH_AFTER_STEP"); crash != nullptr) {
    options.runner.test_crash_after_steps = std::atoi(crash);
  }
  ferry::logging::Init("deployer", config.log_level);
  if (config.migrate_only) return ferry::server::MigrateOnly(config, DeployerMigrations());
  if (!non_dumpable.ok()) {
    ferry::logging::Error("cannot start", {{"error", std::string(non_dumpable.message())}});
    return 1;
  }
  absl::StatusOr<ferry::deployer::host::WorkloadIdentity> workload_identity =
      ferry::deployer::host::ResolveWorkloadUser(workload_user);
  if (!workload_identity.ok()) {
    ferry::logging::Error("cannot start", {{"error", std::string(workload_identity.status().message())}});
    return 1;
  }
  workload_options.default_identity = *workload_identity;
  ferry::deployer::host::WorkloadPolicy workload_policy(workload_options);
  if (absl::Status s = workload_policy.Check(); !s.ok()) {
    ferry::logging::Error("cannot start", {{"error", std::string(s.message())}});
    return 1;
  }
  if (!workload_identity->uid.has_value() && geteuid() == 0) {
    if (workload_options.root_deployer_runs_workloads_as_itself) {
      ferry::logging::Warn("--insecure-workloads-as-root: environments without runAs run their workloads as root", {});
    } else {
      ferry::logging::Info("environments without runAs are refused: the deployer runs as root and --workload-user "
                           "is unset", {});
    }
  } else if (!workload_identity->uid.has_value() && !workload_policy.can_switch()) {
    ferry::logging::Info("workloads of environments without runAs run as the deployer's own uid (it cannot switch "
                         "users; it is non-dumpable)", {{"uid", static_cast<int64_t>(geteuid())}});
  }
  if (allowed_roots.empty()) {
    ferry::logging::Warn("no --allowed-roots: an environment's rootDir may be any directory but /",
                         {{"hint", "set --allowed-roots to the directories environments may deploy into"}});
  }
  if (options.drift_interval < absl::Seconds(1)) {
    ferry::logging::Error("cannot start", {{"error", "--drift-interval must be at least 1s"}});
    return 1;
  }
  if (options.plan_attempts < 1) {
    ferry::logging::Error("cannot start", {{"error", "--plan-attempts must be at least 1"}});
    return 1;
  }
  if (options.runner.max_attempts_without_progress < 0) {
    ferry::logging::Error("cannot start", {{"error", "--max-recovery-attempts must be 0 or more"}});
    return 1;
  }
  if (lease_options.ttl < absl::Seconds(1)) {
    ferry::logging::Error("cannot start", {{"error", "--lease-ttl must be at least 1s"}});
    return 1;
  }
  if (absl::Status group = ferry::deployer::ValidateDeployerGroup(options.deployer_group); !group.ok()) {
    ferry::logging::Error("cannot start", {{"error", std::string(group.message())}});
    return 1;
  }
  options.deployer_id = deployer_id;
  lease_options.holder = deployer_id;
  lease_options.group = options.deployer_group;
  absl::StatusOr<ferry::deployer::secrets::SecretResolverOptions> secret_options =
      ferry::deployer::secrets::OptionsFromFlags(secret_flags);
  if (!secret_options.ok()) {
    ferry::logging::Error("cannot start", {{"error", std::string(secret_options.status().message())}});
    return 1;
  }
  ferry::SystemClock vault_clock;
  absl::StatusOr<std::unique_ptr<ferry::secrets::VaultKvClient>> vault =
      ferry::secrets::MakeVaultClient(vault_flags, &vault_clock);
  if (!vault.ok()) {
    ferry::logging::Error("cannot start", {{"error", std::string(vault.status().message())}});
    return 1;
  }
  secret_options->vault = ferry::secrets::LookupOf(vault->get());
  if (*vault != nullptr) {
    ferry::logging::Info("Vault secret references enabled",
                         {{"vault_address", vault_flags.address}, {"vault_kv_mount", vault_flags.kv_mount}});
  }
  if (vault_flags.test_only_allow_http_to_loopback) {
    ferry::logging::Warn("--test-only-vault-allow-http-to-loopback is set: the Vault token may go over plain HTTP", {});
  }
  ferry::deployer::secrets::SecretResolver secret_resolver(*std::move(secret_options));

  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, DeployerMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  auto audit = ferry::outbox::AuditOutbox::Create(infra->pool.get(), "deployer", "deployer", config.audit_address,
                                                  *infra->runner, {.max_batch_bytes = config.outbox_max_batch_bytes});
  ferry::SystemClock clock;
  ferry::deployer::DeployerMetrics metrics(infra->runner->registry());
  ferry::deployer::PostgresLeaseStore lease_store(infra->pool.get(), audit->store());
  ferry::deployer::LeaseKeeper leases(&lease_store, &clock, lease_options, &metrics);
  options.leases = &leases;
  ferry::deployer::PostgresDeploymentStore store(infra->pool.get(), audit->store(),
                                                 {.deployer_group = options.deployer_group, .fences = &leases});
  ferry::logging::Info("deployer replica", {{"deployer_id", deployer_id},
                                            {"deployer_group", options.deployer_group},
                                            {"lease_ttl", absl::FormatDuration(lease_options.ttl)}});
  ferry::deployer::host::HostTargetFactory host_targets{ferry::deployer::host::RootPolicy(allowed_roots),
                                                       workload_policy, &secret_resolver};
  // In-cluster credentials: the pod's service account and the API server's
  // service address, as every Kubernetes client reads them.
  const char* kube_host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* kube_port = std::getenv("KUBERNETES_SERVICE_PORT");
  ferry::deployer::kubernetes::KubernetesTargetFactory kube_targets{
      "/var/run/secrets/kubernetes.io/serviceaccount", kube_host ? kube_host : "", kube_port ? kube_port : "",
      static_cast<size_t>(kube_max_watches)};
  ansible_options.max_output_bytes = ansible_max_output_mb << 20;
  ferry::SystemClock ansible_clock;
  ferry::deployer::ansible::AnsibleTargetFactory ansible_targets{ansible_options, workload_policy, &secret_resolver,
                                                                &ansible_clock};
  std::unique_ptr<ferry::deployer::terraform::SavedPlanStore> terraform_plans;
  std::unique_ptr<ferry::deployer::terraform::TerraformTargetFactory> terraform_targets;
  if (!terraform_plan_dir.empty()) {
    absl::StatusOr<std::string> binary = ferry::deployer::terraform::FindTerraformBinary(terraform_binary, "");
    if (!binary.ok()) {
      ferry::logging::Error("cannot start", {{"error", absl::StrCat("--terraform-binary: ", binary.status().message())}});
      return 1;
    }
    if (!terraform_state_url_file.empty()) {
      if (!terraform_state_url.empty()) {
        ferry::logging::Error("cannot start",
                              {{"error", "--terraform-state-url and --terraform-state-url-file: give one"}});
        return 1;
      }
      std::ifstream in(terraform_state_url_file);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        ferry::logging::Error("cannot start", {{"error", absl::StrCat("--terraform-state-url-file: cannot read ",
                                                                       terraform_state_url_file)}});
        return 1;
      }
      terraform_state_url = std::string(absl::StripAsciiWhitespace(text.str()));
    }
    terraform_settings.binary = *binary;
    terraform_settings.pg_conn_str = terraform_state_url;
    ferry::deployer::terraform::TerraformTargetOptions tf;
    tf.base = terraform_settings;
    if (terraform_plans_in_database) {
      terraform_plans = std::make_unique<ferry::deployer::PostgresSavedPlanStore>(infra->pool.get());
    } else {
      terraform_plans = std::make_unique<ferry::deployer::terraform::DirectoryPlanStore>(terraform_plan_dir);
    }
    tf.plans = terraform_plans.get();
    tf.secrets = &secret_resolver;
    tf.clock = &clock;
    terraform_targets = std::make_unique<ferry::deployer::terraform::TerraformTargetFactory>(tf, workload_policy);
    ferry::logging::Info("Terraform target enabled", {{"binary", *binary},
                                                      {"plans", terraform_plans_in_database ? "database" : terraform_plan_dir},
                                                      {"pg_state", terraform_state_url.empty() ? "no" : "yes"}});
  }
  ferry::deployer::TargetRouter targets{&host_targets, &kube_targets, &ansible_targets, terraform_targets.get()};
  // AcknowledgePlan, ReportPlanResult and ReportPlanResults are idempotent:
  // when the planner is momentarily out of handler threads, gRPC retries
  // them after a short backoff instead of failing the hand-off.
  grpc::ChannelArguments planner_args;
  planner_args.SetServiceConfigJSON(R"({"methodConfig": [{
    "name": [{"service": "ferry.v1.Planner", "method": "AcknowledgePlan"},
             {"service": "ferry.v1.Planner", "method": "ReportPlanResult"},
             {"service": "ferry.v1.Planner", "method": "ReportPlanResults"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.02s", "maxBackoff": "0.5s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["RESOURCE_EXHAUSTED"]}}]})");
  ferry::deployer::GrpcPlanSource plans(infra->tls->Channel(planner_address, "planner", planner_args));
  ferry::deployer::GrpcRepoFileFetcher files(infra->tls->Channel(repo_watcher_address, "repo-watcher"));
  ferry::deployer::DeploymentNotifier notifier;
  ferry::deployer::Deployer deployer(&store, &targets, &plans, &notifier, &metrics, &clock, options,
                                     [&files](const ferry::v1::Plan& plan) { return files.ForPlan(plan); });
  absl::StatusOr<std::unique_ptr<ferry::server::AccessSetup>> access_setup =
      ferry::server::AccessSetup::Create(config, infra->pool.get(), &clock, &infra->runner->registry(),
                                         [&audit](ferry::v1::Event e) { return audit->Record(std::move(e)); });
  if (!access_setup.ok()) {
    ferry::logging::Error("cannot start", {{"error", access_setup.status().ToString()}});
    return 1;
  }
  ferry::deployer::AddDeployerRules(*(*access_setup)->access);
  ferry::deployer::DeployerService service(&deployer, infra->runner->NewStreamLimiter("WatchDeployment"),
                                          live_state_page_bytes);
  infra->runner->AddService(&service);
  infra->runner->OnShutdown([&] {
    notifier.Shutdown();
    deployer.Stop();
  });
  deployer.Start();
  return ferry::server::ServeUntilSignal(*infra->runner, [&] { (*access_setup)->ReloadPolicy(); });
}
