#include "cli/deployment_follower.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "cli/interrupt.h"

namespace ferry::cli {
namespace {

bool Expired(absl::Time deadline) { return deadline != absl::InfiniteFuture() && absl::Now() >= deadline; }

// Sleeps up to `d`, in slices, returning early on Ctrl-C.
void Nap(absl::Duration d) {
  absl::Time end = absl::Now() + d;
  while (absl::Now() < end && !Interrupts::Get().interrupted()) absl::SleepFor(absl::Milliseconds(50));
}

std::string StepLine(const v1::DeploymentStep& s) {
  std::string object = s.has_object() ? ObjectName(s.object()) : "(wave)";
  std::string took = Elapsed(s.start_time(), s.end_time());
  std::string line = absl::StrFormat("wave %d  %-11s %-8s %s", s.wave(), StepKindName(s.kind()),
                                     s.action() == v1::OBJECT_ACTION_UNSPECIFIED ? "" : ActionName(s.action()), object);
  absl::StrAppend(&line, "  ", StepResultName(s.result()), took == "-" ? "" : absl::StrCat(" in ", took));
  if (s.attempt() > 1) absl::StrAppend(&line, " (attempt ", s.attempt(), ")");
  if (!s.message().empty() && s.result() != v1::STEP_RESULT_SUCCEEDED) absl::StrAppend(&line, ": ", s.message());
  return line;
}

}  // namespace

absl::Status DeploymentFollower::Stopped(const std::string& what) const {
  return Interrupted(absl::StrCat("stopped waiting; ", what, " goes on (Ctrl-C never stops a deployment)"));
}

void DeploymentFollower::ClearLine() {
  if (!line_.empty()) {
    std::fputs("\r\x1b[K", out_.stream());
    line_.clear();
  }
}

void DeploymentFollower::Redraw(bool force) {
  if (!out_.terminal() || out_.structured()) return;
  static const char* kSpin[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
  const v1::DeploymentStep* running = nullptr;
  int done = 0;
  for (const auto& [seq, s] : steps_) {
    if (s.result() == v1::STEP_RESULT_RUNNING) running = &s;
    else ++done;
  }
  std::string what = running == nullptr
                         ? DeploymentStateName(current_.state())
                         : absl::StrCat("wave ", running->wave(), " · ", StepKindName(running->kind()), " ",
                                        running->has_object() ? ObjectName(running->object()) : "(wave)",
                                        running->message().empty() ? "" : absl::StrCat(" · ", running->message()));
  std::string line = absl::StrCat(kSpin[frame_++ % 10], " ", current_.id(), " ", ShortSha(current_.revision().sha()),
                                  " · ", what, " · ", done, " step", done == 1 ? "" : "s", " done · ",
                                  Age(started_, absl::Now()));
  line = Truncate(line, 110);
  if (line == line_ && !force) return;
  std::fputs(absl::StrCat("\r\x1b[K", out_.Paint(line, Color::kCyan)).c_str(), out_.stream());
  std::fflush(out_.stream());
  line_ = line;
}

void DeploymentFollower::Step(const v1::DeploymentStep& step) {
  auto it = steps_.find(step.sequence());
  bool was_done = it != steps_.end() && it->second.result() != v1::STEP_RESULT_RUNNING;
  // The snapshot and the live events overlap: a step's "started" record may
  // arrive after its "finished" one. A finished step stays finished (and is
  // printed once).
  if (was_done && step.result() == v1::STEP_RESULT_RUNNING && step.attempt() <= it->second.attempt()) return;
  if (was_done && step.result() == it->second.result() && step.attempt() == it->second.attempt()) return;
  steps_[step.sequence()] = step;
  if (out_.structured()) {
    nlohmann::json j = ToJson(step);
    j["deployment_id"] = current_.id();
    j["event"] = "step";
    out_.Emit(j);
    return;
  }
  if (step.result() == v1::STEP_RESULT_RUNNING || was_done) {
    Redraw(false);
    return;
  }
  ClearLine();
  Color c = step.result() == v1::STEP_RESULT_SUCCEEDED ? Color::kGreen
            : step.result() == v1::STEP_RESULT_FAILED  ? Color::kRed
                                                       : Color::kDim;
  std::string mark = step.result() == v1::STEP_RESULT_SUCCEEDED ? "✓" : step.result() == v1::STEP_RESULT_FAILED ? "✗" : "-";
  out_.Line(absl::StrCat("  ", out_.Paint(mark, c), " ", StepLine(step)));
  Redraw(true);
}

absl::StatusOr<v1::Deployment> DeploymentFollower::FollowPlan(const std::string& plan_id) {
  Interrupts::Waiting waiting;
  std::string said;
  while (true) {
    if (Interrupts::Get().interrupted()) return Stopped(absl::StrCat("plan ", plan_id));
    v1::GetPlanRequest req;
    req.set_plan_id(plan_id);
    req.set_view(v1::PLAN_VIEW_BASIC);
    v1::Plan plan;
    grpc::Status s = conn_.Planner().GetPlan(conn_.Call().get(), req, &plan);
    if (!s.ok() && s.error_code() != grpc::StatusCode::UNAVAILABLE) return conn_.Error("planner", "read plan " + plan_id, s);
    if (s.ok()) {
      if (!plan.deployment_id().empty()) {
        named_by_plan_ = true;
        return Follow(plan.deployment_id());
      }
      if (plan.state() == v1::PLAN_STATE_SUCCEEDED) {
        v1::Deployment d;
        d.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
        return d;
      }
      if (IsTerminal(plan.state())) {
        return WaitFailed(absl::StrCat("plan ", plan_id, " ended ", PlanStateName(plan.state()),
                                       plan.failure().message().empty() ? "" : ": " + plan.failure().message(),
                                       plan.superseded_by_plan_id().empty()
                                           ? ""
                                           : absl::StrCat(" (by ", plan.superseded_by_plan_id(), ": `ferry plan show ",
                                                          plan.superseded_by_plan_id(), "`)")));
      }
      std::string why;
      if (plan.state() == v1::PLAN_STATE_PENDING) {
        why = absl::StrCat("plan ", plan_id, " is waiting for approval in ", plan.environment_id(),
                           ": run `ferry plan approve ", plan_id, "`");
      } else if (plan.hold_reason() != v1::HOLD_REASON_UNSPECIFIED) {
        why = absl::StrCat("plan ", plan_id, " is held (", HoldName(plan.hold_reason()), ")",
                           plan.hold_message().empty() ? "" : ": " + plan.hold_message());
      } else {
        why = absl::StrCat("plan ", plan_id, " is ", absl::AsciiStrToLower(PlanStateName(plan.state())),
                           "; waiting for the deployer");
      }
      if (why != said) {
        if (out_.structured()) {
          out_.Emit(nlohmann::json{{"event", "plan"}, {"plan_id", plan_id}, {"state", PlanStateName(plan.state())},
                                   {"message", why}});
        } else {
          out_.Line(why + " (waiting; Ctrl-C stops waiting)");
        }
        said = why;
      }
    }
    if (Expired(deadline_)) return WaitTimedOut(absl::StrCat("timed out waiting: ", said));
    Nap(absl::Milliseconds(300));
  }
}

absl::StatusOr<v1::Deployment> DeploymentFollower::Follow(const std::string& id) {
  Interrupts::Waiting waiting;
  started_ = absl::Now();
  current_.set_id(id);
  if (!out_.structured()) out_.Line(absl::StrCat("following deployment ", id));
  int failures = 0;
  while (true) {
    grpc::CompletionQueue cq;
    std::unique_ptr<grpc::ClientContext> ctx = conn_.Call(absl::InfiniteDuration());
    if (deadline_ != absl::InfiniteFuture()) ctx->set_deadline(absl::ToChronoTime(deadline_));
    waiting.Track(ctx.get());
    v1::WatchDeploymentRequest req;
    req.set_deployment_id(id);
    auto reader = conn_.Deployer().PrepareAsyncWatchDeployment(ctx.get(), req, &cq);
    v1::WatchDeploymentResponse event;
    grpc::Status status;
    enum Tag : intptr_t { kStart = 1, kRead = 2, kFinish = 3 };
    reader->StartCall(reinterpret_cast<void*>(kStart));
    bool finished = false;
    while (!finished) {
      void* tag = nullptr;
      bool ok = false;
      auto r = cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(120));
      if (r == grpc::CompletionQueue::TIMEOUT) {
        Redraw(false);
        continue;
      }
      if (r == grpc::CompletionQueue::SHUTDOWN) break;
      switch (reinterpret_cast<intptr_t>(tag)) {
        case kStart:
        case kRead:
          if (reinterpret_cast<intptr_t>(tag) == kRead && ok) {
            failures = 0;
            if (event.has_deployment()) {
              const v1::Deployment& d = event.deployment();
              bool changed = d.state() != current_.state();
              v1::Deployment keep = d;
              keep.clear_steps();
              current_ = keep;
              for (const auto& s : d.steps()) Step(s);
              if (changed && out_.structured()) {
                nlohmann::json j = ToJson(keep);
                j["event"] = "deployment";
                out_.Emit(j);
              }
              Redraw(true);
            } else if (event.has_step()) {
              Step(event.step());
            }
          }
          if (ok) {
            reader->Read(&event, reinterpret_cast<void*>(kRead));
          } else {
            reader->Finish(&status, reinterpret_cast<void*>(kFinish));
          }
          break;
        case kFinish:
          finished = true;
          break;
      }
    }
    waiting.Track(nullptr);
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }
    ClearLine();
    if (IsTerminal(current_.state())) break;
    if (Interrupts::Get().interrupted()) return Stopped(absl::StrCat("deployment ", id));
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || Expired(deadline_)) {
      return WaitTimedOut(absl::StrCat("timed out waiting for deployment ", id, " (", DeploymentStateName(current_.state()),
                                       "); it goes on: `ferry app wait ", current_.application_id(), " --env ",
                                       current_.environment_id(), "`"));
    }
    // Named by its plan but not recorded yet (the deployer acknowledges a
    // plan, then records its deployment): asked again shortly.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND && named_by_plan_ &&
        current_.state() == v1::DEPLOYMENT_STATE_UNSPECIFIED && absl::Now() - started_ < kAwaitRecord) {
      Nap(absl::Milliseconds(200));
      continue;
    }
    if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return conn_.Error("deployer", "follow deployment " + id, status);
    }
    // The stream broke (a deployer restart): reconnect for a fresh snapshot.
    if (++failures > 1) Nap(absl::Milliseconds(std::min(5000, 250 * failures)));
  }
  const v1::Deployment& d = current_;
  if (!out_.structured()) {
    Color c = d.state() == v1::DEPLOYMENT_STATE_SUCCEEDED ? Color::kGreen : Color::kRed;
    out_.Line(absl::StrCat(out_.Paint(DeploymentStateName(d.state()), c), ": ", d.id(), " deployed ",
                           ShortSha(d.revision().sha()), " to ", d.environment_id(), " in ",
                           Elapsed(d.start_time(), d.end_time()), d.message().empty() ? "" : " (" + d.message() + ")"));
  }
  if (d.state() == v1::DEPLOYMENT_STATE_SUCCEEDED) return d;
  return WaitFailed(absl::StrCat(
      "deployment ", d.id(), " of ", d.application_id(), " to ", d.environment_id(), " ",
      absl::AsciiStrToLower(DeploymentStateName(d.state())), d.message().empty() ? "" : ": " + d.message(),
      d.rolled_back_by_deployment_id().empty() ? "" : absl::StrCat(" (rolled back by ", d.rolled_back_by_deployment_id(), ")"),
      "; `ferry app history ", d.application_id(), " --env ", d.environment_id(), "` shows what ran"));
}

}  // namespace ferry::cli
