#include "services/planner/revision_gate.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

void Detail(v1::Event& e, const std::string& key, const std::string& value) {
  (*e.mutable_details()->mutable_fields())[key].set_string_value(value);
}

}  // namespace

absl::Status RevisionGate::CheckSignaturePolicy(const Use& use) {
  ASSIGN_OR_RETURN(v1::CheckRevisionResponse verdict, repo_->CheckRevision(use.repository_id, use.sha));
  if (verdict.accepted()) return absl::OkStatus();
  return Refuse(use, "signature_policy",
                absl::StrCat("revision ", use.sha, " of repository ", use.repository_id,
                             " is not accepted by its signature policy: ", verdict.reason()),
                &verdict);
}

absl::Status RevisionGate::CheckRollbackTarget(const Use& use) {
  ASSIGN_OR_RETURN(bool deployed, plans_->HasSucceeded(use.application_id, use.environment_id, use.sha));
  if (deployed) return absl::OkStatus();
  return Refuse(use, "never_deployed",
                absl::StrCat("rollback of application \"", use.application_id, "\" in environment \"",
                             use.environment_id, "\" to revision ", use.sha,
                             " refused: that revision was never deployed successfully in that environment"),
                nullptr);
}

absl::Status RevisionGate::Refuse(const Use& use, const std::string& why, const std::string& message,
                                  const v1::CheckRevisionResponse* verdict) {
  v1::Event e = events_.Make(v1::AUDIT_ACTION_REVISION_REFUSED, use.actor, message,
                             absl::StrCat("revision-refused/", use.repository_id, "/", use.sha));
  v1::Subject* subject = e.mutable_subject();
  subject->set_repository_id(use.repository_id);
  subject->set_ref(use.ref);
  subject->set_commit_sha(use.sha);
  subject->set_application_id(use.application_id);
  subject->set_environment_id(use.environment_id);
  Detail(e, "call", use.call);
  Detail(e, "refused_because", why);
  if (!use.path.empty()) Detail(e, "path", use.path);
  if (verdict != nullptr) {
    Detail(e, "signature_reason", verdict->reason());
    if (!verdict->signer().empty()) Detail(e, "signer", verdict->signer());
  }
  absl::Status recorded = catalog_->RecordEvents({e});
  if (!recorded.ok()) {
    logging::Error("cannot record the audit event of a refused revision; refused anyway",
                   {{"repository", use.repository_id}, {"commit", use.sha}, {"error", recorded.ToString()}});
  }
  logging::Warn("revision refused", {{"call", use.call},
                                     {"repository", use.repository_id},
                                     {"commit", use.sha},
                                     {"application", use.application_id},
                                     {"environment", use.environment_id},
                                     {"reason", why}});
  return absl::FailedPreconditionError(message);
}

}  // namespace ferry::planner
