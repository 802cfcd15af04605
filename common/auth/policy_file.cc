#include "common/auth/policy_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::auth {
namespace {

std::string ErrnoText(int err) { return std::generic_category().message(err); }

// The file's text, at most kMaxPolicyBytes, and its stat as opened.
// NOT_FOUND when it does not exist, FAILED_PRECONDITION when it cannot be
// read or is not a regular file (a FIFO would block: opened non-blocking and
// refused), INVALID_ARGUMENT when it is too big.
absl::Status ReadPolicyFile(const std::string& path, std::string* text, struct stat* st) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    const std::string message = absl::StrCat("cannot open the access policy file ", path, ": ", ErrnoText(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::FailedPreconditionError(message);
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (fstat(fd, st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot stat the access policy file ", path, ": ", ErrnoText(errno)));
  }
  if (!S_ISREG(st->st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("the access policy file ", path, " is not a regular file"));
  }
  const auto too_big = [&](int64_t size) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the policy is ", size, " bytes, more than the ", kMaxPolicyBytes, " allowed"));
  };
  if (st->st_size > static_cast<off_t>(kMaxPolicyBytes)) return too_big(st->st_size);
  // The file may grow after fstat: read one byte past the limit to see it.
  text->assign(kMaxPolicyBytes + 1, '\0');
  size_t got = 0;
  while (got < text->size()) {
    const ssize_t n = read(fd, text->data() + got, text->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read the access policy file ", path, ": ", ErrnoText(errno)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxPolicyBytes) return too_big(static_cast<int64_t>(got));
  text->resize(got);
  return absl::OkStatus();
}

}  // namespace

FilePolicySource::Stamp FilePolicySource::StampOf(const struct stat& st) {
  Stamp s;
  s.exists = true;
  s.device = st.st_dev;
  s.inode = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return s;
}

FilePolicySource::Stamp FilePolicySource::StatNow() const {
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) return Stamp{};
  return StampOf(st);
}

FilePolicySource::FilePolicySource(std::string path, absl::Duration poll, const WaitableClock* clock,
                                   prometheus::Registry* registry)
    : path_(std::move(path)), poll_(poll) {
  if (registry != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("ferry_access_policy_reloads_total")
                       .Help("Re-reads of the access policy file after a change or SIGHUP, by result.")
                       .Register(*registry);
    reloads_ok_ = &family.Add({{"result", "ok"}});
    reloads_failed_ = &family.Add({{"result", "error"}});
  }
  concurrency::LoopOptions options;
  options.first_run_after = poll_;
  loop_ = std::make_unique<concurrency::BackgroundLoop>(
      "access-policy",
      [this]() -> absl::StatusOr<absl::Duration> {
        Poll();
        return poll_;
      },
      std::move(options), clock);
}

absl::StatusOr<std::unique_ptr<FilePolicySource>> FilePolicySource::Load(const std::string& path,
                                                                         absl::Duration poll,
                                                                         const WaitableClock* clock,
                                                                         prometheus::Registry* registry) {
  if (poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the access policy's poll interval must be positive");
  }
  std::string text;
  struct stat st {};
  if (absl::Status read = ReadPolicyFile(path, &text, &st); !read.ok()) return read;
  absl::StatusOr<std::shared_ptr<const Policy>> policy = Policy::Parse(text, path);
  if (!policy.ok()) return policy.status();
  std::unique_ptr<FilePolicySource> source(new FilePolicySource(path, poll, clock, registry));
  {
    MutexLock lock(&source->reload_mu_);
    source->stamp_ = StampOf(st);
  }
  {
    MutexLock lock(&source->mu_);
    source->current_ = *std::move(policy);
  }
  return source;
}

FilePolicySource::~FilePolicySource() { Stop(); }

std::shared_ptr<const Policy> FilePolicySource::Current() const {
  MutexLock lock(&mu_);
  return current_;
}

void FilePolicySource::Start() { loop_->Start(); }

void FilePolicySource::Stop() { loop_->Stop(); }

absl::Status FilePolicySource::Reload() {
  MutexLock lock(&reload_mu_);
  return ReadAndInstall(StatNow());
}

void FilePolicySource::Poll() {
  MutexLock lock(&reload_mu_);
  const Stamp now = StatNow();
  if (now == stamp_) return;
  ReadAndInstall(now).IgnoreError();  // logged and counted there
}

absl::Status FilePolicySource::ReadAndInstall(const Stamp& seen) {
  std::string text;
  struct stat st {};
  absl::Status status = ReadPolicyFile(path_, &text, &st);
  stamp_ = status.ok() ? StampOf(st) : seen;
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      status.ok() ? Policy::Parse(text, path_) : absl::StatusOr<std::shared_ptr<const Policy>>(status);
  if (!policy.ok()) {
    if (reloads_failed_ != nullptr) reloads_failed_->Increment();
    logging::Error("access policy not reloaded; the previous policy stays in force",
                   {{"file", path_}, {"error", std::string(policy.status().message())}});
    return policy.status();
  }
  const size_t bindings = (*policy)->bindings().size();
  const size_t issuers = (*policy)->issuers().size();
  {
    MutexLock lock(&mu_);
    current_ = *std::move(policy);
  }
  if (reloads_ok_ != nullptr) reloads_ok_->Increment();
  logging::Info("access policy reloaded", {{"file", path_}, {"bindings", bindings}, {"oidc_issuers", issuers}});
  return absl::OkStatus();
}

}  // namespace ferry::auth
