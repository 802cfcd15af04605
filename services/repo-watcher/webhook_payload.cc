#include "services/repo-watcher/webhook_payload.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/text/utf8.h"
#include "services/repo-watcher/review_log.h"

namespace ferry::repo_watcher {
namespace {

using nlohmann::json;

constexpr size_t kMaxRefBytes = 1024;
constexpr size_t kMaxTitleBytes = 512;
constexpr size_t kMaxAuthorBytes = 255;
constexpr int kMaxRefsPerPush = 1000;

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

std::string Header(const std::map<std::string, std::string>& headers, const std::string& name) {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

// The member at a dotted path ("pull_request.head.sha"), or null when a
// step is missing. INVALID_ARGUMENT when a step that must be an object is not.
absl::StatusOr<const json*> At(const json& root, const std::string& path) {
  const json* cur = &root;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) {
      return Bad(path.substr(0, start == 0 ? 0 : start - 1), "must be an object");
    }
    auto it = cur->find(key);
    if (it == cur->end() || it->is_null()) return static_cast<const json*>(nullptr);
    cur = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

// A string member; `required` makes a missing one an error.
absl::StatusOr<std::string> String(const json& root, const std::string& path, bool required, size_t max_bytes) {
  absl::StatusOr<const json*> v = At(root, path);
  if (!v.ok()) return v.status();
  if (*v == nullptr) {
    if (required) return Bad(path, "is required");
    return std::string();
  }
  if (!(*v)->is_string()) return Bad(path, absl::StrCat("must be a string, not ", (*v)->type_name()));
  std::string s = (*v)->get<std::string>();
  if (s.size() > max_bytes) return Bad(path, absl::StrCat("is ", s.size(), " bytes, more than ", max_bytes));
  return s;
}

// Text for display: cut to `max_bytes` (on a UTF-8 boundary), never refused.
std::string Bounded(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return text::SanitizeUtf8(s);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return text::SanitizeUtf8(s.substr(0, cut));
}

absl::StatusOr<std::string> Sha(const json& root, const std::string& path, bool required = true) {
  absl::StatusOr<std::string> s = String(root, path, required, 64);
  if (!s.ok()) return s.status();
  if (s->empty() && !required) return s;
  if (!IsFullSha(*s)) return Bad(path, "must be a 40-character lowercase hex commit id");
  return s;
}

absl::Status CheckRef(const std::string& field, const std::string& ref) {
  if (!absl::StartsWith(ref, "refs/")) return Bad(field, "must be a full ref (refs/...)");
  for (unsigned char c : ref) {
    if (c < 0x21 || c == 0x7f) return Bad(field, "must not contain spaces or control characters");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Ref(const json& root, const std::string& path) {
  absl::StatusOr<std::string> s = String(root, path, true, kMaxRefBytes);
  if (!s.ok()) return s.status();
  if (absl::Status c = CheckRef(path, *s); !c.ok()) return c;
  return s;
}

// A branch name (GitLab target_branch, GitHub base.ref) as refs/heads/<name>.
absl::StatusOr<std::string> Branch(const json& root, const std::string& path) {
  absl::StatusOr<std::string> s = String(root, path, true, kMaxRefBytes);
  if (!s.ok()) return s.status();
  if (s->empty()) return Bad(path, "must not be empty");
  std::string ref = absl::StartsWith(*s, "refs/") ? *s : absl::StrCat("refs/heads/", *s);
  if (absl::Status c = CheckRef(path, ref); !c.ok()) return c;
  return ref;
}

absl::StatusOr<int64_t> Number(const json& root, const std::string& path) {
  absl::StatusOr<const json*> v = At(root, path);
  if (!v.ok()) return v.status();
  if (*v == nullptr) return Bad(path, "is required");
  if (!(*v)->is_number_integer()) return Bad(path, "must be an integer");
  int64_t n = (*v)->get<int64_t>();
  if (n <= 0 || n > (int64_t{1} << 53)) return Bad(path, "must be a positive integer");
  return n;
}

bool Bool(const json& root, const std::string& path) {
  absl::StatusOr<const json*> v = At(root, path);
  return v.ok() && *v != nullptr && (*v)->is_boolean() && (*v)->get<bool>();
}

// A URL for display: kept when http(s) and bounded, else dropped.
std::string WebUrl(const json& root, const std::string& path) {
  absl::StatusOr<std::string> s = String(root, path, false, kMaxCheckUrlBytes);
  if (!s.ok()) return "";
  v1::ReportCheckRequest probe;
  probe.set_repository_id("x");
  probe.set_sha(std::string(40, '0'));
  probe.set_name("x");
  probe.set_state(v1::CHECK_STATE_PENDING);
  probe.set_url(*s);
  return ValidateCheckReport(probe).ok() ? *s : "";
}

WebhookEvent Ignored(const std::string& name, const std::string& why) {
  WebhookEvent e;
  e.type = WebhookEvent::Type::kIgnored;
  e.name = name;
  e.ignored = why;
  return e;
}

absl::StatusOr<WebhookEvent> Push(const json& body, const std::string& name) {
  WebhookEvent e;
  e.type = WebhookEvent::Type::kPush;
  e.name = name;
  absl::StatusOr<std::string> ref = Ref(body, "ref");
  if (!ref.ok()) return ref.status();
  e.refs.push_back(*ref);
  return e;
}

// The check fields common to every provider; `name` and `url` bounded.
absl::StatusOr<WebhookEvent> Check(const std::string& event, const std::string& sha, const std::string& name,
                                   v1::CheckState state, const std::string& url, const std::string& description,
                                   const std::string& name_field) {
  WebhookEvent e;
  e.type = WebhookEvent::Type::kCheck;
  e.name = event;
  if (name.empty()) return Bad(name_field, "must not be empty");
  if (name.size() > kMaxCheckNameBytes) {
    return Bad(name_field, absl::StrCat("is ", name.size(), " bytes, more than ", kMaxCheckNameBytes));
  }
  e.check.set_sha(sha);
  e.check.set_name(name);
  e.check.set_state(state);
  e.check.set_url(url);
  e.check.set_description(Bounded(description, kMaxCheckDescriptionBytes));
  return e;
}

// GitHub and Gitea commit statuses: pending, success, failure, error (Gitea
// also warning, counted as passed as its merge checks do).
absl::StatusOr<v1::CheckState> StatusState(const std::string& state, const std::string& field) {
  if (state == "pending") return v1::CHECK_STATE_PENDING;
  if (state == "success" || state == "warning" || state == "skipped") return v1::CHECK_STATE_SUCCESS;
  if (state == "failure" || state == "error") return v1::CHECK_STATE_FAILURE;
  return Bad(field, absl::StrCat("unknown state \"", Bounded(state, 64), "\""));
}

absl::StatusOr<WebhookEvent> CommitStatus(const json& body, const std::string& event) {
  absl::StatusOr<std::string> sha = Sha(body, "sha");
  if (!sha.ok()) return sha.status();
  absl::StatusOr<std::string> state = String(body, "state", true, 64);
  if (!state.ok()) return state.status();
  absl::StatusOr<v1::CheckState> s = StatusState(*state, "state");
  if (!s.ok()) return s.status();
  absl::StatusOr<std::string> context = String(body, "context", true, kMaxCheckNameBytes);
  if (!context.ok()) return context.status();
  absl::StatusOr<std::string> description = String(body, "description", false, 1 << 16);
  return Check(event, *sha, *context, *s, WebUrl(body, "target_url"), description.ok() ? *description : "",
               "context");
}

// The pull-request part shared by GitHub and Gitea (same payload shape).
absl::StatusOr<WebhookEvent> HubPullRequest(const json& body, const std::string& event,
                                            const std::map<std::string, PullRequestChange::Kind>& actions) {
  absl::StatusOr<std::string> action = String(body, "action", true, 64);
  if (!action.ok()) return action.status();
  auto kind = actions.find(*action);
  if (kind == actions.end()) return Ignored(event, absl::StrCat("action \"", Bounded(*action, 64), "\" ignored"));
  WebhookEvent e;
  e.type = WebhookEvent::Type::kPullRequest;
  e.name = event;
  PullRequestChange& pr = e.pull_request;
  pr.kind = kind->second;
  absl::StatusOr<int64_t> number = Number(body, "number");
  if (!number.ok()) return number.status();
  pr.number = *number;
  absl::StatusOr<std::string> head = Sha(body, "pull_request.head.sha");
  if (!head.ok()) return head.status();
  pr.head_sha = *head;
  absl::StatusOr<std::string> base = Branch(body, "pull_request.base.ref");
  if (!base.ok()) return base.status();
  pr.base_ref = *base;
  absl::StatusOr<std::string> title = String(body, "pull_request.title", false, 1 << 16);
  pr.title = Bounded(title.ok() ? *title : "", kMaxTitleBytes);
  pr.url = WebUrl(body, "pull_request.html_url");
  absl::StatusOr<std::string> author = String(body, "pull_request.user.login", false, 1 << 12);
  pr.author = Bounded(author.ok() ? *author : "", kMaxAuthorBytes);
  pr.merged = Bool(body, "pull_request.merged");
  pr.head_ref = absl::StrCat("refs/pull/", pr.number, "/head");
  return e;
}

absl::StatusOr<WebhookEvent> GitHub(const std::string& event, const json& body) {
  if (event == "ping") {
    WebhookEvent e;
    e.type = WebhookEvent::Type::kPing;
    e.name = event;
    return e;
  }
  if (event == "push") return Push(body, event);
  if (event == "pull_request") {
    return HubPullRequest(body, event,
                          {{"opened", PullRequestChange::Kind::kOpened},
                           {"reopened", PullRequestChange::Kind::kOpened},
                           {"synchronize", PullRequestChange::Kind::kUpdated},
                           {"closed", PullRequestChange::Kind::kClosed}});
  }
  if (event == "status") return CommitStatus(body, event);
  if (event == "check_run") {
    absl::StatusOr<std::string> sha = Sha(body, "check_run.head_sha");
    if (!sha.ok()) return sha.status();
    absl::StatusOr<std::string> name = String(body, "check_run.name", true, kMaxCheckNameBytes);
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> status = String(body, "check_run.status", true, 64);
    if (!status.ok()) return status.status();
    v1::CheckState state = v1::CHECK_STATE_PENDING;
    if (*status == "completed") {
      absl::StatusOr<std::string> conclusion = String(body, "check_run.conclusion", true, 64);
      if (!conclusion.ok()) return conclusion.status();
      if (*conclusion == "success" || *conclusion == "neutral" || *conclusion == "skipped") {
        state = v1::CHECK_STATE_SUCCESS;
      } else if (*conclusion == "failure" || *conclusion == "cancelled" || *conclusion == "timed_out" ||
                 *conclusion == "action_required" || *conclusion == "stale" || *conclusion == "startup_failure") {
        state = v1::CHECK_STATE_FAILURE;
      } else {
        return Bad("check_run.conclusion", absl::StrCat("unknown conclusion \"", Bounded(*conclusion, 64), "\""));
      }
    } else if (*status != "queued" && *status != "in_progress" && *status != "waiting" && *status != "requested" &&
               *status != "pending") {
      return Bad("check_run.status", absl::StrCat("unknown status \"", Bounded(*status, 64), "\""));
    }
    std::string url = WebUrl(body, "check_run.details_url");
    if (url.empty()) url = WebUrl(body, "check_run.html_url");
    absl::StatusOr<std::string> title = String(body, "check_run.output.title", false, 1 << 16);
    return Check(event, *sha, *name, state, url, title.ok() ? *title : "", "check_run.name");
  }
  return Ignored(event, absl::StrCat("event \"", Bounded(event, 64), "\" ignored"));
}

absl::StatusOr<WebhookEvent> Gitea(const std::string& event, const json& body) {
  if (event == "push") return Push(body, event);
  if (event == "pull_request" || event == "pull_request_sync") {
    return HubPullRequest(body, event,
                          {{"opened", PullRequestChange::Kind::kOpened},
                           {"reopened", PullRequestChange::Kind::kOpened},
                           {"synchronized", PullRequestChange::Kind::kUpdated},
                           {"closed", PullRequestChange::Kind::kClosed}});
  }
  if (event == "status") return CommitStatus(body, event);
  return Ignored(event, absl::StrCat("event \"", Bounded(event, 64), "\" ignored"));
}

// GitLab pipeline and job statuses.
v1::CheckState GitLabState(const std::string& status, bool allow_failure) {
  if (status == "success" || status == "skipped") return v1::CHECK_STATE_SUCCESS;
  if (status == "failed") return allow_failure ? v1::CHECK_STATE_SUCCESS : v1::CHECK_STATE_FAILURE;
  if (status == "canceled" || status == "canceling") return v1::CHECK_STATE_FAILURE;
  return v1::CHECK_STATE_PENDING;  // created, waiting_for_resource, preparing, pending, running, manual, scheduled
}

absl::StatusOr<WebhookEvent> GitLab(const std::string& event, const json& body) {
  if (event == "Push Hook" || event == "Tag Push Hook") return Push(body, event);
  if (event == "Merge Request Hook") {
    absl::StatusOr<std::string> action = String(body, "object_attributes.action", false, 64);
    if (!action.ok()) return action.status();
    PullRequestChange::Kind kind;
    if (*action == "open" || *action == "reopen") {
      kind = PullRequestChange::Kind::kOpened;
    } else if (*action == "update") {
      kind = PullRequestChange::Kind::kUpdated;
    } else if (*action == "close" || *action == "merge") {
      kind = PullRequestChange::Kind::kClosed;
    } else {
      return Ignored(event, absl::StrCat("action \"", Bounded(*action, 64), "\" ignored"));
    }
    WebhookEvent e;
    e.type = WebhookEvent::Type::kPullRequest;
    e.name = event;
    PullRequestChange& pr = e.pull_request;
    pr.kind = kind;
    pr.merged = *action == "merge";
    absl::StatusOr<int64_t> iid = Number(body, "object_attributes.iid");
    if (!iid.ok()) return iid.status();
    pr.number = *iid;
    absl::StatusOr<std::string> head = Sha(body, "object_attributes.last_commit.id");
    if (!head.ok()) return head.status();
    pr.head_sha = *head;
    absl::StatusOr<std::string> base = Branch(body, "object_attributes.target_branch");
    if (!base.ok()) return base.status();
    pr.base_ref = *base;
    absl::StatusOr<std::string> title = String(body, "object_attributes.title", false, 1 << 16);
    pr.title = Bounded(title.ok() ? *title : "", kMaxTitleBytes);
    pr.url = WebUrl(body, "object_attributes.url");
    absl::StatusOr<std::string> author = String(body, "user.username", false, 1 << 12);
    pr.author = Bounded(author.ok() ? *author : "", kMaxAuthorBytes);
    pr.head_ref = absl::StrCat("refs/merge-requests/", pr.number, "/head");
    return e;
  }
  if (event == "Pipeline Hook") {
    absl::StatusOr<std::string> sha = Sha(body, "object_attributes.sha");
    if (!sha.ok()) return sha.status();
    absl::StatusOr<std::string> status = String(body, "object_attributes.status", true, 64);
    if (!status.ok()) return status.status();
    absl::StatusOr<std::string> name = String(body, "object_attributes.name", false, kMaxCheckNameBytes);
    if (!name.ok()) return name.status();
    std::string url;
    absl::StatusOr<int64_t> id = Number(body, "object_attributes.id");
    std::string project = WebUrl(body, "project.web_url");
    if (id.ok() && !project.empty()) url = absl::StrCat(project, "/-/pipelines/", *id);
    if (url.size() > kMaxCheckUrlBytes) url.clear();
    return Check(event, *sha, name->empty() ? "pipeline" : *name, GitLabState(*status, false), url,
                 absl::StrCat("pipeline ", *status), "object_attributes.name");
  }
  if (event == "Job Hook") {
    absl::StatusOr<std::string> sha = Sha(body, "sha");
    if (!sha.ok()) return sha.status();
    absl::StatusOr<std::string> name = String(body, "build_name", true, kMaxCheckNameBytes);
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> status = String(body, "build_status", true, 64);
    if (!status.ok()) return status.status();
    std::string url;
    absl::StatusOr<int64_t> id = Number(body, "build_id");
    std::string project = WebUrl(body, "repository.homepage");
    if (id.ok() && !project.empty()) url = absl::StrCat(project, "/-/jobs/", *id);
    if (url.size() > kMaxCheckUrlBytes) url.clear();
    return Check(event, *sha, *name, GitLabState(*status, Bool(body, "build_allow_failure")), url,
                 absl::StrCat("job ", *status), "build_name");
  }
  return Ignored(event, absl::StrCat("event \"", Bounded(event, 64), "\" ignored"));
}

absl::StatusOr<WebhookEvent> Generic(const json& body) {
  WebhookEvent e;
  e.type = WebhookEvent::Type::kPush;
  e.name = "push";
  absl::StatusOr<const json*> refs = At(body, "refs");
  if (!refs.ok()) return refs.status();
  if (*refs != nullptr) {
    if (!(*refs)->is_array()) return Bad("refs", "must be a list of refs");
    if (static_cast<int>((*refs)->size()) > kMaxRefsPerPush) {
      return Bad("refs", absl::StrCat("names more than ", kMaxRefsPerPush, " refs"));
    }
    for (size_t i = 0; i < (*refs)->size(); ++i) {
      const json& r = (**refs)[i];
      const std::string field = absl::StrCat("refs[", i, "]");
      if (!r.is_string()) return Bad(field, "must be a string");
      std::string ref = r.get<std::string>();
      if (ref.size() > kMaxRefBytes) return Bad(field, "is too long");
      if (absl::Status c = CheckRef(field, ref); !c.ok()) return c;
      e.refs.push_back(ref);
    }
    return e;
  }
  absl::StatusOr<const json*> ref = At(body, "ref");
  if (!ref.ok()) return ref.status();
  if (*ref != nullptr) return Push(body, "push");
  return e;  // no refs named: check every tracked ref
}

}  // namespace

absl::StatusOr<WebhookEvent> ParseWebhookPayload(const std::string& provider,
                                                 const std::map<std::string, std::string>& headers,
                                                 const std::string& body) {
  std::string event;
  if (provider == "github") {
    event = Header(headers, "x-github-event");
  } else if (provider == "gitlab") {
    event = Header(headers, "x-gitlab-event");
  } else if (provider == "gitea") {
    event = Header(headers, "x-gitea-event-type");
    if (event.empty()) event = Header(headers, "x-gitea-event");
  }
  if (provider == "generic" && absl::StripAsciiWhitespace(body).empty()) {
    WebhookEvent e;
    e.type = WebhookEvent::Type::kPush;
    e.name = "push";
    return e;
  }
  absl::StatusOr<json> parsed = ParseJson(body, JsonLimits{.max_depth = 64, .max_bytes = body.size()});
  if (!parsed.ok()) {
    return Bad("body", absl::StrCat("must be a JSON object (set the webhook's content type to application/json): ",
                                    Bounded(std::string(parsed.status().message()), 200)));
  }
  if (!parsed->is_object()) return Bad("body", "must be a JSON object");
  // nlohmann's get<> throws on a type mismatch; every access above checks
  // the type first, and this guard keeps a missed one from ending the process.
  try {
    if (provider == "generic") return Generic(*parsed);
    if (event.empty()) return Push(*parsed, "push");  // no event header: a push, as before payloads were read
    if (provider == "github") return GitHub(event, *parsed);
    if (provider == "gitlab") return GitLab(event, *parsed);
    return Gitea(event, *parsed);
  } catch (const std::exception& e) {
    return Bad("body", absl::StrCat("unexpected value: ", Bounded(e.what(), 200)));
  }
}

}  // namespace ferry::repo_watcher
