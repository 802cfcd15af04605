#include "tests/deployer/fake_deployment_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ferry::deployer::testing {
namespace {

std::string Key(const std::string& app, const std::string& env) { return app + "/" + env; }

bool IsUnfinished(v1::DeploymentState s) {
  return s == v1::DEPLOYMENT_STATE_PENDING || s == v1::DEPLOYMENT_STATE_RUNNING;
}

bool IsTerminal(v1::DeploymentState s) {
  return s == v1::DEPLOYMENT_STATE_SUCCEEDED || s == v1::DEPLOYMENT_STATE_FAILED ||
         s == v1::DEPLOYMENT_STATE_ROLLED_BACK;
}

}  // namespace

class FakeDeploymentStore::Lock final : public AppLock {
 public:
  Lock(FakeDeploymentStore* store, std::string key) : store_(store), key_(std::move(key)) {}
  ~Lock() override { store_->Unlock(key_); }

 private:
  FakeDeploymentStore* store_;
  std::string key_;
};

void FakeDeploymentStore::AddEvents(const std::vector<v1::Event>& events) {
  events_.insert(events_.end(), events.begin(), events.end());
}

absl::Status FakeDeploymentStore::Write() {
  if (crashed_) return absl::UnavailableError("the deployer is dead (simulated crash)");
  if (writes_left_ > 0 && --writes_left_ == 0) crashed_ = true;  // Dead right after this write.
  return absl::OkStatus();
}

void FakeDeploymentStore::CrashAfterWrites(int writes) {
  ferry::MutexLock l(&mu_);
  writes_left_ = writes;
  crashed_ = writes == 0;
}

void FakeDeploymentStore::Revive() {
  ferry::MutexLock l(&mu_);
  writes_left_ = -1;
  crashed_ = false;
}

bool FakeDeploymentStore::crashed() {
  ferry::MutexLock l(&mu_);
  return crashed_;
}

int FakeDeploymentStore::combined_step_writes() {
  ferry::MutexLock l(&mu_);
  return combined_step_writes_;
}

int FakeDeploymentStore::step_saves() {
  ferry::MutexLock l(&mu_);
  return step_saves_;
}

void FakeDeploymentStore::FailCreateWithManifests(const std::string& id, absl::Status error) {
  ferry::MutexLock l(&mu_);
  create_errors_[id] = std::move(error);
}

void FakeDeploymentStore::FailGetPin(const std::string& app, absl::Status error) {
  ferry::MutexLock l(&mu_);
  pin_errors_[app] = std::move(error);
}

void FakeDeploymentStore::FailGetSpec(const std::string& id, absl::Status error) {
  ferry::MutexLock l(&mu_);
  spec_errors_[id] = std::move(error);
}

absl::StatusOr<RecoveryAttempts> FakeDeploymentStore::GetRecoveryAttempts(const std::string& id) {
  ferry::MutexLock l(&mu_);
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
  return it->second.attempts;
}

absl::Status FakeDeploymentStore::SaveRecoveryAttempts(const std::string& id, const RecoveryAttempts& attempts) {
  ferry::MutexLock l(&mu_);
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return absl::NotFoundError(absl::StrCat("deployment ", id, " not found"));
  absl::Status w = Write();
  if (!w.ok()) return w;
  it->second.attempts = attempts;
  return absl::OkStatus();
}

v1::Deployment FakeDeploymentStore::WithSteps(const Row& row, bool include_steps) const {
  v1::Deployment d = row.record;
  if (include_steps) {
    for (const auto& [seq, step] : row.steps) *d.add_steps() = step;
  }
  return d;
}

absl::Status FakeDeploymentStore::Create(const v1::Deployment& d, const v1::Plan& spec,
                                         const std::vector<v1::Event>& events) {
  ferry::MutexLock l(&mu_);
  if (deployments_.count(d.id())) return absl::AlreadyExistsError(absl::StrCat("deployment ", d.id(), " exists"));
  auto error = create_errors_.find(d.id());
  if (error != create_errors_.end() && spec.manifests_size() > 0) return error->second;
  absl::Status w = Write();
  if (!w.ok()) return w;
  Row row;
  row.seq = next_seq_++;
  row.record = d;
  row.record.clear_steps();
  row.spec = spec;
  deployments_[d.id()] = std::move(row);
  AddEvents(events);
  return absl::OkStatus();
}

absl::Status FakeDeploymentStore::Update(const v1::Deployment& d, const std::vector<v1::Event>& events,
                                         const ManagedApp* app, const v1::PinState* pin) {
  return SaveStepsThenUpdate({}, d, events, app, pin);
}

