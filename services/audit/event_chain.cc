#include "services/audit/event_chain.h"

#include <openssl/evp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

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

// Numbers: every number in an event is a double (google.protobuf.Struct).
// An integral value below 2^53 in magnitude is written as an integer; any
// other value as its shortest round-trip digits, in exponent form
// (d.ddde+XX) when the decimal exponent is below -4 or at least 16, else in
// fixed form with at least one fractional digit. This is exactly Python's
// json.dumps(float), so a re-verifier needs nothing but json.dumps.
std::string FormatNumber(double d) {
  if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(d));
  }
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*e", precision - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string text = buf;
  std::string sign;
  if (text[0] == '-') {
    sign = "-";
    text.erase(0, 1);
  }
  size_t e_pos = text.find('e');
  int exponent = std::atoi(text.c_str() + e_pos + 1);
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (text[i] != '.') digits += text[i];
  }
  if (exponent < -4 || exponent >= 16) {
    std::string mantissa = digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&mantissa, ".", digits.substr(1));
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return absl::StrCat(sign, mantissa, exp);
  }
  if (exponent < 0) return absl::StrCat(sign, "0.", std::string(-exponent - 1, '0'), digits);
  if (digits.size() <= static_cast<size_t>(exponent) + 1) {
    return absl::StrCat(sign, digits, std::string(exponent + 1 - digits.size(), '0'), ".0");
  }
  return absl::StrCat(sign, digits.substr(0, exponent + 1), ".", digits.substr(exponent + 1));
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
      out->append(FormatNumber(j.get<double>()));
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


// The length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, at most U+10FFFF, as nlohmann::json checks when it serialises)
// of two to four bytes at p, or 0.
size_t Utf8SequenceLength(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (static_cast<size_t>(end - p) < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (p[k] < 0x80 || p[k] > 0xBF) return 0;
  }
  return len;
}

// Whether any of the 8 bytes in `w` needs a look: not ASCII, a control
// character, '"' or '\\' (exact, bitwise per byte).
bool NeedsLook(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  return ((w & kHigh) | ((w - kOnes * 0x20) & ~w & kHigh) | has_zero(w ^ (kOnes * '"')) |
          has_zero(w ^ (kOnes * '\\'))) != 0;
}

// A JSON string as nlohmann::json and Python's json.dumps(ensure_ascii=False)
// write it: \" \\ \b \f \n \r \t, other control characters as \u00xx,
// everything else as raw UTF-8. INVALID_ARGUMENT (and `out` unchanged) when
// `s` is not well-formed UTF-8.
absl::Status AppendString(absl::string_view s, std::string* out) {
  const size_t original = out->size();
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;
  while (p < end) {
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (NeedsLook(w)) break;
      p += 8;
    }
    if (p >= end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(p, end);
      if (len == 0) {
        out->resize(original);
        return absl::InvalidArgumentError("event is not valid UTF-8");
      }
      p += len;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++p;
      continue;
    }
    out->append(reinterpret_cast<const char*>(run), p - run);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        static constexpr char kDigits[] = "0123456789abcdef";
        const char escaped[6] = {'\\', 'u', '0', '0', kDigits[c >> 4], kDigits[c & 0xf]};
        out->append(escaped, sizeof(escaped));
      }
    }
    run = ++p;
  }
  out->append(reinterpret_cast<const char*>(run), end - run);
  out->push_back('"');
  return absl::OkStatus();
}

absl::Status AppendValue(const google::protobuf::Value& v, std::string* out);

