#include "services/repo-watcher/content_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/text/utf8.h"

namespace ferry::repo_watcher {

absl::StatusOr<std::string> NormalizeContentPath(const std::string& path) {
  if (path.empty()) return std::string();
  if (path[0] == '/' || path[0] == '\\') {
    return absl::InvalidArgumentError(absl::StrCat("path: \"", path, "\" is absolute; use a repository-relative path"));
  }
  if (path.find('\0') != std::string::npos) return absl::InvalidArgumentError("path: contains a NUL byte");
  std::string p = path;
  while (!p.empty() && p.back() == '/') p.pop_back();
  for (absl::string_view part : absl::StrSplit(p, absl::ByAnyChar("/\\"))) {
    if (part == "..") return absl::InvalidArgumentError(absl::StrCat("path: \"", path, "\" contains \"..\""));
    if (part.empty() || part == ".") {
      return absl::InvalidArgumentError(absl::StrCat("path: \"", path, "\" has an empty or \".\" component"));
    }
  }
  return p;
}

absl::StatusOr<v1::Repository> ContentReader::Repository(const std::string& id) {
  constexpr size_t kMaxKept = 4096;
  const absl::Time now = clock_->Now();
  {
    MutexLock lock(&mu_);
    auto it = recent_.find(id);
    if (it != recent_.end() && now - it->second.second < kRepositoryKept) return it->second.first;
  }
  absl::StatusOr<v1::Repository> repo = store_->Get(id);
  if (!repo.ok()) return repo.status();  // an unknown id is asked again
  MutexLock lock(&mu_);
  if (recent_.size() >= kMaxKept) recent_.clear();
  recent_.insert_or_assign(id, std::make_pair(*repo, now));
  return repo;
}

void ContentReader::Forget(const std::string& id) {
  MutexLock lock(&mu_);
  recent_.erase(id);
}

absl::Status ContentReader::Read(const v1::ReadContentRequest& request, const Sink& sink) {
  absl::StatusOr<std::string> path = NormalizeContentPath(request.path());
  if (!path.ok()) return path.status();
  const std::string& sha = request.commit();
  if (sha.size() != 40 || !std::all_of(sha.begin(), sha.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return absl::InvalidArgumentError("commit: must be a full 40-character lowercase commit sha");
  }
  if (request.max_file_bytes() < 0) return absl::InvalidArgumentError("max_file_bytes: must not be negative");
  if (request.max_total_bytes() < 0) return absl::InvalidArgumentError("max_total_bytes: must not be negative");
  if (request.data_up_to_total_bytes() < 0)
    return absl::InvalidArgumentError("data_up_to_total_bytes: must not be negative");
  // The caller may lower the server's limits, never raise them.
  const bool file_by_server = request.max_file_bytes() == 0 || request.max_file_bytes() >= limits_.max_file_bytes;
  const bool total_by_server =
      request.max_total_bytes() == 0 || request.max_total_bytes() >= limits_.max_total_bytes;
  const int64_t max_file = file_by_server ? limits_.max_file_bytes : request.max_file_bytes();
  const int64_t max_total = total_by_server ? limits_.max_total_bytes : request.max_total_bytes();
  const std::string file_limit = file_by_server
                                     ? absl::StrCat("the server's limit of ", max_file,
                                                    " bytes per file (--read-content-max-file-bytes)")
                                     : absl::StrCat("max_file_bytes ", max_file);
  const std::string total_limit = total_by_server
                                      ? absl::StrCat("the server's limit of ", max_total,
                                                     " bytes per read (--read-content-max-total-bytes)")
                                      : absl::StrCat("max_total_bytes ", max_total);

  absl::StatusOr<v1::Repository> repo = Repository(request.repository_id());
  if (!repo.ok()) return repo.status();
  absl::StatusOr<MirrorSet::Lease> mirror = mirrors_->OpenForRead(repo->id(), repo->url());
  if (fetch_missing_ != nullptr &&
      (mirror.ok() ? !mirror->repo->HasCommit(sha) : absl::IsNotFound(mirror.status()))) {
    // Another replica may have fetched it for a pull request: fetch it here
    // (the lease is let go first; the fetch takes the mirror itself).
    mirror = absl::NotFoundError("released");
    absl::StatusOr<bool> fetched = fetch_missing_(*repo, sha);
    // A head ref gone from the remote: the commit is simply not here.
    if (!fetched.ok() && !absl::IsFailedPrecondition(fetched.status())) return fetched.status();
    mirror = mirrors_->OpenForRead(repo->id(), repo->url());
  }
  if (!mirror.ok()) {
    if (absl::IsNotFound(mirror.status())) {
      return absl::NotFoundError(absl::StrCat("commit ", sha, " is not in the mirror of \"", repo->id(), "\""));
    }
    return mirror.status();
  }
  git::Repository& git_repo = *mirror->repo;
  if (!git_repo.HasCommit(sha)) {
    return absl::NotFoundError(absl::StrCat("commit ", sha, " is not in the mirror of \"", repo->id(), "\""));
  }
  absl::StatusOr<std::vector<git::TreeEntry>> entries = git_repo.ListTree(sha, *path);
  if (!entries.ok()) return entries.status();
  if (static_cast<int64_t>(entries->size()) > limits_.max_entries) {
    return absl::ResourceExhaustedError(absl::StrCat("path \"", *path, "\" holds ", entries->size(),
                                                     " entries, over the server's limit of ", limits_.max_entries,
                                                     " per read (--read-content-max-entries); read a subdirectory"));
  }

  // Paths travel in proto3 strings, which must be UTF-8: a file name of other
  // bytes would make the response unparseable for the reader. Refused by
  // name (escaped), so the application that holds it fails alone.
  for (const git::TreeEntry& e : *entries) {
    if (!text::IsValidUtf8(e.path)) {
      return absl::InvalidArgumentError(absl::StrCat("file name \"", text::SanitizeUtf8(e.path),
                                                     "\" is not valid UTF-8; Ferry reads only UTF-8 file names"));
    }
  }

  // With metadata_only the data goes too when it is small
  // (data_up_to_total_bytes); a listing over that is no error.
  bool send_data = !request.metadata_only();
  if (send_data) {
    int64_t total = 0;
    for (const git::TreeEntry& e : *entries) {
      if (e.type != git::TreeEntry::Type::kFile) continue;
      if (e.size > max_file) {
        return absl::ResourceExhaustedError(
            absl::StrCat("file \"", e.path, "\" is ", e.size, " bytes, over ", file_limit));
      }
      total += e.size;
      if (total > max_total) {
        return absl::ResourceExhaustedError(absl::StrCat("reading \"", e.path, "\" brings the total to ", total,
                                                         " bytes, over ", total_limit));
      }
    }
  } else if (request.data_up_to_total_bytes() > 0) {
    const int64_t budget = std::min(request.data_up_to_total_bytes(), max_total);
    int64_t total = 0;
    send_data = true;
    for (const git::TreeEntry& e : *entries) {
      if (e.type != git::TreeEntry::Type::kFile) continue;
      total += e.size;
      if (e.size > max_file || total > budget) {
        send_data = false;
        break;
      }
    }
  }

  for (const git::TreeEntry& e : *entries) {
    v1::ReadContentResponse first;
    first.set_path(e.path);
    first.set_mode(e.mode);
    first.set_blob_sha(e.oid);
    first.set_size(e.size);
    switch (e.type) {
      case git::TreeEntry::Type::kSubmodule:
        first.set_type(v1::CONTENT_ENTRY_TYPE_SUBMODULE);
        first.set_last_chunk(true);
        if (!sink(first)) return absl::CancelledError("client went away");
        continue;
      case git::TreeEntry::Type::kSymlink: {
        first.set_type(v1::CONTENT_ENTRY_TYPE_SYMLINK);
        absl::StatusOr<std::string> target = git_repo.ReadBlob(e.oid);
        if (!target.ok()) return target.status();
        if (!text::IsValidUtf8(*target)) {
          return absl::InvalidArgumentError(absl::StrCat("symlink \"", e.path, "\" points to \"",
                                                         text::SanitizeUtf8(*target), "\", which is not valid UTF-8"));
        }
        first.set_symlink_target(*target);
        first.set_last_chunk(true);
        if (!sink(first)) return absl::CancelledError("client went away");
        continue;
      }
      case git::TreeEntry::Type::kFile:
        first.set_type(v1::CONTENT_ENTRY_TYPE_FILE);
        break;
    }
    if (!send_data) {
      first.set_last_chunk(true);
      if (!sink(first)) return absl::CancelledError("client went away");
      continue;
    }
    absl::StatusOr<std::string> data = git_repo.ReadBlob(e.oid);
    if (!data.ok()) return data.status();
    int64_t offset = 0;
    do {
      v1::ReadContentResponse chunk;
      if (offset == 0) chunk = first;
      else chunk.set_path(e.path);
      int64_t n = std::min<int64_t>(limits_.chunk_bytes, static_cast<int64_t>(data->size()) - offset);
      chunk.set_offset(offset);
      chunk.set_data(data->substr(static_cast<size_t>(offset), static_cast<size_t>(n)));
      offset += n;
      chunk.set_last_chunk(offset >= static_cast<int64_t>(data->size()));
      if (!sink(chunk)) return absl::CancelledError("client went away");
    } while (offset < static_cast<int64_t>(data->size()));
  }
  return absl::OkStatus();
}

}  // namespace ferry::repo_watcher
