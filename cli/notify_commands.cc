// ferry notify list|create|rm|deliveries|test (the notifier's subscriptions
// and deliveries; docs/notifier.md).

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

constexpr char kEvents[] =
    "deployment_started, deployment_succeeded, deployment_failed, deployment_rolled_back, "
    "plan_waiting_for_approval, drift_detected, drift_healed, signature_rejected, webhook_rejected, access_denied";

// "deployment_failed" or "deployment-failed" -> the enum.
absl::StatusOr<v1::NotificationEvent> ParseEvent(const std::string& flag, const std::string& word) {
  std::string name = absl::AsciiStrToUpper(word);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  v1::NotificationEvent e;
  if (!v1::NotificationEvent_Parse("NOTIFICATION_EVENT_" + name, &e) || e == v1::NOTIFICATION_EVENT_UNSPECIFIED) {
    return UsageError(absl::StrCat(flag, " ", word, ": not a notification event (", kEvents, ")"));
  }
  return e;
}

std::string EventText(int e) {
  std::string name = v1::NotificationEvent_Name(static_cast<v1::NotificationEvent>(e));
  return name.size() > 19 ? absl::AsciiStrToLower(name.substr(19)) : "-";
}

std::string SinkText(const v1::Sink& k) {
  const std::string kind = absl::AsciiStrToLower(v1::SinkKind_Name(k.kind()).substr(10));
  if (k.kind() == v1::SINK_KIND_EMAIL) return absl::StrCat(kind, " to ", absl::StrJoin(k.to(), ","));
  if (!k.url().empty()) {
    // Scheme and host only: a URL's path may hold its secret.
    size_t start = k.url().find("://");
    size_t end = start == std::string::npos ? std::string::npos : k.url().find_first_of("/?#", start + 3);
    return absl::StrCat(kind, " ", k.url().substr(0, end));
  }
  return kind + " (url from a secret)";
}

// A secret reference from --x-file / --x-env: at most one.
absl::StatusOr<std::optional<v1::SecretRef>> RefOf(const std::string& name, const std::string& file,
                                                   const std::string& env) {
  if (!file.empty() && !env.empty()) return UsageError(absl::StrCat("give --", name, "-file or --", name, "-env, not both"));
  if (file.empty() && env.empty()) return std::nullopt;
  v1::SecretRef ref;
  if (!file.empty()) ref.set_file(file);
  if (!env.empty()) ref.set_env(env);
  return ref;
}

absl::Status List(CliState& state) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListSubscriptionsResponse resp;
  FERRY_RPC(*conn, "notifier", "list subscriptions",
            conn->Notifier().ListSubscriptions(conn->Call().get(), v1::ListSubscriptionsRequest(), &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& s : resp.subscriptions()) out.Emit(s);
    return absl::OkStatus();
  }
  Table t({{"NAME"}, {"SOURCE"}, {"APP"}, {"ENV"}, {"EVENTS"}, {"SINK"}});
  for (const auto& s : resp.subscriptions()) {
    std::vector<std::string> events;
    for (int e : s.events()) events.push_back(EventText(e));
    t.Add({s.name(), s.source(), s.application_id().empty() ? "*" : s.application_id(),
           s.environment_id().empty() ? "*" : s.environment_id(), absl::StrJoin(events, ","), SinkText(s.sink())});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

struct CreateFlags {
  std::string name, app, env, tmpl, sink, url, url_file, url_env, hmac_file, hmac_env, smtp_url, smtp_user,
      smtp_password_file, smtp_password_env, from;
  std::vector<std::string> events, to;
};

absl::Status Create(CliState& state, const CreateFlags& f) {
  v1::CreateSubscriptionRequest req;
  v1::Subscription* s = req.mutable_subscription();
  s->set_name(f.name);
  s->set_application_id(f.app);
  s->set_environment_id(f.env);
  s->set_template_(f.tmpl);
  if (f.events.empty()) return UsageError(absl::StrCat("--event: name at least one (", kEvents, ")"));
  for (const std::string& e : f.events) {
    ASSIGN_OR_RETURN(v1::NotificationEvent ev, ParseEvent("--event", e));
    s->add_events(ev);
  }
  v1::Sink* k = s->mutable_sink();
  v1::SinkKind kind;
  if (!v1::SinkKind_Parse("SINK_KIND_" + absl::AsciiStrToUpper(f.sink), &kind) || kind == v1::SINK_KIND_UNSPECIFIED) {
    return UsageError("--sink " + f.sink + ": one of webhook, slack, teams, email");
  }
  k->set_kind(kind);
  k->set_url(f.url);
  ASSIGN_OR_RETURN(std::optional<v1::SecretRef> url_ref, RefOf("url-secret", f.url_file, f.url_env));
  if (url_ref) *k->mutable_url_secret() = *url_ref;
  ASSIGN_OR_RETURN(std::optional<v1::SecretRef> hmac, RefOf("hmac-secret", f.hmac_file, f.hmac_env));
  if (hmac) *k->mutable_hmac_secret() = *hmac;
  k->set_smtp_url(f.smtp_url);
  k->set_smtp_username(f.smtp_user);
  ASSIGN_OR_RETURN(std::optional<v1::SecretRef> pw, RefOf("smtp-password", f.smtp_password_file, f.smtp_password_env));
  if (pw) *k->mutable_smtp_password() = *pw;
  k->set_from(f.from);
  for (const std::string& t : f.to) k->add_to(t);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::Subscription made;
  FERRY_RPC(*conn, "notifier", "create subscription " + f.name,
            conn->Notifier().CreateSubscription(conn->Call().get(), req, &made));
  if (state.out().structured()) {
    state.out().Emit(made);
    return absl::OkStatus();
  }
  state.out().Line(absl::StrCat("subscription ", made.name(), " created: ", SinkText(made.sink()),
                                " (`ferry notify test ", made.name(), "` sends it a test)"));
  return absl::OkStatus();
}

absl::Status Remove(CliState& state, const std::string& name) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::DeleteSubscriptionRequest req;
  req.set_name(name);
  v1::DeleteSubscriptionResponse resp;
  FERRY_RPC(*conn, "notifier", "delete subscription " + name,
            conn->Notifier().DeleteSubscription(conn->Call().get(), req, &resp));
  state.out().Line("subscription " + name + " deleted");
  return absl::OkStatus();
}

