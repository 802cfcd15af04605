#include "services/planner/preview/git_host_commenter.h"

#include <curl/curl.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/http/curl_support.h"
#include "common/json/json.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

std::string Part(CURLU* u, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(u, part, &raw, 0) != CURLUE_OK || raw == nullptr) return "";
  std::unique_ptr<char, http::CurlFree> owned(raw);
  return owned.get();
}

// Percent-encodes everything but unreserved characters (GitLab's
// project path: "group/sub/project" -> "group%2Fsub%2Fproject").
std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::AsciiStrToUpper(absl::StrCat(absl::Hex(c, absl::kZeroPad2))));
    }
  }
  return out;
}

bool IsOwnerName(const std::string& project) {
  size_t slash = project.find('/');
  return slash != std::string::npos && slash > 0 && slash + 1 < project.size() &&
         project.find('/', slash + 1) == std::string::npos && !absl::StrContains(project, "..");
}

}  // namespace

GitHostCommenter::GitHostCommenter(GitHostLookup lookup, const secrets::SecretSources* secrets,
                                   GitHostCommenterOptions options)
    : lookup_(std::move(lookup)), secrets_(secrets), options_(std::move(options)) {}

absl::StatusOr<GitHostCommenter::Response> GitHostCommenter::Send(const std::string& method, const std::string& url,
                                                                  const std::string& auth_header,
                                                                  const std::string& json_body, bool loopback_http) {
  http::InitCurlOnce();
  std::unique_ptr<CURL, http::CurlRelease> curl(curl_easy_init());
  if (!curl) return absl::ResourceExhaustedError("git host: cannot start libcurl");
  CURL* c = curl.get();
  std::unique_ptr<curl_slist, http::SlistRelease> headers;
  auto add_header = [&headers](const std::string& h) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (next != nullptr) {
      (void)headers.release();
      headers.reset(next);
    }
    return next != nullptr;
  };
  if (!add_header("Accept: application/json") || !add_header("Content-Type: application/json") ||
      !add_header(auth_header))
    return absl::ResourceExhaustedError("git host: out of memory");
  http::BoundedBody answer;
  answer.cap = options_.max_response_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options_.timeout));
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, loopback_http ? "http" : "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &http::AppendBounded);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry-planner");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (loopback_http) curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
  const CURLcode rc = curl_easy_perform(c);
  if (answer.too_big) return absl::ResourceExhaustedError(absl::StrCat("git host: the answer to ", method, " is too large"));
  if (rc != CURLE_OK)
    return absl::UnavailableError(absl::StrCat("git host: ", method, " ", url, ": ", error[0] ? error : curl_easy_strerror(rc)));
  Response out;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.code);
  out.body = std::move(answer.data);
  return out;
}

absl::StatusOr<std::string> GitHostCommenter::Upsert(const std::string& repository_id, int64_t number,
                                                     const std::string& comment_id, const std::string& body) {
  ASSIGN_OR_RETURN(v1::GitHost host, lookup_(repository_id));
  if (host.kind() == v1::GIT_HOST_KIND_UNSPECIFIED)
    return absl::FailedPreconditionError(absl::StrCat("repository \"", repository_id, "\" has no git_host"));
  // The API base: https (http only to loopback, in tests), no query.
  std::unique_ptr<CURLU, http::CurlUrlRelease> u(curl_url());
  if (!u) return absl::ResourceExhaustedError("out of memory");
  if (curl_url_set(u.get(), CURLUPART_URL, host.api_url().c_str(), 0) != CURLUE_OK)
    return absl::InvalidArgumentError(absl::StrCat("git_host.api_url: is not a URL: \"", host.api_url(), "\""));
  const std::string scheme = absl::AsciiStrToLower(Part(u.get(), CURLUPART_SCHEME));
  const bool loopback_http =
      scheme == "http" && options_.allow_http_to_loopback && http::IsLoopbackHost(Part(u.get(), CURLUPART_HOST));
  if (scheme != "https" && !loopback_http)
    return absl::InvalidArgumentError("git_host.api_url: must be https:// (the token is never sent over plain HTTP)");
  if (!Part(u.get(), CURLUPART_QUERY).empty() || !Part(u.get(), CURLUPART_USER).empty())
    return absl::InvalidArgumentError("git_host.api_url: must have no user or query");
  const std::string api(absl::StripSuffix(host.api_url(), "/"));
  if (host.project().empty()) return absl::InvalidArgumentError("git_host.project: is required");
  if (!host.has_token()) return absl::FailedPreconditionError("git_host.token: is not set; no comment is posted");
  ASSIGN_OR_RETURN(std::string token, secrets_->Read(host.token(), "git_host.token"));

  std::string create_url, edit_url, auth, edit_method;
  switch (host.kind()) {
    case v1::GIT_HOST_KIND_GITHUB:
    case v1::GIT_HOST_KIND_GITEA: {
      if (!IsOwnerName(host.project()))
        return absl::InvalidArgumentError(absl::StrCat("git_host.project: must be \"owner/name\", not \"", host.project(), "\""));
      const std::string repo = absl::StrCat(api, "/repos/", host.project());
      create_url = absl::StrCat(repo, "/issues/", number, "/comments");
      edit_url = absl::StrCat(repo, "/issues/comments/", comment_id);
      auth = host.kind() == v1::GIT_HOST_KIND_GITHUB ? "Authorization: Bearer " + token : "Authorization: token " + token;
      edit_method = "PATCH";
      break;
    }
    case v1::GIT_HOST_KIND_GITLAB: {
      const std::string mr = absl::StrCat(api, "/projects/", Escape(host.project()), "/merge_requests/", number, "/notes");
      create_url = mr;
      edit_url = absl::StrCat(mr, "/", comment_id);
      auth = "PRIVATE-TOKEN: " + token;
      edit_method = "PUT";
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("git_host.kind: unknown kind ", static_cast<int>(host.kind())));
  }
  nlohmann::json payload = {{"body", body}};
  ASSIGN_OR_RETURN(std::string json_body, DumpJson(payload));
  auto check = [&](const Response& r, const std::string& what) -> absl::StatusOr<std::string> {
    if (r.code == 401 || r.code == 403)
      return absl::PermissionDeniedError(absl::StrCat("git host refused to ", what, " (HTTP ", r.code, "): check git_host.token"));
    if (r.code >= 500 || r.code == 429) return absl::UnavailableError(absl::StrCat("git host: ", what, ": HTTP ", r.code));
    if (r.code < 200 || r.code >= 300) return absl::FailedPreconditionError(absl::StrCat("git host: ", what, ": HTTP ", r.code));
    absl::StatusOr<nlohmann::json> j = ParseJson(r.body);
    if (!j.ok() || !j->is_object() || !j->contains("id") || !((*j)["id"].is_number_integer() || (*j)["id"].is_string()))
      return absl::UnavailableError(absl::StrCat("git host: ", what, ": the answer has no comment id"));
    const nlohmann::json& id = (*j)["id"];
    return id.is_string() ? id.get<std::string>() : std::to_string(id.get<int64_t>());
  };
  if (!comment_id.empty()) {
    ASSIGN_OR_RETURN(Response edited, Send(edit_method, edit_url, auth, json_body, loopback_http));
    if (edited.code != 404) return check(edited, "edit the preview comment");
    // Deleted on the host: post a new one.
  }
  ASSIGN_OR_RETURN(Response created, Send("POST", create_url, auth, json_body, loopback_http));
  return check(created, "post the preview comment");
}

}  // namespace ferry::planner
