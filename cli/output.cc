#include "cli/output.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json/json.h"

namespace ferry::cli {

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name.empty() || name == "table") return Format::kTable;
  if (name == "wide") return Format::kWide;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  return absl::InvalidArgumentError(absl::StrCat("-o ", name, ": not an output format (table, wide, json, yaml)"));
}

Output::Output(Format format, const std::string& color_mode, std::FILE* out) : format_(format), out_(out) {
  terminal_ = ::isatty(::fileno(out)) == 1;
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  if (color_mode == "always") {
    color_ = true;
  } else if (color_mode == "never") {
    color_ = false;
  } else {
    color_ = terminal_ && (no_color == nullptr || *no_color == '\0') &&
             !(term != nullptr && std::string(term) == "dumb");
  }
}

std::string Output::Paint(const std::string& text, Color c) const {
  if (!color_ || c == Color::kNone || text.empty()) return text;
  const char* code = "";
  switch (c) {
    case Color::kRed: code = "31"; break;
    case Color::kGreen: code = "32"; break;
    case Color::kYellow: code = "33"; break;
    case Color::kBlue: code = "34"; break;
    case Color::kCyan: code = "36"; break;
    case Color::kBold: code = "1"; break;
    case Color::kDim: code = "2"; break;
    case Color::kNone: break;
  }
  return absl::StrCat("\x1b[", code, "m", text, "\x1b[0m");
}

void Output::Emit(const nlohmann::json& object) const {
  if (format_ == Format::kYaml) {
    std::fprintf(out_, "---\n%s\n", ToYaml(object).c_str());
  } else {
    std::fprintf(out_, "%s\n", DumpJsonLossy(object).c_str());
  }
  std::fflush(out_);
}

void Output::Emit(const google::protobuf::Message& message) const { Emit(ToJson(message)); }

void Output::Line(const std::string& text) const {
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

nlohmann::json ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(message, &text, options).ok()) return nlohmann::json::object();
  absl::StatusOr<nlohmann::json> parsed = ParseJson(text);
  return parsed.ok() ? *parsed : nlohmann::json::object();
}

namespace {

void ToYamlNode(const nlohmann::json& v, YAML::Emitter& out) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out << YAML::Key << it.key() << YAML::Value;
        ToYamlNode(it.value(), out);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& e : v) ToYamlNode(e, out);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      out << YAML::DoubleQuoted << v.get<std::string>();
      break;
    case nlohmann::json::value_t::boolean:
      out << v.get<bool>();
      break;
    case nlohmann::json::value_t::number_integer:
      out << v.get<int64_t>();
      break;
    case nlohmann::json::value_t::number_unsigned:
      out << v.get<uint64_t>();
      break;
    case nlohmann::json::value_t::number_float:
      out << v.get<double>();
      break;
    default:
      out << YAML::Null;
  }
}

}  // namespace

std::string ToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  ToYamlNode(value, out);
  return out.c_str();
}

size_t DisplayWidth(const std::string& s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    if ((c & 0xC0) != 0x80) ++w;  // count code points, not continuation bytes
  }
  return w;
}

std::string Truncate(const std::string& s, size_t width) {
  if (DisplayWidth(s) <= width || width == 0) return s;
  std::string out;
  size_t w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80) {
      if (w + 1 >= width) break;
      ++w;
    }
    out += s[i];
  }
  return out + "…";
}

std::string Table::Render(bool wide) const {
  std::vector<size_t> shown;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (wide || !columns_[i].wide_only) shown.push_back(i);
  }
  std::vector<size_t> width(columns_.size(), 0);
  for (size_t i : shown) width[i] = DisplayWidth(columns_[i].header);
  for (const auto& row : rows_) {
    for (size_t i : shown) {
      if (i < row.size()) width[i] = std::max(width[i], DisplayWidth(row[i]));
    }
  }
  std::string out;
  auto line = [&](auto cell) {
    std::string text;
    for (size_t k = 0; k < shown.size(); ++k) {
      size_t i = shown[k];
      std::string c = cell(i);
      text += c;
      if (k + 1 < shown.size()) text += std::string(width[i] - DisplayWidth(c) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  line([&](size_t i) { return columns_[i].header; });
  for (const auto& row : rows_) line([&](size_t i) { return i < row.size() ? row[i] : std::string(); });
  return out;
}

std::string ShortSha(const std::string& sha) { return sha.substr(0, 7); }

std::string Subject(const std::string& message) {
  size_t nl = message.find('\n');
  return nl == std::string::npos ? message : message.substr(0, nl);
}

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string Age(absl::Time then, absl::Time now) {
  absl::Duration d = now - then;
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m");
  if (s < 86400) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

std::string Age(const google::protobuf::Timestamp& then, absl::Time now) {
  return IsSet(then) ? Age(ToTime(then), now) : "-";
}

std::string Elapsed(const google::protobuf::Timestamp& start, const google::protobuf::Timestamp& end) {
  if (!IsSet(start) || !IsSet(end)) return "-";
  absl::Duration d = ToTime(end) - ToTime(start);
  if (d < absl::Seconds(10)) return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
  int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (!IsSet(t)) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", ToTime(t), absl::UTCTimeZone());
}

}  // namespace ferry::cli
