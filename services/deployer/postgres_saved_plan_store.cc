#include "services/deployer/postgres_saved_plan_store.h"

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ferry::deployer {
namespace {

constexpr char kPut[] = "deployer_tfplan_put";
constexpr char kPrune[] = "deployer_tfplan_prune";
constexpr char kGet[] = "deployer_tfplan_get";
constexpr char kMark[] = "deployer_tfplan_mark";
constexpr char kApplied[] = "deployer_tfplan_applied";

absl::Status CheckDigest(const std::string& digest) {
  if (!absl::StartsWith(digest, "sha256:") || digest.size() != 7 + 64)
    return absl::InvalidArgumentError(absl::StrCat("plan digest \"", digest, "\" is not sha256:<hex>"));
  return absl::OkStatus();
}

}  // namespace

PostgresSavedPlanStore::PostgresSavedPlanStore(postgres::ConnectionPool* pool) : pool_(pool) {
  pool_->Prepare(kPut,
                 "INSERT INTO deployer.terraform_plans (application_id, environment_id, digest, plan_file)"
                 " VALUES ($1, $2, $3, $4) ON CONFLICT (application_id, environment_id, digest) DO NOTHING");
  // Unapplied plans of this application a day old: no approval comes that late.
  pool_->Prepare(kPrune,
                 "DELETE FROM deployer.terraform_plans WHERE application_id = $1 AND environment_id = $2"
                 " AND apply_time IS NULL AND create_time < now() - interval '1 day'");
  pool_->Prepare(kGet,
                 "SELECT plan_file FROM deployer.terraform_plans"
                 " WHERE application_id = $1 AND environment_id = $2 AND digest = $3");
  // The applied mark is kept even when the file is gone (a plan applied is
  // never applied again: the target re-plans).
  pool_->Prepare(kMark,
                 "INSERT INTO deployer.terraform_plans (application_id, environment_id, digest, plan_file, apply_time)"
                 " VALUES ($1, $2, $3, ''::bytea, now()) ON CONFLICT (application_id, environment_id, digest)"
                 " DO UPDATE SET apply_time = COALESCE(deployer.terraform_plans.apply_time, now())");
  pool_->Prepare(kApplied,
                 "SELECT apply_time IS NOT NULL FROM deployer.terraform_plans"
                 " WHERE application_id = $1 AND environment_id = $2 AND digest = $3");
}

absl::Status PostgresSavedPlanStore::Put(const std::string& app, const std::string& env, const std::string& digest,
                                         const std::string& plan_file) {
  if (absl::Status s = CheckDigest(digest); !s.ok()) return s;
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0(kPrune, app, env);
    txn.exec_prepared0(kPut, app, env, digest, pqxx::binarystring(plan_file));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> PostgresSavedPlanStore::Get(const std::string& app, const std::string& env,
                                                        const std::string& digest) {
  if (absl::Status s = CheckDigest(digest); !s.ok()) return s;
  return pool_->RunInTransactionWithResult<std::string>([&](pqxx::work& txn) -> absl::StatusOr<std::string> {
    pqxx::result r = txn.exec_prepared(kGet, app, env, digest);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("no saved plan ", digest, " for ", app, "/", env));
    std::string file = pqxx::binarystring(r[0][0]).str();
    if (file.empty()) return absl::NotFoundError(absl::StrCat("no saved plan ", digest, " for ", app, "/", env));
    return file;
  });
}

absl::Status PostgresSavedPlanStore::MarkApplied(const std::string& app, const std::string& env,
                                                 const std::string& digest) {
  if (absl::Status s = CheckDigest(digest); !s.ok()) return s;
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0(kMark, app, env, digest);
    return absl::OkStatus();
  });
}

absl::StatusOr<bool> PostgresSavedPlanStore::WasApplied(const std::string& app, const std::string& env,
                                                        const std::string& digest) {
  if (absl::Status s = CheckDigest(digest); !s.ok()) return s;
  return pool_->RunInTransactionWithResult<bool>([&](pqxx::work& txn) -> absl::StatusOr<bool> {
    pqxx::result r = txn.exec_prepared(kApplied, app, env, digest);
    return !r.empty() && r[0][0].as<bool>();
  });
}

}  // namespace ferry::deployer
