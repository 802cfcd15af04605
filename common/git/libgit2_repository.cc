#include "common/git/libgit2_repository.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/git/known_hosts.h"
#include "common/git/libgit2_tree_reader.h"
#include "common/git/local_fetch.h"
#include "common/git/tree_diff.h"

namespace ferry::git {
namespace {

std::string OidHex(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof(hex), oid);
  return hex;
}

absl::StatusOr<git_oid> ParseOid(const std::string& sha) {
  git_oid oid;
  if (sha.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, sha.c_str()) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("not a full commit sha: \"", sha, "\""));
  }
  return oid;
}

Identity ToIdentity(const git_signature* s) {
  Identity id;
  if (s == nullptr) return id;
  id.name = s->name != nullptr ? s->name : "";
  id.email = s->email != nullptr ? s->email : "";
  id.time_seconds = s->when.time;
  id.offset_minutes = s->when.offset;
  return id;
}

}  // namespace

int AcquireCredential(git_credential** out, const char* url, const char* username_from_url,
                      unsigned int allowed_types, void* payload) {
  auto* p = static_cast<CredentialPayload*>(payload);
  if (p == nullptr || p->credentials == nullptr || p->attempts++ > 0) return GIT_EAUTH;
  const Credentials& c = *p->credentials;
  switch (c.kind) {
    case Credentials::Kind::kNone:
      return GIT_PASSTHROUGH;
    case Credentials::Kind::kUserPassword:
      if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) == 0) return GIT_EAUTH;
      return git_credential_userpass_plaintext_new(out, c.username.empty() ? "git" : c.username.c_str(),
                                                   c.password.c_str());
    case Credentials::Kind::kSshKey: {
      if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) == 0) return GIT_EAUTH;
      const char* user = username_from_url != nullptr ? username_from_url
                                                      : (c.username.empty() ? "git" : c.username.c_str());
      return git_credential_ssh_key_new(out, user, nullptr, c.private_key_file.c_str(),
                                        c.passphrase.empty() ? nullptr : c.passphrase.c_str());
    }
  }
  return GIT_EAUTH;
}

