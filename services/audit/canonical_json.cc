#include "services/audit/canonical_json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ferry::audit {
namespace {

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

absl::Status AppendValue(const google::protobuf::Value& v, std::string* out);

}  // namespace

// Numbers: every number in an event is a double (google.protobuf.Struct).
// An integral value below 2^53 in magnitude is written as an integer; any
// other value as its shortest round-trip digits, in exponent form
// (d.ddde+XX) when the decimal exponent is below -4 or at least 16, else in
// fixed form with at least one fractional digit. This is exactly Python's
// json.dumps(float), so a re-verifier needs nothing but json.dumps.
std::string FormatCanonicalNumber(double d) {
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

// A JSON string as nlohmann::json and Python's json.dumps(ensure_ascii=False)
// write it: \" \\ \b \f \n \r \t, other control characters as \u00xx,
// everything else as raw UTF-8. INVALID_ARGUMENT (and `out` unchanged) when
// `s` is not well-formed UTF-8.
absl::Status AppendJsonString(absl::string_view s, std::string* out) {
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

absl::Status AppendCanonicalStruct(const google::protobuf::Struct& s, std::string* out) {
  std::vector<const google::protobuf::MapPair<std::string, google::protobuf::Value>*> fields;
  fields.reserve(s.fields_size());
  for (const auto& f : s.fields()) fields.push_back(&f);
  std::sort(fields.begin(), fields.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  out->push_back('{');
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::Status st = AppendJsonString(fields[i]->first, out);
    if (!st.ok()) return st;
    out->push_back(':');
    st = AppendValue(fields[i]->second, out);
    if (!st.ok()) return st;
  }
  out->push_back('}');
  return absl::OkStatus();
}

namespace {

absl::Status AppendValue(const google::protobuf::Value& v, std::string* out) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNullValue:
      out->append("null");
      return absl::OkStatus();
    case google::protobuf::Value::kNumberValue:
      if (!std::isfinite(v.number_value())) return absl::InvalidArgumentError("details: numbers must be finite");
      out->append(FormatCanonicalNumber(v.number_value()));
      return absl::OkStatus();
    case google::protobuf::Value::kStringValue:
      return AppendJsonString(v.string_value(), out);
    case google::protobuf::Value::kBoolValue:
      out->append(v.bool_value() ? "true" : "false");
      return absl::OkStatus();
    case google::protobuf::Value::kStructValue:
      return AppendCanonicalStruct(v.struct_value(), out);
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

}  // namespace
}  // namespace ferry::audit
