#include "common/git/local_fetch.h"

#include <array>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/git/libgit2_handles.h"
#include "common/git/libgit2_tree_reader.h"
#include "common/git/tree_diff.h"

namespace ferry::git {
namespace {

using Id = std::array<unsigned char, 20>;
using PackbuilderHandle = std::unique_ptr<git_packbuilder, Libgit2Deleter<git_packbuilder, git_packbuilder_free>>;

git_oid Oid(const Id& id) {
  git_oid oid;
  git_oid_fromraw(&oid, id.data());
  return oid;
}

std::string LocalPath(const std::string& url) {
  if (absl::StartsWith(url, "file:///")) return url.substr(7);
  if (absl::StartsWith(url, "/")) return url;
  return "";
}

// The objects of new commits that the mirror lacks.
class Missing {
 public:
  Missing(git_repository* source, git_odb* mirror) : source_(source), mirror_(mirror), trees_(source) {}

  // False: more than kMaxLocalIncrementCommits new commits.
  absl::StatusOr<bool> AddCommits(const git_oid& tip) {
    std::vector<Id> todo{RawId(&tip)};
    while (!todo.empty()) {
      Id id = todo.back();
      todo.pop_back();
      if (Known(id)) continue;
      if (++commits_ > kMaxLocalIncrementCommits) return false;
      objects_.insert(id);
      git_oid oid = Oid(id);
      git_commit* raw = nullptr;
      int rc = git_commit_lookup(&raw, source_, &oid);
      CommitHandle commit(raw);
      if (rc != 0) return GitError(rc, "fetch: read a commit of the source");
      std::optional<Id> parent_tree;
      for (unsigned i = 0; i < git_commit_parentcount(commit.get()); ++i) {
        todo.push_back(RawId(git_commit_parent_id(commit.get(), i)));
        if (i > 0) continue;
        git_commit* p = nullptr;
        if ((rc = git_commit_parent(&p, commit.get(), 0)) != 0) return GitError(rc, "fetch: read a parent commit");
        CommitHandle parent(p);
        parent_tree = RawId(git_commit_tree_id(parent.get()));
      }
      absl::Status s = AddTree(RawId(git_commit_tree_id(commit.get())), parent_tree);
      if (!s.ok()) return s;
    }
    return true;
  }

  const std::set<Id>& objects() const { return objects_; }

 private:
  // In the mirror (with everything it reaches: objects arrive in whole
  // packs) or already listed.
  bool Known(const Id& id) {
    if (objects_.count(id)) return true;
    git_oid oid = Oid(id);
    return git_odb_exists(mirror_, &oid) == 1;
  }

  // `tree` and what it reaches, less what `base` (the first parent's tree
  // at the same path, in the mirror or listed with its commit) shares.
  absl::Status AddTree(const Id& tree, const std::optional<Id>& base) {
    if (Known(tree)) return absl::OkStatus();
    objects_.insert(tree);
    absl::StatusOr<std::vector<TreeItem>> now = trees_.ReadTree(tree);
    if (!now.ok()) return now.status();
    std::vector<TreeItem> before;
    if (base) {
      absl::StatusOr<std::vector<TreeItem>> b = trees_.ReadTree(*base);
      if (!b.ok()) return b.status();
      before = std::move(*b);
    }
    size_t j = 0;
    for (const TreeItem& e : *now) {
      while (j < before.size() && CompareInTreeOrder(before[j], e) < 0) ++j;
      const bool same_key = j < before.size() && CompareInTreeOrder(before[j], e) == 0;
      if (same_key && before[j].id == e.id) continue;
      if (e.is_tree()) {
        absl::Status s = AddTree(e.id, same_key ? std::optional<Id>(before[j].id) : std::nullopt);
        if (!s.ok()) return s;
      } else if (e.mode != 0160000 && !Known(e.id)) {  // a submodule's commit is not in this repository
        objects_.insert(e.id);
      }
    }
    return absl::OkStatus();
  }