int CheckCertificate(git_cert* cert, int valid, const char* host, void* payload) {
  if (cert == nullptr || cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return valid ? 0 : GIT_ECERTIFICATE;
  auto* p = static_cast<CredentialPayload*>(payload);
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  if ((key->type & GIT_CERT_SSH_RAW) == 0 || key->hostkey == nullptr || host == nullptr) {
    git_error_set_str(GIT_ERROR_SSH, "cannot verify the SSH host key: no raw key offered");
    return GIT_ECERTIFICATE;
  }
  std::string file = p != nullptr && p->credentials != nullptr ? p->credentials->known_hosts_file : "";
  if (file.empty()) {
    const char* home = std::getenv("HOME");
    file = absl::StrCat(home != nullptr ? home : "", "/.ssh/known_hosts");
  }
  int port = p != nullptr ? SshPortOf(p->url) : 22;
  if (KnownHostsContains(file, host, port, Base64(std::string(key->hostkey, key->hostkey_len)))) return 0;
  git_error_set_str(GIT_ERROR_SSH, absl::StrCat("SSH host key of ", host, " is not in ", file).c_str());
  return GIT_ECERTIFICATE;
}

int CheckTransfer(const git_indexer_progress* stats, void* payload) {
  auto* p = static_cast<CredentialPayload*>(payload);
  if (p == nullptr || p->limits == nullptr || stats == nullptr) return 0;
  if (p->limits->max_objects > 0 && static_cast<int64_t>(stats->total_objects) > p->limits->max_objects) {
    p->exceeded = absl::StrCat("the remote's pack holds ", stats->total_objects, " objects, more than the ",
                               p->limits->max_objects, " one fetch may bring (--max-fetch-objects)");
  } else if (p->limits->max_bytes > 0 && static_cast<int64_t>(stats->received_bytes) > p->limits->max_bytes) {
    p->exceeded = absl::StrCat("the remote sent more than the ", p->limits->max_bytes,
                               " bytes one fetch may bring (--max-fetch-bytes)");
  }
  if (p->exceeded.empty()) return 0;
  git_error_set_str(GIT_ERROR_NET, p->exceeded.c_str());
  return -1;
}

absl::Status Libgit2Repository::Fetch(const std::string& url, const std::vector<std::string>& refspecs,
                                      const Credentials& credentials) {
  CredentialPayload payload{&credentials, 0, url, &limits_, ""};
  // A few new commits from a repository on this machine: their own objects,
  // not a walk of the whole repository (issue #23).
  absl::StatusOr<bool> local = FetchLocalIncrement(repo_.get(), url, refspecs, &payload);
  if (!local.ok() || *local) return local.status();
  // Not git_remote_create_anonymous: it applies url.<base>.insteadOf from
  // the configuration, whose glob over every config entry leaks one PCRE2
  // match block (about 20 KiB) per entry that does not match in libgit2
  // before 1.6 (libgit2#6382; Debian 12 ships 1.5): some 280 KiB per fetch,
  // never freed. Skipping it also fetches exactly the registered URL, the
  // one ls-remote lists and the credentials were checked against, and not a
  // rewrite of it from the host's git configuration.
  git_remote_create_options create = GIT_REMOTE_CREATE_OPTIONS_INIT;
  create.repository = repo_.get();
  create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
  git_remote* raw = nullptr;
  int rc = git_remote_create_with_opts(&raw, url.c_str(), &create);
  RemoteHandle remote(raw);
  if (rc != 0) return GitError(rc, "fetch: bad remote URL", absl::StatusCode::kInvalidArgument);
  std::vector<char*> specs;
  specs.reserve(refspecs.size());
  for (const std::string& s : refspecs) specs.push_back(const_cast<char*>(s.c_str()));
  git_strarray array{specs.data(), specs.size()};
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.callbacks.credentials = AcquireCredential;
  opts.callbacks.certificate_check = CheckCertificate;
  opts.callbacks.transfer_progress = CheckTransfer;
  opts.callbacks.payload = &payload;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  opts.update_fetchhead = 0;
  opts.prune = GIT_FETCH_NO_PRUNE;
  rc = git_remote_fetch(remote.get(), &array, &opts, nullptr);
  if (rc != 0 && !payload.exceeded.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat("fetch stopped, nothing of it kept: ", payload.exceeded));
  }
  if (rc != 0) return GitError(rc, "fetch", absl::StatusCode::kUnavailable);
  return absl::OkStatus();
}

bool Libgit2Repository::HasCommit(const std::string& sha) {
  absl::StatusOr<git_oid> oid = ParseOid(sha);
  if (!oid.ok()) return false;
  git_odb* raw = nullptr;
  if (git_repository_odb(&raw, repo_.get()) != 0) return false;
  OdbHandle odb(raw);
  return git_odb_exists(odb.get(), &*oid) == 1;
}

absl::StatusOr<CommitHandle> Libgit2Repository::LookupCommit(const std::string& sha) {
  absl::StatusOr<git_oid> oid = ParseOid(sha);
  if (!oid.ok()) return oid.status();
  git_commit* raw = nullptr;
  int rc = git_commit_lookup(&raw, repo_.get(), &*oid);
  CommitHandle commit(raw);
  if (rc != 0) return GitError(rc, absl::StrCat("commit ", sha));
  return commit;
}

absl::StatusOr<Commit> Libgit2Repository::ReadCommit(const std::string& sha) {
  absl::StatusOr<CommitHandle> c = LookupCommit(sha);
  if (!c.ok()) return c.status();
  Commit out;
  out.sha = OidHex(git_commit_id(c->get()));
  for (unsigned i = 0; i < git_commit_parentcount(c->get()); ++i) {
    out.parents.push_back(OidHex(git_commit_parent_id(c->get(), i)));
  }
  out.author = ToIdentity(git_commit_author(c->get()));
  out.committer = ToIdentity(git_commit_committer(c->get()));
  const char* msg = git_commit_message(c->get());
  out.message = msg != nullptr ? msg : "";
  Buf sig, data;
  int rc = git_commit_extract_signature(&sig.buf, &data.buf, repo_.get(),
                                        const_cast<git_oid*>(git_commit_id(c->get())), nullptr);
  if (rc == 0) {
    out.signature.assign(sig.buf.ptr, sig.buf.size);
    out.signed_data.assign(data.buf.ptr, data.buf.size);
  } else if (rc != GIT_ENOTFOUND) {
    return GitError(rc, absl::StrCat("signature of ", sha));
  }
  return out;
}

