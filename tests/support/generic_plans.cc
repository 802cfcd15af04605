#include "tests/support/generic_plans.h"

#include <cstdint>
#include <map>
#include <utility>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace ferry::testing {

void ExpectGenericPlansKept(postgres::ConnectionPool& pool, const std::vector<std::string>& names) {
  using Counts = std::map<std::string, std::pair<int64_t, int64_t>>;
  absl::StatusOr<Counts> plans = pool.RunStatementWithResult<Counts>(
      [](pqxx::transaction_base& txn) -> absl::StatusOr<Counts> {
        Counts out;
        for (const auto& r : txn.exec("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements"))
          out[r[0].as<std::string>()] = {r[1].as<int64_t>(), r[2].as<int64_t>()};
        return out;
      });
  ASSERT_TRUE(plans.ok()) << plans.status();
  for (const std::string& name : names) {
    ASSERT_EQ(plans->count(name), 1u) << name;
    EXPECT_GE(plans->at(name).first, 7) << name << ": generic plans; custom plans: " << plans->at(name).second;
    EXPECT_LE(plans->at(name).second, 5) << name << ": custom plans";
  }
}

}  // namespace ferry::testing
