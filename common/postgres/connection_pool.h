#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pqxx/connection>
#include <pqxx/transaction>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"

namespace ferry::postgres {

struct PoolOptions {
  // libpq connection string: a postgresql:// URL or key=value pairs.
  std::string url;
  // Most connections the pool opens.
  int size = 8;
  // How long Connect() retries an unreachable server, with backoff, before it
  // gives up. Zero means one attempt.
  absl::Duration connect_timeout = absl::Seconds(30);
};

// A bounded pool of PostgreSQL connections. Thread-safe.
//
// Prepared statements are registered once with Prepare() and are available on
// every connection. Work runs through RunInTransaction(), which turns every
// pqxx exception into an absl::Status (see pq_status.h) so that none escapes.
class ConnectionPool {
 public:
  using TransactionFn = std::function<absl::Status(pqxx::work&)>;

  // Opens the first connection, retrying with exponential backoff until
  // options.connect_timeout passes; each retry is logged with the server
  // address (never the password). Returns UNAVAILABLE naming the address when
  // the server stays unreachable, INVALID_ARGUMENT for a malformed URL.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Connect(PoolOptions options);

  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Registers a named, parameterised statement for all connections. Call it
  // before the statement is used, normally from a store's constructor.
  void Prepare(const std::string& name, const std::string& sql);

  // Runs `fn` in a READ COMMITTED transaction on a pooled connection and
  // commits when it returns OK; otherwise rolls back and returns its status.
  // Serialization failures and deadlocks that PostgreSQL raises (as pqxx
  // exceptions out of `fn`) are retried up to three times, then returned as
  // ABORTED. A status `fn` returns is never retried, ABORTED included. A
  // broken connection is dropped and reported as UNAVAILABLE.
  absl::Status RunInTransaction(const TransactionFn& fn);

  // Same as RunInTransaction, for work that produces a value.
  template <typename T>
  absl::StatusOr<T> RunInTransactionWithResult(const std::function<absl::StatusOr<T>(pqxx::work&)>& fn) {
    return RunWithResult<T, pqxx::work>(fn);
  }

  // Runs `fn` outside a transaction block (pqxx::nontransaction): each
  // statement commits on its own, in one round trip where a transaction
  // takes three (BEGIN, the statement, COMMIT). Only for work of exactly one
  // statement: a read, or a write complete in itself. Two statements here do
  // not see one snapshot and do not commit together; use RunInTransaction
  // for those. Exceptions become statuses and conflicts PostgreSQL raises
  // are retried, as in RunInTransaction.
  using StatementFn = std::function<absl::Status(pqxx::transaction_base&)>;
  absl::Status RunStatement(const StatementFn& fn);

  // Same as RunStatement, for work that produces a value.
  template <typename T>
  absl::StatusOr<T> RunStatementWithResult(const std::function<absl::StatusOr<T>(pqxx::transaction_base&)>& fn) {
    return RunWithResult<T, pqxx::transaction_base>(fn);
  }

  // Runs `fn` with a connection of its own, outside any transaction (LISTEN,
  // advisory session locks). The connection returns to the pool afterwards.
  absl::Status WithConnection(const std::function<absl::Status(pqxx::connection&)>& fn);

  // Opens a new connection that the caller owns (for LISTEN loops).
  absl::StatusOr<std::unique_ptr<pqxx::connection>> OpenDedicated();

  // "host:port/dbname", safe to log.
  const std::string& address() const { return address_; }

  // Wake-ups within this process, in place of PostgreSQL's NOTIFY where the
  // one to wake shares the writer's process and pool (issue #23: every
  // notifying commit took a database-wide lock and signalled every LISTEN
  // backend of the database; at one commit per audit event that was 18% of
  // PostgreSQL's samples in a perf profile). `fn` runs, on the writer's thread, each
  // time a RunInTransaction or RunStatement of this pool that called
  // WakeAfterCommit(channel) ends: after its commit, or after it failed
  // (a wake-up too many costs a look; one missed would leave work waiting).
  // `fn` must be quick and must not call back into this pool's wake-ups.
  // Returns an id for StopListeningLocally, after which `fn` never runs.
  using LocalListenerId = uint64_t;
  LocalListenerId ListenLocally(const std::string& channel, std::function<void()> fn);
  void StopListeningLocally(LocalListenerId id);
  // Inside RunInTransaction or RunStatement on this pool: wakes the local
  // listeners of `channel` when it ends (once, however often called).
  // Elsewhere: wakes them at once.
  void WakeAfterCommit(const std::string& channel);

 private:
  ConnectionPool(PoolOptions options, std::string address);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Open();
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
    size_t prepared = 0;  // how many of statements_ are declared on conn
  };
  absl::StatusOr<Slot> Acquire();
  // RunInTransactionWithResult (Txn pqxx::work) or RunStatementWithResult
  // (pqxx::transaction_base): the value `fn` produced, or its status.
  template <typename T, typename Txn>
  absl::StatusOr<T> RunWithResult(const std::function<absl::StatusOr<T>(Txn&)>& fn) {
    std::optional<T> out;
    auto keep = [&](Txn& txn) -> absl::Status {
      absl::StatusOr<T> r = fn(txn);
      if (!r.ok()) return r.status();
      out = std::move(r).value();
      return absl::OkStatus();
    };
    absl::Status status;
    if constexpr (std::is_same_v<Txn, pqxx::work>) {
      status = RunInTransaction(keep);
    } else {
      status = RunStatement(keep);
    }
    if (!status.ok()) return status;
    return std::move(*out);
  }
  // Runs `fn` on a pooled connection with pqxx's transaction type Txn,
  // committing when it returns OK; retries conflicts PostgreSQL raised.
  template <typename Txn>
  absl::Status Run(const std::function<absl::Status(Txn&)>& fn);
  // Run's attempts, without its local wake-ups.
  template <typename Txn>
  absl::Status RunAttempts(const std::function<absl::Status(Txn&)>& fn);
  void Release(Slot slot, bool broken);
  void WakeLocalListeners(const std::vector<std::string>& channels);

  const PoolOptions options_;
  const std::string address_;

  Mutex mu_;
  CondVar cv_;  // a slot was released or an open failed
  std::vector<Slot> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, std::string>> statements_ ABSL_GUARDED_BY(mu_);

  // Held while a listener runs, so that none runs after StopListeningLocally.
  Mutex local_mu_;
  LocalListenerId next_local_id_ ABSL_GUARDED_BY(local_mu_) = 1;
  std::map<LocalListenerId, std::pair<std::string, std::function<void()>>> local_listeners_
      ABSL_GUARDED_BY(local_mu_);
};

// "host:port/dbname" for a libpq connection string, without credentials.
// Returns INVALID_ARGUMENT if libpq cannot parse it.
absl::StatusOr<std::string> RedactedAddress(const std::string& url);

}  // namespace ferry::postgres
