// ferry status: every application x environment on one screen.

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/fleet_snapshot.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

std::vector<const v1::LiveObject*> Drifted(const StatusRow& r) {
  std::vector<const v1::LiveObject*> out;
  if (!r.live) return out;
  for (const auto& o : r.live->objects()) {
    if (o.drift() == v1::DRIFT_STATUS_MODIFIED || o.drift() == v1::DRIFT_STATUS_MISSING) out.push_back(&o);
  }
  return out;
}

// The planner's rule (its GetApplication): the newest plan succeeded ->
// Synced, failed -> Unknown, anything else -> OutOfSync; and live drift
// makes it OutOfSync whatever the plans say.
v1::SyncStatus SyncOf(const StatusRow& r) {
  if (r.live && r.live->sync_status() == v1::SYNC_STATUS_OUT_OF_SYNC) return v1::SYNC_STATUS_OUT_OF_SYNC;
  if (r.app_status.sync_status() != v1::SYNC_STATUS_UNSPECIFIED) return r.app_status.sync_status();
  if (!r.latest_plan) return v1::SYNC_STATUS_UNKNOWN;
  switch (r.latest_plan->state()) {
    case v1::PLAN_STATE_SUCCEEDED: return v1::SYNC_STATUS_SYNCED;
    case v1::PLAN_STATE_FAILED: return v1::SYNC_STATUS_UNKNOWN;
    default: return v1::SYNC_STATUS_OUT_OF_SYNC;
  }
}

v1::HealthStatus HealthOf(const StatusRow& r) {
  if (!r.live || r.live->objects().empty()) return r.live && !r.live->revision().sha().empty() ? r.live->health() : v1::HEALTH_STATUS_MISSING;
  return r.live->health();
}

std::string DeployedSha(const StatusRow& r) {
  if (r.live && !r.live->revision().sha().empty()) return r.live->revision().sha();
  return r.app_status.deployed_sha();
}

std::string Why(const v1::Plan& p) {
  switch (p.state()) {
    case v1::PLAN_STATE_EXECUTING: return "deploying";
    case v1::PLAN_STATE_PENDING: return "awaiting approval";
    default: break;
  }
  switch (p.hold_reason()) {
    case v1::HOLD_REASON_SYNC_WINDOW_CLOSED: return "sync window closed";
    case v1::HOLD_REASON_PROMOTION_GATE: return "waiting for promotion";
    case v1::HOLD_REASON_DEPENDENCY: return "waiting for dependencies";
    case v1::HOLD_REASON_PINNED: return "pinned: needs approval";
    case v1::HOLD_REASON_AWAITING_APPROVAL: return "awaiting approval";
    case v1::HOLD_REASON_CHECKS_PENDING: return "waiting for checks";
    default: return "queued";
  }
}

// The short note of the last column, and its colour.
std::pair<std::string, Color> Note(const StatusRow& r) {
  if (!r.waiting.empty()) {
    const v1::Plan& p = r.waiting.front();
    std::string more = r.waiting.size() > 1 ? absl::StrCat(" +", r.waiting.size() - 1) : "";
    return {absl::StrCat(Why(p), " (", p.id(), " → ", ShortSha(p.target_revision().sha()), ")", more),
            p.state() == v1::PLAN_STATE_EXECUTING ? Color::kCyan : Color::kYellow};
  }
  if (r.live && r.live->pin().pinned()) return {absl::StrCat("pinned at ", ShortSha(r.live->pin().sha())), Color::kYellow};
  if (r.last_deployment && (r.last_deployment->state() == v1::DEPLOYMENT_STATE_FAILED ||
                            r.last_deployment->state() == v1::DEPLOYMENT_STATE_ROLLED_BACK)) {
    return {absl::StrCat("last deploy ", absl::AsciiStrToLower(DeploymentStateName(r.last_deployment->state())), " (",
                         r.last_deployment->id(), ")"),
            Color::kRed};
  }
  auto drifted = Drifted(r);
  if (!drifted.empty()) return {absl::StrCat("drift: ", drifted.size(), " object", drifted.size() > 1 ? "s" : ""), Color::kYellow};
  if (!r.live_error.empty()) return {"live state unavailable", Color::kRed};
  return {"", Color::kNone};
}