struct DeliveriesFlags {
  bool failed = false, pending = false;
  std::string subscription;
  int limit = 50;
};

std::string StateText(v1::DeliveryState s) {
  switch (s) {
    case v1::DELIVERY_STATE_PENDING:
      return "Pending";
    case v1::DELIVERY_STATE_DELIVERED:
      return "Delivered";
    case v1::DELIVERY_STATE_FAILED:
      return "Failed";
    default:
      return "-";
  }
}

absl::Status Deliveries(CliState& state, const DeliveriesFlags& f) {
  if (f.failed && f.pending) return UsageError("give --failed or --pending, not both");
  if (f.limit < 1) return UsageError("--limit: at least 1");
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListDeliveriesRequest req;
  req.set_state(f.failed ? v1::DELIVERY_STATE_FAILED : f.pending ? v1::DELIVERY_STATE_PENDING
                                                                 : v1::DELIVERY_STATE_UNSPECIFIED);
  req.set_subscription(f.subscription);
  std::vector<v1::Delivery> got;
  while (static_cast<int>(got.size()) < f.limit) {
    req.set_page_size(std::min(1000, f.limit - static_cast<int>(got.size())));
    v1::ListDeliveriesResponse resp;
    FERRY_RPC(*conn, "notifier", "list deliveries", conn->Notifier().ListDeliveries(conn->Call().get(), req, &resp));
    got.insert(got.end(), resp.deliveries().begin(), resp.deliveries().end());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& d : got) out.Emit(d);
    return absl::OkStatus();
  }
  Table t({{"ID"}, {"SUBSCRIPTION"}, {"EVENT"}, {"SEQ"}, {"STATE"}, {"ATTEMPTS"}, {"WHEN"}, {"TARGET", true},
           {"LAST ERROR"}});
  int failed = 0;
  for (const auto& d : got) {
    if (d.state() == v1::DELIVERY_STATE_FAILED) ++failed;
    std::string when = "-";
    if (d.state() == v1::DELIVERY_STATE_DELIVERED) when = Age(d.delivered_time(), state.now()) + " ago";
    if (d.state() == v1::DELIVERY_STATE_PENDING) when = "next " + TimeText(d.next_attempt_time());
    t.Add({absl::StrCat(d.id()), d.subscription(), d.event() == v1::NOTIFICATION_EVENT_UNSPECIFIED ? "commit status" : EventText(d.event()),
           absl::StrCat(d.event_sequence()), StateText(d.state()), absl::StrCat(d.attempts()), when, d.target(),
           d.last_error().empty() ? "-" : d.last_error()});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  if (failed > 0 && !f.failed) {
    std::fprintf(stderr, "%d failed: `ferry notify deliveries --failed` lists them (-o wide: where to)\n", failed);
  }
  return absl::OkStatus();
}

