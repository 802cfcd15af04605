// Fuzz target: the repo-watcher's webhook handler
// (services/repo-watcher/webhook_handler.h): request checks and signature
// verification, with a fixed secret.
//
// Input, HTTP-like:
//   line 1  provider (github, gitlab, gitea, generic, anything)
//   line 2  repository id (the one with a secret is "web")
//   then    header lines "name: value" up to an empty line; a value "@sign"
//           becomes the body's valid signature, so that accepted requests
//           are reached too
//   rest    the body
// Properties: the secret never appears in a response or an audit event
// (unless the request carried it);
// a request is audited at most once; a 202 triggers exactly one poll unless
// it says the event was ignored (then none). The body is parsed
// (webhook_payload.h) only after the signature checks out.

#include <cstdint>
#include <cstdlib>
#include <string>

#include <prometheus/registry.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "fuzz/fuzz_support.h"
#include "services/repo-watcher/repository_store.h"
#include "common/secrets/secret_sources.h"
#include "services/repo-watcher/webhook_handler.h"

namespace {

using namespace ferry;
using namespace ferry::repo_watcher;
using ferry::secrets::SecretSources;

constexpr char kSecretEnv[] = "FERRY_SECRET_FUZZ_WEBHOOK";  // the default --secret-env-prefix
constexpr char kSecret[] = "fuzz-webhook-secret-5f1e";

// The store the handler reads: one repository "web" with a webhook secret,
// one "nosecret" without. Records audit events.
class FuzzStore final : public RepositoryStore {
 public:
  int events = 0;
  std::string last_event;

  absl::StatusOr<v1::Repository> Get(const std::string& id) override {
    if (id != "web" && id != "nosecret") return absl::NotFoundError(id);
    v1::Repository repo;
    repo.set_id(id);
    repo.set_url("https://example.com/web.git");
    repo.add_branches("main");
    if (id == "web") repo.mutable_webhook_secret()->set_env(kSecretEnv);
    return repo;
  }
  absl::Status RecordEvent(const v1::Event& audit) override {
    ++events;
    last_event = audit.DebugString();
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Repository> Create(const v1::Repository&, const v1::Event&) override { return No(); }
  absl::StatusOr<std::vector<v1::Repository>> List(const std::string&, int) override { return No(); }
  absl::StatusOr<v1::Repository> Update(const v1::Repository&, const v1::Repository&, const v1::Event&) override {
    return No();
  }
  absl::Status Delete(const std::string&, const v1::Event&) override { return No(); }
  absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string&) override { return No(); }
  absl::Status RecordCheck(const CheckRecord&, const std::optional<v1::Event>&) override { return No(); }
  absl::Status RecordChecks(const std::vector<CheckRecord>&) override { return No(); }
  absl::StatusOr<v1::Revision> RecordRevision(const v1::Revision&, const std::string&, const v1::Event&) override {
    return No();
  }
  absl::Status DropRefState(const std::string&, const std::string&) override { return No(); }
  absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t, const std::vector<std::string>&, bool,
                                                           int) override {
    return No();
  }
  absl::StatusOr<std::vector<v1::Revision>> ListRevisions(const RevisionQuery&) override { return No(); }
  absl::StatusOr<bool> WithRepositoryLock(const std::string&, const std::function<void()>&) override { return No(); }

 private:
  static absl::Status No() { return absl::UnimplementedError("not used by the webhook handler"); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool initialised = [] {
    setenv(kSecretEnv, kSecret, 1);
    logging::Init("fuzz", "error");  // rejections log at warn: keep the fuzzer quiet
    return true;
  }();
  (void)initialised;
  static prometheus::Registry* registry = new prometheus::Registry();
  static RepoWatcherMetrics* metrics = new RepoWatcherMetrics(*registry);

  std::string text(reinterpret_cast<const char*>(data), size);
  WebhookRequest request;
  request.remote_address = "192.0.2.1";
  size_t pos = 0;
  auto next_line = [&](std::string* line) {
    if (pos > text.size()) return false;
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    *line = text.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  next_line(&request.provider);
  next_line(&request.repository_id);
  std::string line;
  std::vector<std::string> to_sign;
  while (next_line(&line) && !line.empty()) {
    size_t colon = line.find(':');
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value = colon == std::string::npos ? "" : std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    request.headers[name] = value;
    if (value == "@sign") to_sign.push_back(name);
  }
  request.body = pos < text.size() ? text.substr(pos) : "";
  for (const std::string& name : to_sign) {
    request.headers[name] = name == "x-gitlab-token" ? kSecret
                            : name == "x-gitea-signature"
                                ? HmacSha256Hex(kSecret, request.body)
                                : absl::StrCat("sha256=", HmacSha256Hex(kSecret, request.body));
  }

  FuzzStore store;
  int triggered = 0;
  static const SecretSources* secrets = new SecretSources(*SecretSources::Create({}));
  WebhookHandler handler(&store, metrics, secrets, [&](const std::string&) { ++triggered; });
  WebhookResponse response = handler.Handle(request);

  // (Unless the caller sent it: rejections echo the provider they were given.)
  if (!absl::StrContains(text, kSecret)) {
    if (absl::StrContains(response.body, kSecret)) ferry::fuzz::Violated("secret in the response", response.body);
    if (absl::StrContains(store.last_event, kSecret)) ferry::fuzz::Violated("secret in an audit event", store.last_event);
  }
  // 202 is a triggered poll, or an event ignored (an untracked ref, an
  // event or action Ferry does not act on) without one.
  const bool ignored = absl::StartsWith(response.body, "ignored: ");
  if (response.status == 202 && !ignored && triggered != 1) {
    ferry::fuzz::Violated("accepted without exactly one poll", response.body);
  }
  if (ignored && (response.status != 202 || triggered != 0)) ferry::fuzz::Violated("ignored but polled", response.body);
  if (response.status != 202 && triggered != 0) ferry::fuzz::Violated("poll triggered by a refused request", "");
  // At most once: rejections may be audited with a rate limit.
  if (store.events > 1) ferry::fuzz::Violated("request audited more than once", absl::StrCat(response.status));
  if (response.status < 400 && store.events != 0) ferry::fuzz::Violated("accepted request audited as rejected", "");
  if (response.status == 202 && request.repository_id != "web") ferry::fuzz::Violated("accepted for a wrong repository", "");
  return 0;
}
