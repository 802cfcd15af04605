#pragma once

#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace ferry::postgres {

// A PostgreSQL text[] literal of `items` ('{"a","b"}'), each quoted and its
// quotes and backslashes escaped, for a text[] parameter of a statement.
std::string TextArray(const std::vector<std::string>& items);

// The strings of a text[] field (NULL elements left out).
std::vector<std::string> ParseTextArray(const pqxx::field& field);

}  // namespace ferry::postgres
