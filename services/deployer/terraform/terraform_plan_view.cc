#include "services/deployer/terraform/terraform_plan_view.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json/json.h"

namespace ferry::deployer::terraform {
namespace {

using nlohmann::json;

constexpr char kSensitive[] = "(sensitive)";
constexpr char kUnknown[] = "(known after apply)";

// The marker for `key` in a *_sensitive / after_unknown tree: true when the
// whole value is marked, the subtree otherwise (null when nothing is).
json Sub(const json& marks, const std::string& key) {
  if (marks.is_object()) {
    auto it = marks.find(key);
    if (it != marks.end()) return *it;
  }
  return json();
}
json SubIndex(const json& marks, size_t i) {
  if (marks.is_array() && i < marks.size()) return marks[i];
  return json();
}

// `value` with every marked part replaced by `placeholder`, and every string
// holding a secret masked.
json Mask(const json& value, const json& marks, const char* placeholder, const std::vector<std::string>& secrets) {
  if (marks.is_boolean() && marks.get<bool>()) return placeholder;
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) out[it.key()] = Mask(*it, Sub(marks, it.key()), placeholder, secrets);
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (size_t i = 0; i < value.size(); ++i) out.push_back(Mask(value[i], SubIndex(marks, i), placeholder, secrets));
    return out;
  }
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    for (const std::string& secret : secrets)
      if (!secret.empty() && absl::StrContains(s, secret)) return kSensitive;
  }
  return value;
}

// Masked and unknown-marked values merged: unknown marks apply to `after` only.
json MaskAfter(const json& after, const json& sensitive, const json& unknown, const std::vector<std::string>& secrets) {
  json masked = Mask(after, sensitive, kSensitive, secrets);
  if (unknown.is_boolean() && unknown.get<bool>()) return kUnknown;
  if (unknown.is_object()) {
    if (!masked.is_object()) masked = json::object();
    for (auto it = unknown.begin(); it != unknown.end(); ++it) {
      if (it->is_boolean() && it->get<bool>()) {
        masked[it.key()] = kUnknown;
      } else if (it->is_object() || it->is_array()) {
        masked[it.key()] = MaskAfter(masked.contains(it.key()) ? masked[it.key()] : json(), json(), *it, {});
      }
    }
  }
  return masked;
}

std::string Show(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == kSensitive || s == kUnknown) return s;
  }
  return DumpJsonLossy(v);
}

void DiffLines(const std::string& prefix, const json& before, const json& after, std::vector<std::string>& out) {
  if (before == after) return;
  // A created or deleted resource: every attribute from or to null.
  bool objects = (before.is_object() || before.is_null()) && (after.is_object() || after.is_null());
  if (objects && (before.is_object() || after.is_object())) {
    std::set<std::string> keys;
    for (auto it = before.begin(); it != before.end(); ++it) keys.insert(it.key());
    for (auto it = after.begin(); it != after.end(); ++it) keys.insert(it.key());
    for (const std::string& k : keys) {
      json b = before.contains(k) ? before[k] : json();
      json a = after.contains(k) ? after[k] : json();
      DiffLines(prefix.empty() ? k : prefix + "." + k, b, a, out);
    }
    return;
  }
  out.push_back(absl::StrCat(prefix.empty() ? "(value)" : prefix, ": ", Show(before), " -> ", Show(after)));
}

std::string ActionOf(const json& actions) {
  std::vector<std::string> a;
  if (actions.is_array())
    for (const json& x : actions)
      if (x.is_string()) a.push_back(x.get<std::string>());
  if (a.size() == 2) return "replace";
  if (a.size() == 1) return a[0];
  return absl::StrJoin(a, ",");
}

}  // namespace

absl::StatusOr<PlanView> ReadPlanJson(const std::string& show_json, const std::vector<std::string>& secret_values) {
  absl::StatusOr<json> doc = ParseJson(show_json);
  if (!doc.ok()) return absl::InvalidArgumentError(absl::StrCat("terraform show -json: ", doc.status().message()));
  if (!doc->is_object() || !doc->contains("format_version"))
    return absl::InvalidArgumentError("terraform show -json: not a plan (no format_version)");
  PlanView view;
  auto rc = doc->find("resource_changes");
  if (rc != doc->end() && rc->is_array()) {
    for (const json& r : *rc) {
      if (!r.is_object() || !r.contains("change") || !r["change"].is_object()) continue;
      const json& c = r["change"];
      std::string action = ActionOf(c.value("actions", json::array()));
      if (action == "no-op") continue;
      ResourceChange change;
      const json address = r.value("address", json());
      change.address = address.is_string() ? address.get<std::string>() : "?";
      change.action = action;
      json before = Mask(c.value("before", json()), c.value("before_sensitive", json()), kSensitive, secret_values);
      json after = MaskAfter(c.value("after", json()), c.value("after_sensitive", json()),
                             c.value("after_unknown", json()), secret_values);
      DiffLines("", before, after, change.attribute_diffs);
      if (action == "create") ++view.to_add;
      if (action == "update") ++view.to_change;
      if (action == "delete") ++view.to_destroy;
      if (action == "replace") ++view.to_add, ++view.to_destroy;
      view.changes.push_back(std::move(change));
    }
  }
  auto oc = doc->find("output_changes");
  if (oc != doc->end() && oc->is_object()) {
    for (auto it = oc->begin(); it != oc->end(); ++it) {
      const json& c = *it;
      if (!c.is_object() || ActionOf(c.value("actions", json::array())) == "no-op") continue;
      json before = Mask(c.value("before", json()), c.value("before_sensitive", json()), kSensitive, secret_values);
      json after = MaskAfter(c.value("after", json()), c.value("after_sensitive", json()),
                             c.value("after_unknown", json()), secret_values);
      std::vector<std::string> lines;
      DiffLines(it.key(), before, after, lines);
      for (std::string& l : lines) view.output_changes.push_back(std::move(l));
    }
  }
  return view;
}

std::string PlanView::Text() const {
  std::string out = absl::StrCat("Plan: ", to_add, " to add, ", to_change, " to change, ", to_destroy, " to destroy.\n");
  for (const ResourceChange& c : changes) {
    const char* sign = c.action == "create" ? "+" : c.action == "delete" ? "-" : c.action == "replace" ? "-/+" : c.action == "read" ? "<=" : "~";
    absl::StrAppend(&out, sign, " ", c.address, " (", c.action, ")\n");
    for (const std::string& l : c.attribute_diffs) absl::StrAppend(&out, "    ", l, "\n");
  }
  if (!output_changes.empty()) {
    absl::StrAppend(&out, "Outputs:\n");
    for (const std::string& l : output_changes) absl::StrAppend(&out, "    ", l, "\n");
  }
  if (!has_changes()) absl::StrAppend(&out, "No changes: the infrastructure matches the configuration.\n");
  return out;
}

nlohmann::json PlanView::ToJson() const {
  json out = json::object();
  out["summary"] = {{"add", to_add}, {"change", to_change}, {"destroy", to_destroy}};
  out["resourceChanges"] = json::array();
  for (const ResourceChange& c : changes)
    out["resourceChanges"].push_back({{"address", c.address}, {"action", c.action}, {"attributes", c.attribute_diffs}});
  out["outputChanges"] = output_changes;
  return out;
}

}  // namespace ferry::deployer::terraform
