#include "services/planner/manifest_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "re2/re2.h"
#include "services/planner/render_failure.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

// The int64 of "0x<digits>" or "0o<digits>" in `base`, or `s` itself when it
// does not fit.
json RadixInteger(const std::string& s, int base) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data() + 2, end, v, base);
  if (ec != std::errc() || ptr != end) return s;
  return v;
}

json PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // RE2: linear in the scalar's length, which Git does not bound.
  static const RE2 kInt("[-+]?[0-9]+");
  static const RE2 kHex("0x[0-9a-fA-F]+");
  static const RE2 kOct("0o[0-7]+");
  static const RE2 kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (RE2::FullMatch(s, kInt)) {
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) return v;
    uint64_t u = 0;
    if (absl::SimpleAtoi(s, &u)) return u;
    return s;
  }
  // Hex and octal too big for an int64 stay strings, as decimal ones do.
  if (RE2::FullMatch(s, kHex)) return RadixInteger(s, 16);
  if (RE2::FullMatch(s, kOct)) return RadixInteger(s, 8);
  if (RE2::FullMatch(s, kFloat)) {
    double d = 0;
    if (absl::SimpleAtod(s, &d)) return d;
  }
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return s;  // not representable in JSON
  return s;
}

struct Document {
  std::string text;
  int first_line = 1;  // 1-based line of the document's first line in the file
  std::string source;  // from a "# Source: <path>" comment
};

std::vector<Document> SplitDocuments(const std::string& text) {
  std::vector<Document> docs;
  Document current;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (line == "---" || absl::StartsWith(line, "--- ") || line == "---\r") {
      docs.push_back(std::move(current));
      current = Document{};
      current.first_line = line_no + 1;
      continue;
    }
    if (absl::StartsWith(line, "# Source: ")) {
      current.source = std::string(absl::StripAsciiWhitespace(line.substr(10)));
    }
    absl::StrAppend(&current.text, line, "\n");
  }
  docs.push_back(std::move(current));
  return docs;
}

}  // namespace

json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return node.Scalar();
      return PlainScalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
  }
  return nullptr;
}

absl::StatusOr<v1::ObjectRef> ObjectIdentity(const json& object, const std::string& source_path) {
  auto field = [&](const char* name) {
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(source_path, ": object is not Kubernetes-shaped: ", name, " is missing or not a string"),
                         source_path);
  };
  if (!object.is_object()) {
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(source_path, ": document is not a mapping (a Kubernetes-shaped object)"),
                         source_path);
  }
  auto api = object.find("apiVersion");
  if (api == object.end() || !api->is_string() || api->get<std::string>().empty()) return field("apiVersion");
  auto kind = object.find("kind");
  if (kind == object.end() || !kind->is_string() || kind->get<std::string>().empty()) return field("kind");
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return field("metadata.name");
  auto name = meta->find("name");
  if (name == meta->end() || !name->is_string() || name->get<std::string>().empty()) return field("metadata.name");
  v1::ObjectRef ref;
  std::string api_version = api->get<std::string>();
  size_t slash = api_version.find('/');
  if (slash == std::string::npos) {
    ref.set_version(api_version);
  } else {
    ref.set_group(api_version.substr(0, slash));
    ref.set_version(api_version.substr(slash + 1));
  }
  ref.set_kind(kind->get<std::string>());
  ref.set_name(name->get<std::string>());
  auto ns = meta->find("namespace");
  if (ns != meta->end() && ns->is_string()) ref.set_namespace_(ns->get<std::string>());
  return ref;
}

std::string IdentityKey(const v1::ObjectRef& ref) {
  return absl::StrCat(ref.group(), "/", ref.kind(), "/", ref.namespace_(), "/", ref.name());
}

std::string DescribeObject(const v1::ObjectRef& ref) {
  std::string kind = ref.group().empty() ? ref.kind() : absl::StrCat(ref.group(), "/", ref.kind());
  std::string name = ref.namespace_().empty() ? ref.name() : absl::StrCat(ref.namespace_(), "/", ref.name());
  return absl::StrCat(kind, " ", name);
}

