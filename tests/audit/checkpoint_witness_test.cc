#include "services/audit/checkpoint_witness.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

v1::Checkpoint Checkpoint(int64_t sequence, char hash) {
  v1::Checkpoint c;
  c.set_sequence(sequence);
  c.set_head_hash(std::string(64, hash));
  c.set_signature(std::string(64, '\x01'));
  c.set_public_key_id(std::string(64, 'f'));
  c.set_algorithm(v1::SIGNING_ALGORITHM_ED25519);
  return c;
}

TEST(CheckpointWitnessTest, WritesOneJsonFilePerCheckpointAndReadsThemBackInOrder) {
  const std::string dir = testing::MakeTempDir("ferry-witness") + "/nested/witness";
  CheckpointWitness witness(dir);
  ASSERT_TRUE(witness.Open().ok());
  EXPECT_FALSE(witness.Latest()->has_value());
  ASSERT_TRUE(witness.Write(Checkpoint(10, 'b')).ok());
  ASSERT_TRUE(witness.Write(Checkpoint(9, 'a')).ok());
  ASSERT_TRUE(witness.Write(Checkpoint(100, 'c')).ok());
  std::ifstream in(dir + "/10.json");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("\"head_hash\":\"" + std::string(64, 'b') + "\""), std::string::npos) << text.str();
  auto all = witness.Read(1, 1000);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].sequence(), 9);
  EXPECT_EQ((*all)[1].sequence(), 10);
  EXPECT_EQ((*all)[2].sequence(), 100) << "numeric order, not file name order";
  EXPECT_EQ((*all)[2].signature(), std::string(64, '\x01'));
  EXPECT_EQ(witness.Read(10, 99)->size(), 1u);
  EXPECT_EQ((*witness.Latest())->sequence(), 100);
}

TEST(CheckpointWitnessTest, AWitnessedCheckpointIsNeverOverwritten) {
  const std::string dir = testing::MakeTempDir("ferry-witness");
  CheckpointWitness witness(dir);
  ASSERT_TRUE(witness.Write(Checkpoint(5, 'a')).ok());
  EXPECT_TRUE(witness.Write(Checkpoint(5, 'a')).ok()) << "the same checkpoint again is fine";
  v1::Checkpoint restamped = Checkpoint(5, 'a');
  restamped.mutable_create_time()->set_seconds(12345);
  EXPECT_TRUE(witness.Write(restamped).ok()) << "another replica's copy differs only in create_time";
  absl::Status other = witness.Write(Checkpoint(5, 'b'));
  EXPECT_EQ(other.code(), absl::StatusCode::kAlreadyExists) << other;
  EXPECT_EQ((*witness.Latest())->head_hash(), std::string(64, 'a'));
  auto all = witness.Read(1, 10);
  EXPECT_EQ(all->size(), 1u) << "no temporary file is left or listed";
}

TEST(CheckpointWitnessTest, AnUnparsableFileIsDataLossNamingIt) {
  const std::string dir = testing::MakeTempDir("ferry-witness");
  std::ofstream(dir + "/7.json") << "{not json";
  CheckpointWitness witness(dir);
  auto read = witness.Read(1, 10);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find(dir + "/7.json"), std::string::npos) << read.status();
}

}  // namespace
}  // namespace ferry::audit
