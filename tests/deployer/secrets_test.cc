// Application secrets on the host target: the resolver's sources (sealed
// boxes and age files from Git, the secrets directory, prefixed variables,
// Vault through an injected lookup) and a HostTarget that records only
// digests while the workload gets the value.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/secrets/sealed_box.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/secrets/secret_flags.h"
#include "services/deployer/secrets/secret_resolver.h"
#include "tests/deployer/test_util.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using secrets::SecretRef;
using secrets::SecretResolver;
using secrets::SecretResolverOptions;

constexpr char kPlain[] = "s3cr3t-Pl41n-v4lue";

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& data, mode_t mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  chmod(path.c_str(), mode);
}

// Every regular file under `dir` whose bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file() && absl::StrContains(Read(e.path()), needle)) out.push_back(e.path());
  }
  return out;
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("app-secrets");
    fs::create_directories(dir_ + "/secrets-dir");
    fs::create_directories(dir_ + "/root");
    key_ = *ferry::secrets::SealedBoxKey::Generate();
    Write(dir_ + "/key", key_->SecretKeyText());
    Write(dir_ + "/secrets-dir/db-password", std::string(kPlain) + "\n");
    setenv("FERRY_SECRET_TEST_TOKEN", kPlain, 1);
  }
  void TearDown() override {
    testing::KillAllUnder(dir_ + "/root");
    unsetenv("FERRY_SECRET_TEST_TOKEN");
  }

  SecretResolverOptions Options(bool with_vault = true) {
    secrets::SecretFlags flags;
    flags.secrets_key_file = dir_ + "/key";
    flags.secrets_dir = dir_ + "/secrets-dir";
    absl::StatusOr<SecretResolverOptions> o = secrets::OptionsFromFlags(flags);
    EXPECT_TRUE(o.ok()) << o.status();
    if (with_vault) {
      o->vault = [](const std::string& path, const std::string& field) -> absl::StatusOr<std::string> {
        if (path == "secret/data/web" && field == "password") return std::string(kPlain);
        return absl::NotFoundError(absl::StrCat("no field \"", field, "\" at \"", path, "\""));
      };
    }
    return *o;
  }

  SecretRef Ref(const json& j) {
    absl::StatusOr<SecretRef> r = secrets::ParseSecretRef(j, "spec.env[0].valueFrom.secretRef");
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  // An age identity and `kPlain` encrypted to it (the Debian age tools).
  std::string AgeCiphertext() {
    std::string id = dir_ + "/age-id", pt = dir_ + "/pt", ct = dir_ + "/ct";
    Write(pt, kPlain);
    std::string cmd = absl::StrCat("age-keygen -o ", id, " 2>/dev/null && age -r \"$(age-keygen -y ", id, ")\" -o ",
                                   ct, " ", pt, " && chmod 600 ", id);
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fs::remove(pt);
    return Read(ct);
  }

  std::string dir_;
  std::optional<ferry::secrets::SealedBoxKey> key_;
};

TEST_F(SecretsTest, EachSourceResolvesToTheValue) {
  SecretResolverOptions o = Options();
  std::string age = AgeCiphertext();
  o.age_identity_file = dir_ + "/age-id";
  SecretResolver r(o);
  SecretRef sealed = Ref({{"encryptedFile", "db.sealed"}});
  sealed.ciphertext = *ferry::secrets::Seal(kPlain, key_->PublicKeyText());
  EXPECT_EQ(*r.Resolve(sealed), kPlain);
  SecretRef aged = Ref({{"encryptedFile", "db.age"}});
  aged.ciphertext = age;
  absl::StatusOr<std::string> v = r.Resolve(aged);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, kPlain);
  EXPECT_EQ(*r.Resolve(Ref({{"file", "db-password"}})), kPlain);  // trailing newline dropped
  EXPECT_EQ(*r.Resolve(Ref({{"env", "FERRY_SECRET_TEST_TOKEN"}})), kPlain);
  EXPECT_EQ(*r.Resolve(Ref({{"vault", {{"path", "secret/data/web"}, {"field", "password"}}}})), kPlain);
  EXPECT_EQ(*r.Digest(kPlain), key_->Digest(kPlain));
}