absl::StatusOr<bool> Libgit2Repository::IsDescendantOf(const std::string& descendant, const std::string& ancestor) {
  absl::StatusOr<git_oid> d = ParseOid(descendant);
  if (!d.ok()) return d.status();
  absl::StatusOr<git_oid> a = ParseOid(ancestor);
  if (!a.ok()) return a.status();
  int rc = git_graph_descendant_of(repo_.get(), &*d, &*a);
  if (rc < 0) return GitError(rc, "ancestry check");
  return rc == 1;
}

absl::StatusOr<std::vector<std::string>> Libgit2Repository::ChangedPaths(const std::string& from,
                                                                         const std::string& to) {
  absl::StatusOr<CommitHandle> a = LookupCommit(from);
  if (!a.ok()) return a.status();
  absl::StatusOr<CommitHandle> b = LookupCommit(to);
  if (!b.ok()) return b.status();
  // Not git_diff_tree_to_tree: it reads every file of both trees, however
  // few changed (at 10,000 application folders, a sixth of the
  // repo-watcher's CPU for a commit touching one; issue #23).
  // ChangedPathsBetween skips the subtrees both commits share.
  Libgit2TreeReader reader(repo_.get());
  return ChangedPathsBetween(reader, RawId(git_commit_tree_id(a->get())), RawId(git_commit_tree_id(b->get())));
}

absl::StatusOr<std::vector<std::string>> Libgit2Repository::CommitsBetween(const std::string& hide,
                                                                           const std::string& tip, int limit) {
  git_revwalk* raw = nullptr;
  int rc = git_revwalk_new(&raw, repo_.get());
  RevwalkHandle walk(raw);
  if (rc != 0) return GitError(rc, "revwalk");
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL);
  absl::StatusOr<git_oid> t = ParseOid(tip);
  if (!t.ok()) return t.status();
  if ((rc = git_revwalk_push(walk.get(), &*t)) != 0) return GitError(rc, "revwalk push");
  if (!hide.empty()) {
    absl::StatusOr<git_oid> h = ParseOid(hide);
    if (!h.ok()) return h.status();
    if ((rc = git_revwalk_hide(walk.get(), &*h)) != 0) return GitError(rc, "revwalk hide");
  }
  std::vector<std::string> out;
  git_oid oid;
  while ((rc = git_revwalk_next(&oid, walk.get())) == 0) {
    if (static_cast<int>(out.size()) >= limit) {
      return absl::ResourceExhaustedError(absl::StrCat("more than ", limit, " new commits"));
    }
    out.push_back(OidHex(&oid));
  }
  if (rc != GIT_ITEROVER) return GitError(rc, "revwalk");
  return out;
}

