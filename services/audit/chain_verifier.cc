#include "services/audit/chain_verifier.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {
namespace {

// One stretch [first, last] of the range and what checking it found.
struct Stretch {
  int64_t first = 0;
  int64_t last = 0;
  absl::Status status;
  int64_t broken = 0;  // the first broken sequence in the stretch; 0 if none
  std::string reason;
  bool stopped = false;             // gave up because an earlier sequence broke
  std::optional<std::string> first_prev_hash;  // the stored prev_hash of event `first`
  std::string last_hash;            // the hash of event `last`, when the whole stretch verified
  std::vector<std::pair<int64_t, std::string>> hits;  // verified hashes at wanted sequences
};

std::string GapReason(int64_t sequence) { return absl::StrCat("gap: event ", sequence, " is missing"); }

std::string PrevHashReason(int64_t sequence, absl::string_view stored, absl::string_view previous) {
  return absl::StrCat("prev_hash mismatch: event ", sequence, " says ", std::string(stored),
                      " but the previous event's hash is ", std::string(previous));
}

// Checks the events of `s` in order: each exists, links to its predecessor
// (the first one to `anchor` if given; else its link is checked when the
// stretches are joined) and hashes to its stored hash. Stops at the first
// break, or once an earlier sequence than the current one broke elsewhere.
void CheckStretch(EventStore& store, const std::optional<std::string>& anchor, const std::vector<int64_t>& wanted,
                  std::atomic<int64_t>* earliest_break, Stretch* s) {
  StoredEventEncoder encoder;
  ChainHasher hasher;
  std::string canonical;
  std::string computed;
  std::string prev = anchor.value_or("");
  bool has_prev = anchor.has_value();
  int64_t expected = s->first;
  auto next_wanted = std::lower_bound(wanted.begin(), wanted.end(), s->first);
  auto broken = [&](std::string reason) {
    s->broken = expected;
    s->reason = std::move(reason);
    int64_t seen = earliest_break->load();
    while (expected < seen && !earliest_break->compare_exchange_weak(seen, expected)) {
    }
    return false;
  };
  s->status = store.StreamChain(s->first - 1, s->last + 1, [&](const StoredChainRow& row) {
    const int64_t sequence = row.fields.sequence;
    if (sequence > earliest_break->load(std::memory_order_relaxed)) {
      s->stopped = true;
      return false;
    }
    if (sequence != expected) return broken(GapReason(expected));
    if (expected == s->first) s->first_prev_hash = std::string(row.prev_hash);
    if (has_prev && row.prev_hash != prev) return broken(PrevHashReason(expected, row.prev_hash, prev));
    absl::Status st = row.error;
    if (st.ok()) st = encoder.Encode(row.fields, &canonical);
    if (st.ok()) st = hasher.Hash(row.prev_hash, canonical, &computed);
    if (!st.ok()) return broken(absl::StrCat("unreadable event: ", st.message()));
    if (computed != row.hash) {
      return broken(absl::StrCat("hash mismatch: event ", expected, " stores ", std::string(row.hash),
                                 " but its content hashes to ", computed));
    }
    if (next_wanted != wanted.end() && *next_wanted == expected) {
      s->hits.emplace_back(expected, std::string(row.hash));
      ++next_wanted;
    }
    prev.assign(row.hash.data(), row.hash.size());
    has_prev = true;
    ++expected;
    return true;  // the store's range ends at `last`; reading to its end ends the stream cleanly
  });
  if (!s->status.ok() || s->broken != 0 || s->stopped) return;
  if (expected <= s->last) {
    broken(GapReason(expected));
    return;
  }
  s->last_hash = prev;
}

}  // namespace

ChainVerifier::ChainVerifier(EventStore& store, ChainVerifierOptions options)
    : store_(store), options_(options) {}

absl::Status ChainVerifier::Verify(int64_t from, int64_t to, const std::optional<std::string>& anchor,
                                   v1::VerifyChainResponse* out, std::map<int64_t, std::string>* wanted) const {
  out->set_ok(true);
  out->set_events_verified(0);
  if (to < from) return absl::OkStatus();
  const int64_t count = to - from + 1;
  const int64_t available = std::max(1, options_.max_streams - streams_in_use_.load());
  const int64_t streams =
      std::clamp<int64_t>(count / std::max<int64_t>(1, options_.min_events_per_stream), 1, available);
  streams_in_use_ += static_cast<int>(streams);
  struct Release {
    std::atomic<int>& in_use;
    int n;
    ~Release() { in_use -= n; }
  } release{streams_in_use_, static_cast<int>(streams)};
  std::vector<Stretch> stretches(streams);
  for (int64_t k = 0; k < streams; ++k) {
    stretches[k].first = from + count * k / streams;
    stretches[k].last = from + count * (k + 1) / streams - 1;
  }
  std::vector<int64_t> wanted_sequences;
  if (wanted != nullptr) {
    for (const auto& [sequence, hash] : *wanted) wanted_sequences.push_back(sequence);
  }
  std::atomic<int64_t> earliest_break{INT64_MAX};
  std::vector<std::thread> threads;
  for (int64_t k = 1; k < streams; ++k) {
    threads.emplace_back([&, k] {
      CheckStretch(store_, std::nullopt, wanted_sequences, &earliest_break, &stretches[k]);
    });
  }
  CheckStretch(store_, anchor, wanted_sequences, &earliest_break, &stretches[0]);
  for (std::thread& t : threads) t.join();

  // Join the stretches in order: the first break in sequence order wins,
  // and a stretch's first event must link to the previous stretch's last.
  for (int64_t k = 0; k < streams; ++k) {
    Stretch& s = stretches[k];
    if (!s.status.ok()) return s.status;
    int64_t broken = s.broken;
    std::string reason = s.reason;
    if (k > 0 && s.first_prev_hash.has_value() && *s.first_prev_hash != stretches[k - 1].last_hash) {
      broken = s.first;
      reason = PrevHashReason(s.first, *s.first_prev_hash, stretches[k - 1].last_hash);
    }
    if (wanted != nullptr) {
      for (const auto& [sequence, hash] : s.hits) {
        if (broken == 0 || sequence < broken) (*wanted)[sequence] = hash;
      }
    }
    if (broken != 0) {
      out->set_ok(false);
      out->set_first_broken_sequence(broken);
      out->set_reason(reason);
      out->set_events_verified(broken - from);
      return absl::OkStatus();
    }
  }
  out->set_events_verified(count);
  out->set_head_hash(stretches.back().last_hash);
  return absl::OkStatus();
}

}  // namespace ferry::audit
