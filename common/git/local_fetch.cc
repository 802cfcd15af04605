#include "common/git/local_fetch.h"

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <utility>

#include <openssl/evp.h>
#include <zlib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/git/libgit2_handles.h"
#include "common/git/libgit2_tree_reader.h"
#include "common/git/tree_diff.h"

namespace ferry::git {
namespace {

using Id = std::array<unsigned char, 20>;

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

// Writes a pack (Git's format, version 2) through the mirror's writepack,
// whose indexer checks every object's id and the trailer as a fetch's.
class PackWriter {
 public:
  explicit PackWriter(git_odb_writepack* pack) : pack_(pack) {
    EVP_DigestInit_ex(sha_.get(), EVP_sha1(), nullptr);
  }

  int Begin(uint32_t count) {
    const unsigned char header[12] = {'P', 'A', 'C', 'K', 0, 0, 0, 2, static_cast<unsigned char>(count >> 24),
                                      static_cast<unsigned char>(count >> 16), static_cast<unsigned char>(count >> 8),
                                      static_cast<unsigned char>(count)};
    return Write(header, sizeof header);
  }

  // One whole object, deflated at `level`.
  int Object(git_object_t type, const unsigned char* data, size_t size, int level) {
    unsigned char header[16];
    size_t n = 0;
    uint64_t left = size;
    unsigned char c = static_cast<unsigned char>((type << 4) | (left & 0x0f));
    left >>= 4;
    while (left != 0) {
      header[n++] = c | 0x80;
      c = left & 0x7f;
      left >>= 7;
    }
    header[n++] = c;
    int rc = Write(header, n);
    if (rc != 0) return rc;
    z_stream z{};
    if (deflateInit(&z, level) != Z_OK) return Fail("fetch: deflate");
    size_t unread = size;  // fed in pieces: zlib counts input in 32 bits
    unsigned char out[65536];
    int zrc = Z_OK;
    while (rc == 0 && zrc != Z_STREAM_END) {
      if (z.avail_in == 0 && unread > 0) {
        z.next_in = const_cast<unsigned char*>(data + (size - unread));
        z.avail_in = static_cast<uInt>(std::min<size_t>(unread, size_t{1} << 30));
        unread -= z.avail_in;
      }
      z.next_out = out;
      z.avail_out = sizeof out;
      zrc = deflate(&z, unread == 0 ? Z_FINISH : Z_NO_FLUSH);
      if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) rc = Fail("fetch: deflate");
      if (rc == 0) rc = Write(out, sizeof out - z.avail_out);
    }
    deflateEnd(&z);
    return rc;
  }

  int Commit() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha_.get(), digest, &len);
    int rc = Append(digest, len);
    return rc != 0 ? rc : pack_->commit(pack_, &stats_);
  }

 private:
  static int Fail(const char* what) {
    git_error_set_str(GIT_ERROR_ZLIB, what);
    return -1;
  }
  int Write(const unsigned char* data, size_t size) {
    EVP_DigestUpdate(sha_.get(), data, size);
    return Append(data, size);
  }
  int Append(const unsigned char* data, size_t size) {
    stats_.received_bytes += size;  // as libgit2's local transport counts them (--max-fetch-bytes)
    return pack_->append(pack_, data, size, &stats_);
  }

  git_odb_writepack* const pack_;
  git_indexer_progress stats_{};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha_{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

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
    // Packed here rather than by git_packbuilder, which deflates every
    // object at zlib's default level: a monorepo folder of 10,000
    // applications is a 330 KiB tree of ids and names that compresses to
    // about 70% in ~10 ms, for each commit touching one of them (issue #23).
    // Trees of kStoredTreeBytes or more are stored (zlib level 0: copied,
    // and read back later without inflating); everything else as before.
    git_odb* source_raw = nullptr;
    if ((rc = git_repository_odb(&source_raw, source.get())) != 0) return GitError(rc, "fetch: open the source's objects");
    OdbHandle source_odb(source_raw);
    git_odb_writepack* pack = nullptr;
    if ((rc = git_odb_write_pack(&pack, odb.get(), CheckTransfer, payload)) != 0)
      return GitError(rc, "fetch: write the pack");
    PackWriter writer(pack);
    rc = writer.Begin(static_cast<uint32_t>(missing.objects().size()));
    for (auto it = missing.objects().begin(); rc == 0 && it != missing.objects().end(); ++it) {
      git_oid oid = Oid(*it);
      git_odb_object* raw_object = nullptr;
      if ((rc = git_odb_read(&raw_object, source_odb.get(), &oid)) != 0) break;
      const git_object_t type = git_odb_object_type(raw_object);
      const size_t size = git_odb_object_size(raw_object);
      rc = writer.Object(type, static_cast<const unsigned char*>(git_odb_object_data(raw_object)), size,
                         type == GIT_OBJECT_TREE && size >= kStoredTreeBytes ? Z_NO_COMPRESSION
                                                                             : Z_DEFAULT_COMPRESSION);
      git_odb_object_free(raw_object);
    }
    if (rc == 0) rc = writer.Commit();
    pack->free(pack);
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