// What needs a person, with the command that does it.
std::vector<std::string> Advice(const StatusRow& r, const Output& out) {
  std::vector<std::string> lines;
  const std::string where = absl::StrCat(r.application_id, " in ", r.environment_id);
  for (const v1::Plan& p : r.waiting) {
    std::string what = absl::StrCat("plan ", p.id(), " (", where, ", ", ShortSha(p.target_revision().sha()), ")");
    if (p.state() == v1::PLAN_STATE_PENDING) {
      lines.push_back(absl::StrCat(what, " is waiting for approval in ", r.environment_id, ": run `ferry plan approve ",
                                   p.id(), "` (`ferry plan show ", p.id(), "` for its diff)"));
    } else if (p.state() == v1::PLAN_STATE_APPROVED) {
      lines.push_back(absl::StrCat(what, " is approved and held: ",
                                   p.hold_message().empty() ? Why(p) : p.hold_message()));
    } else if (p.state() == v1::PLAN_STATE_EXECUTING) {
      lines.push_back(absl::StrCat(what, " is deploying",
                                   p.deployment_id().empty() ? "" : absl::StrCat(" as ", p.deployment_id()),
                                   ": `ferry app wait ", r.application_id, " --env ", r.environment_id, "` follows it"));
    }
  }
  if (r.live && r.live->pin().pinned()) {
    const auto& pin = r.live->pin();
    lines.push_back(absl::StrCat(where, " is pinned at ", ShortSha(pin.sha()), " by ", ActorName(pin.actor()),
                                 pin.reason().empty() ? "" : absl::StrCat(" (", pin.reason(), ")"),
                                 ": `ferry app unpin ", r.application_id, " --env ", r.environment_id,
                                 "` lets it follow ", r.ref, " again"));
  }
  if (r.last_deployment && (r.last_deployment->state() == v1::DEPLOYMENT_STATE_FAILED ||
                            r.last_deployment->state() == v1::DEPLOYMENT_STATE_ROLLED_BACK)) {
    lines.push_back(absl::StrCat("the last deployment of ", where, " ",
                                 absl::AsciiStrToLower(DeploymentStateName(r.last_deployment->state())), " (",
                                 r.last_deployment->id(), r.last_deployment->message().empty() ? "" : ": ",
                                 r.last_deployment->message(), "): `ferry app history ", r.application_id, " --env ",
                                 r.environment_id, "`"));
  }
  auto drifted = Drifted(r);
  if (!drifted.empty()) {
    std::vector<std::string> names;
    for (const auto* o : drifted) names.push_back(absl::StrCat(ObjectName(o->object()), " ", absl::AsciiStrToLower(DriftName(o->drift()))));
    if (names.size() > 3) names.resize(3), names.push_back("…");
    lines.push_back(absl::StrCat(where, " drifted from Git (", absl::StrJoin(names, ", "), ")",
                                 r.self_heal ? "; self-heal will correct it"
                                             : absl::StrCat(": `ferry app sync ", r.application_id, " --env ",
                                                            r.environment_id, "` puts Git's version back")));
  }
  if (!r.live_error.empty()) lines.push_back(absl::StrCat(where, ": ", r.live_error));
  (void)out;
  return lines;
}

nlohmann::json RowJson(const StatusRow& r) {
  nlohmann::json j;
  j["application"] = r.application_id;
  j["environment"] = r.environment_id;
  j["sync"] = SyncName(SyncOf(r));
  j["health"] = HealthName(HealthOf(r));
  nlohmann::json rev = {{"sha", DeployedSha(r)}};
  if (r.revision) {
    rev["subject"] = Subject(r.revision->message());
    rev["author"] = r.revision->author().name();
    rev["commit_time"] = TimeText(r.revision->commit_time());
    rev["ref"] = r.revision->ref();
  }
  j["revision"] = rev;
  if (r.last_succeeded) {
    j["deployed_time"] = TimeText(r.last_succeeded->end_time());
    j["deployment_id"] = r.last_succeeded->id();
  }
  if (r.last_deployment) {
    j["last_deployment"] = {{"id", r.last_deployment->id()},
                            {"state", DeploymentStateName(r.last_deployment->state())},
                            {"message", r.last_deployment->message()}};
  }
  if (r.live && r.live->pin().pinned()) {
    j["pin"] = {{"sha", r.live->pin().sha()}, {"actor", r.live->pin().actor().id()}, {"reason", r.live->pin().reason()}};
  }
  nlohmann::json drift = nlohmann::json::array();
  for (const auto* o : Drifted(r)) {
    drift.push_back({{"object", ObjectName(o->object())}, {"drift", DriftName(o->drift())}, {"message", o->drift_message()}});
  }
  j["drift"] = drift;
  nlohmann::json waiting = nlohmann::json::array();
  for (const v1::Plan& p : r.waiting) {
    waiting.push_back({{"plan_id", p.id()},
                       {"state", PlanStateName(p.state())},
                       {"hold_reason", p.hold_reason() == v1::HOLD_REASON_UNSPECIFIED ? "" : HoldName(p.hold_reason())},
                       {"hold_message", p.hold_message()},
                       {"why", Why(p)},
                       {"target_sha", p.target_revision().sha()}});
  }
  j["waiting"] = waiting;
  j["note"] = Note(r).first;
  return j;
}

