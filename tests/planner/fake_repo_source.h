#pragma once

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "common/crypto/sha256.h"
#include "services/planner/manifest_parser.h"
#include "services/planner/repo_path.h"
#include "services/planner/repo_source.h"

namespace ferry::planner::testing {

// One file of a fake tree: content, or a symlink target.
struct FakeFile {
  std::string data;
  std::string symlink_target;  // non-empty: a symlink
};
using FakeTree = std::map<std::string, FakeFile>;

// Reads a folder of real files into a tree (repository-relative paths).
inline FakeTree LoadTree(const std::string& dir) {
  FakeTree tree;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_directory()) continue;
    std::string rel = std::filesystem::relative(e.path(), dir).string();
    if (e.is_symlink()) {
      tree[rel].symlink_target = std::filesystem::read_symlink(e.path()).string();
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    tree[rel].data = ss.str();
  }
  return tree;
}

// An in-memory repo-watcher: commits are whole trees, refs point at commits,
// and Commit() records a revision with the changed paths, delivered through
// WatchRevisions. Blob ids are content hashes. Thread-safe.
class FakeRepoSource final : public RepoSource {
 public:
  // Records a new commit of `tree` on `ref` and returns its revision.
  v1::Revision Commit(const std::string& repo, const std::string& ref, const FakeTree& tree) {
    MutexLock lock(&mu_);
    std::string sha = Sha(absl::StrCat(repo, ref, ++counter_));
    v1::Revision rev;
    rev.set_id(absl::StrCat("rev-", counter_));
    rev.set_cursor(absl::StrCat(counter_));
    rev.set_repository_id(repo);
    rev.set_ref(ref);
    rev.set_sha(sha);
    auto key = std::make_pair(repo, ref);
    auto prev = tips_.find(key);
    if (prev == tips_.end()) {
      rev.set_all_paths_changed(true);
    } else {
      rev.set_previous_sha(prev->second);
      const FakeTree& old = commits_[prev->second];
      std::set<std::string> paths;
      for (const auto& [p, f] : old) paths.insert(p);
      for (const auto& [p, f] : tree) paths.insert(p);
      for (const auto& p : paths) {
        auto a = old.find(p);
        auto b = tree.find(p);
        if (a == old.end() || b == tree.end() || a->second.data != b->second.data ||
            a->second.symlink_target != b->second.symlink_target)
          rev.add_changed_paths(p);
      }
    }
    commits_[sha] = tree;
    tips_[key] = sha;
    revisions_.push_back(rev);
    cv_.SignalAll();
    return rev;
  }

  absl::StatusOr<std::vector<TreeEntry>> ReadTree(const std::string& repo, const std::string& commit,
                                                  const std::string& path, bool metadata_only) override {
    MutexLock lock(&mu_);
    ++reads_;
    auto c = commits_.find(commit);
    if (c == commits_.end()) return absl::NotFoundError("unknown commit " + commit);
    std::vector<TreeEntry> out;
    for (const auto& [p, f] : c->second) {
      if (!IsUnderRepoPath(p, path)) continue;
      TreeEntry e;
      e.path = p;
      if (!f.symlink_target.empty()) {
        e.type = v1::CONTENT_ENTRY_TYPE_SYMLINK;
        e.mode = 0120000;
        e.symlink_target = f.symlink_target;
        e.blob_sha = Sha("link" + f.symlink_target);
      } else {
        e.blob_sha = Sha("blob" + f.data);
        if (!metadata_only) e.data = f.data;
        if (!metadata_only) bytes_read_ += f.data.size();
      }
      out.push_back(std::move(e));
    }
    if (out.empty()) return absl::NotFoundError(absl::StrCat("path \"", path, "\" not found at ", commit));
    return out;
  }

  // As the repo-watcher: the listing with its data when the files total at
  // most max_data_bytes (one read either way).
  absl::StatusOr<Listing> ReadListing(const std::string& repo, const std::string& commit, const std::string& path,
                                      int64_t max_data_bytes) override {
    Listing out;
    ASSIGN_OR_RETURN(out.entries, ReadTree(repo, commit, path, true));
    MutexLock lock(&mu_);
    const auto& files = commits_.at(commit);
    int64_t total = 0;
    for (const TreeEntry& e : out.entries)
      if (e.type == v1::CONTENT_ENTRY_TYPE_FILE) total += static_cast<int64_t>(files.at(e.path).data.size());
    out.with_data = max_data_bytes > 0 && total <= max_data_bytes;
    if (!out.with_data) return out;
    for (TreeEntry& e : out.entries) {
      if (e.type != v1::CONTENT_ENTRY_TYPE_FILE) continue;
      e.data = files.at(e.path).data;
      bytes_read_ += e.data.size();
    }
    return out;
  }

  absl::StatusOr<std::string> ResolveRef(const std::string& repo, const std::string& ref) override {
    MutexLock lock(&mu_);
    auto it = tips_.find({repo, ref});
    if (it == tips_.end()) return absl::NotFoundError("unknown ref " + ref);
    return it->second;
  }

