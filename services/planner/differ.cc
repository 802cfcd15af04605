#include "services/planner/differ.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "absl/strings/str_split.h"
#include "common/json/json.h"
#include "common/kube/secret_mask.h"
#include "services/planner/manifest_parser.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

bool Matches(const std::string& selector, const std::string& value) { return selector.empty() || selector == value; }

// Drops live-only fields that neither the desired object nor the last applied
// one sets: values the target defaulted. Recurses into objects, not arrays.
void DropDefaulted(json& live, const json& desired, const json* applied) {
  if (!live.is_object() || !desired.is_object()) return;
  for (auto it = live.begin(); it != live.end();) {
    auto d = desired.find(it.key());
    const json* a = nullptr;
    if (applied && applied->is_object()) {
      auto ai = applied->find(it.key());
      if (ai != applied->end()) a = &*ai;
    }
    if (d == desired.end()) {
      if (a == nullptr) {
        it = live.erase(it);
        continue;
      }
    } else {
      DropDefaulted(it.value(), *d, a);
    }
    ++it;
  }
}

// Copies into `live` the desired fields the target does not report (absent
// live) when the last applied object holds the same value: unobserved, not
// different. A desired value that differs from the last applied one stays a
// difference.
void FillUnobserved(json& live, const json& desired, const json* applied) {
  if (!live.is_object() || !desired.is_object() || applied == nullptr || !applied->is_object()) return;
  for (auto it = desired.begin(); it != desired.end(); ++it) {
    auto a = applied->find(it.key());
    auto l = live.find(it.key());
    if (l == live.end()) {
      if (a != applied->end() && *a == it.value()) live[it.key()] = it.value();
    } else if (a != applied->end()) {
      FillUnobserved(*l, it.value(), &*a);
    }
  }
}

// The values compared here come from ParseJson, so their strings are valid
// UTF-8 and the lossy dump writes them as they are.
std::string Pretty(const json& j) { return j.is_null() ? "" : DumpJsonLossy(j, 2) + "\n"; }

std::string Compact(const json& j) { return DumpJsonLossy(j); }

// `text` parsed, or a discarded value when it is not JSON (compared and
// printed as such, as before).
json ParseOrDiscarded(const std::string& text) {
  absl::StatusOr<json> parsed = ParseJson(text);
  return parsed.ok() ? *std::move(parsed) : json(json::value_t::discarded);
}

// The bytes of a ConfigFile spec: content, or contentBase64 decoded.
std::optional<std::string> FileBytes(const json& spec) {
  auto c = spec.find("content");
  if (c != spec.end() && c->is_string()) return c->get<std::string>();
  auto b = spec.find("contentBase64");
  std::string bytes;
  if (b != spec.end() && b->is_string() && absl::Base64Unescape(b->get<std::string>(), &bytes)) return bytes;
  return std::nullopt;
}

json* ConfigFileSpec(json& object) {
  if (!object.is_object() || object.value("kind", "") != "ConfigFile") return nullptr;
  auto spec = object.find("spec");
  return spec != object.end() && spec->is_object() ? &*spec : nullptr;
}

bool HasBinaryContent(json& object) {
  json* spec = ConfigFileSpec(object);
  return spec != nullptr && spec->contains("contentBase64");
}

// Replaces a ConfigFile's content (text or base64) by the sha256 digest of
// its bytes, so binary content is compared by digest and never shown.
// Returns the digest, or "" when the object has no content.
std::string MaskContent(json& object) {
  json* spec = ConfigFileSpec(object);
  if (spec == nullptr) return "";
  std::optional<std::string> bytes = FileBytes(*spec);
  if (!bytes) return "";
  std::string digest = "sha256:" + Sha256Hex(*bytes);
  spec->erase("content");
  spec->erase("contentBase64");
  (*spec)["contentSha256"] = digest;
  return digest;
}

}  // namespace

// What the deployer records in a secretRef when it prepares a deployment
// besides what Git says: the encrypted file's bytes and the keyed digest of
// the value. The planner knows neither (it never sees a value), so they are
// not compared; a secret file changed in Git shows through sourceDigest.
void DropResolvedSecretFields(json& v) {
  if (v.is_object()) {
    auto ref = v.find("secretRef");
    if (ref != v.end() && ref->is_object()) {
      ref->erase("ciphertext");
      ref->erase("valueDigest");
    }
    for (auto& [key, child] : v.items()) DropResolvedSecretFields(child);
  } else if (v.is_array()) {
    for (json& child : v) DropResolvedSecretFields(child);
  }
}

