// ferry-audit: the append-only, hash-chained audit log

#include <CLI/CLI.hpp>

#include <optional>

#include "absl/strings/str_join.h"

#include "common/clock/clock.h"
#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/server/service_bootstrap.h"
#include "services/audit/appender.h"
#include "common/server/access_setup.h"
#include "services/audit/audit_access.h"
#include "services/audit/audit_log.h"
#include "services/audit/audit_metrics.h"
#include "services/audit/audit_service.h"
#include "services/audit/checkpoint_key_ring.h"
#include "services/audit/checkpoint_signer.h"
#include "services/audit/checkpoint_witness.h"
#include "services/audit/checkpointer.h"
#include "services/audit/dora_gauges.h"
#include "services/audit/postgres_event_store.h"
#include "services/audit/postgres_history_store.h"
#include "services/audit/time_travel.h"
#include "common/concurrency/background_loop.h"
#include "audit_migrations.h"

int main(int argc, char** argv) {
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("audit", 7004, 9104);
  CLI::App app{"ferry-audit: the append-only, hash-chained audit log"};
  ferry::config::AddServiceFlags(app, config);
  std::string key_file;
  bool trial_ephemeral_key = false;
  std::string trusted_keys;
  std::string witness_dir;
  absl::Duration checkpoint_interval = absl::Minutes(1);
  ferry::config::AddFlag(app, "--checkpoint-key-file", key_file,
                         "PEM Ed25519 private key that signs checkpoints (required); generated there (mode 0600) "
                         "if missing, with the public key beside it as <file>.pub. Keep it on persistent storage");
  app.add_flag("--trial-ephemeral-key", trial_ephemeral_key,
               "trials only: without --checkpoint-key-file, sign with a key kept in memory, lost at exit (its "
               "checkpoints can never be verified again)")
      ->envname(ferry::config::EnvNameFor("--trial-ephemeral-key"));
  ferry::config::AddFlag(app, "--trusted-checkpoint-keys", trusted_keys,
                         "PEM public keys (a file, or a directory of *.pub files) whose checkpoints verify besides "
                         "the signing key's: the old keys after a rotation");
  ferry::config::AddFlag(app, "--checkpoint-witness-dir", witness_dir,
                         "directory outside the database where every checkpoint is also written (<sequence>.json, "
                         "never overwritten) and which VerifyChain and checkpoints are checked against");
  ferry::config::AddDurationFlag(app, "--checkpoint-interval", checkpoint_interval,
                                 "how often to sign a checkpoint when the chain head moved");
  absl::Duration dora_window = absl::Hours(24 * 30);
  absl::Duration dora_refresh = absl::Minutes(1);
  ferry::config::AddDurationFlag(app, "--dora-window", dora_window,
                                 "the window the ferry_dora_* gauges cover (GetDoraMetrics takes any range)");
  ferry::config::AddDurationFlag(app, "--dora-refresh-interval", dora_refresh,
                                 "how often the ferry_dora_* gauges are recomputed");
  CLI11_PARSE(app, argc, argv);
  ferry::logging::Init("audit", config.log_level);
  if (config.migrate_only) return ferry::server::MigrateOnly(config, AuditMigrations());
  if (dora_window <= absl::ZeroDuration() || dora_refresh <= absl::ZeroDuration()) {
    ferry::logging::Error("cannot start", {{"error", "--dora-window and --dora-refresh-interval must be positive"}});
    return 1;
  }
  if (checkpoint_interval <= absl::ZeroDuration()) {
    ferry::logging::Error("cannot start", {{"error", "--checkpoint-interval must be positive"}});
    return 1;
  }
  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, AuditMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  // The key after the configuration and the database, whose errors come first.
  if (key_file.empty() && !trial_ephemeral_key) {
    ferry::logging::Error("cannot start",
                          {{"error",
                            "--checkpoint-key-file is required: a key on persistent storage (created there if "
                            "missing), so that checkpoints stay verifiable across restarts; for a throwaway trial "
                            "give --trial-ephemeral-key instead"}});
    return 1;
  }

  absl::StatusOr<std::unique_ptr<ferry::audit::CheckpointSigner>> signer;
  if (key_file.empty()) {
    signer = ferry::audit::CheckpointSigner::GenerateEphemeral();
    if (signer.ok()) {
      ferry::logging::Warn("signing checkpoints with an ephemeral key (--trial-ephemeral-key): they cannot be "
                           "verified after this process exits",
                           {{"public_key_id", (*signer)->public_key_id()}});
    }
  } else {
    bool generated = false;
    absl::Status pub_written;
    signer = ferry::audit::CheckpointSigner::LoadOrGenerate(key_file, &generated, &pub_written);
    if (signer.ok()) {
      ferry::logging::Info(generated ? "generated a new checkpoint signing key" : "loaded checkpoint signing key",
                           {{"key_file", key_file},
                            {"public_key_file", pub_written.ok() ? key_file + ".pub" : ""},
                            {"public_key_id", (*signer)->public_key_id()}});
      if (!pub_written.ok()) {
        // A read-only key mount (a Kubernetes Secret): the key is usable;
        // verifiers get the public key from ferry.v1.Audit or this line.
        ferry::logging::Warn("did not write the checkpoint public key beside the key file (read-only?)",
                             {{"error", pub_written.ToString()},
                              {"public_key_pem", (*signer)->public_key_pem()}});
      }
    }
  }
  if (!signer.ok()) {
    ferry::logging::Error("cannot start", {{"error", signer.status().ToString()}});
    return 1;
  }
  ferry::audit::CheckpointKeyRing keys(**signer);
  if (!trusted_keys.empty()) {
    if (absl::Status added = keys.AddFromPath(trusted_keys); !added.ok()) {
      ferry::logging::Error("cannot start", {{"error", added.ToString()}});
      return 1;
    }
  }
  ferry::logging::Info("trusted checkpoint keys", {{"public_key_ids", absl::StrJoin(keys.key_ids(), ",")}});
  std::optional<ferry::audit::CheckpointWitness> witness;
  if (!witness_dir.empty()) {
    witness.emplace(witness_dir);
    if (absl::Status opened = witness->Open(); !opened.ok()) {
      ferry::logging::Error("cannot start", {{"error", opened.ToString()}});
      return 1;
    }
  }

  ferry::SystemClock clock;
  ferry::audit::AuditMetrics metrics(infra->runner->registry());
  ferry::audit::PostgresEventStore store(*infra->pool);
  ferry::audit::Appender appender(store, clock, &metrics);
  ferry::audit::AuditLog log(store, appender, **signer, clock, &metrics, {},
                             {.keys = &keys, .witness = witness.has_value() ? &*witness : nullptr});
  ferry::audit::Checkpointer checkpointer(log, checkpoint_interval);
  ferry::audit::PostgresHistoryStore history_store(*infra->pool);
  ferry::audit::TimeTravel history(history_store, clock);
  ferry::audit::DoraGauges dora_gauges(history, clock, infra->runner->registry(), dora_window);
  ferry::concurrency::BackgroundLoop dora_loop("dora-gauges", [&]() -> absl::StatusOr<absl::Duration> {
    if (absl::Status s = dora_gauges.Refresh(); !s.ok()) return s;
    return dora_refresh;
  });
  // Refusals are appended to this log directly (the audit service has no
  // outbox: it is where outboxes deliver).
  absl::StatusOr<std::unique_ptr<ferry::server::AccessSetup>> access_setup = ferry::server::AccessSetup::Create(
      config, infra->pool.get(), &clock, &infra->runner->registry(), [&log](ferry::v1::Event e) {
        e.set_service("audit");
        // Appended asynchronously: a failure is logged here, where it is
        // known, since the refusal itself has already been answered.
        log.AppendAsync("audit", std::move(e), [](absl::StatusOr<ferry::audit::AppendResult> r) {
          if (!r.ok()) ferry::logging::Error("ACCESS_DENIED event not appended", {{"error", r.status().ToString()}});
        });
        return absl::OkStatus();
      });
  if (!access_setup.ok()) {
    ferry::logging::Error("cannot start", {{"error", access_setup.status().ToString()}});
    return 1;
  }
  ferry::audit::AddAuditRules(*(*access_setup)->access);
  ferry::audit::AuditService service(log, {.tail = infra->runner->NewStreamLimiter("Tail"),
                                           .export_ = infra->runner->NewStreamLimiter("Export")},
                                     &history);
  infra->runner->AddService(&service);
  infra->runner->OnShutdown([&] {
    log.StopStreams();
    checkpointer.Stop();
    dora_loop.Stop();
  });
  checkpointer.Start();
  dora_loop.Start();
  return ferry::server::ServeUntilSignal(*infra->runner, [&] { (*access_setup)->ReloadPolicy(); });
}
