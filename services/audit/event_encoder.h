#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::audit {

// The canonical encoding of audit events, the bytes the hash chain covers,
// exactly as documented at the top of protos/ferry/v1/audit.proto and in
// docs/audit.md. Pure functions; thread-safe unless said otherwise.

// The hashed fields of an event, borrowed from where they are kept (a proto,
// or a database row), in the shape CanonicalJson encodes them. Empty
// strings and unset parts are omitted.
struct EventFields {
  int64_t sequence = 0;
  bool has_time = false;
  int64_t time_seconds = 0;
  int32_t time_nanos = 0;
  bool has_append_time = false;
  int64_t append_time_seconds = 0;
  int32_t append_time_nanos = 0;
  absl::string_view service;
  bool has_actor = false;
  absl::string_view actor_id;
  absl::string_view actor_display_name;
  absl::string_view actor_kind;  // enum name; empty when unspecified
  absl::string_view action;      // enum name; empty when unspecified
  bool has_subject = false;
  absl::string_view repository_id, application_id, environment_id, plan_id, deployment_id, commit_sha, ref;
  absl::string_view message;
  bool has_details = false;
  absl::string_view details;  // details already in canonical form (a JSON object)
  absl::string_view idempotency_key;
};

// Appends the canonical encoding of `fields` (plus prev_hash and hash when
// `hashes` is given: the export form). INVALID_ARGUMENT on invalid UTF-8.
absl::Status AppendCanonicalFields(const EventFields& fields, const std::pair<absl::string_view, absl::string_view>* hashes,
                                   std::string* out);
// Canonical encodings of stored events, whose details are JSON text as
// stored (see AppendCanonicalJsonText), reusing its buffers: after warm-up it
// allocates nothing. The same encoding as CanonicalJson. Not thread-safe; use
// one per thread.
class StoredEventEncoder {
 public:
  StoredEventEncoder();
  ~StoredEventEncoder();
  StoredEventEncoder(const StoredEventEncoder&) = delete;
  StoredEventEncoder& operator=(const StoredEventEncoder&) = delete;

  // Replaces `*out` with the canonical encoding of `fields`, whose `details`
  // (when has_details) is JSON text in any formatting. INVALID_ARGUMENT as
  // AppendCanonicalFields and AppendCanonicalJsonText.
  absl::Status Encode(const EventFields& fields, std::string* out);

 private:
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
};

// The canonical encoding of `event`: its proto3 JSON form with the original
// snake_case names and default values omitted, `prev_hash` and `hash`
// removed, object keys sorted (by UTF-8 bytes, i.e. code points), no
// whitespace. INVALID_ARGUMENT when the event has no JSON form (invalid
// UTF-8, a NaN in details).
absl::StatusOr<std::string> CanonicalJson(const v1::Event& event);

// The JSON line of an export: the canonical form plus `prev_hash` and `hash`,
// keys sorted, no whitespace, no trailing newline.
absl::StatusOr<std::string> ExportLine(const v1::Event& event);

}  // namespace ferry::audit