  // Accepts every commit it holds unless Refuse() named it; NOT_FOUND for
  // a commit it does not hold. Counts the calls.
  absl::StatusOr<v1::CheckRevisionResponse> CheckRevision(const std::string& repo, const std::string& commit) override {
    MutexLock lock(&mu_);
    ++checks_;
    if (commits_.count(commit) == 0)
      return absl::NotFoundError(absl::StrCat("commit ", commit, " is not in the mirror of \"", repo, "\""));
    v1::CheckRevisionResponse out;
    auto refused = refused_.find(commit);
    out.set_accepted(refused == refused_.end());
    out.set_reason(refused == refused_.end() ? "signature policy is none" : refused->second);
    out.set_signature_result(refused == refused_.end() ? v1::SIGNATURE_RESULT_NOT_CHECKED
                                                       : v1::SIGNATURE_RESULT_UNSIGNED);
    return out;
  }
  // The signature policy refuses `sha` from now on, for `reason`.
  void Refuse(const std::string& sha, const std::string& reason) {
    MutexLock lock(&mu_);
    refused_[sha] = reason;
  }
  // CheckRevision calls so far.
  int checks() {
    MutexLock lock(&mu_);
    return checks_;
  }

  class Stream final : public RevisionStream {
   public:
    Stream(FakeRepoSource* owner, size_t next, int drops) : owner_(owner), next_(next), drops_(drops) {}
    bool Next(v1::Revision* revision) override {
      MutexLock lock(&owner_->mu_);
      ++owner_->waiting_;
      owner_->cv_.SignalAll();
      while (!cancelled_ && owner_->drops_ == drops_ && next_ >= owner_->revisions_.size())
        owner_->cv_.Wait(&owner_->mu_);
      --owner_->waiting_;
      if (cancelled_ || owner_->drops_ != drops_) return false;
      *revision = owner_->revisions_[next_++];
      return true;
    }
    void Cancel() override {
      MutexLock lock(&owner_->mu_);
      cancelled_ = true;
      owner_->cv_.SignalAll();
    }
    absl::Status Finish() override {
      MutexLock lock(&owner_->mu_);
      if (owner_->drops_ != drops_) return absl::UnavailableError("the repo-watcher went away");
      return absl::CancelledError("cancelled");
    }

   private:
    FakeRepoSource* owner_;
    size_t next_;
    const int drops_;  // the owner's drops_ when opened
    bool cancelled_ ABSL_GUARDED_BY(owner_->mu_) = false;
  };

  std::unique_ptr<RevisionStream> WatchRevisions(const std::string& cursor) override {
    MutexLock lock(&mu_);
    size_t next = 0;
    if (!cursor.empty()) next = std::stoul(cursor);  // cursor n = after the n-th revision
    ++watches_;
    return std::make_unique<Stream>(this, next, drops_);
  }

  // Ends every open stream (their Next returns false), as when the
  // repo-watcher goes away.
  void DropStreams() {
    MutexLock lock(&mu_);
    ++drops_;
    cv_.SignalAll();
  }
  // Blocks until a stream waits in Next for a revision.
  void AwaitWaitingStream() {
    MutexLock lock(&mu_);
    while (waiting_ == 0) cv_.Wait(&mu_);
  }
  // How many streams were opened so far.
  int watches() {
    MutexLock lock(&mu_);
    return watches_;
  }

  // Revisions recorded after the first `n` (for a fake WatchRevisions server).
  std::vector<v1::Revision> RevisionsAfter(size_t n) {
    MutexLock lock(&mu_);
    if (n >= revisions_.size()) return {};
    return {revisions_.begin() + static_cast<long>(n), revisions_.end()};
  }

  // Tips of the refs of `repo`.
  std::map<std::string, std::string> Refs(const std::string& repo) {
    MutexLock lock(&mu_);
    std::map<std::string, std::string> out;
    for (const auto& [key, sha] : tips_)
      if (key.first == repo) out[key.second] = sha;
    return out;
  }

  // ReadTree calls answered so far.
  size_t reads() {
    MutexLock lock(&mu_);
    return reads_;
  }

  // Bytes of file data read so far (work done by renders).
  size_t bytes_read() {
    MutexLock lock(&mu_);
    return bytes_read_;
  }

 private:
  static std::string Sha(const std::string& s) { return Sha256Hex(s).substr(0, 40); }

  Mutex mu_;
  CondVar cv_;
  int counter_ ABSL_GUARDED_BY(mu_) = 0;
  size_t reads_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_read_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, FakeTree> commits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> refused_ ABSL_GUARDED_BY(mu_);  // sha -> reason
  int checks_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<std::string, std::string>, std::string> tips_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Revision> revisions_ ABSL_GUARDED_BY(mu_);
  int drops_ ABSL_GUARDED_BY(mu_) = 0;    // DropStreams calls
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;  // streams waiting in Next
  int watches_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::planner::testing
