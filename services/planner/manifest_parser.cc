#include "services/planner/manifest_parser.h"

#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "services/planner/bounded_yaml_reader.h"
#include "services/planner/render_failure.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

struct Document {
  std::string text;
  int first_line = 1;  // 1-based line of the document's first line in the file
  std::string source;  // from a "# Source: <path>" comment
  bool has_content = false;  // a line that is neither blank nor a comment
};

// Calls `visit` on each document with content (split at "---" lines), in
// order, as it is found: nothing is parsed past the first error, and the
// text is not copied whole. `visit`'s error is returned; past
// `max_documents` documents, RESOURCE_EXHAUSTED with `*error_line` the line
// where the one too many starts.
absl::Status ForEachDocument(const std::string& text, int max_documents,
                             const std::function<absl::Status(const Document&)>& visit, int* error_line) {
  Document current;
  int line_no = 0;
  int with_content = 0;
  auto finish = [&]() -> absl::Status {
    if (!current.has_content) return absl::OkStatus();  // blank or comments only: nothing to read
    if (++with_content > max_documents) {
      *error_line = current.first_line;
      return absl::ResourceExhaustedError(absl::StrCat("more than ", max_documents,
                                                       " YAML documents in one file (limit ", kMaxDocumentsFlag, ")"));
    }
    return visit(current);
  };
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (line == "---" || absl::StartsWith(line, "--- ") || line == "---\r") {
      absl::Status s = finish();
      if (!s.ok()) return s;
      current = Document{};
      current.first_line = line_no + 1;
      if (line.size() > 4 && !absl::StripAsciiWhitespace(line.substr(4)).empty()) current.has_content = true;
      continue;
    }
    if (absl::StartsWith(line, "# Source: ")) {
      current.source = std::string(absl::StripAsciiWhitespace(line.substr(10)));
    }
    absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (!stripped.empty() && stripped[0] != '#') current.has_content = true;
    absl::StrAppend(&current.text, line, "\n");
  }
  return finish();
}

}  // namespace

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

absl::Status AddObject(const json& object, const std::string& source, int line, ManifestBudget& budget,
                       std::vector<v1::Manifest>& out) {
  if (object.is_null()) return absl::OkStatus();
  if (object.is_object()) {
    auto kind = object.find("kind");
    auto items = object.find("items");
    if (kind != object.end() && kind->is_string() && absl::EndsWith(kind->get<std::string>(), "List") &&
        items != object.end() && items->is_array()) {
      for (const json& item : *items) {
        absl::Status s = AddObject(item, source, line, budget, out);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }
  }
  absl::StatusOr<v1::ObjectRef> ref = ObjectIdentity(object, source);
  if (!ref.ok()) return RenderFailure(ref.status().code(), std::string(ref.status().message()), source, line);
  if (++budget.objects > budget.limits.max_objects) {
    return RenderFailure(absl::StatusCode::kResourceExhausted,
                         absl::StrCat(source, ":", line, ": ", DescribeObject(*ref), ": the application has more than ",
                                      budget.limits.max_objects, " objects (limit ", kMaxObjectsFlag, ")"),
                         source, line);
  }
  v1::Manifest m;
  *m.mutable_object() = *ref;
  absl::StatusOr<std::string> text = DumpJson(object);
  if (!text.ok()) {
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(source, ": ", DescribeObject(*ref), ": ", text.status().message()), source, line);
  }
  budget.bytes += static_cast<int64_t>(text->size());
  if (budget.bytes > budget.limits.max_manifest_bytes) {
    return RenderFailure(absl::StatusCode::kResourceExhausted,
                         absl::StrCat(source, ":", line, ": ", DescribeObject(*ref), ": the application's manifests pass ",
                                      budget.limits.max_manifest_bytes, " bytes of JSON (limit ", kMaxManifestBytesFlag,
                                      ")"),
                         source, line);
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

absl::StatusOr<std::vector<v1::Manifest>> ParseManifests(const std::string& text, const std::string& source_path,
                                                         ManifestBudget& budget) {
  auto failure = [&](const absl::Status& s, const std::string& source, int line) {
    return RenderFailure(s.code(), absl::StrCat(source, line > 0 ? absl::StrCat(":", line) : "", ": ", s.message()),
                         source, line);
  };
  std::vector<v1::Manifest> out;
  int split_line = 0;
  absl::Status s = ForEachDocument(
      text, budget.limits.max_documents,
      [&](const Document& doc) -> absl::Status {
        std::string source = doc.source.empty() ? source_path : doc.source;
        // Nodes are counted per document (anchors are a document's own, and
        // one document's tree is what is held at once); across documents the
        // application's bytes bound the work.
        BoundedYamlReader reader(budget.limits, budget.limits.max_manifest_bytes - budget.bytes);
        absl::StatusOr<json> object = reader.Read(doc.text, doc.first_line);
        if (!object.ok()) return failure(object.status(), source, reader.error_line());
        return AddObject(*object, source, doc.first_line, budget, out);
      },
      &split_line);
  if (!s.ok()) return IsRenderFailure(s) ? s : failure(s, source_path, split_line);
  return out;
}

absl::StatusOr<std::vector<v1::Manifest>> ParseManifests(const std::string& text, const std::string& source_path) {
  ManifestBudget budget;
  return ParseManifests(text, source_path, budget);
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
