/*
 * vin_sql.hpp
 *    VIN checks shared by the SQL functions, the triggers and the apply path.
 */
#ifndef STOCKTECH_PG_VIN_SQL_HPP
#define STOCKTECH_PG_VIN_SQL_HPP

#include "core/vin.hpp"

namespace stocktech::pg {

/* Throw the SqlError reported for an invalid VIN: the rule and what was
 * expected in the detail, and what to do in the hint. */
[[noreturn]] void throw_invalid_vin(const VinCheck &check);

}  // namespace stocktech::pg

#endif
