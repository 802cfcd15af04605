// The chain's canonical encoding of events, checked against the slow
// reference encoder, without a database.

#include "services/audit/event_encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include "services/audit/canonical_json.h"
#include "services/audit/chain_hasher.h"
#include "tests/audit/reference_canonical_json.h"

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

TEST(EventEncoderTest, CanonicalFormIsSortedSnakeCaseWithoutHashesOrDefaults) {
  absl::StatusOr<std::string> c = CanonicalJson(SampleEvent());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c,
            "{\"action\":\"AUDIT_ACTION_DEPLOYMENT_SUCCEEDED\",\"actor\":{\"id\":\"alice\",\"kind\":\"ACTOR_KIND_USER\"},"
            "\"append_time\":\"2026-01-01T00:00:01Z\",\"details\":{\"alpha\":\"x\",\"zeta\":2},"
            "\"idempotency_key\":\"dep-1/succeeded\",\"message\":\"deployed\",\"sequence\":\"7\","
            "\"service\":\"deployer\",\"subject\":{\"application_id\":\"web\"},"
            "\"time\":\"2026-01-01T00:00:00.123456Z\"}");
}

TEST(EventEncoderTest, ExportLineIsCanonicalPlusHashes) {
  v1::Event e = SampleEvent();
  absl::StatusOr<std::string> line = ExportLine(e);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_NE(line->find("\"prev_hash\":\"" + std::string(64, 'a') + "\""), std::string::npos) << *line;
  EXPECT_NE(line->find("\"hash\":\"" + std::string(64, 'b') + "\""), std::string::npos) << *line;
  e.clear_hash();
  e.clear_prev_hash();
  EXPECT_EQ(*CanonicalJson(e), *CanonicalJson(SampleEvent()));
}

TEST(EventEncoderTest, AnyFieldChangeChangesTheHash) {
  v1::Event e = SampleEvent();
  std::string base = *ChainHash(ZeroHash(), *CanonicalJson(e));
  e.mutable_actor()->set_id("mallory");
  EXPECT_NE(*ChainHash(ZeroHash(), *CanonicalJson(e)), base);
  e = SampleEvent();
  (*e.mutable_details()->mutable_fields())["zeta"].set_number_value(3);
  EXPECT_NE(*ChainHash(ZeroHash(), *CanonicalJson(e)), base);
}

// Random events with awkward strings, numbers and nesting.
v1::Event RandomEvent(std::mt19937_64& rng) {
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
  return e;
}

// CanonicalJson is a hand-written encoder; it must equal the reference
// (protobuf's JSON printer, re-serialised) on every event.
TEST(EventEncoderTest, FastEncoderMatchesTheProtobufJsonReferenceOnRandomEvents) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    v1::Event e = RandomEvent(rng);
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

// The hashed fields of `e` as a store holds them, with `details_text` (any
// JSON rendering of e.details()) as the stored details.
EventFields StoredFields(const v1::Event& e, const std::string& details_text) {
  EventFields f;
  f.sequence = e.sequence();
  f.has_time = e.has_time();
  f.time_seconds = e.time().seconds();
  f.time_nanos = e.time().nanos();
  f.has_append_time = e.has_append_time();
  f.append_time_seconds = e.append_time().seconds();
  f.append_time_nanos = e.append_time().nanos();
  f.service = e.service();
  f.has_actor = e.has_actor();
  f.actor_id = e.actor().id();
  f.actor_display_name = e.actor().display_name();
  if (e.actor().kind() != 0) f.actor_kind = v1::ActorKind_descriptor()->FindValueByNumber(e.actor().kind())->name();
  if (e.action() != 0) f.action = v1::AuditAction_descriptor()->FindValueByNumber(e.action())->name();
  f.has_subject = e.has_subject();
  f.repository_id = e.subject().repository_id();
  f.application_id = e.subject().application_id();
  f.environment_id = e.subject().environment_id();
  f.plan_id = e.subject().plan_id();
  f.deployment_id = e.subject().deployment_id();
  f.commit_sha = e.subject().commit_sha();
  f.ref = e.subject().ref();
  f.message = e.message();
  f.idempotency_key = e.idempotency_key();
  f.has_details = e.has_details();
  f.details = details_text;
  return f;
}

// A number as PostgreSQL's numeric prints it: plain decimal, no exponent.
std::string PlainDecimal(const std::string& number) {
  size_t e = number.find_first_of("eE");
  if (e == std::string::npos) return number;
  std::string sign = number[0] == '-' ? "-" : "";
  std::string mantissa = number.substr(sign.size(), e - sign.size());
  int exponent = std::stoi(number.substr(e + 1));
  size_t dot = mantissa.find('.');
  std::string digits = mantissa;
  int point = static_cast<int>(mantissa.size());
  if (dot != std::string::npos) {
    digits.erase(dot, 1);
    point = static_cast<int>(dot);
  }
  point += exponent;
  if (point <= 0) return sign + "0." + std::string(-point, '0') + digits;
  if (point >= static_cast<int>(digits.size())) return sign + digits + std::string(point - digits.size(), '0');
  return sign + digits.substr(0, point) + "." + digits.substr(point);
}