absl::Status AppendStruct(const google::protobuf::Struct& s, std::string* out) {
  std::vector<const google::protobuf::MapPair<std::string, google::protobuf::Value>*> fields;
  fields.reserve(s.fields_size());
  for (const auto& f : s.fields()) fields.push_back(&f);
  std::sort(fields.begin(), fields.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  out->push_back('{');
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::Status st = AppendString(fields[i]->first, out);
    if (!st.ok()) return st;
    out->push_back(':');
    st = AppendValue(fields[i]->second, out);
    if (!st.ok()) return st;
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status AppendValue(const google::protobuf::Value& v, std::string* out) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNullValue:
      out->append("null");
      return absl::OkStatus();
    case google::protobuf::Value::kNumberValue:
      if (!std::isfinite(v.number_value())) return absl::InvalidArgumentError("details: numbers must be finite");
      out->append(FormatNumber(v.number_value()));
      return absl::OkStatus();
    case google::protobuf::Value::kStringValue:
      return AppendString(v.string_value(), out);
    case google::protobuf::Value::kBoolValue:
      out->append(v.bool_value() ? "true" : "false");
      return absl::OkStatus();
    case google::protobuf::Value::kStructValue:
      return AppendStruct(v.struct_value(), out);
    case google::protobuf::Value::kListValue: {
      out->push_back('[');
      for (int i = 0; i < v.list_value().values_size(); ++i) {
        if (i > 0) out->push_back(',');
        absl::Status st = AppendValue(v.list_value().values(i), out);
        if (!st.ok()) return st;
      }
      out->push_back(']');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("details: a value has no kind");
  }
}

// Writes members in key order; `first` tracks the comma.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  void Key(const char* key) {
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->push_back('"');
    out_->append(key);
    out_->append("\":");
  }
  absl::Status String(const char* key, absl::string_view value) {
    if (value.empty()) return absl::OkStatus();
    Key(key);
    return AppendString(value, out_);
  }
  void Raw(const char* key, absl::string_view json) {
    Key(key);
    out_->append(json.data(), json.size());
  }
  // `value` in quotes, unescaped (enum names).
  void Quoted(const char* key, absl::string_view value) {
    Key(key);
    out_->push_back('"');
    out_->append(value.data(), value.size());
    out_->push_back('"');
  }
  void End() { out_->push_back('}'); }

 private:
  std::string* out_;
  bool first_ = true;
};

// Appends `value` as exactly `width` decimal digits (0 <= value < 10^width).
void AppendDigits(int64_t value, int width, std::string* out) {
  char buf[20];
  for (int k = width - 1; k >= 0; --k) {
    buf[k] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(buf, width);
}

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, exactly as
// protobuf's TimeUtil::ToString (and so its JSON printer) writes it.
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out) {
  // Days to a civil date (proleptic Gregorian; H. Hinnant's algorithm).
  const int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  const int64_t second_of_day = seconds - days * 86400;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999 || nanos < 0 || nanos > 999999999) {
    // Outside what a valid Timestamp holds: printed as before, by absl and
    // printf, so that such (invalid) values still encode deterministically.
    absl::CivilSecond cs = absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
    char buf[64];
    int n = std::snprintf(buf, sizeof(buf), "\"%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(cs.year()),
                          cs.month(), cs.day(), cs.hour(), cs.minute(), cs.second());
    if (nanos != 0) {
      if (nanos % 1000000 == 0) {
        n += std::snprintf(buf + n, sizeof(buf) - n, ".%03d", nanos / 1000000);
      } else if (nanos % 1000 == 0) {
        n += std::snprintf(buf + n, sizeof(buf) - n, ".%06d", nanos / 1000);
      } else {
        n += std::snprintf(buf + n, sizeof(buf) - n, ".%09d", nanos);
      }
    }
    out->append(buf, n);
    out->append("Z\"");
    return;
  }
  out->push_back('"');
  AppendDigits(year, 4, out);
  out->push_back('-');
  AppendDigits(month, 2, out);
  out->push_back('-');
  AppendDigits(day, 2, out);
  out->push_back('T');
  AppendDigits(second_of_day / 3600, 2, out);
  out->push_back(':');
  AppendDigits(second_of_day / 60 % 60, 2, out);
  out->push_back(':');
  AppendDigits(second_of_day % 60, 2, out);
  if (nanos != 0) {
    out->push_back('.');
    if (nanos % 1000000 == 0) {
      AppendDigits(nanos / 1000000, 3, out);
    } else if (nanos % 1000 == 0) {
      AppendDigits(nanos / 1000, 6, out);
    } else {
      AppendDigits(nanos, 9, out);
    }
  }
  out->append("Z\"");
}

