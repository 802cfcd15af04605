#include "services/audit/checkpoint_witness.h"

#include <fcntl.h>
#include <unistd.h>

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::audit {
namespace {

std::atomic<uint64_t> temp_counter{0};

absl::StatusOr<std::string> ToJson(const v1::Checkpoint& c) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(c, &json, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("cannot encode the checkpoint: ", status.ToString()));
  json += "\n";
  return json;
}

}  // namespace

CheckpointWitness::CheckpointWitness(std::string dir) : dir_(std::move(dir)) {}

std::string CheckpointWitness::PathOf(int64_t sequence) const { return absl::StrCat(dir_, "/", sequence, ".json"); }

absl::Status CheckpointWitness::Open() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec || !std::filesystem::is_directory(dir_)) {
    return absl::InvalidArgumentError(absl::StrCat("--checkpoint-witness-dir ", dir_, ": cannot create it",
                                                   ec ? ": " + ec.message() : ""));
  }
  if (access(dir_.c_str(), W_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--checkpoint-witness-dir ", dir_, ": not writable"));
  }
  return absl::OkStatus();
}

absl::Status CheckpointWitness::Write(const v1::Checkpoint& c) const {
  absl::StatusOr<std::string> json = ToJson(c);
  if (!json.ok()) return json.status();
  const std::string path = PathOf(c.sequence());
  const std::string tmp = absl::StrCat(dir_, "/.", c.sequence(), ".json.tmp.", getpid(), ".", temp_counter++);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  bool ok = write(fd, json->data(), json->size()) == static_cast<ssize_t>(json->size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  // link() never replaces an existing file: a witnessed checkpoint is never overwritten.
  int rc = link(tmp.c_str(), path.c_str());
  int err = errno;
  unlink(tmp.c_str());
  if (rc == 0) {
    int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    return absl::OkStatus();
  }
  if (err != EEXIST) return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  absl::StatusOr<v1::Checkpoint> existing = ReadOne(c.sequence());
  // The same checkpoint (its create_time aside: replicas signing the same
  // head with the same key stamp their own) is already witnessed.
  if (existing.ok() && existing->head_hash() == c.head_hash() && existing->signature() == c.signature() &&
      existing->public_key_id() == c.public_key_id()) {
    return absl::OkStatus();
  }
  return absl::AlreadyExistsError(absl::StrCat(path, " already witnesses a different checkpoint at ", c.sequence()));
}

absl::StatusOr<std::vector<int64_t>> CheckpointWitness::Sequences() const {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t sequence = 0;
    if (!absl::EndsWith(name, ".json") || name[0] == '.') continue;
    if (!absl::SimpleAtoi(name.substr(0, name.size() - 5), &sequence) || sequence <= 0) continue;
    out.push_back(sequence);
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot list the checkpoint witness ", dir_, ": ", ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<v1::Checkpoint> CheckpointWitness::ReadOne(int64_t sequence) const {
  const std::string path = PathOf(sequence);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat("cannot read the witnessed checkpoint ", path));
  std::stringstream text;
  text << in.rdbuf();
  v1::Checkpoint c;
  auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &c);
  if (!parsed.ok()) {
    return absl::DataLossError(absl::StrCat("the witnessed checkpoint ", path, " does not parse: ", parsed.ToString()));
  }
  if (c.sequence() != sequence) {
    return absl::DataLossError(absl::StrCat("the witnessed checkpoint ", path, " holds sequence ", c.sequence()));
  }
  return c;
}

absl::StatusOr<std::vector<v1::Checkpoint>> CheckpointWitness::Read(int64_t from, int64_t to) const {
  absl::StatusOr<std::vector<int64_t>> sequences = Sequences();
  if (!sequences.ok()) return sequences.status();
  std::vector<v1::Checkpoint> out;
  for (int64_t sequence : *sequences) {
    if (sequence < from || sequence > to) continue;
    absl::StatusOr<v1::Checkpoint> c = ReadOne(sequence);
    if (!c.ok()) return c.status();
    out.push_back(std::move(*c));
  }
  return out;
}

absl::StatusOr<std::optional<v1::Checkpoint>> CheckpointWitness::Latest() const {
  absl::StatusOr<std::vector<int64_t>> sequences = Sequences();
  if (!sequences.ok()) return sequences.status();
  if (sequences->empty()) return std::optional<v1::Checkpoint>();
  absl::StatusOr<v1::Checkpoint> c = ReadOne(sequences->back());
  if (!c.ok()) return c.status();
  return std::optional<v1::Checkpoint>(std::move(*c));
}

}  // namespace ferry::audit
