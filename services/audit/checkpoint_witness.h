#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::audit {

// A copy of every signed checkpoint outside the database
// (--checkpoint-witness-dir), so that someone who can rewrite the database
// (events and checkpoints alike) cannot make history disagree with it
// unnoticed. One file per checkpoint, `<sequence>.json` (the checkpoint as
// proto3 JSON with snake_case names), written atomically and never
// overwritten. Point it at storage the database's administrators cannot
// write (another host's mount, an append-only bucket synced from it).
// Thread-safe (the file system orders writers).
class CheckpointWitness {
 public:
  explicit CheckpointWitness(std::string dir);

  // Creates the directory if missing; INVALID_ARGUMENT naming it when it
  // cannot be created or written.
  absl::Status Open() const;

  // Writes `checkpoint` to `<sequence>.json`. An existing file holding the
  // same checkpoint (head_hash, signature and key; create_time may differ)
  // is OK; one holding a different one is ALREADY_EXISTS (and stays as it
  // was).
  absl::Status Write(const v1::Checkpoint& checkpoint) const;

  // The witnessed checkpoints with from <= sequence <= to, ascending.
  // DATA_LOSS naming the file when one cannot be read or parsed.
  absl::StatusOr<std::vector<v1::Checkpoint>> Read(int64_t from, int64_t to) const;

  // The newest witnessed checkpoint; nullopt when there is none.
  absl::StatusOr<std::optional<v1::Checkpoint>> Latest() const;

  const std::string& dir() const { return dir_; }

 private:
  // The sequences of the files `<sequence>.json`, ascending.
  absl::StatusOr<std::vector<int64_t>> Sequences() const;
  absl::StatusOr<v1::Checkpoint> ReadOne(int64_t sequence) const;
  std::string PathOf(int64_t sequence) const;

  const std::string dir_;
};

}  // namespace ferry::audit
