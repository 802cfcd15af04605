#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/repo-watcher/repository_store.h"
#include "common/secrets/secret_sources.h"

namespace ferry::repo_watcher {

// Registry logic: validation, field masks, paging and audit events for
// Create/Get/List/Update/Delete. No gRPC, no SQL. Thread-safe.
// Every change is audited in its own transaction with details.outcome
// "applied"; a change refused for bad input (INVALID_ARGUMENT,
// ALREADY_EXISTS) is audited under the attempted action with
// details.outcome "rejected" and the error, and changes nothing.
// Credentials are bound to the origin of the URL they were given with
// (credentials.origin, set here; a value sent by a client is ignored): an
// update that moves the URL to another origin must give credentials again.
class RepositoryRegistry {
 public:
  // Observers of registry changes (the scheduler and the mirrors).
  struct Hooks {
    std::function<void(const std::string& id)> on_changed;  // created or updated
    std::function<void(const std::string& id)> on_deleted;
  };

  // `sources` (where secret references may point) must outlive the registry.
  RepositoryRegistry(RepositoryStore* store, const secrets::SecretSources* sources, Hooks hooks)
      : store_(store), sources_(sources), hooks_(std::move(hooks)) {}

  // `actor` is the authenticated caller (auth::ActorOf of the handler's
  // principal); it is recorded in
  // the audit event of the change (or of its refusal).

  // INVALID_ARGUMENT naming the field; ALREADY_EXISTS on a taken id.
  absl::StatusOr<v1::Repository> Create(v1::Repository repo, const v1::Actor& actor);
  absl::StatusOr<v1::Repository> Get(const std::string& id);
  // page_size as api::PageSize (0 = 50, at most 1000); page_token is opaque.
  absl::StatusOr<v1::ListRepositoriesResponse> List(int page_size, const std::string& page_token);
  // Replaces the fields in `mask` (empty: all mutable fields);
  // INVALID_ARGUMENT for an unknown mask path or an invalid result, or for a
  // URL on another origin than the stored credentials' without credentials
  // in the same request.
  absl::StatusOr<v1::Repository> Update(const v1::Repository& changes, const std::vector<std::string>& mask,
                                        const v1::Actor& actor);
  absl::Status Delete(const std::string& id, const v1::Actor& actor);

 private:
  // Audits a refused change and returns `error`.
  absl::Status AuditRejection(v1::AuditAction action, const std::string& id, const v1::Actor& actor,
                              const absl::Status& error);

  RepositoryStore* store_;
  const secrets::SecretSources* sources_;
  Hooks hooks_;
};

}  // namespace ferry::repo_watcher
