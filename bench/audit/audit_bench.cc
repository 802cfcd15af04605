// Load generator for bench/audit/run. Prints one JSON object per mode.
//   audit_bench append <target> <clients> <seconds> <batch>   chained appends from N gRPC clients
//   audit_bench load <target> <events> <clients>               fill the log with AppendBatch(1000)
//   audit_bench query <target> <queries> <applications>        "last 20 events of one application"
//   audit_bench verify <target>                                VerifyChain over the whole chain

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ferry/v1/audit.grpc.pb.h"

namespace {

using ferry::v1::Audit;

std::unique_ptr<Audit::Stub> NewClient(const std::string& target, int id) {
  grpc::ChannelArguments args;
  args.SetInt("ferry.bench.client", id);  // distinct args: a connection of its own
  return Audit::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
}

const ferry::v1::AuditAction kActions[] = {
    ferry::v1::AUDIT_ACTION_REVISION_DETECTED,   ferry::v1::AUDIT_ACTION_PLAN_CREATED,
    ferry::v1::AUDIT_ACTION_PLAN_APPROVED,       ferry::v1::AUDIT_ACTION_DEPLOYMENT_STARTED,
    ferry::v1::AUDIT_ACTION_DEPLOYMENT_STEP,     ferry::v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED,
    ferry::v1::AUDIT_ACTION_DEPLOYMENT_FAILED,   ferry::v1::AUDIT_ACTION_DRIFT_DETECTED};

// A realistic deployer event (about 400 bytes of JSON).
ferry::v1::Event MakeEvent(const std::string& key, int64_t n, int applications) {
  ferry::v1::Event e;
  e.set_service("deployer");
  e.mutable_actor()->set_id(n % 10 == 0 ? absl::StrCat("user", n % 50) : "ferry");
  e.mutable_actor()->set_kind(n % 10 == 0 ? ferry::v1::ACTOR_KIND_USER : ferry::v1::ACTOR_KIND_SYSTEM);
  e.set_action(kActions[n % 8]);
  auto* s = e.mutable_subject();
  s->set_application_id(absl::StrCat("app-", n % applications));
  s->set_environment_id(n % 3 == 0 ? "prod" : "staging");
  s->set_repository_id(absl::StrCat("repo-", n % 100));
  s->set_deployment_id(absl::StrCat("dep-", n / 5));
  s->set_commit_sha("3f2a9c1e5b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a");
  e.set_message(absl::StrCat("deployment dep-", n / 5, " step ", n % 5));
  auto& f = *e.mutable_details()->mutable_fields();
  f["step"].set_number_value(static_cast<double>(n % 5));
  f["manifest_digest"].set_string_value("sha256:9b2c7f1d3e5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e");
  f["duration_ms"].set_number_value(static_cast<double>(n % 997));
  e.set_idempotency_key(key);
  return e;
}

// One call in flight for one client.
struct Call {
  int client = 0;
  absl::Time started;
  grpc::ClientContext ctx;
  grpc::Status status;
  ferry::v1::AppendResponse response;
  ferry::v1::AppendBatchResponse batch_response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ferry::v1::AppendResponse>> reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ferry::v1::AppendBatchResponse>> batch_reader;
};

// `clients` closed-loop clients, each on a connection of its own with one
// Append (or AppendBatch of `batch`) in flight at a time, driven as pgbench
// drives its connections: a few threads (2, as pgbench -j 2), each running
// its share of the clients through one completion queue.
int Append(const std::string& target, int clients, double seconds, int batch) {
  const int kThreads = std::min(clients, 2);
  std::atomic<int64_t> appended{0};
  std::atomic<int64_t> errors{0};
  std::vector<std::vector<double>> latencies(kThreads);
  const std::string run = absl::StrCat(absl::ToUnixNanos(absl::Now()));
  std::vector<std::unique_ptr<Audit::Stub>> stubs;
  for (int c = 0; c < clients; ++c) stubs.push_back(NewClient(target, c));
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      grpc::CompletionQueue cq;
      std::vector<int64_t> sent(clients, 0);
      auto send = [&](int c) {
        auto* call = new Call;
        call->client = c;
        const int64_t i = sent[c]++;
        call->started = absl::Now();
        if (batch <= 1) {
          ferry::v1::AppendRequest req;
          *req.mutable_event() = MakeEvent(absl::StrCat(run, "-", c, "-", i), c * 1000003 + i, 1000);
          call->reader = stubs[c]->PrepareAsyncAppend(&call->ctx, req, &cq);
          call->reader->StartCall();
          call->reader->Finish(&call->response, &call->status, call);
        } else {
          ferry::v1::AppendBatchRequest req;
          for (int b = 0; b < batch; ++b) {
            *req.add_events() = MakeEvent(absl::StrCat(run, "-", c, "-", i, "-", b), c * 1000003 + i * batch + b, 1000);
          }
          call->batch_reader = stubs[c]->PrepareAsyncAppendBatch(&call->ctx, req, &cq);
          call->batch_reader->StartCall();
          call->batch_reader->Finish(&call->batch_response, &call->status, call);
        }
      };
      int in_flight = 0;
      for (int c = t; c < clients; c += kThreads, ++in_flight) send(c);
      void* tag = nullptr;
      bool ok = false;
      while (in_flight > 0 && cq.Next(&tag, &ok)) {
        std::unique_ptr<Call> call(static_cast<Call*>(tag));
        --in_flight;
        latencies[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - call->started));
        if (!ok || !call->status.ok()) {
          if (errors++ == 0) std::cerr << call->status.error_message() << "\n";
          continue;  // this client stops
        }
        appended += std::max(batch, 1);
        if (absl::Now() < end) {
          send(call->client);
          ++in_flight;
        }
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  nlohmann::json out = {{"events", appended.load()},
                        {"errors", errors.load()},
                        {"seconds", elapsed},
                        {"events_per_s", appended.load() / elapsed},
                        {"call_p50_ms", all.empty() ? 0 : all[all.size() / 2]},
                        {"call_p99_ms", all.empty() ? 0 : all[all.size() * 99 / 100]}};
  std::cout << out.dump() << std::endl;
  return errors.load() == 0 ? 0 : 1;
}

int Load(const std::string& target, int64_t events, int clients, int applications) {
  const int kBatch = 1000;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> errors{0};
  const std::string run = absl::StrCat("load-", absl::ToUnixNanos(absl::Now()));
  // Event times spread over the last 30 days, increasing with the sequence.
  const int64_t now_s = absl::ToUnixSeconds(absl::Now());
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = NewClient(target, c);
      for (;;) {
        int64_t first = next.fetch_add(kBatch);
        if (first >= events) return;
        ferry::v1::AppendBatchRequest req;
        for (int64_t n = first; n < std::min(events, first + kBatch); ++n) {
          ferry::v1::Event e = MakeEvent(absl::StrCat(run, "-", n), n, applications);
          *e.mutable_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
              now_s - 30 * 86400 + (n * 30 * 86400) / std::max<int64_t>(events, 1));
          *req.add_events() = std::move(e);
        }
        grpc::ClientContext ctx;
        ferry::v1::AppendBatchResponse resp;
        grpc::Status s = stub->AppendBatch(&ctx, req, &resp);
        if (!s.ok()) {
          if (errors++ == 0) std::cerr << s.error_message() << "\n";
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  std::cout << nlohmann::json{{"events", events}, {"errors", errors.load()}, {"seconds", elapsed},
                              {"events_per_s", events / elapsed}}
                   .dump()
            << std::endl;
  return errors.load() == 0 ? 0 : 1;
}

int Query(const std::string& target, int queries, int applications) {
  auto stub = NewClient(target, 0);
  std::mt19937 rng(42);
  std::vector<double> ms;
  int64_t returned = 0;
  for (int i = 0; i < queries; ++i) {
    ferry::v1::QueryRequest req;
    req.mutable_filter()->set_application_id(absl::StrCat("app-", rng() % applications));
    req.set_order(ferry::v1::SORT_ORDER_DESCENDING);
    req.set_page_size(20);
    grpc::ClientContext ctx;
    ferry::v1::QueryResponse resp;
    absl::Time t0 = absl::Now();
    grpc::Status s = stub->Query(&ctx, req, &resp);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    if (!s.ok()) {
      std::cerr << s.error_message() << "\n";
      return 1;
    }
    returned += resp.events_size();
  }
  std::cout << nlohmann::json{{"latencies_ms", ms}, {"avg_events_returned", double(returned) / queries}}.dump()
            << std::endl;
  return 0;
}

int Verify(const std::string& target) {
  auto stub = NewClient(target, 0);
  grpc::ClientContext ctx;
  ferry::v1::VerifyChainResponse resp;
  absl::Time t0 = absl::Now();
  grpc::Status s = stub->VerifyChain(&ctx, ferry::v1::VerifyChainRequest(), &resp);
  double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!s.ok()) {
    std::cerr << s.error_message() << "\n";
    return 1;
  }
  std::cout << nlohmann::json{{"seconds", seconds},
                              {"ok", resp.ok()},
                              {"events_verified", resp.events_verified()},
                              {"checkpoints_verified", resp.checkpoints_verified()},
                              {"reason", resp.reason()}}
                   .dump()
            << std::endl;
  return resp.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // As Ferry's services, the real clients of Append, run (common/server).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() >= 5 && a[0] == "append") return Append(a[1], std::stoi(a[2]), std::stod(a[3]), std::stoi(a[4]));
  if (a.size() >= 5 && a[0] == "load") return Load(a[1], std::stoll(a[2]), std::stoi(a[3]), std::stoi(a[4]));
  if (a.size() >= 4 && a[0] == "query") return Query(a[1], std::stoi(a[2]), std::stoi(a[3]));
  if (a.size() >= 2 && a[0] == "verify") return Verify(a[1]);
  std::cerr << "usage: audit_bench append <target> <clients> <seconds> <batch> | load <target> <events> <clients> "
               "<applications> | query <target> <queries> <applications> | verify <target>\n";
  return 2;
}