absl::Status WriteFields(const EventFields& f, const std::pair<absl::string_view, absl::string_view>* hashes,
                         std::string* out) {
  ObjectWriter w(out);
  absl::Status st;
  if (!f.action.empty()) w.Quoted("action", f.action);
  if (f.has_actor) {
    w.Key("actor");
    ObjectWriter aw(out);
    if (!(st = aw.String("display_name", f.actor_display_name)).ok()) return st;
    if (!(st = aw.String("id", f.actor_id)).ok()) return st;
    if (!f.actor_kind.empty()) aw.Quoted("kind", f.actor_kind);
    aw.End();
  }
  if (f.has_append_time) {
    w.Key("append_time");
    AppendTimestamp(f.append_time_seconds, f.append_time_nanos, out);
  }
  if (f.has_details) w.Raw("details", f.details);
  if (hashes != nullptr && !(st = (w.Key("hash"), AppendString(hashes->second, out))).ok()) return st;
  if (!(st = w.String("idempotency_key", f.idempotency_key)).ok()) return st;
  if (!(st = w.String("message", f.message)).ok()) return st;
  if (hashes != nullptr && !(st = (w.Key("prev_hash"), AppendString(hashes->first, out))).ok()) return st;
  if (f.sequence != 0) {
    w.Key("sequence");
    absl::StrAppend(out, "\"", f.sequence, "\"");
  }
  if (!(st = w.String("service", f.service)).ok()) return st;
  if (f.has_subject) {
    w.Key("subject");
    ObjectWriter sw(out);
    if (!(st = sw.String("application_id", f.application_id)).ok()) return st;
    if (!(st = sw.String("commit_sha", f.commit_sha)).ok()) return st;
    if (!(st = sw.String("deployment_id", f.deployment_id)).ok()) return st;
    if (!(st = sw.String("environment_id", f.environment_id)).ok()) return st;
    if (!(st = sw.String("plan_id", f.plan_id)).ok()) return st;
    if (!(st = sw.String("ref", f.ref)).ok()) return st;
    if (!(st = sw.String("repository_id", f.repository_id)).ok()) return st;
    sw.End();
  }
  if (f.has_time) {
    w.Key("time");
    AppendTimestamp(f.time_seconds, f.time_nanos, out);
  }
  w.End();
  return absl::OkStatus();
}

absl::Status WriteEvent(const v1::Event& e, bool with_hashes, std::string* out) {
  EventFields f;
  f.sequence = e.sequence();
  f.has_time = e.has_time();
  f.time_seconds = e.time().seconds();
  f.time_nanos = e.time().nanos();
  f.has_append_time = e.has_append_time();
  f.append_time_seconds = e.append_time().seconds();
  f.append_time_nanos = e.append_time().nanos();
  f.service = e.service();
  if (e.action() != 0) {
    if (!v1::AuditAction_IsValid(e.action())) return absl::InvalidArgumentError("action: unknown value");
    f.action = v1::AuditAction_Name(e.action());
  }
  f.has_actor = e.has_actor();
  f.actor_id = e.actor().id();
  f.actor_display_name = e.actor().display_name();
  if (e.actor().kind() != 0) {
    if (!v1::ActorKind_IsValid(e.actor().kind())) return absl::InvalidArgumentError("actor.kind: unknown value");
    f.actor_kind = v1::ActorKind_Name(e.actor().kind());
  }
  f.has_subject = e.has_subject();
  const v1::Subject& s = e.subject();
  f.repository_id = s.repository_id();
  f.application_id = s.application_id();
  f.environment_id = s.environment_id();
  f.plan_id = s.plan_id();
  f.deployment_id = s.deployment_id();
  f.commit_sha = s.commit_sha();
  f.ref = s.ref();
  f.message = e.message();
  f.idempotency_key = e.idempotency_key();
  std::string details;
  if (e.has_details()) {
    absl::Status st = AppendStruct(e.details(), &details);
    if (!st.ok()) return st;
    f.has_details = true;
    f.details = details;
  }
  std::pair<absl::string_view, absl::string_view> hashes(e.prev_hash(), e.hash());
  return WriteFields(f, with_hashes ? &hashes : nullptr, out);
}

// 32 raw bytes from 64 lowercase hex characters; false when it is not that.
bool DecodeLowerHex64(absl::string_view s, unsigned char* raw) {
  static const std::array<int8_t, 256> kNibble = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
    return t;
  }();
  if (s.size() != 64) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  int bad = 0;
  for (size_t i = 0; i < 32; ++i) {
    const int hi = kNibble[p[2 * i]];
    const int lo = kNibble[p[2 * i + 1]];
    bad |= hi | lo;
    raw[i] = static_cast<unsigned char>(hi << 4 | (lo & 0xf));
  }
  return bad >= 0;
}

