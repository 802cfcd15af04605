#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/secrets/secret_sources.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/planner/preview/preview_commenter.h"

namespace ferry::planner {

struct GitHostCommenterOptions {
  absl::Duration timeout = absl::Seconds(15);
  size_t max_response_bytes = 1 << 20;
  std::string ca_file;  // extra CA bundle for the hosts; empty: the system's
  // Tests only: plain http:// to a loopback host (127.0.0.0/8, [::1],
  // localhost). Off: the token is never sent over plain HTTP.
  bool allow_http_to_loopback = false;
};

// PreviewCommenter over the Git hosts' REST APIs with libcurl, for the
// repository's GitHost (kind, api_url, project, token SecretRef read from
// the planner's secret sources):
//   GitHub  POST  {api}/repos/{owner/name}/issues/{n}/comments,
//           PATCH {api}/repos/{owner/name}/issues/comments/{id}
//           (Authorization: Bearer <token>)
//   GitLab  POST  {api}/projects/{url-encoded project}/merge_requests/{iid}/notes,
//           PUT   {api}/projects/{project}/merge_requests/{iid}/notes/{id}
//           (PRIVATE-TOKEN: <token>)
//   Gitea   POST  {api}/repos/{owner/name}/issues/{n}/comments,
//           PATCH {api}/repos/{owner/name}/issues/comments/{id}
//           (Authorization: token <token>)
// A comment that is gone (404 on edit) is created anew. The token is never
// logged nor in an error. https only (http to loopback in tests). Thread-safe.
class GitHostCommenter final : public PreviewCommenter {
 public:
  // The repository's Git host (the repo-watcher's GetRepository);
  // FAILED_PRECONDITION when it has none.
  using GitHostLookup = std::function<absl::StatusOr<v1::GitHost>(const std::string& repository_id)>;

  GitHostCommenter(GitHostLookup lookup, const secrets::SecretSources* secrets, GitHostCommenterOptions options = {});

  absl::StatusOr<std::string> Upsert(const std::string& repository_id, int64_t number, const std::string& comment_id,
                                     const std::string& body) override;

 private:
  struct Response {
    long code = 0;
    std::string body;
  };
  absl::StatusOr<Response> Send(const std::string& method, const std::string& url, const std::string& auth_header,
                                const std::string& json_body, bool loopback_http);

  GitHostLookup lookup_;
  const secrets::SecretSources* secrets_;
  const GitHostCommenterOptions options_;
};

}  // namespace ferry::planner
