// Fuzz target: the planner's manifest parser (services/planner/manifest_parser.h)
// on one file's text as it comes from Git.

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "services/planner/manifest_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<ferry::v1::Manifest>> manifests =
      ferry::planner::ParseManifests(text, "apps/fuzz/manifests.yaml");
  if (!manifests.ok()) {
    if (manifests.status().message().empty()) ferry::fuzz::Violated("error without a message", "");
    return 0;
  }
  for (const ferry::v1::Manifest& m : *manifests) {
    ferry::planner::DescribeObject(m.object());
    ferry::planner::IdentityKey(m.object());
  }
  std::string digest = ferry::planner::ManifestsDigest(*manifests);
  if (digest.rfind("sha256:", 0) != 0) ferry::fuzz::Violated("digest is not sha256:<hex>", digest);
  (void)ferry::planner::CheckAndSortManifests(*manifests);
  return 0;
}
