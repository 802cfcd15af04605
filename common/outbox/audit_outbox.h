#pragma once

#include <memory>
#include <string>

#include "common/outbox/grpc_audit_sink.h"
#include "common/outbox/outbox_forwarder.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/server/server_runner.h"

namespace ferry::outbox {

// Everything a service needs to emit audit events, wired in one call from
// main.cc:
//
//   auto audit = outbox::AuditOutbox::Create(infra->pool.get(), "planner", "planner",
//                                            config.audit_address, *infra->runner);
//   ... pass audit->store() to the stores that change state ...
//
// Create() starts the forwarder and registers its stop with the runner's
// shutdown. In a transaction: audit->store()->Enqueue(txn, event).
class AuditOutbox {
 public:
  static std::unique_ptr<AuditOutbox> Create(postgres::ConnectionPool* pool, const std::string& schema,
                                             const std::string& service, const std::string& audit_address,
                                             server::ServerRunner& runner, ForwarderOptions options = {}) {
    auto out = std::unique_ptr<AuditOutbox>(new AuditOutbox());
    out->pool_ = pool;
    out->store_ = std::make_unique<PostgresOutboxStore>(pool, schema, service);
    // Over the runner's TLS, accepting only the audit service's certificate.
    out->sink_ = std::make_unique<GrpcAuditSink>(runner.tls()->Channel(audit_address, "audit"));
    out->forwarder_ = std::make_unique<OutboxForwarder>(service, PostgresOutboxStore::NotifyChannel(schema),
                                                        out->store_.get(), out->sink_.get(), pool, &runner.registry(), options);
    out->forwarder_->Start();
    OutboxForwarder* forwarder = out->forwarder_.get();
    runner.OnShutdown([forwarder] { forwarder->Stop(); });
    return out;
  }

  OutboxStore* store() { return store_.get(); }

  // Records one event in a transaction of its own (an event that reports no
  // state change: a refused call).
  absl::Status Record(v1::Event event) {
    return pool_->RunInTransaction([&](pqxx::work& txn) { return store_->Enqueue(txn, std::move(event)); });
  }
  OutboxForwarder* forwarder() { return forwarder_.get(); }

 private:
  AuditOutbox() = default;
  postgres::ConnectionPool* pool_ = nullptr;
  std::unique_ptr<PostgresOutboxStore> store_;
  std::unique_ptr<GrpcAuditSink> sink_;
  std::unique_ptr<OutboxForwarder> forwarder_;
};

}  // namespace ferry::outbox
