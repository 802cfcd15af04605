#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// One job: the forms a plan takes on the wire. Pure functions; thread-safe.

// Sizes that keep every plan message under the gRPC receive limit (4 MiB by
// default) whatever the number of objects.
struct PlanMessageLimits {
  // A FULL plan larger than this is sent without its details
  // (--max-plan-message-bytes).
  size_t max_plan_message_bytes = 3 * 1024 * 1024;
  // Bytes of one ListPlanManifests page (--plan-page-bytes).
  size_t page_bytes = 1024 * 1024;
};

// The PLAN_VIEW_BASIC form of a plan. Strips manifests, json_patch and
// unified_diff.
void ToBasicView(v1::Plan& plan);

// The basic form, marked: details_omitted set and manifest_count kept, so a
// reader knows to fetch the details with ListPlanManifests.
void OmitDetails(v1::Plan& plan);

// Omits the details of `plan` when its FULL form is over `max_bytes`.
// Returns true when it did.
bool FitInMessage(v1::Plan& plan, size_t max_bytes);

// Kubernetes Secret values in `manifests` replaced by their digests
// (common/kube/secret_mask.h), for people reading plans: only the deployer
// needs the values, to apply them.
void MaskSecretValues(google::protobuf::RepeatedPtrField<v1::Manifest>& manifests);

// One page of ListPlanManifests over a FULL plan: manifests in order, then
// the details of actions that have any, from `page_token` on, at most
// `page_size` items (0 = 1000, at most 10000) and about `page_bytes` bytes
// (always at least one item). INVALID_ARGUMENT for a bad page_size or token.
absl::StatusOr<v1::ListPlanManifestsResponse> ManifestPage(const v1::Plan& plan, int page_size,
                                                           const std::string& page_token, size_t page_bytes);

}  // namespace ferry::planner
