#include "services/planner/plan_view.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/kube/secret_mask.h"

namespace ferry::planner {
namespace {

constexpr int kDefaultManifestPageSize = 1000;
constexpr int kMaxManifestPageSize = 10000;

}  // namespace

void MaskSecretValues(google::protobuf::RepeatedPtrField<v1::Manifest>& manifests) {
  for (v1::Manifest& m : manifests) {
    if (m.object().kind() != "Secret" || !m.object().group().empty()) continue;
    absl::StatusOr<nlohmann::json> doc = ParseJson(m.json());
    if (!doc.ok() || !kube::IsSecret(*doc)) continue;
    kube::MaskSecretValues(*doc);
    m.set_json(DumpJsonLossy(*doc));
  }
}

void ToBasicView(v1::Plan& plan) {
  plan.clear_manifests();
  for (auto& a : *plan.mutable_actions()) {
    a.clear_json_patch();
    a.clear_unified_diff();
  }
}

void OmitDetails(v1::Plan& plan) {
  if (!plan.details_omitted()) plan.set_manifest_count(plan.manifests_size());
  ToBasicView(plan);
  plan.set_details_omitted(true);
}

bool FitInMessage(v1::Plan& plan, size_t max_bytes) {
  if (plan.details_omitted() || plan.ByteSizeLong() <= max_bytes) return false;
  OmitDetails(plan);
  return true;
}

absl::StatusOr<v1::ListPlanManifestsResponse> ManifestPage(const v1::Plan& plan, int page_size,
                                                           const std::string& page_token, size_t page_bytes) {
  if (page_size < 0 || page_size > kMaxManifestPageSize)
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be between 0 and ", kMaxManifestPageSize));
  const int limit = page_size == 0 ? kDefaultManifestPageSize : page_size;
  // The token is the position in the sequence manifests, then actions.
  int64_t pos = 0;
  const int64_t m = plan.manifests_size(), a = plan.actions_size();
  if (!page_token.empty() && (!absl::SimpleAtoi(page_token, &pos) || pos <= 0 || pos > m + a))
    return absl::InvalidArgumentError("page_token: not a token from ListPlanManifests for this plan");
  v1::ListPlanManifestsResponse out;
  out.set_manifest_count(static_cast<int32_t>(m));
  out.set_action_count(static_cast<int32_t>(a));
  out.set_manifests_digest(plan.manifests_digest());
  out.set_manifest_offset(static_cast<int32_t>(std::min(pos, m)));
  size_t bytes = 0;
  int items = 0;
  for (; pos < m + a && items < limit; ++pos) {
    size_t size = 0;
    if (pos < m) {
      size = plan.manifests(static_cast<int>(pos)).ByteSizeLong();
    } else {
      const v1::PlanAction& action = plan.actions(static_cast<int>(pos - m));
      if (action.json_patch().empty() && action.unified_diff().empty()) continue;
      size = action.json_patch().size() + action.unified_diff().size() + 16;
    }
    if (items > 0 && bytes + size > page_bytes) break;
    if (pos < m) {
      *out.add_manifests() = plan.manifests(static_cast<int>(pos));
    } else {
      const v1::PlanAction& action = plan.actions(static_cast<int>(pos - m));
      v1::PlanActionDetail* d = out.add_action_details();
      d->set_index(static_cast<int32_t>(pos - m));
      d->set_json_patch(action.json_patch());
      d->set_unified_diff(action.unified_diff());
    }
    bytes += size;
    ++items;
  }
  if (pos < m + a) out.set_next_page_token(absl::StrCat(pos));
  return out;
}

}  // namespace ferry::planner