namespace {

absl::Status AddObject(const json& object, const std::string& source, int line, std::vector<v1::Manifest>& out) {
  if (object.is_null()) return absl::OkStatus();
  if (object.is_object()) {
    auto kind = object.find("kind");
    auto items = object.find("items");
    if (kind != object.end() && kind->is_string() && absl::EndsWith(kind->get<std::string>(), "List") &&
        items != object.end() && items->is_array()) {
      for (const json& item : *items) {
          absl::Status s = AddObject(item, source, line, out);
          if (!s.ok()) return s;
        }
      return absl::OkStatus();
    }
  }
  absl::StatusOr<v1::ObjectRef> ref = ObjectIdentity(object, source);
  if (!ref.ok()) return RenderFailure(ref.status().code(), std::string(ref.status().message()), source, line);
  v1::Manifest m;
  *m.mutable_object() = *ref;
  absl::StatusOr<std::string> text = DumpJson(object);
  if (!text.ok()) {
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(source, ": ", DescribeObject(*ref), ": ", text.status().message()), source, line);
  }
  m.set_json(*std::move(text));
  m.set_source_path(source);
  auto meta = object.find("metadata");
  auto annotations = meta->find("annotations");
  if (annotations != meta->end() && annotations->is_object()) {
    auto wave = annotations->find(kSyncWaveAnnotation);
    if (wave != annotations->end()) {
      int n = 0;
      if (wave->is_number_integer()) {
        n = wave->get<int>();
      } else if (!wave->is_string() || !absl::SimpleAtoi(wave->get<std::string>(), &n)) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat(source, ": ", DescribeObject(*ref), ": annotation ", kSyncWaveAnnotation,
                                          " must be an integer, got ", DumpJsonLossy(*wave)),
                             source, line);
      }
      m.set_wave(n);
    }
  }
  out.push_back(std::move(m));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<v1::Manifest>> ParseManifests(const std::string& text, const std::string& source_path) {
  std::vector<v1::Manifest> out;
  for (const Document& doc : SplitDocuments(text)) {
    std::string source = doc.source.empty() ? source_path : doc.source;
    YAML::Node node;
    try {
      node = YAML::Load(doc.text);
    } catch (const YAML::Exception& e) {
      int line = e.mark.is_null() ? 0 : doc.first_line + e.mark.line;
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat(source, line > 0 ? absl::StrCat(":", line) : "", ": malformed YAML: ", e.msg),
                           source, line);
    }
    json object;
    try {
      object = YamlToJson(node);
    } catch (const std::exception& e) {
      return RenderFailure(absl::StatusCode::kInvalidArgument, absl::StrCat(source, ": ", e.what()), source,
                           doc.first_line);
    }
    absl::Status s = AddObject(object, source, doc.first_line, out);
    if (!s.ok()) return s;
  }
  return out;
}

absl::Status CheckAndSortManifests(std::vector<v1::Manifest>& manifests) {
  std::map<std::string, const v1::Manifest*> seen;
  for (const v1::Manifest& m : manifests) {
    auto [it, inserted] = seen.emplace(IdentityKey(m.object()), &m);
    if (!inserted) {
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("duplicate object ", DescribeObject(m.object()), " in ", it->second->source_path(),
                                        " and ", m.source_path(), " (identity is group, kind, namespace, name)"),
                           m.source_path());
    }
  }
  std::sort(manifests.begin(), manifests.end(), [](const v1::Manifest& a, const v1::Manifest& b) {
    return IdentityKey(a.object()) < IdentityKey(b.object());
  });
  return absl::OkStatus();
}

std::string ManifestsDigest(const std::vector<v1::Manifest>& manifests) {
  std::vector<const v1::Manifest*> sorted;
  for (const auto& m : manifests) sorted.push_back(&m);
  std::sort(sorted.begin(), sorted.end(), [](const v1::Manifest* a, const v1::Manifest* b) {
    return IdentityKey(a->object()) < IdentityKey(b->object());
  });
  std::string canonical = "[";
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i) canonical += ",";
    // Re-dumped with keys sorted (nlohmann keeps objects sorted). A manifest
    // is JSON that DumpJson wrote; one that is not (never seen) is hashed
    // as it is.
    absl::StatusOr<json> parsed = ParseJson(sorted[i]->json());
    canonical += parsed.ok() ? DumpJsonLossy(*parsed) : sorted[i]->json();
  }
  canonical += "]";
  return "sha256:" + Sha256Hex(canonical);
}

}  // namespace ferry::planner
