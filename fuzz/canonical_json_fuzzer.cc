// Fuzz target: the audit log's canonical JSON encoding
// (services/audit/canonical_json.h, json_text_canonicalizer.h) on JSON text
// as stored in jsonb and on raw strings.
//
// Properties: canonical text is a fixed point (canonicalising it again gives
// the same bytes); a failed AppendJsonString leaves its output unchanged;
// every finite double formats as canonical number text.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "fuzz/fuzz_support.h"
#include "services/audit/canonical_json.h"
#include "services/audit/json_text_canonicalizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ferry::audit::JsonTextCanonicalizer* canonicalizer = new ferry::audit::JsonTextCanonicalizer();
  absl::string_view text(reinterpret_cast<const char*>(data), size);

  std::string once = "prefix:";
  absl::Status s = canonicalizer->Append(text, &once);
  if (s.ok()) {
    std::string canonical = once.substr(7);
    std::string twice;
    absl::Status again = canonicalizer->Append(canonical, &twice);
    if (!again.ok()) ferry::fuzz::Violated("canonical text does not parse again", std::string(again.message()));
    if (twice != canonical) ferry::fuzz::Violated("canonical text is not a fixed point", canonical + " -> " + twice);
  }  // on failure `out` holds a partial encoding (documented; callers discard it)

  std::string escaped = "x";
  absl::Status e = ferry::audit::AppendJsonString(text, &escaped);
  if (!e.ok() && escaped != "x") ferry::fuzz::Violated("failed AppendJsonString changed its output", escaped);

  if (size >= sizeof(double)) {
    double d;
    std::memcpy(&d, data, sizeof d);
    if (std::isfinite(d)) {
      std::string n = ferry::audit::FormatCanonicalNumber(d);
      std::string back;
      if (!canonicalizer->Append(n, &back).ok() || back != n) ferry::fuzz::Violated("number is not canonical", n);
    }
  }

  google::protobuf::Struct st;
  if (google::protobuf::util::JsonStringToMessage(std::string(text), &st).ok()) {
    std::string from_struct;
    (void)ferry::audit::AppendCanonicalStruct(st, &from_struct);
  }
  return 0;
}
