#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/policy.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"

namespace ferry::auth {

// The policy of --access-policy-file (see PolicySource). The file is read at
// Load; after Start() a background loop looks at it every `poll` and re-reads
// it when its inode, size or modification time changed (editors replace a
// file by rename, Kubernetes swaps a ConfigMap's symlink; the path is
// followed through symlinks). Reload() re-reads it at once, whatever changed
// (SIGHUP). A file that cannot be read or parsed keeps the previous policy
// in force and is logged once (an error naming the file, line and problem)
// until the file changes again. Files over 1 MiB and anything but a regular
// file are refused. Thread-safe.
class FilePolicySource final : public PolicySource {
 public:
  // Reads and parses `path` now: NOT_FOUND / FAILED_PRECONDITION when it
  // cannot be read, INVALID_ARGUMENT (file:line: problem) when it does not
  // parse. `clock` paces the poll (the system clock when null; tests pass a
  // FakeClock) and must outlive the source. With a `registry`, reloads are
  // counted in ferry_access_policy_reloads_total{result="ok|error"}.
  static absl::StatusOr<std::unique_ptr<FilePolicySource>> Load(const std::string& path,
                                                                absl::Duration poll = absl::Seconds(2),
                                                                const WaitableClock* clock = nullptr,
                                                                prometheus::Registry* registry = nullptr);
  ~FilePolicySource() override;  // Stop()s.

  std::shared_ptr<const Policy> Current() const override;

  // Re-reads the file now. On failure the previous policy stays in force and
  // the error (also logged) is returned.
  absl::Status Reload();

  // Starts / stops the background poll. Stop is idempotent and also safe
  // before Start; a stopped source does not start again.
  void Start();
  void Stop();

  const std::string& path() const { return path_; }

 private:
  // What identifies one version of the file.
  struct Stamp {
    bool exists = false;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Stamp& o) const {
      return exists == o.exists && device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
    bool operator!=(const Stamp& o) const { return !(*this == o); }
  };

  static Stamp StampOf(const struct stat& st);
  // The stamp of `path_` as stat(2) sees it now (through symlinks).
  Stamp StatNow() const;

  FilePolicySource(std::string path, absl::Duration poll, const WaitableClock* clock, prometheus::Registry* registry);

  // Reads and parses the file, installing the policy on success; logs and
  // counts a failure. `stamp` is the file's stamp as the poll saw it, used
  // when the file cannot be opened at all.
  absl::Status ReadAndInstall(const Stamp& seen) ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);
  // One poll: re-reads when the stamp changed.
  void Poll();

  const std::string path_;
  const absl::Duration poll_;
  prometheus::Counter* reloads_ok_ = nullptr;
  prometheus::Counter* reloads_failed_ = nullptr;

  // Serialises reloads (the poll and SIGHUP), so that an older read never
  // replaces a newer one.
  Mutex reload_mu_;
  Stamp stamp_ ABSL_GUARDED_BY(reload_mu_);  // of the file last read (or tried)

  mutable Mutex mu_;
  std::shared_ptr<const Policy> current_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<concurrency::BackgroundLoop> loop_;  // set in the constructor, never replaced
};

}  // namespace ferry::auth
