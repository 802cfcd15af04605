#pragma once

// Ctrl-C for the ferry command. SIGINT and SIGTERM are blocked in every
// thread (Interrupts::Install, first thing in main, before gRPC starts its
// threads) and taken by one thread with sigwait. While a command waits
// (sync --wait, app wait, audit tail -f) it registers the call it is in;
// Ctrl-C then cancels that call only, so the command stops waiting and
// says so: the deployment on the server is never touched. Outside a wait,
// Ctrl-C ends the command at once (exit 130).

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"

namespace ferry::cli {

class Interrupts {
 public:
  static Interrupts& Get();
  // Blocks the signals and starts the waiting thread.
  void Install();

  // While a Waiting is alive, Ctrl-C cancels `ctx` (may be replaced with
  // Track) instead of ending the process.
  class Waiting {
   public:
    Waiting();
    ~Waiting();
    void Track(grpc::ClientContext* ctx);
    Waiting(const Waiting&) = delete;
    Waiting& operator=(const Waiting&) = delete;
  };

  bool interrupted() const { return interrupted_.load(); }

 private:
  void Run();

  std::atomic<bool> interrupted_{false};
  Mutex mu_;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ClientContext* tracked_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace ferry::cli