TEST_F(SecretsTest, BadReferencesFailNamingTheFieldAndNeverTheValue) {
  SecretResolverOptions o = Options(/*with_vault=*/false);
  SecretResolver r(o);
  auto expect_error = [&](const SecretRef& ref, const std::string& says) {
    absl::StatusOr<std::string> v = r.Resolve(ref);
    ASSERT_FALSE(v.ok()) << says;
    EXPECT_TRUE(absl::StrContains(v.status().message(), "spec.env[0].valueFrom.secretRef")) << v.status();
    EXPECT_TRUE(absl::StrContains(v.status().message(), says)) << v.status();
    EXPECT_FALSE(absl::StrContains(v.status().message(), kPlain)) << v.status();
  };
  // Sealed to another key.
  SecretRef other = Ref({{"encryptedFile", "db.sealed"}});
  other.ciphertext = *ferry::secrets::Seal(kPlain, ferry::secrets::SealedBoxKey::Generate()->PublicKeyText());
  expect_error(other, "not sealed to this deployer's key");
  // Neither sealed nor age.
  SecretRef junk = Ref({{"encryptedFile", "db.txt"}});
  junk.ciphertext = kPlain;
  expect_error(junk, "neither a sealed value");
  // An age file without an age identity.
  SecretRef aged = Ref({{"encryptedFile", "db.age"}});
  aged.ciphertext = AgeCiphertext();
  expect_error(aged, "--age-identity-file");
  // An age file and the wrong identity.
  std::string wrong = dir_ + "/wrong-id";
  ASSERT_EQ(std::system(absl::StrCat("age-keygen -o ", wrong, " 2>/dev/null && chmod 600 ", wrong).c_str()), 0);
  SecretResolverOptions with_wrong = o;
  with_wrong.age_identity_file = wrong;
  absl::StatusOr<std::string> v = SecretResolver(with_wrong).Resolve(aged);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StrContains(v.status().message(), "cannot be decrypted")) << v.status();
  // Outside the secrets directory, a missing file, a variable without the prefix.
  expect_error(Ref({{"file", "../key"}}), "secrets directory");
  expect_error(Ref({{"file", "missing"}}), "does not exist");
  expect_error(Ref({{"env", "HOME"}}), "FERRY_SECRET_");
  expect_error(Ref({{"env", "FERRY_SECRET_UNSET"}}), "is not set");
  // No Vault configured.
  expect_error(Ref({{"vault", {{"path", "secret/data/web"}, {"field", "password"}}}}),
               "no Vault configured: start the deployer with --vault-address");
  // No secrets key at all.
  SecretResolverOptions keyless = o;
  keyless.key.reset();
  absl::StatusOr<std::string> k = SecretResolver(keyless).Resolve(Ref({{"env", "FERRY_SECRET_TEST_TOKEN"}}));
  ASSERT_FALSE(k.ok());
  EXPECT_TRUE(absl::StrContains(k.status().message(), "--secrets-key-file")) << k.status();
}

TEST_F(SecretsTest, AnAgeThatCannotRunOrHangsFailsTheReferenceInsteadOfRetrying) {
  SecretResolverOptions o = Options();
  SecretRef aged = Ref({{"encryptedFile", "db.age"}});
  aged.ciphertext = AgeCiphertext();
  o.age_identity_file = dir_ + "/age-id";
  o.age_binary = dir_ + "/no-such-age";
  absl::StatusOr<std::string> missing = SecretResolver(o).Resolve(aged);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition) << missing.status();
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "age could not be run")) << missing.status();
  Write(dir_ + "/slow-age", "#!/bin/sh\nexec sleep 30\n", 0700);
  o.age_binary = dir_ + "/slow-age";
  o.age_timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> slow = SecretResolver(o).Resolve(aged);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kFailedPrecondition) << slow.status();
  EXPECT_TRUE(absl::StrContains(slow.status().message(), "did not finish within 200ms")) << slow.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(SecretsTest, MalformedReferencesAreRefusedByField) {
  EXPECT_FALSE(secrets::ParseSecretRef(json::object(), "f").ok());
  EXPECT_FALSE(secrets::ParseSecretRef({{"file", "a"}, {"env", "B"}}, "f").ok());
  EXPECT_FALSE(secrets::ParseSecretRef({{"encryptedFile", "../../etc/shadow"}}, "f").ok());
  EXPECT_FALSE(secrets::ParseSecretRef({{"vault", {{"path", "p"}}}}, "f").ok());
  absl::StatusOr<SecretRef> extra = secrets::ParseSecretRef({{"file", "a"}, {"value", "x"}}, "f");
  ASSERT_FALSE(extra.ok());
  EXPECT_TRUE(absl::StrContains(extra.status().message(), "f.value")) << extra.status();
}

