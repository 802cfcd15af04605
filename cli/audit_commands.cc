// ferry audit query|tail|verify|export

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "cli/interrupt.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

struct FilterFlags {
  std::string app, env, actor, since, until, repo, plan, deployment, service, sha;
  std::vector<std::string> actions;
};

void AddFilterFlags(CLI::App* c, FilterFlags& f) {
  c->add_option("--app", f.app, "Only events about this application");
  c->add_option("--env", f.env, "Only events about this environment");
  c->add_option("--actor", f.actor, "Only events by this actor (admin, ferry, deployer, ...)");
  c->add_option("--since", f.since, "Only events newer than this: a duration (2h, 30m) or an RFC 3339 time");
  c->add_option("--until", f.until, "Only events older than this: a duration ago or an RFC 3339 time");
  c->add_option("--action", f.actions, "Only these actions (plan-approved, DEPLOYMENT_FAILED, ...); comma-separated")->delimiter(',');
  c->add_option("--repo", f.repo, "Only events about this repository");
  c->add_option("--plan", f.plan, "Only events about this plan");
  c->add_option("--deployment", f.deployment, "Only events about this deployment");
  c->add_option("--sha", f.sha, "Only events about this commit (full sha)");
  c->add_option("--service", f.service, "Only events from this service");
}

absl::Status ParseWhen(const std::string& flag, const std::string& text, absl::Time now, google::protobuf::Timestamp* out) {
  absl::Duration d;
  absl::Time t;
  std::string err;
  if (absl::ParseDuration(text, &d)) {
    t = now - d;
  } else if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return UsageError(absl::StrCat(flag, " ", text, ": give a duration (2h, 30m, 1h30m) or an RFC 3339 time (2026-01-02T15:04:05Z)"));
  }
  out->set_seconds(absl::ToUnixSeconds(t));
  return absl::OkStatus();
}

absl::StatusOr<v1::EventFilter> BuildFilter(const FilterFlags& f, absl::Time now) {
  v1::EventFilter filter;
  filter.set_application_id(f.app);
  filter.set_environment_id(f.env);
  filter.set_actor(f.actor);
  filter.set_repository_id(f.repo);
  filter.set_plan_id(f.plan);
  filter.set_deployment_id(f.deployment);
  filter.set_commit_sha(f.sha);
  filter.set_service(f.service);
  if (!f.since.empty()) RETURN_IF_ERROR(ParseWhen("--since", f.since, now, filter.mutable_start_time()));
  if (!f.until.empty()) RETURN_IF_ERROR(ParseWhen("--until", f.until, now, filter.mutable_end_time()));
  for (const std::string& a : f.actions) {
    std::optional<v1::AuditAction> action = ParseAuditAction(a);
    if (!action || *action == v1::AUDIT_ACTION_UNSPECIFIED) {
      return UsageError(absl::StrCat("--action ", a, ": not an audit action (e.g. plan-approved, deployment-failed, "
                                     "access-denied; docs/audit.md lists them)"));
    }
    filter.add_actions(*action);
  }
  return filter;
}

