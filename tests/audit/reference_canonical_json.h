#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::audit {

// The canonical encoding of `event` (see services/audit/event_encoder.h)
// produced the slow, obviously faithful way: protobuf's JSON printer
// (JsonPrintOptions.preserve_proto_field_names), re-serialised with sorted
// keys. Tests cross-check CanonicalJson against it.
absl::StatusOr<std::string> ReferenceCanonicalJson(const v1::Event& event);

}  // namespace ferry::audit
