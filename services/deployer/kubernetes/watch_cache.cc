#include "services/deployer/kubernetes/watch_cache.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json/json.h"
#include "common/logging/logger.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;

constexpr char kEnvironmentLabelKey[] = "app.ferry.dev/environment";  // kubernetes_target.h's kEnvironmentLabel.
constexpr int kWatchSeconds = 300;  // The server ends each watch after this; watched again from its version.

std::string MetaStr(const json& o, const char* key) {
  if (!o.is_object() || !o.contains("metadata") || !o["metadata"].is_object()) return "";
  auto it = o["metadata"].find(key);
  return it != o["metadata"].end() && it->is_string() ? it->get<std::string>() : "";
}

// resourceVersions are opaque; the API server's are etcd revisions. Unparsable -> nullopt.
std::optional<uint64_t> VersionNumber(const std::string& v) {
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return out;
}

}  // namespace

WatchCache::~WatchCache() {
  stop_.store(true);
  std::map<std::string, std::unique_ptr<Watch>> watches;
  {
    ferry::MutexLock l(&mu_);
    watches.swap(watches_);
  }
  for (auto& [path, w] : watches) {
    if (w->thread.joinable()) w->thread.join();
  }
}

WatchCache::Watch* WatchCache::Find(const ApiResource& resource, const std::string& ns) {
  ferry::MutexLock l(&mu_);
  auto it = watches_.find(resource.Path(ns, ""));
  return it == watches_.end() ? nullptr : it->second.get();
}

bool WatchCache::Ensure(const ApiResource& resource, const std::string& ns) {
  if (stop_.load()) return false;
  ferry::MutexLock l(&mu_);
  std::string path = resource.Path(ns, "");
  if (watches_.count(path) > 0) return true;
  if (watches_.size() >= max_watches_) {
    over_cap_count_.fetch_add(1);
    return false;
  }
  std::unique_ptr<Watch>& w = watches_[path];
  w = std::make_unique<Watch>();
  w->resource = resource;
  w->ns = resource.namespaced ? ns : "";
  Watch* raw = w.get();
  w->thread = std::thread([this, raw] { Run(raw); });
  return true;
}

size_t WatchCache::watch_count() {
  ferry::MutexLock l(&mu_);
  return watches_.size();
}

