#include "common/outbox/outbox_forwarder.h"

#include <algorithm>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::outbox {
namespace {

const WaitableClock* ClockOf(const ForwarderOptions& options) {
  static const SystemClock kSystem;
  return options.clock != nullptr ? options.clock : &kSystem;
}

bool Retryable(const absl::Status& s) { return !absl::IsInvalidArgument(s) && !absl::IsFailedPrecondition(s); }

concurrency::LoopOptions LoopOptionsOf(const ForwarderOptions& options, std::atomic<int64_t>* last_backlog) {
  concurrency::LoopOptions loop;
  loop.backoff = {.initial = options.initial_backoff, .max = options.max_backoff};
  // After a failure only the backoff timer ends the wait; otherwise a
  // notification (or the idle poll) does.
  loop.wake_ends_backoff = false;
  loop.on_failure = [last_backlog](const absl::Status& status, absl::Duration retry_in) {
    logging::Warn("audit outbox delivery failed; will retry",
                  {{"error", std::string(status.message())}, {"retry_in_ms", absl::ToInt64Milliseconds(retry_in)},
                   {"backlog", last_backlog->load()}});
  };
  return loop;
}

}  // namespace

OutboxForwarder::OutboxForwarder(std::string service, std::string notify_channel, OutboxStore* store,
                                 AuditSink* sink, postgres::ConnectionPool* pool, prometheus::Registry* registry,
                                 ForwarderOptions options)
    : service_(std::move(service)),
      channel_(std::move(notify_channel)),
      store_(store),
      sink_(sink),
      pool_(pool),
      options_(options),
      clock_(ClockOf(options_)),
      spacing_(clock_->NewAlarm()),
      loop_(absl::StrCat("outbox forwarder ", service_), [this] { return DeliverPending(); },
            LoopOptionsOf(options_, &last_backlog_), options_.clock) {
  backlog_ = &prometheus::BuildGauge()
                  .Name("ferry_outbox_backlog")
                  .Help("Audit events waiting in the service's outbox.")
                  .Register(*registry)
                  .Add({{"service", service_}});
  auto& delivered = prometheus::BuildCounter()
                        .Name("ferry_outbox_delivered_total")
                        .Help("Audit events delivered from the outbox, by result.")
                        .Register(*registry);
  delivered_ok_ = &delivered.Add({{"service", service_}, {"result", "ok"}});
  delivered_failed_ = &delivered.Add({{"service", service_}, {"result", "error"}});
  dead_lettered_ = &delivered.Add({{"service", service_}, {"result", "dead_letter"}});
}

OutboxForwarder::~OutboxForwarder() { Stop(); }

void OutboxForwarder::Start() {
  loop_.Start();
  // Woken by this process's commits to the outbox (issue #23: a NOTIFY per
  // commit cost PostgreSQL a database-wide lock and a signal to every
  // listening backend). The loop's first round reads what is already there.
  if (pool_ != nullptr && listener_.load() == 0) listener_.store(pool_->ListenLocally(channel_, [this] { Wake(); }));
}

void OutboxForwarder::Wake() { loop_.Wake(); }

void OutboxForwarder::Stop() {
  if (postgres::ConnectionPool::LocalListenerId id = listener_.exchange(0); id != 0) pool_->StopListeningLocally(id);
  spacing_->Wake();
  loop_.Stop();
}

absl::Status OutboxForwarder::Drain(size_t* delivered) {
  while (true) {
    absl::StatusOr<std::vector<PendingEvent>> pending = store_->FetchUnsent(options_.batch_size);
    if (!pending.ok()) return pending.status();
    if (pending->empty()) {
      backlog_->Set(0);
      return absl::OkStatus();
    }
    // The batch: the fetched events up to max_batch_bytes (at least one),
    // moved rather than copied (their details are protobuf Structs: a copy
    // was a deep copy and a second destruction of every event, issue #23).
    std::vector<v1::Event> events;
    std::vector<int64_t> ids;
    events.reserve(pending->size());
    ids.reserve(pending->size());
    size_t bytes = 0;
    for (PendingEvent& p : *pending) {
      size_t size = p.event.ByteSizeLong();
      if (!events.empty() && bytes + size > options_.max_batch_bytes) break;
      bytes += size;
      events.push_back(std::move(p.event));
      ids.push_back(p.id);
    }
    absl::Status sent = Deliver(events, ids);
    if (!sent.ok()) return sent;
    if (delivered != nullptr) *delivered += events.size();
    if (events.size() == pending->size() && pending->size() < static_cast<size_t>(options_.batch_size)) {
      backlog_->Set(0);
      return absl::OkStatus();
    }
  }
}

absl::Status OutboxForwarder::Deliver(const std::vector<v1::Event>& events, const std::vector<int64_t>& ids) {
  absl::Status sent = sink_->AppendBatch(events);
  if (sent.ok()) {
    delivered_ok_->Increment(static_cast<double>(ids.size()));
    // Redelivery after a failed mark is harmless: Append is idempotent.
    return store_->MarkSent(ids);
  }
  if (absl::IsResourceExhausted(sent)) {
    if (events.size() == 1) return DeadLetter(ids[0], events[0], sent);
    // Too large for the audit service: each half in order.
    const size_t half = events.size() / 2;
    logging::Warn("audit batch refused as too large; sending it in halves",
                  {{"events", events.size()}, {"error", std::string(sent.message())}});
    absl::Status first = Deliver({events.begin(), events.begin() + half}, {ids.begin(), ids.begin() + half});
    if (!first.ok()) return first;
    return Deliver({events.begin() + half, events.end()}, {ids.begin() + half, ids.end()});
  }
  delivered_failed_->Increment(static_cast<double>(ids.size()));
  store_->RecordFailure(ids, std::string(sent.message())).IgnoreError();
  if (Retryable(sent)) return sent;
  // The audit service refused the batch itself: find the event it refuses,
  // keep it (with its error) out of the queue, and deliver the rest.
  if (events.size() == 1) return DeadLetter(ids[0], events[0], sent);
  for (size_t i = 0; i < events.size(); ++i) {
    absl::Status one = Deliver({events[i]}, {ids[i]});
    if (!one.ok()) return one;
  }
  return absl::OkStatus();
}

absl::Status OutboxForwarder::DeadLetter(int64_t id, const v1::Event& event, const absl::Status& refusal) {
  dead_lettered_->Increment();
  logging::Error("audit event refused; kept in the outbox with its error and skipped",
                 {{"outbox_id", id},
                  {"idempotency_key", event.idempotency_key()},
                  {"bytes", static_cast<int64_t>(event.ByteSizeLong())},
                  {"error", std::string(refusal.message())}});
  store_->RecordFailure({id}, std::string(refusal.message())).IgnoreError();
  return store_->MarkSent({id});
}

absl::StatusOr<absl::Duration> OutboxForwarder::DeliverPending() {
  const absl::Time spaced = last_delivery_ + options_.min_round_interval;
  if (clock_->Now() < spaced) spacing_->SleepUntil(spaced);  // Stop() wakes it
  size_t delivered = 0;
  absl::Status status = Drain(&delivered);
  if (delivered > 0) last_delivery_ = clock_->Now();
  if (status.ok()) {
    last_backlog_.store(0);  // drained as of its last read (Drain set the gauge)
    return options_.idle_poll;
  }
  absl::StatusOr<int64_t> backlog = store_->Backlog();
  if (backlog.ok()) backlog_->Set(static_cast<double>(*backlog));
  last_backlog_.store(backlog.ok() ? *backlog : -1);
  return status;
}

}  // namespace ferry::outbox