absl::Status Test(CliState& state, const std::string& name, const std::string& event) {
  v1::TestSubscriptionRequest req;
  req.set_name(name);
  if (!event.empty()) {
    ASSIGN_OR_RETURN(v1::NotificationEvent e, ParseEvent("--event", event));
    req.set_event(e);
  }
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::TestSubscriptionResponse resp;
  FERRY_RPC(*conn, "notifier", "send a test to subscription " + name,
            conn->Notifier().TestSubscription(conn->Call().get(), req, &resp));
  if (state.out().structured()) {
    state.out().Emit(resp);
    return absl::OkStatus();
  }
  state.out().Line(absl::StrCat("test notification delivered to ", resp.target(), " (X-Ferry-Delivery: ",
                                resp.delivery_id(), ")"));
  return absl::OkStatus();
}

}  // namespace

void AddNotifyCommands(CLI::App& root, CliState& state) {
  CLI::App* notify = Group(root, "notify", "Notification subscriptions and their deliveries (the notifier)");
  Leaf(*notify, state, "list", "Subscriptions: by API, from the notifier's file, declared in ferry.yaml",
       "  ferry notify list\n  ferry notify list -o yaml\n", [&state] { return List(state); });

  auto cf = std::make_shared<CreateFlags>();
  CLI::App* c = Leaf(*notify, state, "create", "Subscribe a sink to events (admins)",
                     "  ferry notify create prod-failures --env prod --event deployment_failed,deployment_rolled_back \\\n"
                     "      --sink slack --url-secret-file slack.url\n"
                     "  ferry notify create hook --event deployment_succeeded --sink webhook \\\n"
                     "      --url https://hooks.example.com/ferry --hmac-secret-env FERRY_SECRET_HOOK_KEY\n"
                     "  ferry notify create approvals --event plan_waiting_for_approval --sink email \\\n"
                     "      --smtp-url smtps://smtp.example.com:465 --from ferry@example.com --to ops@example.com\n",
                     [&state, cf] { return Create(state, *cf); });
  c->add_option("name", cf->name, "Subscription name (a lowercase DNS label)")->required();
  c->add_option("--event", cf->events, std::string("Events (repeat or comma-separate): ") + kEvents)->delimiter(',');
  c->add_option("--app", cf->app, "Only this application's events");
  c->add_option("--env", cf->env, "Only this environment's events");
  c->add_option("--template", cf->tmpl, "Message with {{field}} placeholders (docs/notifier.md)");
  c->add_option("--sink", cf->sink, "webhook, slack, teams or email")->required();
  c->add_option("--url", cf->url, "Webhook URL (Slack and Teams URLs are secrets: use --url-secret-*)");
  c->add_option("--url-secret-file", cf->url_file, "The URL from this file of the notifier's --secrets-dir");
  c->add_option("--url-secret-env", cf->url_env, "The URL from this variable of the notifier's environment");
  c->add_option("--hmac-secret-file", cf->hmac_file, "Webhook: the HMAC key from this file (notifier's --secrets-dir)");
  c->add_option("--hmac-secret-env", cf->hmac_env, "Webhook: the HMAC key from this variable");
  c->add_option("--smtp-url", cf->smtp_url, "Email: smtps://host:465 or smtp://host:587");
  c->add_option("--smtp-user", cf->smtp_user, "Email: login");
  c->add_option("--smtp-password-file", cf->smtp_password_file, "Email: the password from this file");
  c->add_option("--smtp-password-env", cf->smtp_password_env, "Email: the password from this variable");
  c->add_option("--from", cf->from, "Email: sender address");
  c->add_option("--to", cf->to, "Email: recipients (repeat or comma-separate)")->delimiter(',');

  auto name = std::make_shared<std::string>();
  Leaf(*notify, state, "rm", "Delete an API subscription (admins)", "  ferry notify rm prod-failures\n",
       [&state, name] { return Remove(state, *name); })
      ->add_option("name", *name, "Subscription name")
      ->required();

  auto df = std::make_shared<DeliveriesFlags>();
  CLI::App* d = Leaf(*notify, state, "deliveries", "What was sent where, newest first, with failures and why",
                     "  ferry notify deliveries --failed -o wide\n  ferry notify deliveries --subscription prod-failures\n",
                     [&state, df] { return Deliveries(state, *df); });
  d->add_flag("--failed", df->failed, "Only deliveries given up on");
  d->add_flag("--pending", df->pending, "Only deliveries not made yet (being retried)");
  d->add_option("--subscription", df->subscription, "Only this subscription's");
  d->add_option("--limit", df->limit, "At most this many (default 50)");

  auto tname = std::make_shared<std::string>();
  auto tevent = std::make_shared<std::string>();
  CLI::App* t = Leaf(*notify, state, "test", "Send a subscription a test notification now (admins)",
                     "  ferry notify test prod-failures\n  ferry notify test web/deploys --event deployment_succeeded\n",
                     [&state, tname, tevent] { return Test(state, *tname, *tevent); });
  t->add_option("name", *tname, "Subscription name")->required();
  t->add_option("--event", *tevent, "Which kind of event to pretend (default: its first)");
}

}  // namespace ferry::cli
