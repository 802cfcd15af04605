#include "common/kube/secret_mask.h"

#include <gtest/gtest.h>

#include "common/crypto/sha256.h"
#include "common/json/json.h"

namespace ferry::kube {
namespace {

using nlohmann::json;

TEST(SecretMaskTest, ValuesBecomeDigestsOfTheirBytes) {
  // "hunter2" as data (base64) and as stringData: the same digest.
  json s = *ParseJson(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","annotations":{
    "kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"aHVudGVyMg==\"}}","keep":"me"}},
    "data":{"password":"aHVudGVyMg=="},"stringData":{"same":"hunter2"},"type":"Opaque"})");
  MaskSecretValues(s);
  std::string digest = "sha256:" + Sha256Hex("hunter2");
  EXPECT_EQ(s["data"]["password"], digest);
  EXPECT_EQ(s["stringData"]["same"], digest);
  EXPECT_FALSE(s["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_EQ(s["metadata"]["annotations"]["keep"], "me");
  EXPECT_EQ(s["type"], "Opaque");
  std::string dumped = DumpJsonLossy(s);
  EXPECT_EQ(dumped.find("hunter2"), std::string::npos) << dumped;
  EXPECT_EQ(dumped.find("aHVudGVyMg"), std::string::npos) << dumped;
}

TEST(SecretMaskTest, OddShapesAreMaskedWhole) {
  json s = *ParseJson(R"({"apiVersion":"v1","kind":"Secret","data":"aGk=","stringData":{"n":42}})");
  MaskSecretValues(s);
  EXPECT_EQ(s["data"], "(masked)");
  EXPECT_EQ(s["stringData"]["n"], "(masked)");
}

TEST(SecretMaskTest, OtherObjectsAreLeftAlone) {
  json cm = *ParseJson(R"({"apiVersion":"v1","kind":"ConfigMap","data":{"a":"b"}})");
  json before = cm;
  MaskSecretValues(cm);
  EXPECT_EQ(cm, before);
  json custom = *ParseJson(R"({"apiVersion":"example.com/v1","kind":"Secret","data":{"a":"b"}})");
  before = custom;
  MaskSecretValues(custom);
  EXPECT_EQ(custom, before);
  EXPECT_FALSE(IsSecret(json::array()));
}

}  // namespace
}  // namespace ferry::kube