void FakeDeploymentStore::UpdateLocked(const v1::Deployment& d, const std::vector<v1::Event>& events,
                                       const ManagedApp* app, const v1::PinState* pin) {
  Row& row = deployments_.at(d.id());
  row.record = d;
  row.record.clear_steps();
  if (app != nullptr) {
    ManagedApp& m = managed_[Key(app->application_id, app->environment_id)];
    std::string live = m.live_deployment_id;
    m = *app;
    if (app->live_deployment_id.empty()) m.live_deployment_id = live;
  }
  if (pin != nullptr) pins_[Key(pin->application_id(), pin->environment_id())] = *pin;
  AddEvents(events);
}

absl::Status FakeDeploymentStore::SaveStep(const std::string& deployment_id, const v1::DeploymentStep& step,
                                           const AppliedChange* change, const std::vector<v1::Event>& events) {
  StepWrite write{step, change != nullptr ? std::optional<AppliedChange>(*change) : std::nullopt, events};
  return SaveSteps(deployment_id, {write});
}

void FakeDeploymentStore::SaveStepLocked(const std::string& deployment_id, const StepWrite& write) {
  ++step_saves_;
  deployments_.at(deployment_id).steps[write.step.sequence()] = write.step;
  if (write.change.has_value()) {
    const AppliedChange& change = *write.change;
    auto& objects = applied_[Key(change.application_id, change.environment_id)];
    if (change.deleted) {
      objects.erase(change.object.key.ToString());
    } else {
      objects[change.object.key.ToString()] = AppliedObject{change.object, change.deployment_id};
    }
  }
  AddEvents(write.events);
}

absl::Status FakeDeploymentStore::SaveSteps(const std::string& deployment_id, const std::vector<StepWrite>& steps) {
  ferry::MutexLock l(&mu_);
  if (deployments_.count(deployment_id) == 0) {
    return absl::NotFoundError(absl::StrCat("deployment ", deployment_id, " not found"));
  }
  absl::Status w = Write();
  if (!w.ok()) return w;
  if (steps.size() > 1) ++combined_step_writes_;
  for (const StepWrite& s : steps) SaveStepLocked(deployment_id, s);
  return absl::OkStatus();
}

absl::Status FakeDeploymentStore::SaveStepsThenUpdate(const std::vector<StepWrite>& steps, const v1::Deployment& d,
                                                      const std::vector<v1::Event>& events, const ManagedApp* app,
                                                      const v1::PinState* pin) {
  ferry::MutexLock l(&mu_);
  if (deployments_.count(d.id()) == 0) return absl::NotFoundError(absl::StrCat("deployment ", d.id(), " not found"));
  absl::Status w = Write();
  if (!w.ok()) return w;
  if (!steps.empty()) ++combined_step_writes_;
  for (const StepWrite& s : steps) SaveStepLocked(d.id(), s);
  UpdateLocked(d, events, app, pin);
  return absl::OkStatus();
}

absl::StatusOr<v1::Deployment> FakeDeploymentStore::Get(const std::string& id, bool include_steps) {
  ferry::MutexLock l(&mu_);
  ++record_reads_;
  if (missed_gets_.erase(id) > 0) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
  return WithSteps(it->second, include_steps);
}

absl::StatusOr<v1::Plan> FakeDeploymentStore::GetSpec(const std::string& id) {
  ferry::MutexLock l(&mu_);
  auto error = spec_errors_.find(id);
  if (error != spec_errors_.end()) return error->second;
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
  return it->second.spec;
}

absl::StatusOr<DeploymentPage> FakeDeploymentStore::List(const DeploymentFilter& f) {
  ferry::MutexLock l(&mu_);
  std::vector<const Row*> rows;
  for (const auto& [id, row] : deployments_) {
    const v1::Deployment& d = row.record;
    if (!f.application_id.empty() && d.application_id() != f.application_id) continue;
    if (!f.environment_id.empty() && d.environment_id() != f.environment_id) continue;
    if (!f.states.empty() && std::find(f.states.begin(), f.states.end(), d.state()) == f.states.end()) continue;
    if (f.after_seq != 0 && row.seq >= f.after_seq) continue;
    rows.push_back(&row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row* a, const Row* b) { return a->seq > b->seq; });
  DeploymentPage page;
  for (const Row* row : rows) {
    if (static_cast<int>(page.deployments.size()) == f.page_size) break;
    page.deployments.push_back(WithSteps(*row, f.include_steps));
    page.next_seq = row->seq;
  }
  if (static_cast<int>(rows.size()) <= f.page_size) page.next_seq = 0;
  return page;
}