// JSON as jsonb prints it: keys by length then bytes, ", " and ": ", numbers
// in plain decimal, strings with raw UTF-8.
std::string JsonbStyle(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      std::vector<std::string> keys;
      for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
      std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
      });
      std::string out = "{";
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0) out += ", ";
        out += nlohmann::json(keys[i]).dump() + ": " + JsonbStyle(j.at(keys[i]));
      }
      return out + "}";
    }
    case nlohmann::json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < j.size(); ++i) out += (i > 0 ? ", " : "") + JsonbStyle(j[i]);
      return out + "]";
    }
    case nlohmann::json::value_t::number_float:
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return PlainDecimal(j.dump());
    default:
      return j.dump();
  }
}

// The stored-row encoder (details as JSON text, as a database returns them)
// and the event encoder are one encoding: on random events, whatever the
// rendering of the details, StoredEventEncoder gives CanonicalJson's bytes
// (and so the reference's), and ChainHasher gives ChainHash's hash.
TEST(EventEncoderTest, StoredRowEncoderMatchesTheEventEncoderOnRandomEvents) {
  std::mt19937_64 rng(11);
  StoredEventEncoder encoder;
  ChainHasher hasher;
  std::string stored, hash;
  int with_details = 0;
  for (int i = 0; i < 500; ++i) {
    v1::Event e = RandomEvent(rng);
    absl::StatusOr<std::string> expected = CanonicalJson(e);
    ASSERT_TRUE(expected.ok()) << expected.status();
    ASSERT_EQ(*expected, *ReferenceCanonicalJson(e));
    std::vector<std::string> renderings = {""};
    if (e.has_details()) {
      ++with_details;
      std::string protobuf_json;
      ASSERT_TRUE(google::protobuf::util::MessageToJsonString(e.details(), &protobuf_json).ok());
      nlohmann::json parsed = nlohmann::json::parse(protobuf_json);
      std::string canonical;
      ASSERT_TRUE(AppendCanonicalStruct(e.details(), &canonical).ok());
      renderings = {protobuf_json, parsed.dump(2, ' ', /*ensure_ascii=*/true), JsonbStyle(parsed), canonical};
    }
    for (const std::string& text : renderings) {
      ASSERT_TRUE(encoder.Encode(StoredFields(e, text), &stored).ok()) << text;
      ASSERT_EQ(stored, *expected) << "details rendered as: " << text;
      ASSERT_TRUE(hasher.Hash(e.prev_hash(), stored, &hash).ok());
      ASSERT_EQ(hash, *ChainHash(e.prev_hash(), *expected));
    }
  }
  EXPECT_GT(with_details, 100);
}

// The one-pass string escaper around its 8-byte steps: every special byte at
// every offset, against nlohmann::json's escaping (the reference's).
TEST(EventEncoderTest, StringEscapingMatchesTheReferenceAtEveryOffset) {
  const std::vector<std::string> specials = {"\"", "\\", "\x01", "\x1f", "\x7f", "\n", "é", "😀", "\u2028", " ", "/"};
  for (const std::string& special : specials) {
    for (size_t offset = 0; offset < 20; ++offset) {
      std::string s = std::string(offset, 'x') + special + std::string(19 - offset, 'y') + special;
      std::string out;
      ASSERT_TRUE(AppendJsonString(s, &out).ok()) << s;
      EXPECT_EQ(out, nlohmann::json(s).dump()) << s;
    }
  }
  for (const std::string& bad : {std::string("\xff"), std::string("\xc0\x80"), std::string("\xed\xa0\x80"),
                                 std::string("\xf4\x90\x80\x80"), std::string("\xe2\x82")}) {
    for (size_t offset = 0; offset < 12; ++offset) {
      std::string s = std::string(offset, 'x') + bad + "tail";
      std::string out = "kept";
      EXPECT_EQ(AppendJsonString(s, &out).code(), absl::StatusCode::kInvalidArgument) << offset;
      EXPECT_EQ(out, "kept");
      EXPECT_THROW((void)nlohmann::json(s).dump(), nlohmann::json::exception);
    }
  }
}

// Timestamps as protobuf prints them, including before 1970, leap days and
// the ends of the valid range.
TEST(EventEncoderTest, TimestampsEncodeAsProtobufPrintsThem) {
  using google::protobuf::util::TimeUtil;
  const std::vector<std::pair<int64_t, int32_t>> times = {
      {0, 0},           {-1, 999999999},   {-86400, 0},      {-62135596800, 0},   {253402300799, 999999999},
      {951782400, 0},   {951868799, 1000}, {-2203891200, 0}, {-5364662400, 120000000}, {1767225600, 123456789},
      {4107542400, 1},  {-11644473600, 500}};
  for (const auto& [seconds, nanos] : times) {
    v1::Event e = SampleEvent();
    e.mutable_time()->set_seconds(seconds);
    e.mutable_time()->set_nanos(nanos);
    absl::StatusOr<std::string> c = CanonicalJson(e);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, *ReferenceCanonicalJson(e)) << seconds << "." << nanos;
    EXPECT_NE(c->find("\"time\":\"" + TimeUtil::ToString(e.time()) + "\""), std::string::npos) << *c;
  }
}

TEST(EventEncoderTest, InvalidUtf8HasNoCanonicalForm) {
  v1::Event e = SampleEvent();
  e.set_message(std::string("bad \xc3\x28 utf8"));
  EXPECT_EQ(CanonicalJson(e).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::audit