json NormalizeObject(const json& object) {
  json out = object;
  if (!out.is_object()) return out;
  out.erase("status");
  if (auto spec = out.find("spec"); spec != out.end()) DropResolvedSecretFields(*spec);
  auto meta = out.find("metadata");
  if (meta != out.end() && meta->is_object()) {
    for (const char* f : {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"})
      meta->erase(f);
    auto ann = meta->find("annotations");
    if (ann != meta->end() && ann->is_object()) {
      ann->erase("kubectl.kubernetes.io/last-applied-configuration");
      if (ann->empty()) meta->erase("annotations");
    }
  }
  return out;
}

void ApplyIgnoreDifferences(const v1::ObjectRef& ref, const std::vector<v1::IgnoreDifference>& rules, json& object) {
  for (const auto& rule : rules) {
    if (!Matches(rule.group(), ref.group()) || !Matches(rule.kind(), ref.kind()) ||
        !Matches(rule.namespace_(), ref.namespace_()) || !Matches(rule.name(), ref.name()))
      continue;
    for (const std::string& pointer : rule.json_pointers()) {
      try {
        json::json_pointer p(pointer);
        if (p.empty() || !object.contains(p)) continue;
        json& parent = object.at(p.parent_pointer());
        if (parent.is_object()) {
          parent.erase(p.back());
        } else if (parent.is_array()) {
          parent.erase(std::stoul(p.back()));
        }
      } catch (const std::exception&) {
        // malformed pointers are rejected at validation; ignore defensively
      }
    }
  }
}

std::string UnifiedDiff(const std::string& from, const std::string& to, const std::string& from_label,
                        const std::string& to_label) {
  if (from == to) return "";
  std::vector<std::string> a = absl::StrSplit(from, '\n');
  std::vector<std::string> b = absl::StrSplit(to, '\n');
  if (!a.empty() && a.back().empty()) a.pop_back();
  if (!b.empty() && b.back().empty()) b.pop_back();
  const size_t n = a.size(), m = b.size();
  // Edit script: ' ' keep, '-' delete, '+' insert.
  std::vector<std::pair<char, std::string>> ops;
  if (n * m > 16'000'000) {
    for (const auto& l : a) ops.push_back({'-', l});
    for (const auto& l : b) ops.push_back({'+', l});
  } else {
    std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;)
      for (size_t j = m; j-- > 0;)
        lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] == b[j]) {
        ops.push_back({' ', a[i]});
        ++i, ++j;
      } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
        ops.push_back({'-', a[i++]});
      } else {
        ops.push_back({'+', b[j++]});
      }
    }
  }
  std::string out = absl::StrCat("--- ", from_label, "\n+++ ", to_label, "\n");
  constexpr size_t kContext = 3;
  size_t k = 0;
  while (k < ops.size()) {
    while (k < ops.size() && ops[k].first == ' ') ++k;
    if (k == ops.size()) break;
    size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    size_t last_change = k;
    while (end < ops.size()) {
      if (ops[end].first != ' ') last_change = end;
      if (end - last_change > 2 * kContext) break;
      ++end;
    }
    end = std::min(ops.size(), last_change + kContext + 1);
    size_t a_start = 0, b_start = 0;
    for (size_t x = 0; x < start; ++x) {
      if (ops[x].first != '+') ++a_start;
      if (ops[x].first != '-') ++b_start;
    }
    size_t a_len = 0, b_len = 0;
    std::string body;
    for (size_t x = start; x < end; ++x) {
      if (ops[x].first != '+') ++a_len;
      if (ops[x].first != '-') ++b_len;
      absl::StrAppend(&body, std::string(1, ops[x].first), ops[x].second, "\n");
    }
    absl::StrAppend(&out, "@@ -", a_len ? a_start + 1 : a_start, ",", a_len, " +", b_len ? b_start + 1 : b_start, ",",
                    b_len, " @@\n", body);
    k = end;
  }
  return out;
}

