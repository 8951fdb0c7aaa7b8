/*
 * transform.hpp
 *    Parsing of the text values that CSV files and ERP services deliver into
 *    the canonical text of the vin_master column types.
 *
 * The CSV import and the OData sync share these functions, so a value means
 * the same thing whichever way it arrives.  Canonical forms:
 *
 *    decimal     optional '-', digits, optional '.' and digits; no grouping,
 *                no leading zeros, exactly the digits given (no rounding and
 *                no conversion to floating point)
 *    date        YYYY-MM-DD
 *    timestamp   YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC
 *
 * No function throws.  On invalid input a parse function returns false and
 * sets its error argument to a lowercase message without a final period.
 * Its output arguments are then unspecified.  Callers sit next to
 * PostgreSQL's longjmp-based error handling, so an exception escaping from
 * here would skip their cleanup.
 */
#ifndef STOCKTECH_CORE_TRANSFORM_HPP
#define STOCKTECH_CORE_TRANSFORM_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace stocktech {

/*
 * Date layouts of source systems.  The OData V2 form "/Date(ms)/" and
 * "/Date(ms+offset)/" is recognised whatever the layout, because it cannot
 * be mistaken for anything else.
 */
enum class DateFormat
{
    Iso,               /* YYYY-MM-DD, or an ISO 8601 timestamp */
    DayMonthYearDot,   /* DD.MM.YYYY */
    DayMonthYearSlash, /* DD/MM/YYYY */
    MonthDayYearSlash, /* MM/DD/YYYY */
    SapDats            /* YYYYMMDD, the ABAP DATS type; 00000000 is NULL */
};

/* A point in time: canonical UTC text and microseconds since 1970-01-01. */
struct Timestamp
{
    std::string text;
    int64_t micros = 0;
};

/*
 * Removes leading and trailing whitespace: the ASCII characters space, \t,
 * \n, \v, \f, \r and the UTF-8 no-break space U+00A0 (bytes C2 A0), which
 * spreadsheet exports often leave around numbers.  Other Unicode spaces are
 * kept.
 */
std::string trim(std::string_view text);

/* Converts ASCII letters to upper or lower case.  Bytes of UTF-8 multibyte
 * characters pass through unchanged, so "Größe" becomes "GRößE". */
std::string upper(std::string_view text);
std::string lower(std::string_view text);

/*
 * Parses a decimal number whose decimal separator is decimal_separator ('.'
 * or ',').  The other character of the two is accepted as a thousands
 * separator, but only in groups of exactly three digits before the decimal
 * separator: with ',' as decimal separator "89.990,50" is 89990.50, and
 * "89990.5" is rejected instead of being read as 899905.  An exponent
 * ("1.5E3") is accepted only with '.' and without grouping, for JSON
 * numbers.  The result keeps every digit given, so "12345678901234567.89"
 * stays exact.
 */
bool parse_decimal(std::string_view text, char decimal_separator, std::string &out,
                   std::string &error);

/* Parses a base-10 integer with optional sign within the int64 range. */
bool parse_integer(std::string_view text, int64_t &out, std::string &error);

/*
 * Parses a JSON integer, a JSON floating point number without a fractional
 * part, or a string such as an Edm.Int64 "123" into an int64.
 */
bool parse_json_integer(const nlohmann::json &value, int64_t &out, std::string &error);

/*
 * Parses a boolean, ignoring ASCII case and surrounding whitespace.
 *    true:  "true", "t", "yes", "y", "1", "X" (an ABAP boolean flag)
 *    false: "false", "f", "no", "n", "0", "" (an initial ABAP flag)
 */
bool parse_bool(std::string_view text, bool &out, std::string &error);

/*
 * Parses a calendar date laid out as format and sets out to YYYY-MM-DD, or
 * to std::nullopt for the SAP initial date "00000000".  Day and month may
 * have one or two digits in the DD.MM.YYYY and slash layouts.  An ISO
 * timestamp yields the date written in it, before any conversion to UTC.
 * "/Date(ms)/" yields the date of ms; an offset such as "/Date(ms+0060)/"
 * does not move the date (see parse_timestamp for the offset rule).
 * Dates must exist in the Gregorian calendar between years 1 and 9999.
 */
bool parse_date(std::string_view text, DateFormat format, std::optional<std::string> &out,
                std::string &error);

/*
 * Parses a point in time and converts it to UTC.  Accepted forms:
 *  - ISO 8601 "YYYY-MM-DDTHH:MM[:SS[.fraction]]" followed by "Z", "+HH:MM",
 *    "+HHMM" or "+HH" (or '-').  A space may replace the 'T'.  Without an
 *    offset the time is taken as UTC, as SAP Gateway does for Edm.DateTime.
 *    A date alone means midnight UTC.  Fraction digits beyond microseconds
 *    are dropped, not rounded.
 *  - OData V2 "/Date(ms)/" with ms milliseconds since 1970-01-01 UTC.
 *  - OData V2 "/Date(ms+mmmm)/" or "/Date(ms-mmmm)/" for Edm.DateTimeOffset.
 *    As in the OData V2 JSON format and the SAPUI5 client, mmmm is the offset
 *    in minutes ("+0060" is one hour) and ms is the local time at that
 *    offset, so UTC = ms - offset.  SAP Gateway and CAP write "+0000".
 */
bool parse_timestamp(std::string_view text, Timestamp &out, std::string &error);

/* Formats microseconds since 1970-01-01 UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ.
 * Values outside years 1 to 9999 are clamped to that range. */
std::string format_timestamp(int64_t micros);

/* Quotes text for an error message: in double quotes, with control
 * characters as \xNN and at most 64 bytes followed by "...". */
std::string quote_value(std::string_view text);

/* DateFormat spellings in profiles: "YYYY-MM-DD", "DD.MM.YYYY",
 * "DD/MM/YYYY", "MM/DD/YYYY", "YYYYMMDD". */
std::optional<DateFormat> parse_date_format(std::string_view text);
const char *to_string(DateFormat format);

}  // namespace stocktech

#endif
