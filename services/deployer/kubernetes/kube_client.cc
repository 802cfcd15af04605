#include "services/deployer/kubernetes/kube_client.h"

#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/http/curl_support.h"
#include "common/json/json.h"

namespace ferry::deployer::kubernetes {
namespace {

using http::InitCurlOnce;

constexpr size_t kMaxResponseBytes = size_t{64} << 20;  // A List of many objects stays far below.
constexpr size_t kMaxPooledHandles = 8;

size_t Collect(char* data, size_t size, size_t n, void* out) {
  std::string* body = static_cast<std::string*>(out);
  if (body->size() + size * n > kMaxResponseBytes) return 0;  // Aborts the transfer.
  body->append(data, size * n);
  return size * n;
}

// The blob options copy the bytes (CURL_BLOB_COPY), so the struct may go.
void SetBlob(CURL* curl, CURLoption option, const std::string& pem) {
  curl_blob blob;
  blob.data = const_cast<char*>(pem.data());
  blob.len = pem.size();
  blob.flags = CURL_BLOB_COPY;
  curl_easy_setopt(curl, option, &blob);
}

std::string ReadToken(const KubeCredentials& c) {
  if (c.token_file.empty()) return c.token;
  std::ifstream in(c.token_file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(KubeCredentials credentials, const Clock* clock) {
  InitCurlOnce();
  if (credentials.server.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("server \"", credentials.server, "\" is not https://"));
  }
  std::unique_ptr<KubeClient> client(new KubeClient(std::move(credentials)));
  const KubeCredentials& c = client->credentials_;
  if (c.exec) client->exec_ = std::make_unique<ExecCredentialSource>(*c.exec, c.server, c.ca_pem, clock);
  return client;
}

KubeClient::~KubeClient() {
  ferry::MutexLock l(&mu_);
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* KubeClient::TakeHandle() {
  {
    ferry::MutexLock l(&mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return nullptr;
  return curl;
}

void KubeClient::ReturnHandle(void* handle) {
  ferry::MutexLock l(&mu_);
  if (idle_.size() < kMaxPooledHandles) {
    idle_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

absl::StatusOr<struct curl_slist*> KubeClient::Setup(void* handle, const std::string& method, const std::string& path,
                                                     absl::Duration timeout,
                                                     std::shared_ptr<const ExecCredential>* used) {
  CURL* curl = static_cast<CURL*>(handle);
  const KubeCredentials& c = credentials_;
  std::string token = ReadToken(c);
  if (exec_ != nullptr) {
    absl::StatusOr<std::shared_ptr<const ExecCredential>> cred = exec_->Get();
    if (!cred.ok()) return cred.status();
    *used = *cred;
    token = (*cred)->token;
  }
  std::string url = c.server + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());  // curl copies the string.
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  if (!c.ca_pem.empty()) SetBlob(curl, CURLOPT_CAINFO_BLOB, c.ca_pem);
  if (!c.client_cert_pem.empty()) {
    SetBlob(curl, CURLOPT_SSLCERT_BLOB, c.client_cert_pem);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    SetBlob(curl, CURLOPT_SSLKEY_BLOB, c.client_key_pem);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (*used != nullptr && !(*used)->client_cert_pem.empty()) {
    SetBlob(curl, CURLOPT_SSLCERT_BLOB, (*used)->client_cert_pem);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    SetBlob(curl, CURLOPT_SSLKEY_BLOB, (*used)->client_key_pem);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  }
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  return headers;
}

absl::StatusOr<KubeResponse> KubeClient::Request(const std::string& method, const std::string& path,
                                                 const std::string& body, const std::string& content_type,
                                                 absl::Duration timeout) {
  if (method == "GET") get_count_.fetch_add(1);
  std::shared_ptr<const ExecCredential> used;
  absl::StatusOr<KubeResponse> r = RequestOnce(method, path, body, content_type, timeout, &used);
  if (r.ok() && r->code == 401 && used != nullptr) {
    // The plugin's credential was refused (revoked, rotated, expired early):
    // run it again and repeat the request once.
    exec_->Invalidate(used);
    used = nullptr;
    r = RequestOnce(method, path, body, content_type, timeout, &used);
    if (r.ok() && r->code == 401 && used != nullptr) exec_->Invalidate(used);
  }
  return r;
}

absl::StatusOr<KubeResponse> KubeClient::RequestOnce(const std::string& method, const std::string& path,
                                                     const std::string& body, const std::string& content_type,
                                                     absl::Duration timeout,
                                                     std::shared_ptr<const ExecCredential>* used) {
  CURL* curl = static_cast<CURL*>(TakeHandle());
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  curl_easy_reset(curl);  // Keeps the connection cache; clears the options.
  KubeResponse response;
  absl::StatusOr<struct curl_slist*> setup = Setup(curl, method, path, timeout, used);
  if (!setup.ok()) {
    ReturnHandle(curl);
    return setup.status();
  }
  struct curl_slist* headers = *setup;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  std::string type_header = "Content-Type: " + content_type;
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    headers = curl_slist_append(headers, type_header.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.code);
  curl_slist_free_all(headers);
  // The token is not left in the handle's options for the next request.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(curl);
    return absl::UnavailableError(absl::StrCat(method, " ", credentials_.server, path.substr(0, path.find('?')), ": ",
                                               curl_easy_strerror(rc)));
  }
  ReturnHandle(curl);
  return response;
}

namespace {

struct StreamState {
  const std::function<bool(std::string_view)>* on_line;
  const std::atomic<bool>* stop;
  const std::function<void()>* on_open;
  CURL* curl;
  std::string pending;
  bool ended = false;  // on_line asked to end.
};

// The blank line ending a response's headers: a 200 opens the stream.
size_t StreamHeader(char* data, size_t size, size_t n, void* out) {
  StreamState* st = static_cast<StreamState*>(out);
  std::string_view line(data, size * n);
  if ((line == "\r\n" || line == "\n") && *st->on_open) {
    long code = 0;
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) (*st->on_open)();
  }
  return size * n;
}

size_t StreamWrite(char* data, size_t size, size_t n, void* out) {
  StreamState* st = static_cast<StreamState*>(out);
  st->pending.append(data, size * n);
  size_t start = 0;
  while (true) {
    size_t nl = st->pending.find('\n', start);
    if (nl == std::string::npos) break;
    if (!(*st->on_line)(std::string_view(st->pending).substr(start, nl - start))) {
      st->ended = true;
      return 0;  // Aborts the transfer.
    }
    start = nl + 1;
  }
  st->pending.erase(0, start);
  if (st->pending.size() > kMaxResponseBytes) return 0;
  return size * n;
}

int StreamProgress(void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<StreamState*>(p)->stop->load() ? 1 : 0;  // Non-zero aborts.
}

}  // namespace

absl::StatusOr<long> KubeClient::Stream(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                                        const std::atomic<bool>& stop, absl::Duration timeout,
                                        const std::function<void()>& on_open) {
  CURL* curl = curl_easy_init();  // Its own handle: a watch holds its connection.
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  StreamState st{&on_line, &stop, &on_open, curl, "", false};
  std::shared_ptr<const ExecCredential> used;
  absl::StatusOr<struct curl_slist*> setup = Setup(curl, "GET", path, timeout, &used);
  if (!setup.ok()) {
    curl_easy_cleanup(curl);
    return setup.status();
  }
  struct curl_slist* headers = *setup;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &StreamWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &StreamHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &StreamProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (code == 401 && used != nullptr) exec_->Invalidate(used);  // The watch's next request runs the plugin.
  if (rc == CURLE_OK || st.ended || stop.load()) return code;
  if (rc == CURLE_OPERATION_TIMEDOUT && code == 200) return code;  // A watch's natural end.
  return absl::UnavailableError(
      absl::StrCat("watch ", credentials_.server, path.substr(0, path.find('?')), ": ", curl_easy_strerror(rc)));
}

std::string KubeErrorMessage(const KubeResponse& response) {
  absl::StatusOr<nlohmann::json> status = ParseJson(response.body);
  if (status.ok() && status->is_object() && status->contains("kind") && (*status)["kind"] == "Status" && status->contains("message") &&
      (*status)["message"].is_string()) {
    return (*status)["message"].get<std::string>();
  }
  std::string start = response.body.substr(0, 200);
  return absl::StrCat("HTTP ", response.code, start.empty() ? "" : ": ", start);
}

absl::Status KubeStatus(const KubeResponse& response, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", KubeErrorMessage(response));
  long code = response.code;
  if (code == 404) return absl::NotFoundError(msg);
  if (code == 409) return absl::AbortedError(msg);
  if (code == 401 || code == 403) return absl::PermissionDeniedError(msg);
  if (code == 400 || code == 422) return absl::InvalidArgumentError(msg);
  if (code == 429 || code >= 500) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

}  // namespace ferry::deployer::kubernetes