std::vector<v1::PlanAction> DiffObjects(const std::vector<v1::Manifest>& desired,
                                        const std::vector<v1::LiveObject>& live, const DiffOptions& options) {
  std::map<std::string, const v1::LiveObject*> live_by_key;
  for (const auto& l : live) live_by_key[IdentityKey(l.object())] = &l;
  std::vector<v1::PlanAction> actions;
  std::map<std::string, bool> desired_keys;
  for (const v1::Manifest& m : desired) {
    const std::string key = IdentityKey(m.object());
    desired_keys[key] = true;
    v1::PlanAction action;
    *action.mutable_object() = m.object();
    action.set_wave(m.wave());
    json want = NormalizeObject(ParseOrDiscarded(m.json()));
    kube::MaskSecretValues(want);  // Kubernetes Secret values compared and shown as digests only.
    ApplyIgnoreDifferences(m.object(), options.ignore, want);
    const std::string label = absl::StrCat(m.object().kind(), "/", m.object().namespace_().empty() ? "" : m.object().namespace_() + "/",
                                           m.object().name());
    auto it = live_by_key.find(key);
    if (it == live_by_key.end() || it->second->live_json().empty()) {
      action.set_action(v1::OBJECT_ACTION_CREATE);
      std::string header;
      if (HasBinaryContent(want)) header = absl::StrCat("binary content: ", MaskContent(want), "\n");
      action.set_json_patch(Compact(json::diff(json::object(), want)));
      action.set_unified_diff(header + UnifiedDiff("", Pretty(want), "/dev/null", "desired/" + label));
    } else {
      json have = NormalizeObject(ParseOrDiscarded(it->second->live_json()));
      json applied = it->second->applied_json().empty()
                         ? json()
                         : NormalizeObject(ParseOrDiscarded(it->second->applied_json()));
      kube::MaskSecretValues(have);
      kube::MaskSecretValues(applied);
      // Binary content on any side: all compared by digest, shown as such.
      std::string header;
      if (HasBinaryContent(want) || HasBinaryContent(have) || HasBinaryContent(applied)) {
        std::string from = MaskContent(have), to = MaskContent(want);
        MaskContent(applied);
        if (from != to) header = absl::StrCat("binary content differs: ", from.empty() ? "none" : from, " -> ",
                                              to.empty() ? "none" : to, "\n");
      }
      // The target's dry run of the desired object (Kubernetes: server-side
      // apply, dryRun=All) is what the object would become: compared with
      // the live one, defaulted and normalised fields never differ.
      json expected = want;
      if (!it->second->dry_run_json().empty()) {
        expected = NormalizeObject(ParseOrDiscarded(it->second->dry_run_json()));
        kube::MaskSecretValues(expected);
        ApplyIgnoreDifferences(m.object(), options.ignore, expected);
      }
      if (!it->second->conflict().empty()) {
        header += absl::StrCat(it->second->conflict(),
                               "; the apply fails unless the application sets sync.forceConflicts\n");
      }
      DropDefaulted(have, expected, applied.is_null() ? nullptr : &applied);
      FillUnobserved(have, expected, applied.is_null() ? nullptr : &applied);
      ApplyIgnoreDifferences(m.object(), options.ignore, have);
      if (have == expected) {
        action.set_action(v1::OBJECT_ACTION_NOOP);
      } else {
        action.set_action(v1::OBJECT_ACTION_UPDATE);
        action.set_json_patch(Compact(json::diff(have, expected)));
        action.set_unified_diff(header +
                                UnifiedDiff(Pretty(have), Pretty(expected), "live/" + label, "desired/" + label));
      }
    }
    actions.push_back(std::move(action));
  }
  std::vector<v1::PlanAction> deletions;
  if (options.prune) {
    for (const auto& l : live) {
      if (desired_keys.count(IdentityKey(l.object())) || l.applied_json().empty()) continue;
      if (l.live_json().empty() && l.health() == v1::HEALTH_STATUS_MISSING) continue;  // already gone
      v1::PlanAction action;
      *action.mutable_object() = l.object();
      action.set_action(v1::OBJECT_ACTION_DELETE);
      json applied = ParseOrDiscarded(l.applied_json());
      auto meta = applied.find("metadata");
      if (applied.is_object() && meta != applied.end() && meta->contains("annotations")) {
        const json& ann = (*meta)["annotations"];
        auto w = ann.find(kSyncWaveAnnotation);
        if (w != ann.end() && w->is_string()) action.set_wave(std::atoi(w->get<std::string>().c_str()));
        if (w != ann.end() && w->is_number_integer()) action.set_wave(w->get<int>());
      }
      json have = NormalizeObject(ParseOrDiscarded(l.live_json().empty() ? l.applied_json() : l.live_json()));
      if (HasBinaryContent(have)) MaskContent(have);
      kube::MaskSecretValues(have);
      action.set_json_patch(Compact(json::diff(have, json::object())));
      action.set_unified_diff(UnifiedDiff(Pretty(have), "", "live/" + l.object().kind() + "/" + l.object().name(), "/dev/null"));
      deletions.push_back(std::move(action));
    }
  }
  std::stable_sort(actions.begin(), actions.end(), [](const v1::PlanAction& a, const v1::PlanAction& b) {
    if (a.wave() != b.wave()) return a.wave() < b.wave();
    return IdentityKey(a.object()) < IdentityKey(b.object());
  });
  std::stable_sort(deletions.begin(), deletions.end(), [](const v1::PlanAction& a, const v1::PlanAction& b) {
    if (a.wave() != b.wave()) return a.wave() > b.wave();
    return IdentityKey(a.object()) < IdentityKey(b.object());
  });
  for (auto& d : deletions) actions.push_back(std::move(d));
  return actions;
}

bool HasChanges(const std::vector<v1::PlanAction>& actions) {
  for (const auto& a : actions)
    if (a.action() != v1::OBJECT_ACTION_NOOP) return true;
  return false;
}

}  // namespace ferry::planner
