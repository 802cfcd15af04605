#include "common/postgres/connection_pool.h"

#include <libpq-fe.h>

#include <algorithm>
#include <thread>

#include <pqxx/except>
#include <pqxx/nontransaction>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/concurrency/backoff.h"
#include "common/logging/logger.h"
#include "common/postgres/pq_status.h"

namespace ferry::postgres {

namespace {

// libpq's parse errors quote what they could not parse, which can be the
// whole URL or a piece of its password: every "..." becomes "…".
std::string WithoutQuotedParts(const std::string& message) {
  std::string out;
  bool quoted = false;
  for (char c : message) {
    if (c == '"') {
      out += quoted ? "\xE2\x80\xA6\"" : "\"";
      quoted = !quoted;
    } else if (!quoted) {
      out.push_back(c);
    }
  }
  if (quoted) out += "\xE2\x80\xA6";
  return out;
}

// The channels WakeAfterCommit named in the innermost Run of a pool on this
// thread (Runs nest when a transaction's code calls into another pool).
struct WakeScope {
  const ConnectionPool* pool;
  std::vector<std::string> channels;
  WakeScope* outer;
};
thread_local WakeScope* current_wake_scope = nullptr;

}  // namespace

absl::StatusOr<std::string> RedactedAddress(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  if (options == nullptr) {
    std::string why = err != nullptr ? err : "unparsable";
    if (err != nullptr) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return absl::InvalidArgumentError(absl::StrCat("database URL is malformed: ", WithoutQuotedParts(why)));
  }
  std::string host, hostaddr, port, dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    std::string_view key = o->keyword;
    if (key == "host") host = o->val;
    if (key == "hostaddr") hostaddr = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  if (host.empty()) host = hostaddr.empty() ? "localhost" : hostaddr;
  if (port.empty()) port = "5432";
  return absl::StrCat(host, ":", port, "/", dbname);
}

ConnectionPool::ConnectionPool(PoolOptions options, std::string address)
    : options_(std::move(options)), address_(std::move(address)) {}

ConnectionPool::~ConnectionPool() = default;

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Connect(PoolOptions options) {
  absl::StatusOr<std::string> address = RedactedAddress(options.url);
  if (!address.ok()) return address.status();
  auto pool = std::unique_ptr<ConnectionPool>(new ConnectionPool(std::move(options), *address));

  const absl::Time deadline = absl::Now() + pool->options_.connect_timeout;
  const concurrency::BackoffPolicy retry{.initial = absl::Milliseconds(100), .max = absl::Seconds(5)};
  for (int attempt = 1;; ++attempt) {
    const absl::Duration backoff = concurrency::BackoffDelay(retry, attempt);
    absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = pool->Open();
    if (conn.ok()) {
      MutexLock lock(&pool->mu_);
      pool->idle_.push_back(Slot{std::move(*conn), 0});
      pool->open_ = 1;
      return pool;
    }
    if (!absl::IsUnavailable(conn.status()) || absl::Now() + backoff > deadline) {
      return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL at ", *address, " after ", attempt,
                                                 " attempt(s): ", conn.status().message()));
    }
    logging::Warn("database not reachable, retrying",
                  {{"database", *address}, {"attempt", attempt}, {"retry_in_ms", absl::ToInt64Milliseconds(backoff)},
                   {"error", std::string(conn.status().message())}});
    absl::SleepFor(backoff);
  }
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> ConnectionPool::Open() {
  try {
    return std::make_unique<pqxx::connection>(options_.url);
  } catch (const pqxx::broken_connection& e) {
    std::string why = e.what();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return absl::UnavailableError(why);
  } catch (const std::exception& e) {
    return StatusFromException(e, "connect");
  }
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> ConnectionPool::OpenDedicated() {
  absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = Open();
  if (!conn.ok()) {
    return absl::Status(conn.status().code(),
                        absl::StrCat("PostgreSQL at ", address_, ": ", conn.status().message()));
  }
  return conn;
}

void ConnectionPool::Prepare(const std::string& name, const std::string& sql) {
  MutexLock lock(&mu_);
  statements_.emplace_back(name, sql);
}

absl::StatusOr<ConnectionPool::Slot> ConnectionPool::Acquire() {
  Slot slot;
  bool open_new = false;
  {
    MutexLock lock(&mu_);
    while (idle_.empty() && open_ >= options_.size) cv_.Wait(&mu_);
    if (!idle_.empty()) {
      slot = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++open_;
      open_new = true;
    }
  }
  if (open_new) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = OpenDedicated();
    if (!conn.ok()) {
      MutexLock lock(&mu_);
      --open_;
      cv_.Signal();
      return conn.status();
    }
    slot.conn = std::move(*conn);
  }
  // Declare statements registered since this connection last saw the list.
  // pqxx prepares them lazily on first use.
  MutexLock lock(&mu_);
  try {
    for (; slot.prepared < statements_.size(); ++slot.prepared) {
      slot.conn->prepare(statements_[slot.prepared].first, statements_[slot.prepared].second);
    }
  } catch (const std::exception& e) {
    --open_;
    cv_.Signal();
    return StatusFromException(e, "prepare statements");
  }
  return slot;
}

