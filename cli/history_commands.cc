// ferry history at|changes, ferry dora: time travel and DORA metrics
// (ferry.v1.Audit's GetDeployedState, ListChanges, GetDoraMetrics; the
// per-object diff from ferry.v1.Deployer's DiffDeployments). docs/history.md.

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

// A moment: an RFC 3339 time, or a duration ago (2h, 30m, 7d).
absl::Status ParseMoment(const std::string& flag, const std::string& text, absl::Time now,
                         google::protobuf::Timestamp* out) {
  absl::Duration d;
  absl::Time t;
  std::string err;
  int64_t days = 0;
  absl::string_view day_text = text;
  if (absl::ConsumeSuffix(&day_text, "d") && absl::SimpleAtoi(day_text, &days) && days >= 0) {
    t = now - absl::Hours(24 * days);
  } else if (absl::ParseDuration(text, &d)) {
    t = now - d;
  } else if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return UsageError(absl::StrCat(flag, " ", text,
                                   ": give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (2h, 30m, 7d)"));
  }
  out->set_seconds(absl::ToUnixSeconds(t));
  return absl::OkStatus();
}

std::string Deployed(const v1::DeployedRevision& d) {
  if (d.deployment_id().empty()) return "-";
  return absl::StrCat(d.deployment_id(), " (", ShortSha(d.commit_sha()), ")");
}

std::string KindText(const std::string& kind) {
  absl::string_view k = kind;
  absl::ConsumePrefix(&k, "DEPLOYMENT_KIND_");
  return k.empty() ? "-" : absl::AsciiStrToLower(std::string(k));
}

struct AtFlags {
  std::string when, app, env;
};

