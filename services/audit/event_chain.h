#pragma once

#include <memory>
#include <string>
#include <utility>

#include <google/protobuf/struct.pb.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::audit {

// The hash chain of the audit log, exactly as documented at the top of
// protos/ferry/v1/audit.proto and in docs/audit.md. Pure functions;
// thread-safe.

// 64 '0' characters: the prev_hash of the first event.
const std::string& ZeroHash();

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
// Appends the JSON text `json` (e.g. what jsonb prints: any whitespace, any
// key order, numbers in any notation) in canonical form: keys sorted (the
// last of duplicate keys wins), numbers as doubles in canonical form, strings
// re-escaped. INVALID_ARGUMENT when it is not JSON, not valid UTF-8, nested
// deeper than 512 levels, or has a number that is not finite as a double.
absl::Status AppendCanonicalJsonText(absl::string_view json, std::string* out);

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

// Computes chain hashes with one reusable SHA-256 context: after warm-up it
// allocates nothing. Not thread-safe; use one per thread.
class ChainHasher {
 public:
  ChainHasher();
  ~ChainHasher();
  ChainHasher(const ChainHasher&) = delete;
  ChainHasher& operator=(const ChainHasher&) = delete;

  // Sets `*hex` to lowercase_hex(SHA-256(raw(prev_hash) || canonical)), as
  // ChainHash. INVALID_ARGUMENT when prev_hash is not 64 lowercase hex
  // characters.
  absl::Status Hash(absl::string_view prev_hash, absl::string_view canonical, std::string* hex);

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

// The canonical encoding of `event`: its proto3 JSON form with the original
// snake_case names and default values omitted, `prev_hash` and `hash`
// removed, object keys sorted (by UTF-8 bytes, i.e. code points), no
// whitespace. INVALID_ARGUMENT when the event has no JSON form (invalid
// UTF-8, a NaN in details).
absl::StatusOr<std::string> CanonicalJson(const v1::Event& event);

// The same encoding produced the slow, obviously faithful way: protobuf's
// JSON printer (JsonPrintOptions.preserve_proto_field_names), re-serialised
// with sorted keys. Tests cross-check CanonicalJson against it.
absl::StatusOr<std::string> ReferenceCanonicalJson(const v1::Event& event);

// lowercase_hex(SHA-256(raw(prev_hash) || canonical)). INVALID_ARGUMENT when
// prev_hash is not 64 lowercase hex characters.
absl::StatusOr<std::string> ChainHash(absl::string_view prev_hash, absl::string_view canonical);

// The JSON line of an export: the canonical form plus `prev_hash` and `hash`,
// keys sorted, no whitespace, no trailing newline.
absl::StatusOr<std::string> ExportLine(const v1::Event& event);

// Appends `s` as a JSON string, escaped as in the canonical encoding.
// INVALID_ARGUMENT when it is not valid UTF-8.
absl::Status AppendJsonString(absl::string_view s, std::string* out);
// Appends `s` in the canonical encoding (sorted keys, canonical numbers).
absl::Status AppendCanonicalStruct(const google::protobuf::Struct& s, std::string* out);

// Lowercase hex of `bytes`.
std::string HexEncode(absl::string_view bytes);
// Raw SHA-256 of `data`.
std::string Sha256(absl::string_view data);

}  // namespace ferry::audit