std::string SubjectText(const v1::Subject& s) {
  std::vector<std::string> parts;
  if (!s.application_id().empty()) {
    parts.push_back(s.environment_id().empty() ? s.application_id() : absl::StrCat(s.application_id(), "/", s.environment_id()));
  } else if (!s.environment_id().empty()) {
    parts.push_back("env " + s.environment_id());
  }
  if (!s.repository_id().empty() && s.application_id().empty()) parts.push_back("repo " + s.repository_id());
  if (!s.plan_id().empty()) parts.push_back(s.plan_id());
  if (!s.deployment_id().empty()) parts.push_back(s.deployment_id());
  if (!s.commit_sha().empty()) parts.push_back(ShortSha(s.commit_sha()));
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

Color ActionColor(v1::AuditAction a) {
  switch (a) {
    case v1::AUDIT_ACTION_DEPLOYMENT_FAILED:
    case v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK:
    case v1::AUDIT_ACTION_ACCESS_DENIED:
    case v1::AUDIT_ACTION_SIGNATURE_REJECTED:
    case v1::AUDIT_ACTION_RENDER_FAILED:
    case v1::AUDIT_ACTION_FETCH_FAILED:
    case v1::AUDIT_ACTION_REVISION_REFUSED:
    case v1::AUDIT_ACTION_WEBHOOK_REJECTED: return Color::kRed;
    case v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED:
    case v1::AUDIT_ACTION_PLAN_APPROVED: return Color::kGreen;
    case v1::AUDIT_ACTION_DRIFT_DETECTED:
    case v1::AUDIT_ACTION_PINNED: return Color::kYellow;
    default: return Color::kNone;
  }
}

Table EventTable() {
  return Table({{"SEQ", true}, {"TIME"}, {"SERVICE", true}, {"ACTOR"}, {"ACTION"}, {"SUBJECT"}, {"MESSAGE"}});
}

void AddEvent(Table& t, const v1::Event& e, const Output& out) {
  t.Add({std::to_string(e.sequence()), TimeText(e.time()), e.service(), ActorName(e.actor()),
         out.Paint(AuditActionName(e.action()), ActionColor(e.action())), SubjectText(e.subject()),
         out.wide() ? e.message() : Truncate(e.message(), 70)});
}

struct QueryFlags {
  FilterFlags filter;
  int limit = 50;
  bool oldest_first = false;
};

absl::Status Query(CliState& state, const QueryFlags& f) {
  ASSIGN_OR_RETURN(v1::EventFilter filter, BuildFilter(f.filter, state.now()));
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::QueryRequest req;
  *req.mutable_filter() = filter;
  req.set_order(f.oldest_first ? v1::SORT_ORDER_ASCENDING : v1::SORT_ORDER_DESCENDING);
  req.set_page_size(std::min(std::max(f.limit, 1), 1000));
  v1::QueryResponse resp;
  FERRY_RPC(*conn, "audit", "query the audit trail", conn->Audit().Query(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  std::vector<const v1::Event*> events;
  for (const auto& e : resp.events()) events.push_back(&e);
  // The newest N, shown oldest first like a log.
  if (!f.oldest_first) std::reverse(events.begin(), events.end());
  if (out.structured()) {
    for (const auto* e : events) out.Emit(*e);
    return absl::OkStatus();
  }
  if (events.empty()) {
    out.Line("no events match");
    return absl::OkStatus();
  }
  Table t = EventTable();
  for (const auto* e : events) AddEvent(t, *e, out);
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

struct TailFlags {
  FilterFlags filter;
  int lines = 10;
  bool follow = false;
};

absl::Status Tail(CliState& state, const TailFlags& f) {
  ASSIGN_OR_RETURN(v1::EventFilter filter, BuildFilter(f.filter, state.now()));
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  const Output& out = state.out();
  int64_t last = 0;
  {
    v1::QueryRequest req;
    *req.mutable_filter() = filter;
    req.set_order(v1::SORT_ORDER_DESCENDING);
    req.set_page_size(std::min(std::max(f.lines, 1), 1000));
    v1::QueryResponse resp;
    FERRY_RPC(*conn, "audit", "query the audit trail", conn->Audit().Query(conn->Call().get(), req, &resp));
    std::vector<const v1::Event*> events;
    if (f.lines > 0) for (const auto& e : resp.events()) events.push_back(&e);
    std::reverse(events.begin(), events.end());
    for (const auto& e : resp.events()) last = std::max(last, e.sequence());
    if (out.structured()) {
      for (const auto* e : events) out.Emit(*e);
    } else {
      Table t = EventTable();
      for (const auto* e : events) AddEvent(t, *e, out);
      std::string text = t.Render(out.wide());
      std::fputs(text.c_str(), out.stream());
      std::fflush(out.stream());
    }
  }
  if (!f.follow) return absl::OkStatus();
  // Then live, one event a line, until Ctrl-C. `last` is the newest matching
  // event; events after it that do not match are skipped by the server.
  Interrupts::Waiting waiting;
  while (!Interrupts::Get().interrupted()) {
    std::unique_ptr<grpc::ClientContext> ctx = conn->Call(absl::InfiniteDuration());
    waiting.Track(ctx.get());
    v1::TailRequest req;
    req.set_after_sequence(last);
    if (last == 0) req.set_from_head(true);
    *req.mutable_filter() = filter;
    auto reader = conn->Audit().Tail(ctx.get(), req);
    v1::TailResponse ev;
    while (reader->Read(&ev)) {
      last = std::max(last, ev.event().sequence());
      if (out.structured()) {
        out.Emit(ev.event());
      } else {
        const v1::Event& e = ev.event();
        out.Line(absl::StrCat(TimeText(e.time()), "  ", ActorName(e.actor()), "  ",
                              out.Paint(AuditActionName(e.action()), ActionColor(e.action())), "  ", SubjectText(e.subject()),
                              "  ", e.message()));
      }
    }
    grpc::Status s = reader->Finish();
    waiting.Track(nullptr);
    if (Interrupts::Get().interrupted()) break;
    if (!s.ok() && s.error_code() != grpc::StatusCode::UNAVAILABLE) return conn->Error("audit", "follow the audit trail", s);
    absl::SleepFor(absl::Seconds(1));  // the stream broke: reconnect after `last`
  }
  return absl::OkStatus();
}

struct VerifyFlags {
  int64_t from = 0, to = 0;
};

absl::Status Verify(CliState& state, const VerifyFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::VerifyChainRequest req;
  req.set_from_sequence(f.from);
  req.set_to_sequence(f.to);
  v1::VerifyChainResponse resp;
  FERRY_RPC(*conn, "audit", "verify the audit chain", conn->Audit().VerifyChain(conn->Call(absl::Minutes(10)).get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(resp);
  } else if (resp.ok()) {
    out.Line(absl::StrCat(out.Paint("OK", Color::kGreen), ": the audit chain is intact: ", resp.events_verified(),
                          " events (", resp.from_sequence(), "..", resp.to_sequence(), ") and ", resp.checkpoints_verified(),
                          " signed checkpoint", resp.checkpoints_verified() == 1 ? "" : "s", " verified; head hash ",
                          resp.head_hash()));
  } else {
    out.Line(absl::StrCat(out.Paint("BROKEN", Color::kRed), ": the audit chain fails at sequence ", resp.first_broken_sequence(),
                          ": ", resp.reason(), " (checked ", resp.from_sequence(), "..", resp.to_sequence(), ")"));
  }
  if (!resp.ok()) {
    return absl::DataLossError(absl::StrCat("the audit chain is broken at sequence ", resp.first_broken_sequence(),
                                            ": keep the database as it is and see docs/audit.md"));
  }
  return absl::OkStatus();
}

struct ExportFlags {
  FilterFlags filter;
  int64_t from = 0, to = 0;
};

absl::Status Export(CliState& state, const ExportFlags& f) {
  ASSIGN_OR_RETURN(v1::EventFilter filter, BuildFilter(f.filter, state.now()));
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ExportRequest req;
  *req.mutable_filter() = filter;
  req.set_from_sequence(f.from);
  req.set_to_sequence(f.to);
  Interrupts::Waiting waiting;
  std::unique_ptr<grpc::ClientContext> ctx = conn->Call(absl::Hours(1));
  waiting.Track(ctx.get());
  auto reader = conn->Audit().Export(ctx.get(), req);
  v1::ExportResponse line;
  int64_t n = 0;
  // The lines exactly as the server wrote them: they carry prev_hash and
  // hash, and tests/audit/verify_export.py re-verifies them.
  while (reader->Read(&line)) {
    std::fputs(line.json_line().c_str(), stdout);
    std::fputc('\n', stdout);
    ++n;
  }
  grpc::Status s = reader->Finish();
  waiting.Track(nullptr);
  std::fflush(stdout);
  if (Interrupts::Get().interrupted()) return Interrupted(absl::StrCat("export stopped after ", n, " events"));
  FERRY_RPC(*conn, "audit", "export the audit trail", s);
  std::fprintf(stderr, "ferry: exported %lld events\n", static_cast<long long>(n));
  return absl::OkStatus();
}

}  // namespace

void AddAuditCommands(CLI::App& root, CliState& state) {
  CLI::App* audit = Group(root, "audit", "The audit trail: who did what, when; tamper-evident");
  auto qf = std::make_shared<QueryFlags>();
  CLI::App* q = Leaf(*audit, state, "query", "Events matching filters (the newest --limit, oldest first)",
                     "  ferry audit query --app hello --since 2h\n  ferry audit query --actor alice --action plan-approved -o json\n",
                     [&state, qf] { return Query(state, *qf); });
  AddFilterFlags(q, qf->filter);
  q->add_option("--limit", qf->limit, "How many")->capture_default_str();
  q->add_flag("--oldest-first", qf->oldest_first, "The oldest matching events instead of the newest");
  auto tf = std::make_shared<TailFlags>();
  CLI::App* t = Leaf(*audit, state, "tail", "The last events, and with -f new ones as they happen (Ctrl-C stops)",
                     "  ferry audit tail -f\n  ferry audit tail -f --env prod -o json\n",
                     [&state, tf] { return Tail(state, *tf); });
  AddFilterFlags(t, tf->filter);
  t->add_option("-n,--lines", tf->lines, "How many past events first")->capture_default_str();
  t->add_flag("-f,--follow", tf->follow, "Keep following new events");
  auto vf = std::make_shared<VerifyFlags>();
  CLI::App* v = Leaf(*audit, state, "verify", "Recompute the hash chain and check signed checkpoints (exit 1 when broken)",
                     "  ferry audit verify\n", [&state, vf] { return Verify(state, *vf); });
  v->add_option("--from", vf->from, "First sequence (default 1)");
  v->add_option("--to", vf->to, "Last sequence (default the head)");
  auto ef = std::make_shared<ExportFlags>();
  CLI::App* e = Leaf(*audit, state, "export", "Events as JSON lines with their hashes, for storage elsewhere",
                     "  ferry audit export > audit.jsonl\n  ferry audit export --since 24h --app hello\n",
                     [&state, ef] { return Export(state, *ef); });
  AddFilterFlags(e, ef->filter);
  e->add_option("--from", ef->from, "First sequence");
  e->add_option("--to", ef->to, "Last sequence");
}

}  // namespace ferry::cli
