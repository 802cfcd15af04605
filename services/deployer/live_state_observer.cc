#include "services/deployer/live_state_observer.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/audit_events.h"
#include "common/json/json.h"
#include "common/kube/secret_mask.h"

namespace ferry::deployer {
namespace {

int HealthRank(v1::HealthStatus h) {
  switch (h) {
    case v1::HEALTH_STATUS_HEALTHY: return 0;
    case v1::HEALTH_STATUS_PROGRESSING: return 1;
    case v1::HEALTH_STATUS_UNKNOWN: return 2;
    case v1::HEALTH_STATUS_MISSING: return 3;
    case v1::HEALTH_STATUS_DEGRADED: return 4;
    default: return 2;
  }
}

constexpr int kDefaultPageSize = 1000;
constexpr int kMaxPageSize = 10000;

std::string PageToken(const ObjectKey& key) {
  std::string out;
  absl::WebSafeBase64Escape(key.ToProto().SerializeAsString(), &out);
  return out;
}

absl::StatusOr<ObjectKey> FromPageToken(const std::string& token) {
  std::string raw;
  v1::ObjectRef ref;
  if (!absl::WebSafeBase64Unescape(token, &raw) || !ref.ParseFromString(raw))
    return absl::InvalidArgumentError("page_token: not a token from ObserveLiveState");
  return ObjectKey::FromProto(ref);
}

// The applied object as shown: a Kubernetes Secret's values as digests.
std::string MaskedSecret(const std::string& json_text) {
  absl::StatusOr<nlohmann::json> doc = ParseJson(json_text);
  if (!doc.ok() || !kube::IsSecret(*doc)) return json_text;
  kube::MaskSecretValues(*doc);
  return DumpJsonLossy(*doc);
}

}  // namespace

absl::StatusOr<v1::LiveState> LiveStateObserver::Observe(const std::string& app, const std::string& env,
                                                const v1::DeployTarget* target_config,
                                                const std::vector<ObjectKey>& extra, bool include_json, Page& page) {
  absl::Status ids = RequireIds(app, env);
  if (!ids.ok()) return ids;
  // Its managed record, applied objects, pin and live deployment in one
  // read: the planner observes every application it plans (issue #23).
  DeploymentRecords::AppStateRead what;
  what.applied = true;
  what.managed = true;
  if (page.paged) {
    // The page's applied objects only, and one more: those after the page
    // are not read again for every page (bench/bigplan: each page of an
    // application of 20,000 objects read all 20,000 rows). A page holds at most
    // page.size objects; with one applied object more than that in hand,
    // the first page.size in key order are all among those read.
    if (page.after) what.applied_after = page.after->ToString();
    what.applied_limit = page.size + 1;
  }
  absl::StatusOr<DeploymentRecords::AppState> read = records_->ReadAppState(app, env, what);
  if (!read.ok()) return read.status();
  const std::optional<ManagedApp>& managed = read->managed;
  v1::DeployTarget config;
  if (managed.has_value()) {
    config = managed->target;
  } else if (target_config != nullptr && target_config->kind() != v1::TARGET_KIND_UNSPECIFIED) {
    config = *target_config;
  } else {
    return absl::NotFoundError(
        absl::StrCat("application \"", app, "\" has never been deployed to \"", env, "\"; pass its target"));
  }
  absl::StatusOr<Target*> target = targets_->For(config);
  if (!target.ok()) return target.status();
  const std::vector<AppliedObject>* applied = &read->applied;
  v1::LiveState out;
  out.set_application_id(app);
  out.set_environment_id(env);
  *out.mutable_pin() = read->pin;
  *out.mutable_observe_time() = ToTimestamp(clock_->Now());
  if (read->live.has_value()) {
    const v1::Deployment& live = *read->live;
    *out.mutable_revision() = live.revision();
    out.set_deployment_id(live.id());
    out.set_manifests_digest(live.manifests_digest());
  }
  AppScope scope{app, env};
  // Every object in key order (ObjectKey::ToString(), compared as bytes: the
  // order the store pages applied objects in): applied ones (with what was
  // applied) and the extra ones asked for. Only the page's are observed.
  std::map<std::string, std::pair<ObjectKey, const AppliedObject*>> keys;
  for (const AppliedObject& a : *applied) keys[a.object.key.ToString()] = {a.object.key, &a};
  for (const ObjectKey& k : extra) keys.emplace(k.ToString(), std::make_pair(k, nullptr));
  auto it = page.after ? keys.upper_bound(page.after->ToString()) : keys.begin();
  std::vector<std::pair<ObjectKey, v1::LiveObject>> objects;  // in key order
  v1::HealthStatus worst = v1::HEALTH_STATUS_HEALTHY;
  bool drifted = false;
  size_t bytes = 0;
  for (; it != keys.end(); ++it) {
    if (page.paged && static_cast<int>(objects.size()) >= page.size) break;
    const ObjectKey& k = it->second.first;
    const AppliedObject* a = it->second.second;
    ObservedObject o = (*target)->Observe(scope, k, a ? &a->object : nullptr);
    v1::LiveObject lo;
    *lo.mutable_object() = k.ToProto();
    lo.set_health(o.health);
    lo.set_health_message(o.health_message);
    if (a != nullptr) {
      lo.set_drift(o.drift);
      lo.set_drift_message(o.drift_message);
    } else {
      lo.set_drift(v1::DRIFT_STATUS_UNKNOWN);
    }
    if (include_json) {
      lo.set_live_json(o.live_json);
      if (a != nullptr) lo.set_applied_json(MaskedSecret(a->object.json));
      auto d = page.desired.find(k);
      if (d != page.desired.end() && o.exists && a != nullptr && a->object.json == d->second->json() &&
          o.drift == v1::DRIFT_STATUS_IN_SYNC && !o.live_json.empty() && !(*target)->DryRunIsThePlan()) {
        // Unchanged in Git since it was applied, and live exactly as applied
        // (no field changed by anyone else, so no conflict either): applying
        // it again changes nothing, and its dry run would answer the live
        // object. One request less per unchanged object: a commit changing
        // one ConfigMap of 1,000 made 1,000 dry-run PATCHes (about 1.1 s of
        // kube-apiserver CPU) before its plan (bench/kubeapply-e2e).
        lo.set_dry_run_json(o.live_json);
      } else if (d != page.desired.end() && o.exists) {
        const v1::Manifest& m = *d->second;
        absl::StatusOr<DryRunResult> dry =
            (*target)->DryRun(scope, TargetObject{k, m.json(), m.source_path(), m.wave()});
        // A target without a dry run, or one that failed: the plan diffs as
        // before, unless the dry run is the target's plan (Terraform), whose
        // failure fails the Ferry plan with the target's message.
        if (dry.ok()) {
          lo.set_dry_run_json(dry->json);
          lo.set_conflict(dry->conflict);
        } else if ((*target)->DryRunIsThePlan()) {
          lo.set_dry_run_error(std::string(dry.status().message()));
        }
      }
    }
    size_t size = lo.ByteSizeLong();
    if (page.paged && !objects.empty() && bytes + size > page.bytes) break;
    bytes += size;
    if (a != nullptr) {
      if (HealthRank(o.health) > HealthRank(worst)) worst = o.health;
      if (o.drift == v1::DRIFT_STATUS_MODIFIED || o.drift == v1::DRIFT_STATUS_MISSING) drifted = true;
    }
    objects.emplace_back(k, std::move(lo));
  }
  if (page.paged && it != keys.end() && !objects.empty()) page.last = objects.back().first;
  for (auto& [k, lo] : objects) *out.add_objects() = std::move(lo);
  out.set_health(read->has_applied ? worst : v1::HEALTH_STATUS_MISSING);
  out.set_sync_status(drifted ? v1::SYNC_STATUS_OUT_OF_SYNC : v1::SYNC_STATUS_SYNCED);
  return out;
}

absl::StatusOr<v1::LiveState> LiveStateObserver::GetLiveState(const v1::GetLiveStateRequest& req) {
  Page all;
  return Observe(req.application_id(), req.environment_id(), nullptr, {}, req.include_json(), all);
}

absl::StatusOr<v1::ObserveLiveStateResponse> LiveStateObserver::ObserveLiveState(const v1::ObserveLiveStateRequest& req,
                                                                                size_t page_bytes) {
  if (req.page_size() < 0 || req.page_size() > kMaxPageSize)
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be between 0 and ", kMaxPageSize));
  Page page;
  page.paged = true;
  page.size = req.page_size() == 0 ? kDefaultPageSize : req.page_size();
  page.bytes = page_bytes;
  if (!req.page_token().empty()) {
    absl::StatusOr<ObjectKey> after = FromPageToken(req.page_token());
    if (!after.ok()) return after.status();
    page.after = *after;
  }
  std::vector<ObjectKey> extra;
  for (const v1::ObjectRef& r : req.objects()) extra.push_back(ObjectKey::FromProto(r));
  for (const v1::Manifest& m : req.desired()) {
    extra.push_back(ObjectKey::FromProto(m.object()));
    page.desired[extra.back()] = &m;
  }
  absl::StatusOr<v1::LiveState> state =
      Observe(req.application_id(), req.environment_id(), req.has_target() ? &req.target() : nullptr, extra, true, page);
  if (!state.ok()) return state.status();
  v1::ObserveLiveStateResponse out;
  *out.mutable_state() = *std::move(state);
  if (page.last) out.set_next_page_token(PageToken(*page.last));
  return out;
}

}  // namespace ferry::deployer
