#include "services/audit/event_chain.h"

#include <openssl/evp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

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

absl::StatusOr<std::string> CanonicalJson(const v1::Event& event) {
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

absl::StatusOr<std::string> ExportLine(const v1::Event& event) {
  v1::Event copy = event;
  copy.clear_prev_hash();
  copy.clear_hash();
  absl::StatusOr<nlohmann::json> j = ProtoJson(copy);
  if (!j.ok()) return j.status();
  (*j)["prev_hash"] = event.prev_hash();
  (*j)["hash"] = event.hash();
  return Dump(*j);
}

}  // namespace ferry::audit
