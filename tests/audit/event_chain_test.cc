// The chain's canonical encoding and checkpoint signatures, without a database.

#include "services/audit/event_chain.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <google/protobuf/util/json_util.h>

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
