// The chain's canonical encoding and checkpoint signatures, without a database.

#include "services/audit/event_chain.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <functional>
#include <random>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include "services/audit/checkpoint_signer.h"
#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

v1::Event SampleEvent() {
  v1::Event e;
  e.set_sequence(7);
  e.mutable_time()->set_seconds(1767225600);  // 2026-01-01T00:00:00Z
  e.mutable_time()->set_nanos(123456000);
  e.mutable_append_time()->set_seconds(1767225601);
  e.set_service("deployer");
  e.mutable_actor()->set_id("alice");
  e.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
  e.set_action(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED);
  e.mutable_subject()->set_application_id("web");
  e.set_message("deployed");
  (*e.mutable_details()->mutable_fields())["zeta"].set_number_value(2);
  (*e.mutable_details()->mutable_fields())["alpha"].set_string_value("x");
  e.set_idempotency_key("dep-1/succeeded");
  e.set_prev_hash(std::string(64, 'a'));
  e.set_hash(std::string(64, 'b'));
  return e;
}

TEST(EventChainTest, CanonicalFormIsSortedSnakeCaseWithoutHashesOrDefaults) {
  absl::StatusOr<std::string> c = CanonicalJson(SampleEvent());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c,
            "{\"action\":\"AUDIT_ACTION_DEPLOYMENT_SUCCEEDED\",\"actor\":{\"id\":\"alice\",\"kind\":\"ACTOR_KIND_USER\"},"
            "\"append_time\":\"2026-01-01T00:00:01Z\",\"details\":{\"alpha\":\"x\",\"zeta\":2},"
            "\"idempotency_key\":\"dep-1/succeeded\",\"message\":\"deployed\",\"sequence\":\"7\","
            "\"service\":\"deployer\",\"subject\":{\"application_id\":\"web\"},"
            "\"time\":\"2026-01-01T00:00:00.123456Z\"}");
}

TEST(EventChainTest, HashIsSha256OfRawPrevHashThenCanonicalBytes) {
  // sha256(32 zero bytes || "{}"), computed independently with Python's hashlib.
  absl::StatusOr<std::string> h = ChainHash(ZeroHash(), "{}");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, "fb1634c4e6cd4b1f1afe3ce2d6ef080f7ac5d1f357d723ad4dfca782733b62db");
  EXPECT_NE(*ChainHash(ZeroHash(), "{}"), *ChainHash(std::string(63, '0') + "1", "{}"));
  EXPECT_EQ(ChainHash("XYZ", "{}").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EventChainTest, ExportLineIsCanonicalPlusHashes) {
  v1::Event e = SampleEvent();
  absl::StatusOr<std::string> line = ExportLine(e);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_NE(line->find("\"prev_hash\":\"" + std::string(64, 'a') + "\""), std::string::npos) << *line;
  EXPECT_NE(line->find("\"hash\":\"" + std::string(64, 'b') + "\""), std::string::npos) << *line;
  e.clear_hash();
  e.clear_prev_hash();
  EXPECT_EQ(*CanonicalJson(e), *CanonicalJson(SampleEvent()));
}

TEST(EventChainTest, AnyFieldChangeChangesTheHash) {
  v1::Event e = SampleEvent();
  std::string base = *ChainHash(ZeroHash(), *CanonicalJson(e));
  e.mutable_actor()->set_id("mallory");
  EXPECT_NE(*ChainHash(ZeroHash(), *CanonicalJson(e)), base);
  e = SampleEvent();
  (*e.mutable_details()->mutable_fields())["zeta"].set_number_value(3);
  EXPECT_NE(*ChainHash(ZeroHash(), *CanonicalJson(e)), base);
}