absl::StatusOr<std::vector<v1::Deployment>> FakeDeploymentStore::Unfinished() {
  ferry::MutexLock l(&mu_);
  std::vector<const Row*> rows;
  for (const auto& [id, row] : deployments_) {
    if (IsUnfinished(row.record.state())) rows.push_back(&row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row* a, const Row* b) { return a->seq < b->seq; });
  std::vector<v1::Deployment> out;
  for (const Row* row : rows) out.push_back(row->record);
  return out;
}

absl::StatusOr<std::vector<v1::Deployment>> FakeDeploymentStore::Succeeded(const std::string& app,
                                                                          const std::string& env) {
  ferry::MutexLock l(&mu_);
  std::vector<const Row*> rows;
  for (const auto& [id, row] : deployments_) {
    const v1::Deployment& d = row.record;
    if (d.application_id() == app && d.environment_id() == env && d.state() == v1::DEPLOYMENT_STATE_SUCCEEDED) {
      rows.push_back(&row);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row* a, const Row* b) { return a->seq > b->seq; });
  std::vector<v1::Deployment> out;
  for (const Row* row : rows) out.push_back(row->record);
  return out;
}

absl::StatusOr<std::vector<v1::Deployment>> FakeDeploymentStore::Unreported() {
  ferry::MutexLock l(&mu_);
  std::set<std::string> running;
  for (const auto& [id, row] : deployments_) {
    if (IsUnfinished(row.record.state())) running.insert(Key(row.record.application_id(), row.record.environment_id()));
  }
  std::vector<const Row*> rows;
  for (const auto& [id, row] : deployments_) {
    const v1::Deployment& d = row.record;
    if (!IsTerminal(d.state()) || row.reported || d.plan_id().empty()) continue;
    if (running.count(Key(d.application_id(), d.environment_id()))) continue;
    rows.push_back(&row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row* a, const Row* b) { return a->seq < b->seq; });
  std::vector<v1::Deployment> out;
  for (const Row* row : rows) out.push_back(row->record);
  return out;
}

absl::Status FakeDeploymentStore::MarkReported(const std::vector<std::string>& ids) {
  ferry::MutexLock l(&mu_);
  ++mark_reported_writes_;
  for (const std::string& id : ids) {
    auto it = deployments_.find(id);
    if (it != deployments_.end()) it->second.reported = true;
  }
  return absl::OkStatus();
}

int FakeDeploymentStore::mark_reported_writes() {
  ferry::MutexLock l(&mu_);
  return mark_reported_writes_;
}

absl::StatusOr<std::vector<AppliedObject>> FakeDeploymentStore::Applied(const std::string& app,
                                                                       const std::string& env) {
  ferry::MutexLock l(&mu_);
  ++record_reads_;
  return AppliedLocked(app, env);
}

std::vector<AppliedObject> FakeDeploymentStore::AppliedLocked(const std::string& app, const std::string& env) {
  std::vector<AppliedObject> out;
  for (const auto& [key, a] : applied_[Key(app, env)]) out.push_back(a);
  std::stable_sort(out.begin(), out.end(),
                   [](const AppliedObject& a, const AppliedObject& b) { return a.object.wave < b.object.wave; });
  return out;
}

absl::StatusOr<std::vector<ManagedApp>> FakeDeploymentStore::ManagedApps() {
  ferry::MutexLock l(&mu_);
  ++managed_list_reads_;
  std::vector<ManagedApp> out;
  for (const auto& [key, m] : managed_) out.push_back(m);
  return out;
}

absl::StatusOr<std::optional<ManagedApp>> FakeDeploymentStore::GetManagedApp(const std::string& app,
                                                                            const std::string& env) {
  ferry::MutexLock l(&mu_);
  ++record_reads_;
  auto it = managed_.find(Key(app, env));
  if (it == managed_.end()) return std::optional<ManagedApp>();
  return std::optional<ManagedApp>(it->second);
}