struct StatusFlags {
  std::string app;
  std::string env;
};

absl::Status Status(CliState& state, const StatusFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  ASSIGN_OR_RETURN(FleetSnapshot snap, ReadFleet(*conn, SnapshotFilter{f.app, f.env}));
  const Output& out = state.out();
  if (out.structured()) {
    for (const StatusRow& r : snap.rows) out.Emit(RowJson(r));
    for (const std::string& w : snap.warnings) std::fprintf(stderr, "ferry: %s\n", w.c_str());
    return absl::OkStatus();
  }
  if (snap.rows.empty()) {
    out.Line("no applications yet: `ferry config apply --repo REPO --path ferry.yaml` declares them from Git, "
             "`ferry app create` makes one");
    return absl::OkStatus();
  }
  Table t({{"APP"}, {"ENV"}, {"SYNC"}, {"HEALTH"}, {"REVISION"}, {"AUTHOR"}, {"AGE"}, {"REF", true},
           {"DEPLOYMENT", true}, {"NOTE"}});
  int healthy = 0, attention = 0;
  std::vector<std::string> advice;
  for (const StatusRow& r : snap.rows) {
    v1::SyncStatus sync = SyncOf(r);
    v1::HealthStatus health = HealthOf(r);
    std::string sha = DeployedSha(r);
    std::string revision = sha.empty() ? "-" : ShortSha(sha);
    if (r.revision) revision = absl::StrCat(revision, " ", Truncate(Subject(r.revision->message()), out.wide() ? 60 : 32));
    std::string author = r.revision ? Truncate(r.revision->author().name(), 20) : "-";
    std::string age = r.last_succeeded ? Age(r.last_succeeded->end_time(), state.now())
                      : r.revision     ? Age(r.revision->commit_time(), state.now())
                                       : "-";
    auto [note, note_color] = Note(r);
    t.Add({r.application_id, r.environment_id, out.Paint(SyncName(sync), SyncColor(sync)),
           out.Paint(HealthName(health), HealthColor(health)), revision, author, age, r.ref,
           r.last_succeeded ? r.last_succeeded->id() : "-", out.Paint(note, note_color)});
    if (sync == v1::SYNC_STATUS_SYNCED && health == v1::HEALTH_STATUS_HEALTHY && note.empty()) ++healthy;
    std::vector<std::string> a = Advice(r, out);
    if (!a.empty()) ++attention;
    advice.insert(advice.end(), a.begin(), a.end());
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  out.Line("");
  out.Line(absl::StrCat(snap.applications, " application", snap.applications == 1 ? "" : "s", " in ",
                        snap.environments, " environment", snap.environments == 1 ? "" : "s", ": ", healthy, " of ",
                        snap.rows.size(), " synced and healthy",
                        attention > 0 ? absl::StrCat(", ", attention, " need", attention == 1 ? "s" : "", " attention:")
                                      : "."));
  for (const std::string& a : advice) out.Line("  • " + a);
  for (const std::string& w : snap.warnings) std::fprintf(stderr, "ferry: %s\n", w.c_str());
  return absl::OkStatus();
}

}  // namespace

void AddStatusCommand(CLI::App& app, CliState& state) {
  auto f = std::make_shared<StatusFlags>();
  CLI::App* s = Leaf(app, state, "status",
                     "Every application in every environment: sync, health, deployed commit, what waits and why",
                     "  ferry status\n  ferry status --env prod -o wide\n  ferry status -o json | jq 'select(.health != \"Healthy\")'\n",
                     [&state, f] { return Status(state, *f); });
  s->add_option("--app", f->app, "Only this application");
  s->add_option("--env", f->env, "Only this environment");
}

}  // namespace ferry::cli
