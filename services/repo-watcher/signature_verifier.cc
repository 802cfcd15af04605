#include "services/repo-watcher/signature_verifier.h"

#include <gpgme.h>

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/process/run_process.h"
#include "services/repo-watcher/temp_dir.h"

namespace ferry::repo_watcher {
namespace {

SignatureCheck Result(v1::SignatureResult r, v1::SignatureType t, std::string reason, std::string signer = "") {
  SignatureCheck c;
  c.result = r;
  c.type = t;
  c.reason = std::move(reason);
  c.signer = std::move(signer);
  return c;
}

struct GpgmeCtxDeleter {
  void operator()(gpgme_ctx_t c) const { gpgme_release(c); }
};
struct GpgmeDataDeleter {
  void operator()(gpgme_data_t d) const { gpgme_data_release(d); }
};
using GpgmeCtx = std::unique_ptr<std::remove_pointer_t<gpgme_ctx_t>, GpgmeCtxDeleter>;
using GpgmeData = std::unique_ptr<std::remove_pointer_t<gpgme_data_t>, GpgmeDataDeleter>;

GpgmeData DataFrom(const std::string& s) {
  gpgme_data_t d = nullptr;
  if (gpgme_data_new_from_mem(&d, s.data(), s.size(), /*copy=*/1) != 0) return nullptr;
  return GpgmeData(d);
}

// Runs ssh-keygen in `dir` with a minimal environment (never the service's,
// which holds its database URL), `input` on stdin, stdout and stderr
// together. DEADLINE_EXCEEDED when it takes more than 20 s.
absl::StatusOr<process::ProcessResult> RunSshKeygen(const std::vector<std::string>& argv, const std::string& dir,
                                                    const std::optional<std::string>& input) {
  process::ProcessOptions options;
  options.env = process::MinimalEnvironment(dir);
  options.working_dir = dir;
  options.stdin_data = input;
  options.timeout = absl::Seconds(20);
  options.merge_stderr_into_stdout = true;
  options.max_stdout_bytes = 64 << 10;
  absl::StatusOr<process::ProcessResult> r = process::RunProcess(argv, options);
  if (r.ok() && r->timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not finish within ", absl::FormatDuration(options.timeout)));
  }
  return r;
}

std::string FirstLine(const std::string& s) {
  std::string line = std::string(absl::StripAsciiWhitespace(s.substr(0, s.find('\n'))));
  return line;
}

}  // namespace

std::string SignatureResultName(v1::SignatureResult result) {
  switch (result) {
    case v1::SIGNATURE_RESULT_NOT_CHECKED: return "not_checked";
    case v1::SIGNATURE_RESULT_VALID: return "valid";
    case v1::SIGNATURE_RESULT_UNSIGNED: return "unsigned";
    case v1::SIGNATURE_RESULT_UNTRUSTED_KEY: return "untrusted_key";
    case v1::SIGNATURE_RESULT_INVALID: return "invalid";
    case v1::SIGNATURE_RESULT_ERROR: return "error";
    default: return "unspecified";
  }
}

GpgmeSshSignatureVerifier::GpgmeSshSignatureVerifier(std::string ssh_keygen) : ssh_keygen_(std::move(ssh_keygen)) {
  static std::once_flag once;
  std::call_once(once, [] {
    gpgme_check_version(nullptr);
    gpgme_set_locale(nullptr, LC_CTYPE, "C");
  });
}

SignatureCheck GpgmeSshSignatureVerifier::Verify(const git::Commit& commit, const v1::SignaturePolicy& policy) {
  if (commit.signature.empty()) {
    return Result(v1::SIGNATURE_RESULT_UNSIGNED, v1::SIGNATURE_TYPE_UNSPECIFIED,
                  absl::StrCat("commit ", commit.sha, " is not signed"));
  }
  if (absl::StartsWith(commit.signature, "-----BEGIN PGP SIGNATURE-----")) return VerifyPgp(commit, policy);
  if (absl::StartsWith(commit.signature, "-----BEGIN SSH SIGNATURE-----")) return VerifySsh(commit, policy);
  return Result(v1::SIGNATURE_RESULT_INVALID, v1::SIGNATURE_TYPE_UNSPECIFIED,
                absl::StrCat("commit ", commit.sha, " carries a signature of an unsupported kind"));
}

SignatureCheck GpgmeSshSignatureVerifier::VerifyPgp(const git::Commit& commit, const v1::SignaturePolicy& policy) {
  const auto kPgp = v1::SIGNATURE_TYPE_PGP;
  if (policy.trusted_pgp_public_keys().empty()) {
    return Result(v1::SIGNATURE_RESULT_UNTRUSTED_KEY, kPgp,
                  absl::StrCat("commit ", commit.sha, " has an OpenPGP signature but no OpenPGP key is trusted"));
  }
  absl::StatusOr<TempDir> home = TempDir::Create("ferry-gnupg-");
  if (!home.ok()) return Result(v1::SIGNATURE_RESULT_ERROR, kPgp, home.status().ToString());
  gpgme_ctx_t raw = nullptr;
  if (gpgme_error_t err = gpgme_new(&raw); err != 0) {
    return Result(v1::SIGNATURE_RESULT_ERROR, kPgp, absl::StrCat("gpgme: ", gpgme_strerror(err)));
  }
  GpgmeCtx ctx(raw);
  gpgme_set_protocol(ctx.get(), GPGME_PROTOCOL_OpenPGP);
  gpgme_ctx_set_engine_info(ctx.get(), GPGME_PROTOCOL_OpenPGP, nullptr, home->path().c_str());
  gpgme_set_offline(ctx.get(), 1);
  for (const std::string& key : policy.trusted_pgp_public_keys()) {
    GpgmeData data = DataFrom(key);
    if (data == nullptr || gpgme_op_import(ctx.get(), data.get()) != 0) {
      return Result(v1::SIGNATURE_RESULT_ERROR, kPgp, "cannot import a trusted OpenPGP key");
    }
  }
  GpgmeData sig = DataFrom(commit.signature);
  GpgmeData text = DataFrom(commit.signed_data);
  if (sig == nullptr || text == nullptr) return Result(v1::SIGNATURE_RESULT_ERROR, kPgp, "gpgme: out of memory");
  gpgme_error_t err = gpgme_op_verify(ctx.get(), sig.get(), text.get(), nullptr);
  if (err != 0) {
    return Result(v1::SIGNATURE_RESULT_INVALID, kPgp,
                  absl::StrCat("commit ", commit.sha, ": OpenPGP signature unreadable: ", gpgme_strerror(err)));
  }
  gpgme_verify_result_t result = gpgme_op_verify_result(ctx.get());
  if (result == nullptr || result->signatures == nullptr) {
    return Result(v1::SIGNATURE_RESULT_INVALID, kPgp, absl::StrCat("commit ", commit.sha, ": no OpenPGP signature found"));
  }
  gpgme_signature_t s = result->signatures;
  std::string fpr = s->fpr != nullptr ? s->fpr : "";
  switch (gpgme_err_code(s->status)) {
    case GPG_ERR_NO_ERROR:
      return Result(v1::SIGNATURE_RESULT_VALID, kPgp,
                    absl::StrCat("good OpenPGP signature by trusted key ", fpr), fpr);
    case GPG_ERR_NO_PUBKEY:
      return Result(v1::SIGNATURE_RESULT_UNTRUSTED_KEY, kPgp,
                    absl::StrCat("commit ", commit.sha, " is signed by OpenPGP key ", fpr, ", which is not trusted"),
                    fpr);
    case GPG_ERR_BAD_SIGNATURE:
      return Result(v1::SIGNATURE_RESULT_INVALID, kPgp,
                    absl::StrCat("commit ", commit.sha, ": bad OpenPGP signature by key ", fpr), fpr);
    default:
      return Result(v1::SIGNATURE_RESULT_INVALID, kPgp,
                    absl::StrCat("commit ", commit.sha, ": OpenPGP signature by ", fpr,
                                 " not accepted: ", gpgme_strerror(s->status)),
                    fpr);
  }
}

SignatureCheck GpgmeSshSignatureVerifier::VerifySsh(const git::Commit& commit, const v1::SignaturePolicy& policy) {
  const auto kSsh = v1::SIGNATURE_TYPE_SSH;
  absl::StatusOr<TempDir> dir = TempDir::Create("ferry-sshsig-");
  if (!dir.ok()) return Result(v1::SIGNATURE_RESULT_ERROR, kSsh, dir.status().ToString());
  absl::StatusOr<std::string> sig = dir->WriteFile("commit.sig", commit.signature);
  std::string signers_text = absl::StrJoin(policy.ssh_allowed_signers(), "\n") + "\n";
  absl::StatusOr<std::string> signers = dir->WriteFile("allowed_signers", signers_text);
  if (!sig.ok() || !signers.ok()) {
    return Result(v1::SIGNATURE_RESULT_ERROR, kSsh, "cannot write SSH verification files");
  }
  // 1. Is the signature itself sound (whoever made it)?
  absl::StatusOr<process::ProcessResult> sound =
      RunSshKeygen({ssh_keygen_, "-Y", "check-novalidate", "-n", "git", "-s", *sig}, dir->path(), commit.signed_data);
  if (!sound.ok()) return Result(v1::SIGNATURE_RESULT_ERROR, kSsh, sound.status().ToString());
  if (sound->exit_code != 0) {
    return Result(v1::SIGNATURE_RESULT_INVALID, kSsh,
                  absl::StrCat("commit ", commit.sha, ": bad SSH signature: ", FirstLine(sound->stdout_text)));
  }
  if (policy.ssh_allowed_signers().empty()) {
    return Result(v1::SIGNATURE_RESULT_UNTRUSTED_KEY, kSsh,
                  absl::StrCat("commit ", commit.sha, " has an SSH signature but no SSH signer is allowed"));
  }
  // 2. Which allowed principal owns the key?
  absl::StatusOr<process::ProcessResult> who =
      RunSshKeygen({ssh_keygen_, "-Y", "find-principals", "-f", *signers, "-s", *sig}, dir->path(), std::nullopt);
  if (!who.ok()) return Result(v1::SIGNATURE_RESULT_ERROR, kSsh, who.status().ToString());
  std::string principal = FirstLine(who->stdout_text);
  if (who->exit_code != 0 || principal.empty()) {
    return Result(v1::SIGNATURE_RESULT_UNTRUSTED_KEY, kSsh,
                  absl::StrCat("commit ", commit.sha, " is signed by an SSH key that is not an allowed signer"));
  }
  // 3. Full verification for that principal.
  absl::StatusOr<process::ProcessResult> ok = RunSshKeygen(
      {ssh_keygen_, "-Y", "verify", "-f", *signers, "-I", principal, "-n", "git", "-s", *sig}, dir->path(),
      commit.signed_data);
  if (!ok.ok()) return Result(v1::SIGNATURE_RESULT_ERROR, kSsh, ok.status().ToString());
  if (ok->exit_code != 0) {
    return Result(v1::SIGNATURE_RESULT_INVALID, kSsh,
                  absl::StrCat("commit ", commit.sha, ": SSH signature not valid for ", principal, ": ",
                               FirstLine(ok->stdout_text)),
                  principal);
  }
  return Result(v1::SIGNATURE_RESULT_VALID, kSsh, absl::StrCat("good SSH signature by allowed signer ", principal),
                principal);
}

}  // namespace ferry::repo_watcher