// SHA-256, fetched once (an implicit fetch on every init costs a lock).
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

// Re-encodes JSON text canonically in one pass, without building a tree:
// values are written to `out` as they are parsed, and an object's members
// are reordered in place once its end is reached. Strings are escaped by
// AppendString and numbers formatted by FormatNumber, the same routines as
// every other canonical encoding here. Reuses its buffers between calls.
class JsonTextCanonicalizer {
 public:
  absl::Status Append(absl::string_view json, std::string* out) {
    in_ = json;
    pos_ = 0;
    out_ = out;
    keys_.clear();
    absl::Status st = Value(0);
    if (!st.ok()) return st;
    SkipSpace();
    if (pos_ != in_.size()) return Error("trailing characters");
    return absl::OkStatus();
  }

 private:
  static constexpr int kMaxDepth = 512;

  // One member of an object being re-encoded: its decoded key in keys_, and
  // its `"key":value` text in *out_.
  struct Member {
    size_t key_offset, key_size, text_offset, text_size;
  };

  absl::Status Error(const char* what) const {
    return absl::InvalidArgumentError(absl::StrCat("not canonicalisable JSON: ", what, " at offset ", pos_));
  }

  void SkipSpace() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  bool Literal(absl::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    out_->append(word.data(), word.size());
    return true;
  }

  absl::Status Value(int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (pos_ >= in_.size()) return Error("unexpected end");
    switch (in_[pos_]) {
      case '{':
        return Object(depth);
      case '[':
        return Array(depth);
      case '"': {
        absl::string_view decoded;
        absl::Status st = String(&decoded, &scratch_);
        if (!st.ok()) return st;
        return AppendString(decoded, out_);
      }
      case 't':
        return Literal("true") ? absl::OkStatus() : Error("bad literal");
      case 'f':
        return Literal("false") ? absl::OkStatus() : Error("bad literal");
      case 'n':
        return Literal("null") ? absl::OkStatus() : Error("bad literal");
      default:
        return Number();
    }
  }

