#include "common/json/json.h"

#include "absl/strings/str_cat.h"

namespace ferry {

namespace {

// Thrown by the parser callback to stop at the depth limit.
struct TooDeep {};

}  // namespace

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("JSON text of ", text.size(), " bytes, more than ", limits.max_bytes));
  }
  // `depth` is the number of enclosing arrays and objects (0 at the root).
  auto bound = [&limits](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::array_start ||
         event == nlohmann::json::parse_event_t::object_start) &&
        depth >= limits.max_depth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), bound);
  } catch (const TooDeep&) {
    return absl::ResourceExhaustedError(absl::StrCat("JSON nested deeper than ", limits.max_depth, " levels"));
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text) { return ParseJson(text, JsonLimits()); }

absl::StatusOr<std::string> DumpJson(const nlohmann::json& value, int indent) {
  try {
    return value.dump(indent);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("no JSON form: ", e.what()));
  }
}

std::string DumpJsonLossy(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ferry
