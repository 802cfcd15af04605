#include "services/planner/grpc_live_state_source.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"

namespace ferry::planner {
namespace {

int HealthRank(v1::HealthStatus h) {
  switch (h) {
    case v1::HEALTH_STATUS_HEALTHY: return 0;
    case v1::HEALTH_STATUS_PROGRESSING: return 1;
    case v1::HEALTH_STATUS_MISSING: return 3;
    case v1::HEALTH_STATUS_DEGRADED: return 4;
    default: return 2;
  }
}

// A guard against a server that keeps returning tokens: more pages than
// objects asked for plus this many is a protocol error.
constexpr int kSparePages = 100000;

// Bytes of whole desired manifests sent per ObserveLiveState request.
constexpr size_t kDesiredBytes = size_t{2} << 20;

// Objects asked per page: the most the deployer gives (its pages are bounded
// by bytes too, --live-state-page-bytes). The deployer reads a page's
// applied objects and one more, so a smaller page would read fewer rows it
// does not send, but make more round trips: bench/bigplan with 1,000 a page
// took 4.3 s for its one-file change and 3.7 s for its first plan, against
// 3.8 and 3.1 s with 10,000 (three repeats each).
constexpr int kPageSize = 10000;

}  // namespace

GrpcLiveStateSource::GrpcLiveStateSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::Deployer::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<v1::LiveState> GrpcLiveStateSource::Observe(const std::string& application_id,
                                                           const std::string& environment_id,
                                                           const v1::DeployTarget& target,
                                                           const std::vector<v1::Manifest>& desired) {
  v1::ObserveLiveStateRequest request;
  request.set_application_id(application_id);
  request.set_environment_id(environment_id);
  request.set_page_size(kPageSize);
  *request.mutable_target() = target;
  // Only Kubernetes, Ansible and Terraform targets dry-run (Ansible:
  // ansible-playbook --check --diff where the inventory and keys are;
  // Terraform: terraform plan where the state and secrets are): the others
  // get the identities alone.
  // Whole manifests up to kDesiredBytes per request (every page resends
  // them, and the deployer takes messages of 4 MiB). Past it, a Kubernetes
  // application is observed again per further chunk (its observation reads
  // the watch cache; each dry run is one PATCH); Ansible and Terraform send
  // identities, whose diffs are then made without the dry run (another
  // observation there would run their checks again).
  const bool whole = target.kind() == v1::TARGET_KIND_KUBERNETES || target.kind() == v1::TARGET_KIND_ANSIBLE ||
                     target.kind() == v1::TARGET_KIND_TERRAFORM;
  const bool chunked = target.kind() == v1::TARGET_KIND_KUBERNETES;
  std::vector<std::vector<const v1::Manifest*>> chunks(1);  // [0]: the first request's, in `request`.
  size_t first_bytes = 0, chunk_bytes = 0;
  for (const auto& m : desired) {
    size_t size = m.ByteSizeLong();
    if (whole && first_bytes + size <= kDesiredBytes) {
      first_bytes += size;
      *request.add_desired() = m;
      continue;
    }
    *request.add_objects() = m.object();
    if (!chunked || size > kDesiredBytes) continue;  // Diffed without the dry run.
    if (chunks.size() == 1 || chunk_bytes + size > kDesiredBytes) {
      chunks.emplace_back();
      chunk_bytes = 0;
    }
    chunks.back().push_back(&m);
    chunk_bytes += size;
  }
  absl::StatusOr<v1::LiveState> state = ObservePages(request, desired.size());
  if (!state.ok()) return state;
  // The further chunks: their objects' dry runs into the first observation.
  for (size_t c = 1; c < chunks.size(); ++c) {
    if (chunks[c].empty()) continue;
    v1::ObserveLiveStateRequest more;
    more.set_application_id(application_id);
    more.set_environment_id(environment_id);
    more.set_page_size(kPageSize);
    *more.mutable_target() = target;
    std::set<std::string> wanted;
    for (const v1::Manifest* m : chunks[c]) {
      wanted.insert(m->object().SerializeAsString());
      *more.add_desired() = *m;
    }
    absl::StatusOr<v1::LiveState> extra = ObservePages(std::move(more), desired.size());
    if (!extra.ok()) return extra.status();
    std::map<std::string, const v1::LiveObject*> found;
    for (const v1::LiveObject& o : extra->objects()) {
      std::string key = o.object().SerializeAsString();
      if (wanted.count(key) > 0) found[key] = &o;
    }
    for (v1::LiveObject& o : *state->mutable_objects()) {
      auto it = found.find(o.object().SerializeAsString());
      if (it == found.end()) continue;
      o.set_dry_run_json(it->second->dry_run_json());
      o.set_conflict(it->second->conflict());
      o.set_dry_run_error(it->second->dry_run_error());
    }
  }
  return state;
}

absl::StatusOr<v1::LiveState> GrpcLiveStateSource::ObservePages(v1::ObserveLiveStateRequest request,
                                                                size_t objects) {
  // The deployer pages the objects (each page bounded by bytes); the pages
  // together are the application's live state.
  v1::LiveState state;
  bool first = true;
  for (int pages = 0;; ++pages) {
    if (pages > static_cast<int>(objects) + kSparePages)
      return absl::InternalError("ObserveLiveState: the deployer kept returning page tokens");
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    v1::ObserveLiveStateResponse response;
    grpc::Status s = stub_->ObserveLiveState(&context, request, &response);
    if (!s.ok()) return FromGrpcStatus(s);
    v1::LiveState* page = response.mutable_state();
    if (first) {
      v1::LiveState head = *page;
      head.clear_objects();
      state = std::move(head);
      first = false;
    } else {
      if (HealthRank(page->health()) > HealthRank(state.health())) state.set_health(page->health());
      if (page->sync_status() == v1::SYNC_STATUS_OUT_OF_SYNC) state.set_sync_status(v1::SYNC_STATUS_OUT_OF_SYNC);
    }
    for (v1::LiveObject& o : *page->mutable_objects()) *state.add_objects() = std::move(o);
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return state;
}

}  // namespace ferry::planner