TEST_F(SecretsTest, KeyFilesReadableByOthersAreRefused) {
  chmod((dir_ + "/key").c_str(), 0644);
  secrets::SecretFlags flags;
  flags.secrets_key_file = dir_ + "/key";
  absl::StatusOr<SecretResolverOptions> o = secrets::OptionsFromFlags(flags);
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::StrContains(o.status().message(), "chmod 600")) << o.status();
}

// The host target with secrets: the recorded objects, the live state and the
// deployer's own files hold digests; the workload's env and file the value.
class HostSecretsTest : public SecretsTest {
 protected:
  void SetUp() override {
    SecretsTest::SetUp();
    resolver_ = std::make_unique<SecretResolver>(Options());
    target_ = std::make_unique<host::HostTarget>(dir_ + "/root", host::WorkloadIdentity{}, /*allow_special_modes=*/false,
                                                 resolver_.get());
    sealed_ = *ferry::secrets::Seal(kPlain, key_->PublicKeyText());
    fetch_ = [this](const std::string& source, const std::string& path) -> absl::StatusOr<std::string> {
      if (source == "apps/web/web.yaml" && path == "db.sealed") return sealed_;
      return absl::NotFoundError(absl::StrCat(path, ": no such file in the application folder"));
    };
  }

  TargetObject Obj(const json& doc) {
    return TargetObject{ObjectKey{"ferry.dev", doc.value("kind", ""), "", doc["metadata"].value("name", "")},
                        doc.dump(), "apps/web/web.yaml", 0};
  }

  json Process(const json& env) {
    return {{"apiVersion", "ferry.dev/v1"},
            {"kind", "Process"},
            {"metadata", {{"name", "web"}}},
            {"spec",
             {{"command", "printf '%s|%s|%s|%s' \"$DB\" \"$TOKEN\" \"$DIRSECRET\" \"$VAULTED\" > seen-env; exec sleep 60"},
              {"args", json::array()},
              {"env", env}}}};
  }
  json SecretFile(const json& ref) {
    return {{"apiVersion", "ferry.dev/v1"},
            {"kind", "ConfigFile"},
            {"metadata", {{"name", "creds"}}},
            {"spec", {{"path", "creds.txt"}, {"mode", "0640"}, {"contentFrom", {{"secretRef", ref}}}}}};
  }
  json AllEnv() {
    return json::array({{{"name", "DB"}, {"valueFrom", {{"secretRef", {{"encryptedFile", "db.sealed"}}}}}},
                        {{"name", "TOKEN"}, {"valueFrom", {{"secretRef", {{"env", "FERRY_SECRET_TEST_TOKEN"}}}}}},
                        {{"name", "DIRSECRET"}, {"valueFrom", {{"secretRef", {{"file", "db-password"}}}}}},
                        {{"name", "VAULTED"},
                         {"valueFrom", {{"secretRef", {{"vault", {{"path", "secret/data/web"}, {"field", "password"}}}}}}}},
                        {{"name", "PLAIN"}, {"value", "not-secret"}}});
  }

  std::unique_ptr<SecretResolver> resolver_;
  std::unique_ptr<host::HostTarget> target_;
  std::string sealed_;
  FileFetcher fetch_;
  AppScope app_{"web-app", "dev"};
};