namespace {

struct WalkState {
  git_repository* repo;
  std::string prefix;
  std::vector<TreeEntry>* out;
  int error = 0;
};

absl::StatusOr<TreeEntry> MakeEntry(git_repository* repo, const std::string& path, const git_tree_entry* e) {
  TreeEntry entry;
  entry.path = path;
  entry.mode = static_cast<uint32_t>(git_tree_entry_filemode(e));
  entry.oid = OidHex(git_tree_entry_id(e));
  switch (git_tree_entry_filemode(e)) {
    case GIT_FILEMODE_LINK: entry.type = TreeEntry::Type::kSymlink; break;
    case GIT_FILEMODE_COMMIT: entry.type = TreeEntry::Type::kSubmodule; return entry;
    default: entry.type = TreeEntry::Type::kFile; break;
  }
  git_odb* odb_raw = nullptr;
  int rc = git_repository_odb(&odb_raw, repo);
  OdbHandle odb(odb_raw);
  if (rc != 0) return GitError(rc, "object database");
  size_t size = 0;
  git_object_t type;
  rc = git_odb_read_header(&size, &type, odb.get(), git_tree_entry_id(e));
  if (rc != 0) return GitError(rc, absl::StrCat("blob of ", path));
  entry.size = static_cast<int64_t>(size);
  return entry;
}

int WalkCallback(const char* root, const git_tree_entry* e, void* payload) {
  auto* s = static_cast<WalkState*>(payload);
  if (git_tree_entry_type(e) == GIT_OBJECT_TREE) return 0;
  std::string path = absl::StrCat(s->prefix, root, git_tree_entry_name(e));
  absl::StatusOr<TreeEntry> entry = MakeEntry(s->repo, path, e);
  if (!entry.ok()) {
    s->error = -1;
    return -1;
  }
  s->out->push_back(std::move(*entry));
  return 0;
}

}  // namespace

absl::StatusOr<std::vector<TreeEntry>> Libgit2Repository::ListTree(const std::string& commit,
                                                                   const std::string& path) {
  absl::StatusOr<CommitHandle> c = LookupCommit(commit);
  if (!c.ok()) return c.status();
  git_tree* root_raw = nullptr;
  int rc = git_commit_tree(&root_raw, c->get());
  TreeHandle root(root_raw);
  if (rc != 0) return GitError(rc, "read tree");
  std::vector<TreeEntry> out;
  TreeHandle subtree;
  git_tree* walk_tree = root.get();
  std::string prefix;
  if (!path.empty()) {
    git_tree_entry* e_raw = nullptr;
    rc = git_tree_entry_bypath(&e_raw, root.get(), path.c_str());
    TreeEntryHandle e(e_raw);
    if (rc == GIT_ENOTFOUND) return absl::NotFoundError(absl::StrCat("path \"", path, "\" not found at ", commit));
    if (rc != 0) return GitError(rc, absl::StrCat("path ", path));
    if (git_tree_entry_type(e.get()) != GIT_OBJECT_TREE) {
      absl::StatusOr<TreeEntry> entry = MakeEntry(repo_.get(), path, e.get());
      if (!entry.ok()) return entry.status();
      out.push_back(std::move(*entry));
      return out;
    }
    git_tree* sub_raw = nullptr;
    rc = git_tree_lookup(&sub_raw, repo_.get(), git_tree_entry_id(e.get()));
    subtree.reset(sub_raw);
    if (rc != 0) return GitError(rc, absl::StrCat("tree ", path));
    walk_tree = subtree.get();
    prefix = path + "/";
  }
  WalkState state{repo_.get(), prefix, &out};
  rc = git_tree_walk(walk_tree, GIT_TREEWALK_PRE, WalkCallback, &state);
  if (rc != 0) return GitError(rc, "walk tree");
  std::sort(out.begin(), out.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  return out;
}

absl::StatusOr<std::string> Libgit2Repository::ReadBlob(const std::string& oid_hex) {
  git_oid oid;
  if (git_oid_fromstr(&oid, oid_hex.c_str()) != 0) return absl::InvalidArgumentError("bad blob id");
  git_blob* raw = nullptr;
  int rc = git_blob_lookup(&raw, repo_.get(), &oid);
  BlobHandle blob(raw);
  if (rc != 0) return GitError(rc, absl::StrCat("blob ", oid_hex));
  return std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                     static_cast<size_t>(git_blob_rawsize(blob.get())));
}

absl::Status Libgit2Repository::DeleteRef(const std::string& name) {
  int rc = git_reference_remove(repo_.get(), name.c_str());
  if (rc != 0 && rc != GIT_ENOTFOUND) return GitError(rc, absl::StrCat("delete ref ", name));
  return absl::OkStatus();
}

}  // namespace ferry::git
