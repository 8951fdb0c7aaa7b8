/*
 * vin_sql.cpp
 *    SQL-callable VIN functions: _normalize_vin and _check_vin.
 *
 * The public SQL wrappers normalize_vin() and check_vin() read the strictness
 * from stocktech_sync.settings and pass it in, so these functions stay
 * immutable.
 */
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
}

#include <string>

#include "core/vin.hpp"
#include "pg/boundary.hpp"
#include "pg/vin_sql.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_normalize_vin)
STOCKTECH_SQL_FUNCTION(stocktech_check_vin)

namespace stocktech::pg {

namespace {

const char *
rule_name(VinRule rule)
{
    switch (rule)
    {
        case VinRule::None: return "none";
        case VinRule::Empty: return "empty";
        case VinRule::Length: return "length";
        case VinRule::Character: return "character";
        case VinRule::CheckDigit: return "check_digit";
    }
    return "none";
}

std::string
text_to_string(const text *value)
{
    return std::string(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

}  // namespace

void
throw_invalid_vin(const VinCheck &check)
{
    std::string hint;
    switch (check.rule)
    {
        case VinRule::CheckDigit:
            if (is_north_american(check.normalized))
                hint = "Check the VIN for a typing error such as two swapped characters.";
            else
                hint = "Check the VIN for a typing error, or turn strict checking off with "
                       "stocktech_sync.set_vin_check(false).";
            break;
        case VinRule::Character:
        case VinRule::Length:
            hint = "A VIN has 17 characters from 0-9 and A-Z without I, O and Q.";
            break;
        case VinRule::Empty:
        case VinRule::None:
            break;
    }
    throw SqlError(ERRCODE_INVALID_TEXT_REPRESENTATION,
                   "invalid VIN \"" + check.normalized + "\"", check.reason, hint);
}

}  // namespace stocktech::pg

using stocktech::pg::pg_call;
using stocktech::pg::run_at_boundary;

/* _normalize_vin(vin text, strict boolean) RETURNS text */
extern "C" Datum
stocktech_normalize_vin(PG_FUNCTION_ARGS)
{
    text *input = PG_GETARG_TEXT_PP(0);
    bool strict = PG_GETARG_BOOL(1);
    text *result = nullptr;

    run_at_boundary([&] {
        stocktech::VinCheck check =
            stocktech::check_vin(stocktech::pg::text_to_string(input), strict);
        if (!check.valid)
            stocktech::pg::throw_invalid_vin(check);
        pg_call([&] { result = cstring_to_text_with_len(check.normalized.data(),
                                                        check.normalized.size()); });
    });
    PG_RETURN_TEXT_P(result);
}

/* _check_vin(vin text, strict boolean) RETURNS record; never raises for bad VINs */
extern "C" Datum
stocktech_check_vin(PG_FUNCTION_ARGS)
{
    text *input = PG_GETARG_TEXT_PP(0);
    bool strict = PG_GETARG_BOOL(1);
    TupleDesc tupdesc;
    Datum values[6];
    bool nulls[6] = {false, false, false, false, false, false};

    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "return type must be a row type");
    if (tupdesc->natts != 6)
        elog(ERROR, "return type must have 6 columns, not %d", tupdesc->natts);

    run_at_boundary([&] {
        stocktech::VinCheck check =
            stocktech::check_vin(stocktech::pg::text_to_string(input), strict);
        char expected[2] = {check.check_digit_expected, '\0'};

        pg_call([&] {
            values[0] = PointerGetDatum(
                cstring_to_text_with_len(check.normalized.data(), check.normalized.size()));
            values[1] = BoolGetDatum(check.valid);
            values[2] = BoolGetDatum(check.check_digit_verified);
            values[3] = CStringGetTextDatum(stocktech::pg::rule_name(check.rule));
            values[4] = CStringGetTextDatum(check.reason.c_str());
            nulls[3] = check.rule == stocktech::VinRule::None;
            nulls[4] = check.reason.empty();
            if (expected[0] != '\0')
                values[5] = CStringGetTextDatum(expected);
            else
                nulls[5] = true;
        });
    });
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