  absl::Status Array(int depth) {
    ++pos_;
    out_->push_back('[');
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == ']') {
      ++pos_;
      out_->push_back(']');
      return absl::OkStatus();
    }
    for (bool first = true;; first = false) {
      if (!first) out_->push_back(',');
      absl::Status st = Value(depth + 1);
      if (!st.ok()) return st;
      SkipSpace();
      if (pos_ >= in_.size()) return Error("unexpected end");
      char c = in_[pos_++];
      if (c == ']') break;
      if (c != ',') return Error("expected ',' or ']'");
    }
    out_->push_back(']');
    return absl::OkStatus();
  }

  absl::Status Object(int depth) {
    ++pos_;
    const size_t start = out_->size();
    out_->push_back('{');
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == '}') {
      ++pos_;
      out_->push_back('}');
      return absl::OkStatus();
    }
    // members_[depth] is indexed afresh after each nested Value(), which may
    // grow members_.
    if (members_.size() <= static_cast<size_t>(depth)) members_.resize(depth + 1);
    members_[depth].clear();
    for (bool first = true;; first = false) {
      if (!first) out_->push_back(',');
      SkipSpace();
      if (pos_ >= in_.size() || in_[pos_] != '"') return Error("expected a key");
      Member m;
      m.text_offset = out_->size();
      absl::string_view key;
      absl::Status st = String(&key, &scratch_);
      if (!st.ok()) return st;
      m.key_offset = keys_.size();
      m.key_size = key.size();
      keys_.append(key.data(), key.size());
      st = AppendString(key, out_);
      if (!st.ok()) return st;
      SkipSpace();
      if (pos_ >= in_.size() || in_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      out_->push_back(':');
      st = Value(depth + 1);
      if (!st.ok()) return st;
      m.text_size = out_->size() - m.text_offset;
      members_[depth].push_back(m);
      SkipSpace();
      if (pos_ >= in_.size()) return Error("unexpected end");
      char c = in_[pos_++];
      if (c == '}') break;
      if (c != ',') return Error("expected ',' or '}'");
    }
    out_->push_back('}');
    std::vector<Member>& members = members_[depth];
    auto key_of = [this](const Member& m) { return absl::string_view(keys_.data() + m.key_offset, m.key_size); };
    // Keys compare as unsigned bytes, i.e. by code point.
    auto less = [&](const Member& a, const Member& b) { return key_of(a) < key_of(b); };
    bool canonical = true;
    for (size_t i = 1; i < members.size() && canonical; ++i) canonical = less(members[i - 1], members[i]);
    if (canonical) return absl::OkStatus();
    // Sort (stably, so that of duplicate keys the last one wins, as in any
    // JSON object model) and rewrite the object from a copy of its text.
    std::stable_sort(members.begin(), members.end(), less);
    reorder_.assign(*out_, start, std::string::npos);
    out_->resize(start);
    out_->push_back('{');
    bool first = true;
    for (size_t i = 0; i < members.size(); ++i) {
      if (i + 1 < members.size() && !less(members[i], members[i + 1])) continue;  // a later duplicate wins
      if (!first) out_->push_back(',');
      first = false;
      out_->append(reorder_, members[i].text_offset - start, members[i].text_size);
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  // Parses a string at pos_; `*decoded` views its bytes, in the input when it
  // has no escapes, else in `*buffer`.
  absl::Status String(absl::string_view* decoded, std::string* buffer) {
    const size_t begin = ++pos_;
    while (pos_ < in_.size()) {
      unsigned char c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') {
        *decoded = in_.substr(begin, pos_ - begin);
        ++pos_;
        return absl::OkStatus();
      }
      if (c == '\\') break;
      if (c < 0x20) return Error("control character in a string");
      ++pos_;
    }
    buffer->assign(in_.data() + begin, pos_ - begin);
    while (pos_ < in_.size()) {
      unsigned char c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') {
        *decoded = *buffer;
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) return Error("control character in a string");
      if (c != '\\') {
        buffer->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      if (++pos_ >= in_.size()) break;
      char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          buffer->push_back(e);
          break;
        case 'b':
          buffer->push_back('\b');
          break;
        case 'f':
          buffer->push_back('\f');
          break;
        case 'n':
          buffer->push_back('\n');
          break;
        case 'r':
          buffer->push_back('\r');
          break;
        case 't':
          buffer->push_back('\t');
          break;
        case 'u': {
          int32_t cp = Hex4();
          if (cp < 0) return Error("bad \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (in_.substr(pos_, 2) != "\\u") return Error("lone high surrogate");
            pos_ += 2;
            int32_t low = Hex4();
            if (low < 0xDC00 || low > 0xDFFF) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, buffer);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  // Four hex digits at pos_ (consumed), or -1.
  int32_t Hex4() {
    if (pos_ + 4 > in_.size()) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_ + i];
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return -1;
      }
      v = v * 16 + d;
    }
    pos_ += 4;
    return v;
  }

  static void AppendUtf8(int32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // A JSON number, as the double it denotes, in canonical form. A plain
  // integer of at most 15 digits is exact as a double and FormatNumber would
  // print it unchanged (but "-0" as "0"), so it is copied; anything else goes
  // through strtod and FormatNumber.
  absl::Status Number() {
    const size_t begin = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_, ++n;
      return n;
    };
    if (pos_ < in_.size() && in_[pos_] == '-') ++pos_;
    const size_t int_begin = pos_;
    const size_t int_digits = digits();
    if (int_digits == 0) return Error("unexpected character");
    if (int_digits > 1 && in_[int_begin] == '0') return Error("leading zero");
    bool plain = true;
    if (pos_ < in_.size() && in_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Error("no digits after '.'");
      plain = false;
    }
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Error("no digits in exponent");
      plain = false;
    }
    absl::string_view text = in_.substr(begin, pos_ - begin);
    if (plain && int_digits <= 15) {
      if (text == "-0") text = "0";
      out_->append(text.data(), text.size());
      return absl::OkStatus();
    }
    number_.assign(text.data(), text.size());
    double d = std::strtod(number_.c_str(), nullptr);
    if (!std::isfinite(d)) return Error("number out of range for a double");
    out_->append(FormatNumber(d));
    return absl::OkStatus();
  }

  absl::string_view in_;
  size_t pos_ = 0;
  std::string* out_ = nullptr;
  std::string keys_;     // decoded keys of the objects being re-encoded
  std::string scratch_;  // a string with escapes, decoded
  std::string reorder_;  // an object's text while its members are reordered
  std::string number_;
  std::vector<std::vector<Member>> members_;  // per depth
};

}  // namespace

