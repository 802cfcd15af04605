#include "services/repo-watcher/repository_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/page_size.h"
#include "common/concurrency/retry_aborted.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {

const std::vector<std::string> kMutableFields = {"url",           "branches",       "tag_patterns",
                                                 "poll_interval", "credentials",    "webhook_secret",
                                                 "signature_policy", "git_host"};

v1::Event RegistryEvent(v1::AuditAction action, const std::string& id, const v1::Actor& actor,
                        const std::string& message) {
  v1::Event e = MakeEvent(action, id, message);
  *e.mutable_actor() = actor;
  return e;
}

// What an audit record may say about a repository: references only.
void DescribeRepository(const v1::Repository& repo, v1::Event& e) {
  auto& f = *e.mutable_details()->mutable_fields();
  f["url"].set_string_value(repo.url());
  f["branches"].set_string_value(absl::StrJoin(repo.branches(), ","));
  f["tag_patterns"].set_string_value(absl::StrJoin(repo.tag_patterns(), ","));
  f["poll_interval_seconds"].set_number_value(static_cast<double>(repo.poll_interval().seconds()));
  f["signature_mode"].set_string_value(v1::SignatureMode_Name(repo.signature_policy().mode()));
  f["has_credentials"].set_bool_value(repo.has_credentials());
  f["has_webhook_secret"].set_bool_value(repo.has_webhook_secret());
  if (repo.has_git_host()) {
    f["git_host_kind"].set_string_value(v1::GitHostKind_Name(repo.git_host().kind()));
    f["git_host_api_url"].set_string_value(repo.git_host().api_url());
    f["git_host_project"].set_string_value(repo.git_host().project());
  }
}

void SetOutcome(v1::Event& e, const absl::Status& status) {
  auto& f = *e.mutable_details()->mutable_fields();
  f["outcome"].set_string_value(status.ok() ? "applied" : "rejected");
  if (!status.ok()) f["error"].set_string_value(std::string(status.message()));
}

}  // namespace

absl::Status RepositoryRegistry::AuditRejection(v1::AuditAction action, const std::string& id, const v1::Actor& actor,
                                                const absl::Status& error) {
  v1::Event e = RegistryEvent(action, IsValidId(id) ? id : "", actor,
                              absl::StrCat("rejected request for repository \"", id, "\": ", error.message()));
  SetOutcome(e, error);
  (void)store_->RecordEvent(e);  // best effort: the caller gets `error` either way
  return error;
}

absl::StatusOr<v1::Repository> RepositoryRegistry::Create(v1::Repository repo, const v1::Actor& actor) {
  repo.clear_create_time();
  repo.clear_update_time();
  if (absl::Status s = ValidateAndNormalize(repo, *sources_); !s.ok()) {
    return AuditRejection(v1::AUDIT_ACTION_REPOSITORY_REGISTERED, repo.id(), actor, s);
  }
  if (repo.has_credentials()) repo.mutable_credentials()->set_origin(UrlOrigin(repo.url()));
  v1::Event e = RegistryEvent(v1::AUDIT_ACTION_REPOSITORY_REGISTERED, repo.id(), actor,
                              absl::StrCat("repository ", repo.id(), " registered (", repo.url(), ")"));
  DescribeRepository(repo, e);
  SetOutcome(e, absl::OkStatus());
  absl::StatusOr<v1::Repository> out = store_->Create(repo, e);
  if (absl::IsAlreadyExists(out.status())) {
    return AuditRejection(
        v1::AUDIT_ACTION_REPOSITORY_REGISTERED, repo.id(), actor,
        absl::AlreadyExistsError(absl::StrCat("repository.id: \"", repo.id(), "\" is already registered")));
  }
  if (out.ok() && hooks_.on_changed) hooks_.on_changed(repo.id());
  return out;
}

absl::StatusOr<v1::Repository> RepositoryRegistry::Get(const std::string& id) {
  if (!IsValidId(id)) return absl::InvalidArgumentError("id: must be a repository id (lowercase DNS label)");
  return store_->Get(id);
}

absl::StatusOr<v1::ListRepositoriesResponse> RepositoryRegistry::List(int page_size, const std::string& page_token) {
  absl::StatusOr<int> size = api::PageSize(page_size);
  if (!size.ok()) return size.status();
  page_size = *size;
  if (!page_token.empty() && !IsValidId(page_token)) return absl::InvalidArgumentError("page_token: invalid");
  absl::StatusOr<std::vector<v1::Repository>> repos = store_->List(page_token, page_size + 1);
  if (!repos.ok()) return repos.status();
  v1::ListRepositoriesResponse out;
  for (int i = 0; i < static_cast<int>(repos->size()) && i < page_size; ++i) *out.add_repositories() = (*repos)[i];
  if (static_cast<int>(repos->size()) > page_size) out.set_next_page_token((*repos)[page_size - 1].id());
  return out;
}

