#include "services/planner/render_failure.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "common/text/utf8.h"

namespace ferry::planner {
namespace {
constexpr char kFailureUrl[] = "ferry.dev/render-failure";
constexpr char kPathUrl[] = "ferry.dev/render-path";
constexpr char kLineUrl[] = "ferry.dev/render-line";
}  // namespace

absl::Status RenderFailure(absl::StatusCode code, const std::string& message, const std::string& path, int line) {
  absl::Status status(code, message);
  status.SetPayload(kFailureUrl, absl::Cord("1"));
  if (!path.empty()) status.SetPayload(kPathUrl, absl::Cord(path));
  if (line > 0) status.SetPayload(kLineUrl, absl::Cord(std::to_string(line)));
  return status;
}

bool IsRenderFailure(const absl::Status& status) { return status.GetPayload(kFailureUrl).has_value(); }

v1::PlanFailure ToPlanFailure(const absl::Status& status) {
  v1::PlanFailure failure;
  // Messages and paths may quote bytes from Git; a plan must stay a valid message.
  failure.set_message(text::SanitizeUtf8(status.message()));
  if (auto path = status.GetPayload(kPathUrl)) failure.set_path(text::SanitizeUtf8(std::string(*path)));
  if (auto line = status.GetPayload(kLineUrl)) {
    int n = 0;
    if (absl::SimpleAtoi(std::string(*line), &n)) failure.set_line(n);
  }
  return failure;
}

}  // namespace ferry::planner
