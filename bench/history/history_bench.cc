// The client of bench/history/run (not a test): time travel queries through
// ferry.v1.Audit over gRPC, one call at a time, latencies as JSON.
//   history_bench state <target> <queries> <first_unix_s> <last_unix_s>
//       GetDeployedState at a time drawn uniformly from [first, last]
//   history_bench changes <target> <queries> <first_unix_s> <last_unix_s> <window_s>
//       ListChanges (first page of 100, with the targets that moved) over
//       [T, T + window) with T drawn uniformly from [first, last - window]
//   history_bench dora <target> <queries> <first_unix_s> <last_unix_s> <window_s>
//       GetDoraMetrics over the last window of the history (every pair)

#include <grpcpp/grpcpp.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.grpc.pb.h"

namespace {

using ferry::v1::Audit;

google::protobuf::Timestamp Seconds(int64_t s) {
  google::protobuf::Timestamp t;
  t.set_seconds(s);
  return t;
}

template <typename Call>
int Measure(int queries, Call&& call) {
  std::vector<double> ms;
  int64_t returned = 0;
  for (int i = 0; i < queries; ++i) {
    int64_t n = 0;
    absl::Time t0 = absl::Now();
    grpc::Status s = call(i, &n);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    if (!s.ok()) {
      std::cerr << s.error_message() << "\n";
      return 1;
    }
    returned += n;
  }
  std::cout << nlohmann::json{{"latencies_ms", ms}, {"avg_items_returned", double(returned) / queries}}.dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() < 5) {
    std::cerr << "usage: history_bench state|changes|dora <target> <queries> <first_unix_s> <last_unix_s> "
                 "[<window_s>]\n";
    return 2;
  }
  auto stub = Audit::NewStub(grpc::CreateChannel(a[1], grpc::InsecureChannelCredentials()));
  const int queries = std::stoi(a[2]);
  const int64_t first = std::stoll(a[3]);
  const int64_t last = std::stoll(a[4]);
  const int64_t window = a.size() > 5 ? std::stoll(a[5]) : 0;
  std::mt19937_64 rng(42);
  if (a[0] == "state") {
    std::uniform_int_distribution<int64_t> at(first, last);
    return Measure(queries, [&](int, int64_t* n) {
      ferry::v1::GetDeployedStateRequest req;
      *req.mutable_time() = Seconds(at(rng));
      ferry::v1::GetDeployedStateResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = stub->GetDeployedState(&ctx, req, &resp);
      *n = resp.deployed_size();
      return s;
    });
  }
  if (a[0] == "changes") {
    std::uniform_int_distribution<int64_t> at(first, last - window);
    return Measure(queries, [&](int, int64_t* n) {
      ferry::v1::ListChangesRequest req;
      const int64_t t = at(rng);
      *req.mutable_start_time() = Seconds(t);
      *req.mutable_end_time() = Seconds(t + window);
      req.set_page_size(100);
      ferry::v1::ListChangesResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = stub->ListChanges(&ctx, req, &resp);
      *n = resp.changes_size() + resp.targets_size();
      return s;
    });
  }
  if (a[0] == "dora") {
    return Measure(queries, [&](int, int64_t* n) {
      ferry::v1::GetDoraMetricsRequest req;
      *req.mutable_start_time() = Seconds(last - window);
      *req.mutable_end_time() = Seconds(last);
      ferry::v1::GetDoraMetricsResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = stub->GetDoraMetrics(&ctx, req, &resp);
      *n = resp.targets_size();
      return s;
    });
  }
  std::cerr << "unknown mode " << a[0] << "\n";
  return 2;
}