TEST_F(HostSecretsTest, TheWorkloadGetsTheValuesAndEveryRecordOnlyDigests) {
  std::vector<TargetObject> objs = {Obj(Process(AllEnv())), Obj(SecretFile({{"encryptedFile", "db.sealed"}}))};
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, objs, fetch_);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  for (const TargetObject& o : *prepared) {
    EXPECT_FALSE(absl::StrContains(o.json, kPlain)) << o.json;
    EXPECT_TRUE(absl::StrContains(o.json, key_->Digest(kPlain))) << o.json;
  }
  for (const TargetObject& o : *prepared) {
    absl::Status s = target_->Apply(app_, o, nullptr, absl::Now() + absl::Seconds(20), nullptr);
    ASSERT_TRUE(s.ok()) << s;
  }
  std::string root = dir_ + "/root";
  for (int i = 0; i < 200 && Read(root + "/seen-env").empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Read(root + "/seen-env"), absl::StrCat(kPlain, "|", kPlain, "|", kPlain, "|", kPlain));
  EXPECT_EQ(Read(root + "/creds.txt"), kPlain);
  struct stat st;
  ASSERT_EQ(stat((root + "/creds.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // Ferry's own state under the root: 0600, no value.
  for (const auto& e : fs::recursive_directory_iterator(root + "/.ferry")) {
    if (!e.is_regular_file()) continue;
    ASSERT_EQ(stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u) << e.path() << " is readable by others";
  }
  std::vector<std::string> holders = FilesContaining(root, kPlain);
  std::sort(holders.begin(), holders.end());
  EXPECT_EQ(holders, (std::vector<std::string>{root + "/creds.txt", root + "/seen-env"}));
  // Live state: digests, in sync.
  for (const TargetObject& o : *prepared) {
    ObservedObject seen = target_->Observe(app_, o.key, &o);
    EXPECT_EQ(seen.drift, v1::DRIFT_STATUS_IN_SYNC) << seen.drift_message;
    EXPECT_FALSE(absl::StrContains(seen.live_json, kPlain)) << seen.live_json;
    EXPECT_TRUE(absl::StrContains(seen.live_json, key_->Digest(kPlain))) << seen.live_json;
  }
  // The file edited on disk: drift, still no value shown.
  Write(root + "/creds.txt", "edited", 0640);
  const TargetObject& file = (*prepared)[1];
  ObservedObject drifted = target_->Observe(app_, file.key, &file);
  EXPECT_EQ(drifted.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_TRUE(absl::StrContains(drifted.drift_message, "secret changed")) << drifted.drift_message;
  EXPECT_FALSE(absl::StrContains(drifted.live_json, "edited")) << drifted.live_json;
  EXPECT_TRUE(absl::StrContains(drifted.live_json, key_->Digest("edited"))) << drifted.live_json;
  // Re-applying the recorded object (drift repair) restores the value, with no Git at hand.
  ASSERT_TRUE(target_->Apply(app_, file, &file, absl::Now() + absl::Seconds(20), nullptr).ok());
  EXPECT_EQ(Read(root + "/creds.txt"), kPlain);
}

TEST_F(HostSecretsTest, ABadReferenceFailsPrepareNamingObjectAndFieldBeforeAnythingChanges) {
  json env = AllEnv();
  env[2]["valueFrom"]["secretRef"]["file"] = "missing";
  std::vector<TargetObject> objs = {Obj(SecretFile({{"encryptedFile", "db.sealed"}})), Obj(Process(env))};
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, objs, fetch_);
  ASSERT_FALSE(prepared.ok());
  EXPECT_TRUE(absl::StrContains(prepared.status().message(), "Process \"web\"")) << prepared.status();
  EXPECT_TRUE(absl::StrContains(prepared.status().message(), "spec.env[2].valueFrom.secretRef.file")) << prepared.status();
  objs = {Obj(SecretFile({{"encryptedFile", "gone.sealed"}}))};
  prepared = target_->Prepare(app_, objs, fetch_);
  ASSERT_FALSE(prepared.ok());
  EXPECT_TRUE(absl::StrContains(prepared.status().message(), "ConfigFile \"creds\": spec.contentFrom.secretRef.encryptedFile \"gone.sealed\""))
      << prepared.status();
  EXPECT_FALSE(fs::exists(dir_ + "/root/creds.txt"));
}

TEST_F(HostSecretsTest, AValueChangedSincePrepareIsRefusedAtApply) {
  std::vector<TargetObject> objs = {Obj(SecretFile({{"env", "FERRY_SECRET_TEST_TOKEN"}}))};
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, objs, fetch_);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  setenv("FERRY_SECRET_TEST_TOKEN", "rotated-value", 1);
  absl::Status s = target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(5), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "the secret changed since this deployment was prepared")) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "rotated-value")) << s;
  EXPECT_FALSE(fs::exists(dir_ + "/root/creds.txt"));
}

TEST_F(HostSecretsTest, ValidateOutputQuotingTheSecretIsRedacted) {
  json f = SecretFile({{"encryptedFile", "db.sealed"}});
  f["spec"]["validate"] = {{"command", "cat {path}; exit 1"}};
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, {Obj(f)}, fetch_);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  absl::Status s = target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(5), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(absl::StrContains(s.message(), kPlain)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "[secret]")) << s;
}

TEST_F(HostSecretsTest, SecretValuesAreNotExpandedIntoTheCommandLine) {
  json p = Process(AllEnv());
  p["spec"]["command"] = json::array({"/bin/sh", "-c", "printf '%s' \"$1\" > seen-arg; exec sleep 60", "sh", "$(TOKEN)"});
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, {Obj(p)}, fetch_);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_TRUE(target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(20), nullptr).ok());
  std::string root = dir_ + "/root";
  for (int i = 0; i < 200 && !fs::exists(root + "/seen-arg"); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Read(root + "/seen-arg"), "$(TOKEN)");
}

}  // namespace
}  // namespace ferry::deployer
