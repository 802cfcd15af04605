#include "tests/audit/reference_canonical_json.h"

#include <exception>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "services/audit/canonical_json.h"

namespace ferry::audit {
namespace {

absl::StatusOr<nlohmann::json> ProtoJson(const v1::Event& event) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = false;
  options.always_print_enums_as_ints = false;
  std::string text;
  auto status = google::protobuf::util::MessageToJsonString(event, &text, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("event has no JSON form: ", std::string(status.message())));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("event has no JSON form: ", e.what()));
  }
}

void WriteCanonical(const nlohmann::json& j, std::string* out) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      // nlohmann::json keeps object keys in a std::map: sorted by UTF-8 bytes.
      out->push_back('{');
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out->push_back(',');
        first = false;
        out->append(nlohmann::json(it.key()).dump());
        out->push_back(':');
        WriteCanonical(it.value(), out);
      }
      out->push_back('}');
      return;
    }
    case nlohmann::json::value_t::array: {
      out->push_back('[');
      for (size_t i = 0; i < j.size(); ++i) {
        if (i > 0) out->push_back(',');
        WriteCanonical(j[i], out);
      }
      out->push_back(']');
      return;
    }
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      out->append(FormatCanonicalNumber(j.get<double>()));
      return;
    default:  // string, boolean, null
      out->append(j.dump());
  }
}

absl::StatusOr<std::string> Dump(const nlohmann::json& j) {
  try {
    std::string out;
    WriteCanonical(j, &out);
    return out;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("event is not valid UTF-8: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<std::string> ReferenceCanonicalJson(const v1::Event& event) {
  v1::Event copy = event;
  copy.clear_prev_hash();
  copy.clear_hash();
  absl::StatusOr<nlohmann::json> j = ProtoJson(copy);
  if (!j.ok()) return j.status();
  return Dump(*j);
}

}  // namespace ferry::audit
