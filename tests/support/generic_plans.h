#pragma once

#include <string>
#include <vector>

#include "common/postgres/connection_pool.h"

namespace ferry::testing {

// Expects each prepared statement of `names`, run a dozen times on `pool`'s
// one connection, to have settled on its generic plan: PostgreSQL plans the
// first five calls for their values, then keeps the generic plan unless a
// plan for the values looks cheaper. A statement whose values PostgreSQL
// plans for at every call (arrays or a budget passed as plain parameters)
// pays the planning at every call, which at 10,000 applications cost more
// than running it (issue #23); passing them through sub-selects keeps the
// generic plan, and this check keeps it so.
void ExpectGenericPlansKept(postgres::ConnectionPool& pool, const std::vector<std::string>& names);

}  // namespace ferry::testing