void ConnectionPool::Release(Slot slot, bool broken) {
  MutexLock lock(&mu_);
  if (broken || !slot.conn->is_open()) {
    --open_;
  } else {
    idle_.push_back(std::move(slot));
  }
  cv_.Signal();
}

template <typename Txn>
absl::Status ConnectionPool::Run(const std::function<absl::Status(Txn&)>& fn) {
  WakeScope scope{this, {}, current_wake_scope};
  absl::Status status;
  {
    struct Enter {
      WakeScope* scope;
      explicit Enter(WakeScope* s) : scope(s) { current_wake_scope = s; }
      ~Enter() { current_wake_scope = scope->outer; }
    } enter(&scope);
    status = RunAttempts(fn);
  }
  if (!scope.channels.empty()) WakeLocalListeners(scope.channels);
  return status;
}

template <typename Txn>
absl::Status ConnectionPool::RunAttempts(const std::function<absl::Status(Txn&)>& fn) {
  constexpr int kAttempts = 3;
  absl::Status status;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    absl::StatusOr<Slot> slot = Acquire();
    if (!slot.ok()) return slot.status();
    bool broken = false;
    // Only a conflict PostgreSQL raised (serialization failure, deadlock)
    // is worth another try; a status the callback returned, ABORTED
    // included ("changed meanwhile"), is its answer.
    bool raised = false;
    try {
      Txn txn(*slot->conn);
      status = fn(txn);
      if (status.ok()) txn.commit();
    } catch (const pqxx::broken_connection& e) {
      broken = true;
      raised = true;
      status = StatusFromException(e, absl::StrCat("PostgreSQL at ", address_));
    } catch (const std::exception& e) {
      raised = true;
      status = StatusFromException(e, "transaction");
    }
    Release(std::move(*slot), broken);
    if (!raised || !absl::IsAborted(status)) return status;
  }
  return status;
}

absl::Status ConnectionPool::RunInTransaction(const TransactionFn& fn) { return Run<pqxx::work>(fn); }

absl::Status ConnectionPool::RunStatement(const StatementFn& fn) {
  return Run<pqxx::nontransaction>([&](pqxx::nontransaction& txn) { return fn(txn); });
}

absl::Status ConnectionPool::WithConnection(const std::function<absl::Status(pqxx::connection&)>& fn) {
  absl::StatusOr<Slot> slot = Acquire();
  if (!slot.ok()) return slot.status();
  absl::Status status;
  bool broken = false;
  try {
    status = fn(*slot->conn);
  } catch (const pqxx::broken_connection& e) {
    broken = true;
    status = StatusFromException(e, absl::StrCat("PostgreSQL at ", address_));
  } catch (const std::exception& e) {
    status = StatusFromException(e, "connection");
  }
  Release(std::move(*slot), broken);
  return status;
}

ConnectionPool::LocalListenerId ConnectionPool::ListenLocally(const std::string& channel, std::function<void()> fn) {
  MutexLock lock(&local_mu_);
  LocalListenerId id = next_local_id_++;
  local_listeners_.emplace(id, std::make_pair(channel, std::move(fn)));
  return id;
}

void ConnectionPool::StopListeningLocally(LocalListenerId id) {
  MutexLock lock(&local_mu_);
  local_listeners_.erase(id);
}

void ConnectionPool::WakeAfterCommit(const std::string& channel) {
  for (WakeScope* s = current_wake_scope; s != nullptr; s = s->outer) {
    if (s->pool != this) continue;
    if (std::find(s->channels.begin(), s->channels.end(), channel) == s->channels.end()) s->channels.push_back(channel);
    return;
  }
  WakeLocalListeners({channel});
}

void ConnectionPool::WakeLocalListeners(const std::vector<std::string>& channels) {
  MutexLock lock(&local_mu_);
  for (auto& [id, listener] : local_listeners_) {
    if (std::find(channels.begin(), channels.end(), listener.first) != channels.end()) listener.second();
  }
}

}  // namespace ferry::postgres