std::optional<json> WatchCache::Get(const ApiResource& resource, const std::string& ns, const std::string& name,
                                    absl::Duration wait) {
  Watch* w = Find(resource, ns);
  if (w == nullptr) return std::nullopt;
  absl::Time deadline = absl::Now() + wait;
  while (true) {
    {
      ferry::MutexLock l(&w->mu);
      if (w->fresh) {
        auto it = w->objects.find(name);
        if (it == w->objects.end()) return std::nullopt;  // Not labelled (or gone): the server says which.
        return it->second;
      }
      if (!w->first_list_pending) return std::nullopt;
    }
    if (absl::Now() >= deadline || stop_.load()) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void WatchCache::Store(Watch* w, json object) {
  std::string name = MetaStr(object, "name");
  if (name.empty()) return;
  auto it = w->objects.find(name);
  if (it != w->objects.end()) {
    std::optional<uint64_t> have = VersionNumber(MetaStr(it->second, "resourceVersion"));
    std::optional<uint64_t> got = VersionNumber(MetaStr(object, "resourceVersion"));
    if (have && got && *got < *have) return;  // An older copy (an apply's answer after the watch's event).
  }
  // List items carry no kind; health and live state need it.
  object["kind"] = w->resource.kind;
  object["apiVersion"] = w->resource.ApiVersion();
  w->objects[name] = std::move(object);
}

void WatchCache::Put(const ApiResource& resource, const std::string& ns, const json& object) {
  Watch* w = Find(resource, ns);
  if (w == nullptr) return;
  ferry::MutexLock l(&w->mu);
  Store(w, object);
}

void WatchCache::Forget(const ApiResource& resource, const std::string& ns, const std::string& name) {
  Watch* w = Find(resource, ns);
  if (w == nullptr) return;
  ferry::MutexLock l(&w->mu);
  w->objects.erase(name);
}

bool WatchCache::TakeChanged(const std::string& application, const std::string& environment) {
  ferry::MutexLock l(&changed_mu_);
  return changed_.erase(absl::StrCat(application, "\n", environment)) > 0;
}

bool WatchCache::SleepUnlessStopped(absl::Duration d) {
  absl::Time until = absl::Now() + d;
  while (!stop_.load()) {
    if (absl::Now() >= until) return true;
    absl::SleepFor(std::min(absl::Milliseconds(100), until - absl::Now()));
  }
  return false;
}

std::string WatchCache::List(Watch* w) {
  list_count_.fetch_add(1);
  std::string version = ListOnce(w);
  ferry::MutexLock l(&w->mu);
  w->first_list_pending = false;
  return version;
}

std::string WatchCache::ListOnce(Watch* w) {
  std::string path = absl::StrCat(w->resource.Path(w->ns, ""), "?labelSelector=", label_);
  absl::StatusOr<KubeResponse> r = client_->Request("GET", path, "", "application/json", absl::Seconds(60));
  if (!r.ok() || r->code != 200) {
    logging::Warn("watch: list failed", {{"path", w->resource.Path(w->ns, "")},
                                         {"error", r.ok() ? KubeErrorMessage(*r) : std::string(r.status().message())}});
    return "";
  }
  absl::StatusOr<json> list = ParseJson(r->body);
  if (!list.ok() || !list->is_object()) return "";
  std::string version = MetaStr(*list, "resourceVersion");
  if (version.empty()) return "";
  std::set<std::string> changed;  // Applications whose objects changed while the watch was away.
  int64_t changes = 0;
  {
    ferry::MutexLock l(&w->mu);
    std::map<std::string, json> before;
    before.swap(w->objects);
    const bool compare = w->listed;
    auto mark = [&](const json& object) {
      ++changes;
      if (std::string app_env = AppEnvOf(object); !app_env.empty()) changed.insert(std::move(app_env));
    };
    if (list->contains("items") && (*list)["items"].is_array()) {
      for (json& item : (*list)["items"]) {
        auto it = before.find(MetaStr(item, "name"));
        if (it == before.end()) {
          if (compare) mark(item);  // Appeared.
          Store(w, std::move(item));
          continue;
        }
        std::string had = MetaStr(it->second, "resourceVersion");
        std::string got = MetaStr(item, "resourceVersion");
        std::optional<uint64_t> had_n = VersionNumber(had), got_n = VersionNumber(got);
        if (had_n && got_n && *got_n < *had_n) {
          w->objects[it->first] = std::move(it->second);  // Ferry's write answered after the list was read.
        } else {
          if (compare && had != got) {  // Changed; under other labels too, perhaps.
            mark(it->second);
            mark(item);
            --changes;
          }
          Store(w, std::move(item));
        }
        before.erase(it);
      }
    }
    std::optional<uint64_t> list_n = VersionNumber(version);
    for (auto& [name, object] : before) {
      std::optional<uint64_t> n = VersionNumber(MetaStr(object, "resourceVersion"));
      if (list_n && n && *n > *list_n) {
        w->objects[name] = std::move(object);  // Ferry's write (Put) after the list was read: still there.
      } else if (compare) {
        mark(object);  // Vanished (deleted, or its label removed).
      }
    }
    w->fresh = true;
    w->listed = true;
  }
  size_t apps = changed.size();
  MarkChanged(std::move(changed));
  if (changes > 0) {
    relist_change_count_.fetch_add(changes);
    logging::Info("watch: listed again; objects changed meanwhile",
                  {{"path", w->resource.Path(w->ns, "")}, {"objects", std::to_string(changes)},
                   {"applications", std::to_string(apps)}});
  }
  return version;
}

std::string WatchCache::AppEnvOf(const json& object) const {
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object() ||
      !object["metadata"].contains("labels") || !object["metadata"]["labels"].is_object()) {
    return "";
  }
  const json& labels = object["metadata"]["labels"];
  auto a = labels.find(label_);
  auto e = labels.find(kEnvironmentLabelKey);
  if (a == labels.end() || !a->is_string() || e == labels.end() || !e->is_string()) return "";
  return absl::StrCat(a->get<std::string>(), "\n", e->get<std::string>());
}

void WatchCache::MarkChanged(std::set<std::string> app_envs) {
  if (app_envs.empty()) return;
  ferry::MutexLock l(&changed_mu_);
  changed_.merge(app_envs);
}

bool WatchCache::OnEvent(Watch* w, std::string_view line, std::string* version, bool* gone) {
  if (line.empty()) return true;
  absl::StatusOr<json> event = ParseJson(std::string(line));
  if (!event.ok() || !event->is_object() || !event->contains("object")) {
    *gone = true;  // Out of step: list again.
    return false;
  }
  std::string type = (*event).value("type", "");
  json& object = (*event)["object"];
  if (type == "ERROR") {  // 410 Gone (the version is compacted away) or another Status: list again.
    if (object.is_object() && object.contains("code") && object["code"] == 410) gone_count_.fetch_add(1);
    *gone = true;
    return false;
  }
  std::string v = MetaStr(object, "resourceVersion");
  if (!v.empty()) *version = v;
  if (type == "BOOKMARK") return true;
  std::string app_env = AppEnvOf(object);
  bool echo = false;  // The event of a write whose answer is in the cache already (Ferry's apply).
  {
    ferry::MutexLock l(&w->mu);
    std::string name = MetaStr(object, "name");
    auto it = w->objects.find(name);
    if (type == "DELETED") {
      echo = it == w->objects.end();  // Ferry forgets what it deletes.
      w->objects.erase(name);
    } else if (type == "ADDED" || type == "MODIFIED") {
      echo = it != w->objects.end() && MetaStr(it->second, "resourceVersion") == v;
      Store(w, std::move(object));
    }
  }
  if (!echo && !app_env.empty()) MarkChanged({std::move(app_env)});
  return true;
}

void WatchCache::Run(Watch* w) {
  absl::Duration backoff = absl::Milliseconds(200);
  std::string version;
  while (!stop_.load()) {
    if (version.empty()) {
      version = List(w);
      if (version.empty()) {
        if (!SleepUnlessStopped(backoff)) break;
        backoff = std::min(backoff * 2, absl::Seconds(10));
        continue;
      }
    }
    bool gone = false;
    bool opened = false;
    std::string path = absl::StrCat(w->resource.Path(w->ns, ""), "?watch=1&allowWatchBookmarks=true&labelSelector=",
                                     label_, "&resourceVersion=", version, "&timeoutSeconds=", kWatchSeconds);
    std::function<bool(std::string_view)> on_line = [&](std::string_view line) {
      return OnEvent(w, line, &version, &gone);
    };
    // Answered: the server replays what happened since `version` (after a
    // reconnect), so the cache is as fresh as the events it is given.
    std::function<void()> on_open = [&] {
      opened = true;
      ferry::MutexLock l(&w->mu);
      w->fresh = true;
    };
    absl::Time started = absl::Now();
    absl::StatusOr<long> code = client_->Stream(path, on_line, stop_, absl::Seconds(kWatchSeconds + 30), on_open);
    if (stop_.load()) break;
    bool lasted = absl::Now() - started > absl::Seconds(1);
    if (code.ok() && *code == 200 && !gone) {
      // The server's timeout: watch on from `version`. A server that ends
      // watches at once is not asked again in a tight loop.
      if (lasted) {
        backoff = absl::Milliseconds(200);
      } else {
        if (!SleepUnlessStopped(backoff)) break;
        backoff = std::min(backoff * 2, absl::Seconds(10));
      }
      continue;
    }
    // Not fresh until the server answers again.
    {
      ferry::MutexLock l(&w->mu);
      w->fresh = false;
    }
    if (gone || (code.ok() && *code == 410)) {  // Too old a version (compacted): list at once and compare.
      if (code.ok() && *code == 410) gone_count_.fetch_add(1);
      version.clear();
      continue;
    }
    // Another error answer: list again (after the backoff). A lost
    // connection: watch again from `version`, the events missed replayed.
    if (code.ok()) version.clear();
    logging::Warn("watch: reconnecting", {{"path", w->resource.Path(w->ns, "")},
                                          {"error", code.ok() ? absl::StrCat("HTTP ", *code)
                                                              : std::string(code.status().message())}});
    if (opened && lasted) backoff = absl::Milliseconds(200);
    if (!SleepUnlessStopped(backoff)) break;
    backoff = std::min(backoff * 2, absl::Seconds(10));
  }
}

}  // namespace ferry::deployer::kubernetes
