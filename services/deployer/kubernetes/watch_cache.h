#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/kubernetes/api_discovery.h"
#include "services/deployer/kubernetes/kube_client.h"

namespace ferry::deployer::kubernetes {

// Live objects Ferry applied, kept by watches instead of a GET each: one
// watcher thread per (kind, namespace) lists the objects labelled with
// `label` (any value) and then watches them from the list's resourceVersion
// (`?watch=1`, bookmarks on). On a transport failure it is not fresh and
// reconnects with backoff (200 ms doubling to 10 s), watching again from the
// last resourceVersion seen, so the server replays what was missed as
// events; fresh again once the server answers. When that version is gone
// (410 Gone, an ERROR event: compacted away) or the server answers another
// error, it lists again and compares the list with what it held: the
// applications of objects that changed, appeared or vanished meanwhile are
// marked changed (TakeChanged), as their events would have. Thread-safe;
// the destructor stops and
// joins the watchers (within about a second). At most `max_watches` watches
// run at once (each holds a thread and a connection to the API server);
// kinds and namespaces past that are read by a GET each time, and their
// changes are found by the periodic drift pass instead of at once.
class WatchCache {
 public:
  WatchCache(KubeClient* client, std::string label, size_t max_watches = kDefaultMaxWatches)
      : client_(client), label_(std::move(label)), max_watches_(max_watches) {}
  static constexpr size_t kDefaultMaxWatches = 64;
  ~WatchCache();
  WatchCache(const WatchCache&) = delete;
  WatchCache& operator=(const WatchCache&) = delete;

  // Starts the watch of `resource` in `ns` unless it runs already; false
  // when it does not run and will not (the cap is reached, or stopping).
  bool Ensure(const ApiResource& resource, const std::string& ns);
  // The object as last seen by the watch, when the watch of its kind and
  // namespace is fresh (listed and connected) and holds it; waits up to
  // `wait` for a new watch's first list. nullopt: ask the server.
  std::optional<nlohmann::json> Get(const ApiResource& resource, const std::string& ns, const std::string& name,
                                    absl::Duration wait);
  // Records an object the server returned (an apply's result) unless the
  // cache holds a newer resourceVersion of it.
  void Put(const ApiResource& resource, const std::string& ns, const nlohmann::json& object);
  // Forgets an object (deleted by Ferry): the next Get asks the server.
  void Forget(const ApiResource& resource, const std::string& ns, const std::string& name);

  // Whether a watch event (or a re-list's comparison) changed or deleted an
  // object labelled with `application` and `environment` since the last
  // call, other than the echo of a write whose answer was Put (same
  // resourceVersion). Clears the mark. The first list of a watch marks
  // nothing (the periodic drift pass covers a new process).
  bool TakeChanged(const std::string& application, const std::string& environment);

  // Lists made so far (first lists, re-lists after 410 or reconnects).
  int64_t list_count() const { return list_count_.load(); }
  // 410 Gone answers seen.
  int64_t gone_count() const { return gone_count_.load(); }
  // Objects a re-list found changed, new or gone against the cache.
  int64_t relist_change_count() const { return relist_change_count_.load(); }
  // Watches running (never more than max_watches).
  size_t watch_count() ABSL_LOCKS_EXCLUDED(mu_);
  // Ensure calls refused because the cap was reached.
  int64_t over_cap_count() const { return over_cap_count_.load(); }

 private:
  struct Watch {
    ApiResource resource;
    std::string ns;
    std::thread thread;  // Set once by Ensure, joined by the destructor.
    ferry::Mutex mu;
    bool fresh ABSL_GUARDED_BY(mu) = false;
    bool first_list_pending ABSL_GUARDED_BY(mu) = true;  // Get waits for the first list only.
    bool listed ABSL_GUARDED_BY(mu) = false;  // A list succeeded: later lists are compared with it.
    std::map<std::string, nlohmann::json> objects ABSL_GUARDED_BY(mu);  // name -> live object.
  };
  void Run(Watch* w);
  // Lists into `w`; the list's resourceVersion, or "" on failure.
  std::string List(Watch* w);
  std::string ListOnce(Watch* w);
  // Applies one watch event line; false ends the stream, *gone asks for a
  // new list (410 Gone, an ERROR event, an unreadable line).
  bool OnEvent(Watch* w, std::string_view line, std::string* version, bool* gone);
  static void Store(Watch* w, nlohmann::json object) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu);
  // "application\nenvironment" of an object labelled with both, else "".
  std::string AppEnvOf(const nlohmann::json& object) const;
  void MarkChanged(std::set<std::string> app_envs) ABSL_LOCKS_EXCLUDED(changed_mu_);
  Watch* Find(const ApiResource& resource, const std::string& ns);
  bool SleepUnlessStopped(absl::Duration d);

  KubeClient* const client_;
  const std::string label_;
  const size_t max_watches_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> list_count_{0}, gone_count_{0}, over_cap_count_{0}, relist_change_count_{0};
  ferry::Mutex mu_;
  // Collection path ("/api/v1/namespaces/x/configmaps") -> its watch.
  std::map<std::string, std::unique_ptr<Watch>> watches_ ABSL_GUARDED_BY(mu_);
  ferry::Mutex changed_mu_;
  std::set<std::string> changed_ ABSL_GUARDED_BY(changed_mu_);  // "application\nenvironment".
};

}  // namespace ferry::deployer::kubernetes