absl::StatusOr<DeploymentRecords::AppState> FakeDeploymentStore::ReadAppState(const std::string& app,
                                                                              const std::string& env,
                                                                              const AppStateRead& what) {
  ferry::MutexLock l(&mu_);
  ++record_reads_;
  AppState out;
  absl::StatusOr<v1::PinState> pin = PinLocked(app, env);
  if (!pin.ok()) return pin.status();
  out.pin = *std::move(pin);
  if (!what.deployment_id.empty() && missed_gets_.erase(what.deployment_id) == 0) {
    auto it = deployments_.find(what.deployment_id);
    if (it != deployments_.end()) out.deployment = WithSteps(it->second, false);
  }
  if (what.applied) {
    out.applied = AppliedLocked(app, env);
    out.has_applied = !out.applied.empty();
    // A page, as PostgreSQL reads it: keys after applied_after, compared as
    // bytes, the first applied_limit of them.
    if (what.applied_after || what.applied_limit > 0) {
      std::vector<AppliedObject> page;
      for (AppliedObject& a : out.applied) {
        if (!what.applied_after || a.object.key.ToString() > *what.applied_after) page.push_back(std::move(a));
      }
      std::sort(page.begin(), page.end(), [](const AppliedObject& a, const AppliedObject& b) {
        return a.object.key.ToString() < b.object.key.ToString();
      });
      if (what.applied_limit > 0 && page.size() > static_cast<size_t>(what.applied_limit)) page.resize(what.applied_limit);
      std::stable_sort(page.begin(), page.end(),
                       [](const AppliedObject& a, const AppliedObject& b) { return a.object.wave < b.object.wave; });
      out.applied = std::move(page);
    }
    applied_rows_read_ += static_cast<int>(out.applied.size());
  }
  if (what.managed) {
    auto m = managed_.find(Key(app, env));
    if (m != managed_.end()) {
      out.managed = m->second;
      auto live = deployments_.find(m->second.live_deployment_id);
      if (live != deployments_.end()) out.live = WithSteps(live->second, false);
    }
  }
  return out;
}

absl::StatusOr<DriftStore::DriftCheckInputs> FakeDeploymentStore::ReadDriftCheckInputs(const std::string& app,
                                                                                      const std::string& env) {
  DriftCheckInputs out;
  {
    ferry::MutexLock l(&mu_);
    ++drift_input_reads_;
    if (!drift_settings_error_.ok()) return drift_settings_error_;
    auto it = managed_.find(Key(app, env));
    if (it == managed_.end()) return out;
    out.app = it->second;
    if (auto s = drift_settings_.find(Key(app, env)); s != drift_settings_.end()) out.own = s->second;
  }
  absl::StatusOr<std::vector<AppliedObject>> applied = Applied(app, env);
  if (!applied.ok()) return applied.status();
  out.applied = *std::move(applied);
  return out;
}

absl::StatusOr<std::vector<DriftStore::DriftCheckInputs>> FakeDeploymentStore::ReadDriftCheckInputsOf(
    const std::vector<std::pair<std::string, std::string>>& apps) {
  std::vector<DriftCheckInputs> out;
  std::function<void()> hook;
  {
    ferry::MutexLock l(&mu_);
    ++drift_input_batch_reads_;
    if (!drift_settings_error_.ok()) return drift_settings_error_;
    hook = after_drift_input_batch_read_;
  }
  for (const auto& [app, env] : apps) {
    DriftCheckInputs one;
    {
      ferry::MutexLock l(&mu_);
      auto it = managed_.find(Key(app, env));
      if (it == managed_.end()) continue;
      one.app = it->second;
      if (auto s = drift_settings_.find(Key(app, env)); s != drift_settings_.end()) one.own = s->second;
    }
    absl::StatusOr<std::vector<AppliedObject>> applied = Applied(app, env);
    if (!applied.ok()) return applied.status();
    one.applied = *std::move(applied);
    out.push_back(std::move(one));
  }
  if (hook) hook();
  return out;
}

absl::StatusOr<v1::PinState> FakeDeploymentStore::GetPin(const std::string& app, const std::string& env) {
  ferry::MutexLock l(&mu_);
  ++record_reads_;
  return PinLocked(app, env);
}

absl::StatusOr<v1::PinState> FakeDeploymentStore::PinLocked(const std::string& app, const std::string& env) {
  auto error = pin_errors_.find(app);
  if (error != pin_errors_.end()) return error->second;
  auto it = pins_.find(Key(app, env));
  if (it != pins_.end()) return it->second;
  v1::PinState none;
  none.set_application_id(app);
  none.set_environment_id(env);
  return none;
}