const std::string& ZeroHash() {
  static const std::string* zero = new std::string(64, '0');
  return *zero;
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xf];
  }
  return out;
}

std::string Sha256(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

absl::StatusOr<std::string> ReferenceCanonicalJson(const v1::Event& event) {
  v1::Event copy = event;
  copy.clear_prev_hash();
  copy.clear_hash();
  absl::StatusOr<nlohmann::json> j = ProtoJson(copy);
  if (!j.ok()) return j.status();
  return Dump(*j);
}

absl::StatusOr<std::string> ChainHash(absl::string_view prev_hash, absl::string_view canonical) {
  thread_local ChainHasher hasher;
  std::string hex;
  absl::Status st = hasher.Hash(prev_hash, canonical, &hex);
  if (!st.ok()) return st;
  return hex;
}

absl::Status AppendJsonString(absl::string_view s, std::string* out) { return AppendString(s, out); }

absl::Status AppendCanonicalFields(const EventFields& fields,
                                   const std::pair<absl::string_view, absl::string_view>* hashes, std::string* out) {
  return WriteFields(fields, hashes, out);
}

absl::Status AppendCanonicalJsonText(absl::string_view json, std::string* out) {
  JsonTextCanonicalizer canonicalizer;
  return canonicalizer.Append(json, out);
}

struct StoredEventEncoder::Buffers {
  JsonTextCanonicalizer json;
  std::string details;
};

StoredEventEncoder::StoredEventEncoder() : buffers_(std::make_unique<Buffers>()) {}
StoredEventEncoder::~StoredEventEncoder() = default;

absl::Status StoredEventEncoder::Encode(const EventFields& fields, std::string* out) {
  out->clear();
  if (!fields.has_details) return WriteFields(fields, nullptr, out);
  buffers_->details.clear();
  absl::Status st = buffers_->json.Append(fields.details, &buffers_->details);
  if (!st.ok()) return st;
  EventFields canonical = fields;
  canonical.details = buffers_->details;
  return WriteFields(canonical, nullptr, out);
}

struct ChainHasher::Context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(ctx); }
};

ChainHasher::ChainHasher() : ctx_(std::make_unique<Context>()) {}
ChainHasher::~ChainHasher() = default;

absl::Status ChainHasher::Hash(absl::string_view prev_hash, absl::string_view canonical, std::string* hex) {
  unsigned char raw[32];
  if (!DecodeLowerHex64(prev_hash, raw)) {
    return absl::InvalidArgumentError(absl::StrCat("prev_hash is not 64 lowercase hex characters: '",
                                                   std::string(prev_hash.substr(0, 80)), "'"));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (ctx_->ctx == nullptr || EVP_DigestInit_ex2(ctx_->ctx, Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx_->ctx, raw, sizeof(raw)) != 1 ||
      EVP_DigestUpdate(ctx_->ctx, canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx_->ctx, digest, &len) != 1 || len != 32) {
    return absl::InternalError("SHA-256 failed");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  hex->resize(64);
  for (unsigned int i = 0; i < len; ++i) {
    (*hex)[2 * i] = kDigits[digest[i] >> 4];
    (*hex)[2 * i + 1] = kDigits[digest[i] & 0xf];
  }
  return absl::OkStatus();
}

absl::Status AppendCanonicalStruct(const google::protobuf::Struct& s, std::string* out) {
  return AppendStruct(s, out);
}

absl::StatusOr<std::string> CanonicalJson(const v1::Event& event) {
  std::string out;
  out.reserve(512);
  absl::Status s = WriteEvent(event, /*with_hashes=*/false, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> ExportLine(const v1::Event& event) {
  std::string out;
  out.reserve(640);
  absl::Status s = WriteEvent(event, /*with_hashes=*/true, &out);
  if (!s.ok()) return s;
  return out;
}

}  // namespace ferry::audit