// CanonicalJson is a hand-written encoder; it must equal the reference
// (protobuf's JSON printer, re-serialised) on every event.
TEST(EventChainTest, FastEncoderMatchesTheProtobufJsonReferenceOnRandomEvents) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> strings = {"", "a", "żółw", "quote\" back\\ slash/", "ctl\x01\x1f\x7f",
                                            "tab\tnl\ncr\rbs\bff\f", "🐢 \u2028 \u00e9", "Zed", "zed", "_"};
  const std::vector<double> numbers = {0,      -0.0,   1,       -1,     0.1,    1e15,      1e16,     1e21,
                                       1e-5,   1e-7,   0.0001,  123.456, 2.5e-5, 9007199254740993.0, 5e-324,
                                       1e300,  -3.75,  4503599627370497.5, 12345678};
  auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
  std::function<void(google::protobuf::Value*, int)> fill = [&](google::protobuf::Value* v, int depth) {
    switch (rng() % (depth > 2 ? 4 : 6)) {
      case 0: v->set_null_value(google::protobuf::NULL_VALUE); break;
      case 1: v->set_number_value(pick(numbers)); break;
      case 2: v->set_string_value(pick(strings)); break;
      case 3: v->set_bool_value(rng() % 2); break;
      case 4:
        for (int i = 0, n = rng() % 4; i < n; ++i) fill(v->mutable_list_value()->add_values(), depth + 1);
        v->mutable_list_value();
        break;
      default:
        for (int i = 0, n = rng() % 4; i < n; ++i) {
          fill(&(*v->mutable_struct_value()->mutable_fields())[pick(strings)], depth + 1);
        }
        v->mutable_struct_value();
    }
  };
  for (int i = 0; i < 500; ++i) {
    v1::Event e;
    if (rng() % 2) e.set_sequence(rng() % 100000);
    if (rng() % 2) *e.mutable_time() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(rng() % 4000000000000000000);
    if (rng() % 2) *e.mutable_append_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(rng() % 4000000000000000);
    e.set_service(pick(strings));
    if (rng() % 4) {
      e.mutable_actor()->set_id(pick(strings));
      e.mutable_actor()->set_display_name(pick(strings));
      e.mutable_actor()->set_kind(static_cast<v1::ActorKind>(rng() % 4));
    }
    e.set_action(static_cast<v1::AuditAction>(rng() % 29));
    if (rng() % 3) {
      e.mutable_subject()->set_application_id(pick(strings));
      e.mutable_subject()->set_commit_sha(pick(strings));
      e.mutable_subject()->set_ref(pick(strings));
      e.mutable_subject()->set_plan_id(pick(strings));
    }
    e.set_message(pick(strings));
    if (rng() % 3) {
      for (int k = 0, n = rng() % 6; k < n; ++k) fill(&(*e.mutable_details()->mutable_fields())[pick(strings)], 0);
      e.mutable_details();
    }
    e.set_idempotency_key(pick(strings));
    e.set_prev_hash(std::string(64, 'a'));
    e.set_hash(std::string(64, 'b'));
    absl::StatusOr<std::string> fast = CanonicalJson(e);
    absl::StatusOr<std::string> reference = ReferenceCanonicalJson(e);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_TRUE(reference.ok()) << reference.status();
    ASSERT_EQ(*fast, *reference) << e.DebugString();
    nlohmann::json line = nlohmann::json::parse(*ExportLine(e));
    EXPECT_EQ(line["hash"], e.hash());
    EXPECT_EQ(line["prev_hash"], e.prev_hash());
    line.erase("hash");
    line.erase("prev_hash");
    EXPECT_EQ(line, nlohmann::json::parse(*reference));
  }
}

TEST(EventChainTest, InvalidUtf8HasNoCanonicalForm) {
  v1::Event e = SampleEvent();
  e.set_message(std::string("bad \xc3\x28 utf8"));
  EXPECT_EQ(CanonicalJson(e).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckpointSignerTest, SignsAndVerifiesAndRejectsOtherMessages) {
  bool generated = false;
  std::string dir = testing::MakeTempDir("ferry-audit-key");
  auto signer = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_TRUE(generated);
  absl::StatusOr<std::string> sig = (*signer)->Sign(42, std::string(64, 'c'));
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE((*signer)->Verify(42, std::string(64, 'c'), *sig));
  EXPECT_FALSE((*signer)->Verify(43, std::string(64, 'c'), *sig));
  EXPECT_FALSE((*signer)->Verify(42, std::string(64, 'd'), *sig));
  EXPECT_EQ(CheckpointMessage(42, "ab"), "ferry-audit-checkpoint/v1\n42\nab\n");
}

TEST(CheckpointSignerTest, GeneratedKeyIsPrivateAndReloadsAsTheSameKey) {
  std::string dir = testing::MakeTempDir("ferry-audit-key");
  bool generated = false;
  auto first = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(stat((dir + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(stat((dir + "/key.pem.pub").c_str(), &st), 0);
  auto second = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(generated);
  EXPECT_EQ((*first)->public_key_id(), (*second)->public_key_id());
  EXPECT_EQ((*first)->public_key_id().size(), 64u);
}

TEST(CheckpointSignerTest, RefusesAFileThatIsNotAnEd25519Key) {
  auto signer = CheckpointSigner::FromPem("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n");
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::audit
