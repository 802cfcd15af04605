#include "services/audit/event_chain.h"

#include <openssl/evp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <algorithm>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
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


// RFC 3629 well-formedness (no overlongs, no surrogates, at most U+10FFFF),
// as nlohmann::json checks when it serialises.
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
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
      return false;
    }
    if (i + len > n) return false;
    unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (int k = 2; k < len; ++k) {
      unsigned char ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

// A JSON string as nlohmann::json and Python's json.dumps(ensure_ascii=False)
// write it: \" \\ \b \f \n \r \t, other control characters as \u00xx,
// everything else as raw UTF-8.
absl::Status AppendString(absl::string_view s, std::string* out) {
  if (!IsValidUtf8(s)) return absl::InvalidArgumentError("event is not valid UTF-8");
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
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
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out->append(buf);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
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
  void End() { out_->push_back('}'); }

 private:
  std::string* out_;
  bool first_ = true;
};

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, exactly as
// protobuf's TimeUtil::ToString (and so its JSON printer) writes it.
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out) {
  absl::CivilSecond cs = absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  char buf[48];
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
}

absl::Status WriteFields(const EventFields& f, const std::pair<absl::string_view, absl::string_view>* hashes,
                         std::string* out) {
  ObjectWriter w(out);
  absl::Status st;
  if (!f.action.empty()) w.Raw("action", absl::StrCat("\"", std::string(f.action), "\""));
  if (f.has_actor) {
    w.Key("actor");
    ObjectWriter aw(out);
    if (!(st = aw.String("display_name", f.actor_display_name)).ok()) return st;
    if (!(st = aw.String("id", f.actor_id)).ok()) return st;
    if (!f.actor_kind.empty()) aw.Raw("kind", absl::StrCat("\"", std::string(f.actor_kind), "\""));
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
  if (f.sequence != 0) w.Raw("sequence", absl::StrCat("\"", f.sequence, "\""));
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

bool IsLowerHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

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
  if (!IsLowerHex64(prev_hash)) {
    return absl::InvalidArgumentError(absl::StrCat("prev_hash is not 64 lowercase hex characters: '",
                                                   std::string(prev_hash.substr(0, 80)), "'"));
  }
  std::string raw = absl::HexStringToBytes(prev_hash);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, raw.data(), raw.size());
  EVP_DigestUpdate(ctx, canonical.data(), canonical.size());
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  return HexEncode(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

absl::Status AppendJsonString(absl::string_view s, std::string* out) { return AppendString(s, out); }

absl::Status AppendCanonicalFields(const EventFields& fields,
                                   const std::pair<absl::string_view, absl::string_view>* hashes, std::string* out) {
  return WriteFields(fields, hashes, out);
}

absl::Status AppendCanonicalJsonText(absl::string_view json, std::string* out) {
  try {
    nlohmann::json j = nlohmann::json::parse(json.begin(), json.end());
    WriteCanonical(j, out);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not canonicalisable JSON: ", e.what()));
  }
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