absl::Status At(CliState& state, const AtFlags& f) {
  v1::GetDeployedStateRequest req;
  if (!f.when.empty()) RETURN_IF_ERROR(ParseMoment("TIME", f.when, state.now(), req.mutable_time()));
  req.set_application_id(f.app);
  req.set_environment_id(f.env);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::GetDeployedStateResponse resp;
  FERRY_RPC(*conn, "audit", "read the deployment history",
            conn->Audit().GetDeployedState(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& d : resp.deployed()) out.Emit(d);
    return absl::OkStatus();
  }
  if (resp.deployed().empty()) {
    out.Line(absl::StrCat("nothing was deployed at ", TimeText(resp.time())));
    return absl::OkStatus();
  }
  Table t({{"APP"}, {"ENV"}, {"REVISION"}, {"DEPLOYMENT"}, {"KIND"}, {"ACTOR"}, {"SINCE"}, {"DIGEST", true}});
  for (const auto& d : resp.deployed()) {
    t.Add({d.application_id(), d.environment_id(), ShortSha(d.commit_sha()), d.deployment_id(), KindText(d.kind()),
           ActorName(d.actor()), TimeText(d.time()), d.manifests_digest()});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

struct ChangesFlags {
  std::string since, until, app, env;
  bool diff = false;
};

absl::Status Changes(CliState& state, const ChangesFlags& f) {
  v1::ListChangesRequest req;
  RETURN_IF_ERROR(ParseMoment("--since", f.since, state.now(), req.mutable_start_time()));
  if (!f.until.empty()) RETURN_IF_ERROR(ParseMoment("--until", f.until, state.now(), req.mutable_end_time()));
  req.set_application_id(f.app);
  req.set_environment_id(f.env);
  req.set_page_size(1000);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListChangesResponse all;
  while (true) {
    v1::ListChangesResponse page;
    FERRY_RPC(*conn, "audit", "read the deployment history", conn->Audit().ListChanges(conn->Call().get(), req, &page));
    for (auto& c : *page.mutable_changes()) *all.add_changes() = std::move(c);
    for (auto& t : *page.mutable_targets()) *all.add_targets() = std::move(t);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(all);
    return absl::OkStatus();
  }
  if (all.changes().empty()) {
    out.Line("no deployment finished in that range");
    return absl::OkStatus();
  }
  Table t({{"TIME"}, {"OUTCOME"}, {"APP"}, {"ENV"}, {"DEPLOYMENT"}, {"KIND"}, {"REVISION"}, {"ACTOR"},
           {"MESSAGE", true}});
  for (const auto& c : all.changes()) {
    const v1::DeployedRevision& d = c.deployment();
    const bool ok = c.outcome() == v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED;
    t.Add({TimeText(d.time()), out.Paint(AuditActionName(c.outcome()), ok ? Color::kGreen : Color::kRed),
           d.application_id(), d.environment_id(), d.deployment_id(), KindText(d.kind()), ShortSha(d.commit_sha()),
           ActorName(d.actor()), c.message()});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  if (all.targets().empty()) return absl::OkStatus();
  out.Line("");
  out.Line("live deployment moved:");
  for (const auto& target : all.targets()) {
    out.Line(absl::StrCat("  ", target.application_id(), "/", target.environment_id(), ": ",
                          Deployed(target.before()), " -> ", Deployed(target.after())));
    if (!f.diff) continue;
    v1::DiffDeploymentsRequest dreq;
    dreq.set_from_deployment_id(target.before().deployment_id());
    dreq.set_to_deployment_id(target.after().deployment_id());
    v1::DiffDeploymentsResponse diff;
    FERRY_RPC(*conn, "deployer", "diff the deployments' manifests",
              conn->Deployer().DiffDeployments(conn->Call().get(), dreq, &diff));
    for (const auto& o : diff.objects()) {
      const char* mark = o.change() == v1::OBJECT_CHANGE_ADDED     ? "+"
                         : o.change() == v1::OBJECT_CHANGE_REMOVED ? "-"
                                                                    : "~";
      const std::string ns = o.object().namespace_().empty() ? "" : o.object().namespace_() + "/";
      out.Line(absl::StrCat("    ", mark, " ", o.object().kind(), " ", ns, o.object().name()));
      if (!o.json_patch().empty()) out.Line(absl::StrCat("      ", o.json_patch()));
    }
    out.Line(absl::StrCat("    (", diff.unchanged(), " objects unchanged)"));
  }
  return absl::OkStatus();
}

struct DoraFlags {
  std::string since = "30d", until, app, env;
};

std::string Seconds(double s) {
  if (s <= 0) return "-";
  return Age(absl::UnixEpoch(), absl::UnixEpoch() + absl::Seconds(s));
}

absl::Status Dora(CliState& state, const DoraFlags& f) {
  v1::GetDoraMetricsRequest req;
  RETURN_IF_ERROR(ParseMoment("--since", f.since, state.now(), req.mutable_start_time()));
  if (!f.until.empty()) RETURN_IF_ERROR(ParseMoment("--until", f.until, state.now(), req.mutable_end_time()));
  req.set_application_id(f.app);
  req.set_environment_id(f.env);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::GetDoraMetricsResponse resp;
  FERRY_RPC(*conn, "audit", "compute the DORA metrics", conn->Audit().GetDoraMetrics(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(resp);
    return absl::OkStatus();
  }
  Table t({{"APP"}, {"ENV"}, {"DEPLOYS"}, {"PER DAY"}, {"LEAD TIME"}, {"FAILURE RATE"}, {"TIME TO RESTORE"},
           {"UNRESTORED"}});
  auto add = [&](const std::string& app, const std::string& env, const v1::DoraFigures& d) {
    t.Add({app, env, absl::StrCat(d.deployments()), absl::StrFormat("%.2f", d.deployments_per_day()),
           Seconds(d.lead_time_median_seconds()), absl::StrFormat("%.0f%%", 100 * d.change_failure_rate()),
           Seconds(d.time_to_restore_median_seconds()), absl::StrCat(d.unrestored_failures())});
  };
  for (const auto& d : resp.targets()) add(d.application_id(), d.environment_id(), d);
  add("(all)", "", resp.total());
  out.Line(absl::StrCat("from ", TimeText(resp.start_time()), " to ", TimeText(resp.end_time()),
                        " (lead time and time to restore: medians)"));
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

}  // namespace

void AddHistoryCommands(CLI::App& root, CliState& state) {
  CLI::App* history = Group(root, "history", "Time travel: what was deployed where, and what changed");
  auto af = std::make_shared<AtFlags>();
  CLI::App* at = Leaf(*history, state, "at", "What was deployed in every application and environment at a time",
                      "  ferry history at 2026-12-04T14:03:00Z\n  ferry history at 2h --env prod\n",
                      [&state, af] { return At(state, *af); });
  at->add_option("TIME", af->when, "An RFC 3339 time or a duration ago (default: now)");
  at->add_option("--app", af->app, "Only this application");
  at->add_option("--env", af->env, "Only this environment");
  auto cf = std::make_shared<ChangesFlags>();
  CLI::App* ch = Leaf(*history, state, "changes", "Deployments that finished between two times, and what moved",
                      "  ferry history changes --since 24h\n"
                      "  ferry history changes --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z --diff\n",
                      [&state, cf] { return Changes(state, *cf); });
  ch->add_option("--since", cf->since, "Start: an RFC 3339 time or a duration ago")->required();
  ch->add_option("--until", cf->until, "End: an RFC 3339 time or a duration ago (default: now)");
  ch->add_option("--app", cf->app, "Only this application");
  ch->add_option("--env", cf->env, "Only this environment");
  ch->add_flag("--diff", cf->diff, "Show the per-object diff of the manifests for each target that moved");
  auto df = std::make_shared<DoraFlags>();
  CLI::App* dora = Leaf(root, state, "dora",
                        "DORA metrics: deployment frequency, lead time, change failure rate, time to restore",
                        "  ferry dora\n  ferry dora --since 7d --env prod -o json\n",
                        [&state, df] { return Dora(state, *df); });
  dora->add_option("--since", df->since, "Start: an RFC 3339 time or a duration ago")->capture_default_str();
  dora->add_option("--until", df->until, "End: an RFC 3339 time or a duration ago (default: now)");
  dora->add_option("--app", df->app, "Only this application");
  dora->add_option("--env", df->env, "Only this environment");
}

}  // namespace ferry::cli