  git_repository* const source_;
  git_odb* const mirror_;
  Libgit2TreeReader trees_;
  std::set<Id> objects_;
  int commits_ = 0;
};

struct Sink {
  git_odb_writepack* pack = nullptr;
  git_indexer_progress stats{};
};

int Append(void* buf, size_t size, void* payload) {
  auto* sink = static_cast<Sink*>(payload);
  sink->stats.received_bytes += size;  // as libgit2's local transport counts them (--max-fetch-bytes)
  return sink->pack->append(sink->pack, buf, size, &sink->stats);
}

}  // namespace

absl::StatusOr<bool> FetchLocalIncrement(git_repository* mirror, const std::string& url,
                                         const std::vector<std::string>& refspecs, CredentialPayload* payload) {
  const std::string path = LocalPath(url);
  if (path.empty() || refspecs.empty()) return false;
  std::vector<std::pair<std::string, std::string>> refs;  // source ref -> mirror ref
  for (const std::string& spec : refspecs) {
    size_t colon = spec.find(':');
    if (spec.size() < 2 || spec[0] != '+' || colon == std::string::npos || spec.find('*') != std::string::npos ||
        spec.find(':', colon + 1) != std::string::npos)
      return false;
    refs.emplace_back(spec.substr(1, colon - 1), spec.substr(colon + 1));
    if (refs.back().first.empty() || refs.back().second.empty()) return false;
  }
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    git_error_clear();
    return false;
  }
  RepositoryHandle source(raw);
  git_odb* odb_raw = nullptr;
  int rc = git_repository_odb(&odb_raw, mirror);
  OdbHandle odb(odb_raw);
  if (rc != 0) return GitError(rc, "fetch: open the mirror's objects");

  Missing missing(source.get(), odb.get());
  std::vector<git_oid> tips;
  for (const auto& [from, to] : refs) {
    git_oid tip;
    git_object* obj = nullptr;
    if (git_reference_name_to_id(&tip, source.get(), from.c_str()) != 0 ||
        git_object_lookup(&obj, source.get(), &tip, GIT_OBJECT_COMMIT) != 0) {
      git_error_clear();
      return false;
    }
    git_object_free(obj);
    // A source it cannot read through (a shallow clone's missing parent, a
    // broken object) is left to the ordinary fetch and its errors.
    absl::StatusOr<bool> few = missing.AddCommits(tip);
    if (!few.ok()) git_error_clear();
    if (!few.ok() || !*few) return false;
    tips.push_back(tip);
  }

  if (!missing.objects().empty()) {
    git_packbuilder* pb_raw = nullptr;
    if ((rc = git_packbuilder_new(&pb_raw, source.get())) != 0) return GitError(rc, "fetch: pack");
    PackbuilderHandle pb(pb_raw);
    for (const Id& id : missing.objects()) {
      git_oid oid = Oid(id);
      if ((rc = git_packbuilder_insert(pb.get(), &oid, nullptr)) != 0) return GitError(rc, "fetch: pack");
    }
    Sink sink;
    if ((rc = git_odb_write_pack(&sink.pack, odb.get(), CheckTransfer, payload)) != 0)
      return GitError(rc, "fetch: write the pack");
    rc = git_packbuilder_foreach(pb.get(), Append, &sink);
    if (rc == 0) rc = sink.pack->commit(sink.pack, &sink.stats);
    sink.pack->free(sink.pack);
    if (rc != 0 && !payload->exceeded.empty())
      return absl::ResourceExhaustedError(absl::StrCat("fetch stopped, nothing of it kept: ", payload->exceeded));
    if (rc != 0) return GitError(rc, "fetch: write the pack");
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    git_reference* ref = nullptr;
    rc = git_reference_create(&ref, mirror, refs[i].second.c_str(), &tips[i], /*force=*/1, "fetch");
    git_reference_free(ref);
    if (rc != 0) return GitError(rc, absl::StrCat("fetch: update ", refs[i].second));
  }
  return true;
}

}  // namespace ferry::git