absl::Status FakeDeploymentStore::SavePin(const v1::PinState& pin, const std::vector<v1::Event>& events) {
  ferry::MutexLock l(&mu_);
  absl::Status w = Write();
  if (!w.ok()) return w;
  pins_[Key(pin.application_id(), pin.environment_id())] = pin;
  AddEvents(events);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeDeploymentStore::RecordDrift(const std::string&, const std::string&, const std::string&,
                                                         v1::DriftStatus, const std::string&,
                                                         const std::vector<v1::Event>& events) {
  ferry::MutexLock l(&mu_);
  AddEvents(events);
  return next_drift_id_++;
}

absl::Status FakeDeploymentStore::MarkDriftHealed(const std::vector<int64_t>& ids, const std::string& deployment_id,
                                                  const std::vector<v1::Event>& events) {
  ferry::MutexLock l(&mu_);
  for (int64_t id : ids) healed_[id] = deployment_id;
  AddEvents(events);
  return absl::OkStatus();
}

absl::StatusOr<v1::DriftSettings> FakeDeploymentStore::GetDriftSettings(const std::string& app,
                                                                       const std::string& env) {
  ferry::MutexLock l(&mu_);
  if (app.empty() && env.empty()) ++global_drift_settings_reads_;
  if (!drift_settings_error_.ok()) return drift_settings_error_;
  auto it = drift_settings_.find(Key(app, env));
  if (it == drift_settings_.end()) return absl::NotFoundError("no drift settings stored");
  return it->second;
}

absl::Status FakeDeploymentStore::SaveDriftSettings(const v1::DriftSettings& s) {
  ferry::MutexLock l(&mu_);
  drift_settings_[Key(s.application_id(), s.environment_id())] = s;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AppLock>> FakeDeploymentStore::TryLock(const std::string& app, const std::string& env) {
  ferry::MutexLock l(&mu_);
  std::string key = Key(app, env);
  if (!locks_.insert(key).second) return std::unique_ptr<AppLock>();
  return std::unique_ptr<AppLock>(std::make_unique<Lock>(this, key));
}

void FakeDeploymentStore::Unlock(const std::string& key) {
  ferry::MutexLock l(&mu_);
  locks_.erase(key);
}

absl::StatusOr<std::string> FakeDeploymentStore::GetCursor() {
  ferry::MutexLock l(&mu_);
  ++cursor_reads_;
  if (!cursor_error_.ok()) return cursor_error_;
  return cursor_;
}

absl::Status FakeDeploymentStore::SaveCursor(const std::string& cursor) {
  ferry::MutexLock l(&mu_);
  cursor_ = cursor;
  return absl::OkStatus();
}

void FakeDeploymentStore::AddManaged(const ManagedApp& app, const std::vector<TargetObject>& objects) {
  ferry::MutexLock l(&mu_);
  std::string key = Key(app.application_id, app.environment_id);
  managed_[key] = app;
  for (const TargetObject& o : objects) applied_[key][o.key.ToString()] = AppliedObject{o, app.live_deployment_id};
}

std::vector<v1::Event> FakeDeploymentStore::events() {
  ferry::MutexLock l(&mu_);
  return events_;
}

std::set<std::string> FakeDeploymentStore::reported() {
  ferry::MutexLock l(&mu_);
  std::set<std::string> out;
  for (const auto& [id, row] : deployments_) {
    if (row.reported) out.insert(id);
  }
  return out;
}

std::map<int64_t, std::string> FakeDeploymentStore::healed() {
  ferry::MutexLock l(&mu_);
  return healed_;
}

void FakeDeploymentStore::FailDriftSettings(absl::Status error) {
  ferry::MutexLock l(&mu_);
  drift_settings_error_ = std::move(error);
}

void FakeDeploymentStore::FailCursor(absl::Status error) {
  ferry::MutexLock l(&mu_);
  cursor_error_ = std::move(error);
}

int FakeDeploymentStore::cursor_reads() {
  ferry::MutexLock l(&mu_);
  return cursor_reads_;
}

int FakeDeploymentStore::record_reads() {
  ferry::MutexLock l(&mu_);
  return record_reads_;
}

int FakeDeploymentStore::applied_rows_read() {
  ferry::MutexLock l(&mu_);
  return applied_rows_read_;
}

int FakeDeploymentStore::managed_list_reads() {
  ferry::MutexLock l(&mu_);
  return managed_list_reads_;
}

int FakeDeploymentStore::global_drift_settings_reads() {
  ferry::MutexLock l(&mu_);
  return global_drift_settings_reads_;
}

int FakeDeploymentStore::drift_input_reads() {
  ferry::MutexLock l(&mu_);
  return drift_input_reads_;
}

int FakeDeploymentStore::drift_input_batch_reads() {
  ferry::MutexLock l(&mu_);
  return drift_input_batch_reads_;
}

void FakeDeploymentStore::AfterDriftInputBatchRead(std::function<void()> hook) {
  ferry::MutexLock l(&mu_);
  after_drift_input_batch_read_ = std::move(hook);
}

}  // namespace ferry::deployer::testing
