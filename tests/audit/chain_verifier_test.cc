// Chain verification against an in-memory store of rows: every kind of break
// is found at its sequence with its reason, and splitting the range into
// parallel stretches never changes the outcome.

#include "services/audit/chain_verifier.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {
namespace {

// One stored row: the event as chained, and its details as the database
// would print them.
struct Row {
  v1::Event event;
  std::string details_text;
};

// An EventStore that only streams rows (the rest is not used by the
// verifier).
class RowStore final : public EventStore {
 public:
  std::vector<Row> rows;  // ascending by sequence
  absl::Status fail;      // StreamChain returns it when set

  absl::Status StreamChain(int64_t after, int64_t before,
                           const std::function<bool(const StoredChainRow&)>& visit) override {
    if (!fail.ok()) return fail;
    for (const Row& r : rows) {
      const v1::Event& e = r.event;
      if (e.sequence() <= after) continue;
      if (e.sequence() >= before) break;
      // As PostgresEventStore maps its columns: actor and times always,
      // subject when a field is set, details when stored.
      StoredChainRow row;
      EventFields& f = row.fields;
      f.sequence = e.sequence();
      f.has_time = f.has_append_time = f.has_actor = true;
      f.time_seconds = e.time().seconds();
      f.time_nanos = e.time().nanos();
      f.append_time_seconds = e.append_time().seconds();
      f.append_time_nanos = e.append_time().nanos();
      f.service = e.service();
      f.actor_id = e.actor().id();
      const std::string kind = e.actor().kind() == 0 ? "" : v1::ActorKind_Name(e.actor().kind());
      const std::string action = e.action() == 0 ? "" : v1::AuditAction_Name(e.action());
      f.actor_kind = kind;
      f.action = action;
      f.has_subject = e.has_subject();
      f.application_id = e.subject().application_id();
      f.environment_id = e.subject().environment_id();
      f.message = e.message();
      f.idempotency_key = e.idempotency_key();
      f.has_details = e.has_details();
      f.details = r.details_text;
      row.prev_hash = e.prev_hash();
      row.hash = e.hash();
      if (!visit(row)) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ChainHead> ReadWriterHead() override { return absl::UnimplementedError("unused"); }
  absl::StatusOr<std::vector<v1::Event>> FindByIdempotencyKeys(
      const std::vector<std::pair<std::string, std::string>>&) override {
    return absl::UnimplementedError("unused");
  }
  absl::Status InsertChained(const ChainHead&, const std::vector<const v1::Event*>&) override {
    return absl::UnimplementedError("unused");
  }
  absl::StatusOr<std::vector<v1::Event>> Query(const EventQuery&) override {
    return absl::UnimplementedError("unused");
  }
  absl::StatusOr<ChainHead> LastEvent() override { return absl::UnimplementedError("unused"); }
  absl::StatusOr<ChainHead> StoredHead() override { return absl::UnimplementedError("unused"); }
  absl::Status InsertCheckpoint(const v1::Checkpoint&) override { return absl::UnimplementedError("unused"); }
  absl::StatusOr<std::optional<v1::Checkpoint>> LatestCheckpoint(int64_t) override {
    return absl::UnimplementedError("unused");
  }
  absl::StatusOr<std::vector<v1::Checkpoint>> CheckpointsInRange(int64_t, int64_t) override {
    return absl::UnimplementedError("unused");
  }
};

std::string DetailsText(const v1::Event& e) {
  std::string text;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(e.details(), &text).ok());
  return text;
}

// Sets e's hash from its stored prev_hash, through the event encoder.
void Rehash(v1::Event* e) { e->set_hash(*ChainHash(e->prev_hash(), *CanonicalJson(*e))); }

// A valid chain of n events, hashed through the event encoder (so verifying
// it through the stored-row encoder also proves the two agree).
std::vector<Row> MakeChain(int n) {
  std::vector<Row> rows;
  std::string prev = ZeroHash();
  for (int i = 1; i <= n; ++i) {
    v1::Event e;
    e.set_sequence(i);
    e.mutable_time()->set_seconds(1767225600 + i);
    e.mutable_time()->set_nanos((i % 3) * 1000);
    e.mutable_append_time()->set_seconds(1767225600 + i);
    e.set_service("deployer");
    e.mutable_actor()->set_id(i % 4 == 0 ? "ferry" : "alice");
    e.mutable_actor()->set_kind(i % 4 == 0 ? v1::ACTOR_KIND_SYSTEM : v1::ACTOR_KIND_USER);
    e.set_action(i % 2 ? v1::AUDIT_ACTION_PLAN_CREATED : v1::AUDIT_ACTION_DEPLOYMENT_STARTED);
    if (i % 5 != 0) e.mutable_subject()->set_application_id(absl::StrCat("app-", i % 7));
    if (i % 3 == 0) e.mutable_subject()->set_environment_id("prod");
    e.set_message(absl::StrCat("step ", i, " \"quoted\" żółw"));
    e.set_idempotency_key(absl::StrCat("k", i));
    if (i % 2 == 0) {
      auto& f = *e.mutable_details()->mutable_fields();
      f["step"].set_number_value(i);
      f["ratio"].set_number_value(i / 8.0);
      (*f["nested"].mutable_struct_value()->mutable_fields())["b"].set_string_value("😀");
      (*f["nested"].mutable_struct_value()->mutable_fields())["a"].set_null_value(google::protobuf::NULL_VALUE);
    }
    e.set_prev_hash(prev);
    Rehash(&e);
    prev = e.hash();
    rows.push_back({e, e.has_details() ? DetailsText(e) : ""});
  }
  return rows;
}

v1::VerifyChainResponse VerifyRange(RowStore& store, ChainVerifierOptions options, int64_t from, int64_t to,
                                    const std::optional<std::string>& anchor,
                                    std::map<int64_t, std::string>* wanted = nullptr) {
  v1::VerifyChainResponse out;
  absl::Status st = ChainVerifier(store, options).Verify(from, to, anchor, &out, wanted);
  EXPECT_TRUE(st.ok()) << st;
  return out;
}

const std::vector<ChainVerifierOptions> kLayouts = {{1, 1}, {3, 1}, {4, 10}, {7, 1}, {64, 1}};
constexpr int kEvents = 40;

TEST(ChainVerifierTest, AnIntactChainVerifiesInEveryLayout) {
  RowStore store;
  store.rows = MakeChain(kEvents);
  for (const ChainVerifierOptions& layout : kLayouts) {
    std::map<int64_t, std::string> wanted = {{1, ""}, {5, ""}, {17, ""}, {kEvents, ""}};
    v1::VerifyChainResponse v = VerifyRange(store, layout, 1, kEvents, ZeroHash(), &wanted);
    EXPECT_TRUE(v.ok()) << layout.max_streams << ": " << v.reason();
    EXPECT_EQ(v.events_verified(), kEvents);
    EXPECT_EQ(v.head_hash(), store.rows.back().event.hash());
    for (const auto& [sequence, hash] : wanted) EXPECT_EQ(hash, store.rows[sequence - 1].event.hash()) << sequence;
  }
}

TEST(ChainVerifierTest, DetailsRenderedDifferentlyStillVerify) {
  RowStore store;
  store.rows = MakeChain(kEvents);
  for (Row& r : store.rows) {
    if (!r.event.has_details()) continue;
    // What jsonb prints: other key order, spaces.
    r.details_text = absl::StrCat("{\"step\": ", r.event.sequence(), ", \"ratio\": ", r.event.sequence() / 8.0,
                                  ", \"nested\": {\"a\": null, \"b\": \"\\ud83d\\ude00\"}}");
  }
  EXPECT_TRUE(VerifyRange(store, {4, 1}, 1, kEvents, ZeroHash()).ok());
}

// Every kind of break at every position: found at that sequence with its
// reason, and the same outcome however the range is split.
TEST(ChainVerifierTest, EveryBreakIsNamedAtItsSequenceInEveryLayout) {
  struct Kind {
    const char* name;
    std::function<void(std::vector<Row>*, int)> tamper;  // breaks event i (1-based)
    std::string reason_prefix;
    bool names_sequence;  // the reason goes on "<sequence> "
  };
  const std::vector<Kind> kinds = {
      {"content rewritten", [](std::vector<Row>* rows, int i) { (*rows)[i - 1].event.set_message("mallory"); },
       "hash mismatch: event ", true},
      {"details rewritten",
       [](std::vector<Row>* rows, int i) { (*rows)[i - 1].details_text = "{\"step\": 999}"; }, "hash mismatch: event ",
       true},
      {"row rewritten with its own hash recomputed",
       [](std::vector<Row>* rows, int i) {
         v1::Event& e = (*rows)[i - 1].event;
         e.mutable_actor()->set_id("mallory");
         e.set_prev_hash(std::string(64, 'f'));
         Rehash(&e);
       },
       "prev_hash mismatch: event ", true},
      {"row deleted", [](std::vector<Row>* rows, int i) { rows->erase(rows->begin() + (i - 1)); }, "gap: event ",
       true},
      {"details unreadable", [](std::vector<Row>* rows, int i) { (*rows)[i - 1].details_text = "{\"step\": 1,"; },
       "unreadable event: ", false},
  };
  for (const Kind& kind : kinds) {
    for (int i = 1; i <= kEvents; ++i) {
      RowStore store;
      store.rows = MakeChain(kEvents);
      const bool needs_details = kind.reason_prefix == "unreadable event: " || std::string(kind.name) == "details rewritten";
      if (needs_details && !store.rows[i - 1].event.has_details()) continue;
      const std::string expected_prefix =
          kind.names_sequence ? absl::StrCat(kind.reason_prefix, i, " ") : kind.reason_prefix;
      kind.tamper(&store.rows, i);
      std::string first_reason;
      for (const ChainVerifierOptions& layout : kLayouts) {
        std::map<int64_t, std::string> wanted = {{1, ""}, {20, ""}, {kEvents, ""}};
        v1::VerifyChainResponse v = VerifyRange(store, layout, 1, kEvents, ZeroHash(), &wanted);
        SCOPED_TRACE(absl::StrCat(kind.name, " at ", i, ", ", layout.max_streams, " streams"));
        EXPECT_FALSE(v.ok());
        EXPECT_EQ(v.first_broken_sequence(), i);
        EXPECT_EQ(v.reason().rfind(expected_prefix, 0), 0u) << v.reason();
        EXPECT_EQ(v.events_verified(), i - 1);
        for (const auto& [sequence, hash] : wanted) {
          EXPECT_EQ(hash, sequence < i ? store.rows[sequence - 1].event.hash() : "") << sequence;
        }
        if (first_reason.empty()) first_reason = v.reason();
        EXPECT_EQ(v.reason(), first_reason);
      }
    }
  }
}

TEST(ChainVerifierTest, MissingNewestEventsAreAGap) {
  RowStore store;
  store.rows = MakeChain(kEvents);
  store.rows.resize(kEvents - 3);
  for (const ChainVerifierOptions& layout : kLayouts) {
    v1::VerifyChainResponse v = VerifyRange(store, layout, 1, kEvents, ZeroHash());
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.first_broken_sequence(), kEvents - 2);
    EXPECT_EQ(v.reason(), absl::StrCat("gap: event ", kEvents - 2, " is missing"));
  }
}

TEST(ChainVerifierTest, ARangeTrustsItsFirstPrevHashUnlessAnAnchorIsGiven) {
  RowStore store;
  store.rows = MakeChain(kEvents);
  store.rows[29].event.set_message("tampered");  // event 30
  for (const ChainVerifierOptions& layout : kLayouts) {
    v1::VerifyChainResponse v = VerifyRange(store, layout, 10, 29, std::nullopt);
    EXPECT_TRUE(v.ok()) << v.reason();
    EXPECT_EQ(v.events_verified(), 20);
    EXPECT_EQ(v.head_hash(), store.rows[28].event.hash());
    v = VerifyRange(store, layout, 10, 29, store.rows[8].event.hash());
    EXPECT_TRUE(v.ok()) << v.reason();
    v = VerifyRange(store, layout, 10, 29, std::string(64, '0'));
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.first_broken_sequence(), 10);
    EXPECT_EQ(v.reason().rfind("prev_hash mismatch: event 10 ", 0), 0u) << v.reason();
    v = VerifyRange(store, layout, 10, kEvents, std::nullopt);
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.first_broken_sequence(), 30);
    EXPECT_EQ(v.events_verified(), 20);
  }
}

TEST(ChainVerifierTest, StoreErrorsAreReturned) {
  RowStore store;
  store.rows = MakeChain(kEvents);
  store.fail = absl::UnavailableError("database down");
  for (const ChainVerifierOptions& layout : kLayouts) {
    v1::VerifyChainResponse out;
    absl::Status st = ChainVerifier(store, layout).Verify(1, kEvents, ZeroHash(), &out, nullptr);
    EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  }
}

}  // namespace
}  // namespace ferry::audit
