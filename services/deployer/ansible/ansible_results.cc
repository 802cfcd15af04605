#include "services/deployer/ansible/ansible_results.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/json/json.h"

namespace ferry::deployer::ansible {
namespace {

using nlohmann::json;

std::string StringOf(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return DumpJsonLossy(v, 2);
}

bool True(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}

// A diff entry: {"before": ..., "after": ..., "before_header": ..., "after_header": ...}.
void AddDiff(const json& d, TaskResult& r) {
  if (!d.is_object()) return;
  auto before = d.find("before"), after = d.find("after");
  std::string b = before == d.end() ? "" : StringOf(*before);
  std::string a = after == d.end() ? "" : StringOf(*after);
  if (d.contains("prepared") && d["prepared"].is_string()) a += d["prepared"].get<std::string>();
  if (b == a) return;
  r.diff_before += b;
  r.diff_after += a;
  // The file's path; an after_header that is ansible's temporary copy of
  // the new content names nothing the reader knows.
  if (r.diff_header.empty()) {
    for (const char* key : {"before_header", "after_header"}) {
      auto h = d.find(key);
      if (h == d.end() || !h->is_string()) continue;
      std::string header = h->get<std::string>();
      if (absl::StrContains(header, "/ansible-local-") || absl::StrContains(header, "/.ansible/tmp")) continue;
      r.diff_header = header;
      break;
    }
  }
}

}  // namespace

const char* StatusName(TaskResult::Status s) {
  switch (s) {
    case TaskResult::Status::kOk: return "ok";
    case TaskResult::Status::kChanged: return "changed";
    case TaskResult::Status::kFailed: return "failed";
    case TaskResult::Status::kUnreachable: return "unreachable";
    case TaskResult::Status::kSkipped: return "skipped";
  }
  return "unknown";
}

bool PlaybookResults::AnyFailed() const { return FirstFailure() != nullptr; }

std::vector<const TaskResult*> PlaybookResults::Changed() const {
  std::vector<const TaskResult*> out;
  for (const TaskResult& t : tasks)
    if (t.status == TaskResult::Status::kChanged) out.push_back(&t);
  return out;
}

const TaskResult* PlaybookResults::FirstFailure() const {
  for (const TaskResult& t : tasks)
    if (t.status == TaskResult::Status::kFailed || t.status == TaskResult::Status::kUnreachable) return &t;
  return nullptr;
}

absl::StatusOr<PlaybookResults> ParsePlaybookJson(const std::string& text, const std::string& workdir) {
  // Warnings ansible prints before the document (e.g. about the inventory)
  // go to stderr; stdout holds the document alone, but tolerate a prefix.
  size_t start = text.find("{\n");
  if (start == std::string::npos) start = text.find('{');
  if (start == std::string::npos) return absl::InvalidArgumentError("ansible-playbook printed no JSON result");
  absl::StatusOr<json> doc = ParseJson(text.substr(start));
  if (!doc.ok()) return absl::InvalidArgumentError(absl::StrCat("ansible-playbook's JSON result: ", doc.status().message()));
  if (!doc->is_object() || !doc->contains("plays") || !(*doc)["plays"].is_array())
    return absl::InvalidArgumentError("ansible-playbook's JSON result has no plays");
  PlaybookResults out;
  const std::string cut = workdir.empty() ? "" : workdir + "/";
  for (const json& play : (*doc)["plays"]) {
    if (!play.is_object() || !play.contains("tasks") || !play["tasks"].is_array()) continue;
    for (const json& task : play["tasks"]) {
      if (!task.is_object()) continue;
      std::string name, path;
      if (task.contains("task") && task["task"].is_object()) {
        name = StringOf(task["task"].value("name", json()));
        path = absl::StrReplaceAll(StringOf(task["task"].value("path", json())), {{cut, ""}});
      }
      if (!task.contains("hosts") || !task["hosts"].is_object()) continue;
      for (const auto& [host, r] : task["hosts"].items()) {
        if (!r.is_object()) continue;
        TaskResult t;
        t.host = host;
        t.task = name;
        t.path = path;
        t.action = StringOf(r.value("action", json()));
        if (t.task.empty()) t.task = t.action;
        if (True(r, "unreachable")) {
          t.status = TaskResult::Status::kUnreachable;
        } else if (True(r, "failed")) {
          t.status = TaskResult::Status::kFailed;
        } else if (True(r, "skipped")) {
          t.status = TaskResult::Status::kSkipped;
        } else if (True(r, "changed")) {
          t.status = TaskResult::Status::kChanged;
        }
        const bool no_log = True(r, "_ansible_no_log");
        if (t.status == TaskResult::Status::kFailed || t.status == TaskResult::Status::kUnreachable) {
          t.message = no_log ? "(output hidden by no_log)" : StringOf(r.value("msg", json()));
          // A command's "non-zero return code" says little: its stderr (or
          // stdout) says why.
          std::string out = no_log ? "" : StringOf(r.value("stderr", json()));
          if (out.empty() && !no_log) out = StringOf(r.value("stdout", json()));
          while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
          if (!out.empty()) t.message = t.message.empty() ? out : absl::StrCat(t.message, ": ", out);
          if (t.message.size() > 4000) t.message = t.message.substr(0, 4000) + "...";
        }
        if (!no_log && r.contains("diff")) {
          const json& d = r["diff"];
          if (d.is_array()) {
            for (const json& e : d) AddDiff(e, t);
          } else {
            AddDiff(d, t);
          }
        }
        out.tasks.push_back(std::move(t));
      }
    }
  }
  if (doc->contains("stats") && (*doc)["stats"].is_object()) {
    for (const auto& item : (*doc)["stats"].items()) {
      const json& s = item.value();
      if (!s.is_object()) continue;
      HostStats h;
      h.host = item.key();
      auto count = [&s](const char* key) {
        auto it = s.find(key);
        return it != s.end() && it->is_number_integer() ? it->get<int>() : 0;
      };
      h.ok = count("ok");
      h.changed = count("changed");
      h.failures = count("failures");
      h.unreachable = count("unreachable");
      h.skipped = count("skipped");
      out.stats.push_back(h);
    }
  }
  return out;
}

}  // namespace ferry::deployer::ansible
