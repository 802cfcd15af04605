#include "cli/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "common/concurrency/last_resort.h"

namespace ferry::cli {

Interrupts& Interrupts::Get() {
  static Interrupts* interrupts = new Interrupts();
  return *interrupts;
}

void Interrupts::Install() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([this] { (void)concurrency::RunGuarded("ferry interrupts", [this] { Run(); }); }).detach();
}

void Interrupts::Run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    interrupted_.store(true);
    MutexLock lock(&mu_);
    if (waiting_ == 0) {
      // Not waiting on anything: stop now, as a shell user expects.
      ::_exit(130);
    }
    if (tracked_ != nullptr) tracked_->TryCancel();
  }
}

Interrupts::Waiting::Waiting() {
  Interrupts& i = Get();
  MutexLock lock(&i.mu_);
  ++i.waiting_;
}

Interrupts::Waiting::~Waiting() {
  Interrupts& i = Get();
  MutexLock lock(&i.mu_);
  --i.waiting_;
  i.tracked_ = nullptr;
}

void Interrupts::Waiting::Track(grpc::ClientContext* ctx) {
  Interrupts& i = Get();
  MutexLock lock(&i.mu_);
  i.tracked_ = ctx;
  if (ctx != nullptr && i.interrupted_.load()) ctx->TryCancel();
}

}  // namespace ferry::cli