absl::StatusOr<v1::Repository> RepositoryRegistry::Update(const v1::Repository& changes,
                                                          const std::vector<std::string>& mask,
                                                          const v1::Actor& actor) {
  const v1::AuditAction kUpdated = v1::AUDIT_ACTION_REPOSITORY_UPDATED;
  if (!IsValidId(changes.id())) {
    return AuditRejection(kUpdated, changes.id(), actor,
                          absl::InvalidArgumentError("repository.id: must be a repository id"));
  }
  std::vector<std::string> fields = mask.empty() ? kMutableFields : mask;
  for (const std::string& f : fields) {
    if (std::find(kMutableFields.begin(), kMutableFields.end(), f) == kMutableFields.end()) {
      return AuditRejection(kUpdated, changes.id(), actor,
                            absl::InvalidArgumentError(absl::StrCat("update_mask: \"", f,
                                                                    "\" is not a mutable field (",
                                                                    absl::StrJoin(kMutableFields, ", "), ")")));
    }
  }
  // Merged into the stored spec, which must not change meanwhile (another
  // update's fields would be lost): re-read and merge again if it did.
  absl::StatusOr<v1::Repository> out = concurrency::RetryWhileAborted([&]() -> absl::StatusOr<v1::Repository> {
    absl::StatusOr<v1::Repository> current = store_->Get(changes.id());
    if (!current.ok()) return current.status();
    v1::Repository next = *current;
    for (const std::string& f : fields) {
      if (f == "url") next.set_url(changes.url());
      if (f == "branches") *next.mutable_branches() = changes.branches();
      if (f == "tag_patterns") *next.mutable_tag_patterns() = changes.tag_patterns();
      if (f == "poll_interval") {
        if (changes.has_poll_interval()) *next.mutable_poll_interval() = changes.poll_interval();
        else next.clear_poll_interval();
      }
      if (f == "credentials") {
        if (changes.has_credentials()) *next.mutable_credentials() = changes.credentials();
        else next.clear_credentials();
      }
      if (f == "webhook_secret") {
        if (changes.has_webhook_secret()) *next.mutable_webhook_secret() = changes.webhook_secret();
        else next.clear_webhook_secret();
      }
      if (f == "git_host") {
        if (changes.has_git_host()) *next.mutable_git_host() = changes.git_host();
        else next.clear_git_host();
      }
      if (f == "signature_policy") {
        if (changes.has_signature_policy()) *next.mutable_signature_policy() = changes.signature_policy();
        else next.clear_signature_policy();
      }
    }
    next.clear_create_time();
    next.clear_update_time();
    if (absl::Status s = ValidateAndNormalize(next, *sources_); !s.ok()) {
      return AuditRejection(kUpdated, next.id(), actor, s);
    }
    // Credentials go only to the origin they were given for: moving the URL
    // elsewhere takes giving them again (a spec stored before origins were
    // recorded is bound to its stored URL).
    if (next.has_credentials()) {
      const bool given = changes.has_credentials() &&
                         std::find(fields.begin(), fields.end(), "credentials") != fields.end();
      const std::string origin = UrlOrigin(next.url());
      if (given) {
        next.mutable_credentials()->set_origin(origin);
      } else {
        std::string bound = current->credentials().origin();
        if (bound.empty()) bound = UrlOrigin(current->url());
        if (bound != origin) {
          return AuditRejection(kUpdated, next.id(), actor,
                                absl::InvalidArgumentError(absl::StrCat(
                                    "repository.url: changing the origin from ", bound, " to ", origin,
                                    " requires giving the credentials again (update_mask with credentials)")));
        }
        next.mutable_credentials()->set_origin(bound);
      }
    }
    v1::Event e = RegistryEvent(v1::AUDIT_ACTION_REPOSITORY_UPDATED, next.id(), actor,
                                absl::StrCat("repository ", next.id(), " updated (", absl::StrJoin(fields, ", "), ")"));
    DescribeRepository(next, e);
    (*e.mutable_details()->mutable_fields())["fields"].set_string_value(absl::StrJoin(fields, ","));
    SetOutcome(e, absl::OkStatus());
    return store_->Update(next, *current, e);
  });
  if (out.ok() && hooks_.on_changed) hooks_.on_changed(out->id());
  return out;
}

absl::Status RepositoryRegistry::Delete(const std::string& id, const v1::Actor& actor) {
  if (!IsValidId(id)) {
    return AuditRejection(v1::AUDIT_ACTION_REPOSITORY_DELETED, id, actor,
                          absl::InvalidArgumentError("id: must be a repository id (lowercase DNS label)"));
  }
  v1::Event e = RegistryEvent(v1::AUDIT_ACTION_REPOSITORY_DELETED, id, actor, absl::StrCat("repository ", id, " deleted"));
  SetOutcome(e, absl::OkStatus());
  absl::Status s = store_->Delete(id, e);
  if (s.ok() && hooks_.on_deleted) hooks_.on_deleted(id);
  return s;
}

}  // namespace ferry::repo_watcher
