/*
 * transform.cpp
 *    Parsing of source values into canonical column text.
 *
 * Every public function catches all exceptions (std::bad_alloc is the only
 * one the code below can raise) and reports them as an error result, so
 * nothing propagates into PostgreSQL's C frames.  Calendar arithmetic uses
 * the proleptic Gregorian calendar, as PostgreSQL does.
 */
#include "core/transform.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

namespace stocktech {

namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

/* Maximum length of a number's text, a bound against abusive input far
 * above numeric(15,2) and the 1000 digits of PostgreSQL's numeric typmod. */
constexpr size_t kMaxNumberLength = 1000;

/* Largest exponent magnitude accepted in "1.5E3", so the expansion stays
 * small. */
constexpr int kMaxExponent = 1000;

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds. */
constexpr int64_t kMinMicros = -62135596800LL * kMicrosPerSecond;
constexpr int64_t kMaxMicros = 253402300800LL * kMicrosPerSecond - 1;

/* The body of quote_value, which may throw std::bad_alloc. */
std::string
quote_value_impl(std::string_view text)
{
    constexpr size_t kMaxQuoted = 64;
    std::string result = "\"";
    size_t limit = text.size() <= kMaxQuoted ? text.size() : kMaxQuoted;

    /* Do not cut a UTF-8 sequence in half. */
    while (limit < text.size() && limit > 0 &&
           (static_cast<unsigned char>(text[limit]) & 0xC0) == 0x80)
        limit--;

    for (size_t i = 0; i < limit; i++)
    {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F)
        {
            char escaped[8];
            std::snprintf(escaped, sizeof(escaped), "\\x%02X", c);
            result += escaped;
        }
        else if (c == '"' || c == '\\')
        {
            result += '\\';
            result += static_cast<char>(c);
        }
        else
            result += static_cast<char>(c);
    }
    if (limit < text.size())
        result += "...";
    result += '"';
    return result;
}

}  // namespace

std::string
quote_value(std::string_view text)
{
    try
    {
        return quote_value_impl(text);
    }
    catch (...)
    {
        return "\"\"";
    }
}

namespace {

std::string
quote(std::string_view text)
{
    return quote_value(text);
}

bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool
all_digits(std::string_view text)
{
    for (char c : text)
    {
        if (!is_digit(c))
            return false;
    }
    return true;
}

/* Returns the first character of text that is not a digit, for messages. */
std::string
first_non_digit(std::string_view text)
{
    for (char c : text)
    {
        if (!is_digit(c))
            return quote(std::string_view(&c, 1));
    }
    return "\"\"";
}

bool
is_leap_year(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int
days_in_month(int64_t year, int month)
{
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap_year(year))
        return 29;
    return kDays[month - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil algorithm). */
int64_t
days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2 ? 1 : 0;
    const int64_t era = (year >= 0 ? year : year - 399) / 400;
    const int64_t year_of_era = year - era * 400;
    const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    const int64_t day_of_era =
        year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* Inverse of days_from_civil. */
void
civil_from_days(int64_t days, int64_t &year, int &month, int &day)
{
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const int64_t day_of_era = days - era * 146097;
    const int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 -
                                              year_of_era / 100);
    const int64_t month_index = (5 * day_of_year + 2) / 153;
    day = static_cast<int>(day_of_year - (153 * month_index + 2) / 5 + 1);
    month = static_cast<int>(month_index < 10 ? month_index + 3 : month_index - 9);
    year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
}

int64_t
floor_div(int64_t value, int64_t divisor)
{
    int64_t quotient = value / divisor;
    if (value % divisor != 0 && (value < 0) != (divisor < 0))
        quotient--;
    return quotient;
}

std::string
format_date(int64_t year, int month, int day)
{
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02d", static_cast<int>(year), month, day);
    return buffer;
}

/* Checks that year-month-day exists and is within years 1 to 9999. */
bool
check_date(int64_t year, int month, int day, std::string_view text, std::string &error)
{
    if (year < 1 || year > 9999)
    {
        error = "date " + quote(text) + " is out of range (years 1 to 9999)";
        return false;
    }
    if (month < 1 || month > 12)
    {
        error = "invalid date " + quote(text) + ": month " + std::to_string(month) +
                " does not exist";
        return false;
    }
    if (day < 1 || day > days_in_month(year, month))
    {
        error = "invalid date " + quote(text) + ": day " + std::to_string(day) +
                " does not exist in " + format_date(year, month, 1).substr(0, 7);
        return false;
    }
    return true;
}

/* Reads exactly count digits at pos into value and advances pos. */
bool
read_digits(std::string_view text, size_t &pos, size_t count, int &value)
{
    if (pos + count > text.size())
        return false;
    int result = 0;
    for (size_t i = 0; i < count; i++)
    {
        char c = text[pos + i];
        if (!is_digit(c))
            return false;
        result = result * 10 + (c - '0');
    }
    value = result;
    pos += count;
    return true;
}

/* The fields of an ISO 8601 date or timestamp, as written. */
struct IsoFields
{
    int year = 0;
    int month = 0;
    int day = 0;
    int hour = 0;
    int minute = 0;
    int second = 0;
    int64_t fraction_micros = 0;
    int offset_minutes = 0;
};

/* Parses the time zone designator at pos: Z, +HH:MM, +HHMM or +HH. */
bool
parse_iso_offset(std::string_view text, size_t &pos, IsoFields &fields)
{
    char sign = text[pos];
    if (sign == 'Z' || sign == 'z')
    {
        pos++;
        return true;
    }
    if (sign != '+' && sign != '-')
        return false;
    pos++;

    int hours = 0;
    int minutes = 0;
    if (!read_digits(text, pos, 2, hours))
        return false;
    if (pos < text.size())
    {
        if (text[pos] == ':')
            pos++;
        if (!read_digits(text, pos, 2, minutes))
            return false;
    }
    if (hours > 23 || minutes > 59)
        return false;

    fields.offset_minutes = (hours * 60 + minutes) * (sign == '-' ? -1 : 1);
    return true;
}

/* Parses the time part at pos: HH:MM[:SS[.fraction]] and an optional
 * offset. */
bool
parse_iso_time(std::string_view text, size_t &pos, IsoFields &fields)
{
    if (!read_digits(text, pos, 2, fields.hour) || pos >= text.size() || text[pos] != ':')
        return false;
    pos++;
    if (!read_digits(text, pos, 2, fields.minute))
        return false;

    if (pos < text.size() && text[pos] == ':')
    {
        pos++;
        if (!read_digits(text, pos, 2, fields.second))
            return false;

        /* Fractional seconds: up to 12 digits, microseconds kept. */
        if (pos < text.size() && (text[pos] == '.' || text[pos] == ','))
        {
            pos++;
            size_t digits = 0;
            int64_t micros = 0;
            while (pos < text.size() && is_digit(text[pos]))
            {
                if (digits < 6)
                    micros = micros * 10 + (text[pos] - '0');
                digits++;
                pos++;
            }
            if (digits == 0 || digits > 12)
                return false;
            for (size_t i = digits; i < 6; i++)
                micros *= 10;
            fields.fraction_micros = micros;
        }
    }
    if (fields.hour > 23 || fields.minute > 59 || fields.second > 59)
        return false;

    if (pos < text.size() && !parse_iso_offset(text, pos, fields))
        return false;
    return pos == text.size();
}

/*
 * Parses "YYYY-MM-DD" optionally followed by 'T' or ' ' and a time.  Sets
 * has_time when a time part was present.  The caller checks the calendar
 * date, because it names the value in its error message.
 */
bool
parse_iso(std::string_view text, IsoFields &fields, bool &has_time)
{
    size_t pos = 0;
    has_time = false;
    if (!read_digits(text, pos, 4, fields.year) || pos >= text.size() || text[pos] != '-')
        return false;
    pos++;
    if (!read_digits(text, pos, 2, fields.month) || pos >= text.size() || text[pos] != '-')
        return false;
    pos++;
    if (!read_digits(text, pos, 2, fields.day))
        return false;
    if (pos == text.size())
        return true;

    char separator = text[pos];
    if (separator != 'T' && separator != 't' && separator != ' ')
        return false;
    pos++;
    has_time = true;
    return parse_iso_time(text, pos, fields);
}

/*
 * Parses the OData V2 form "/Date(ms)/" or "/Date(ms+mmmm)/".  Returns false
 * when text does not start with "/Date("; sets error when it does but is
 * malformed.  ms is limited so that ms * 1000 cannot overflow.
 */
bool
parse_v2_date(std::string_view text, int64_t &millis, int &offset_minutes, bool &has_offset,
              std::string &error)
{
    const std::string_view prefix = "/Date(";
    const std::string_view suffix = ")/";
    if (text.substr(0, prefix.size()) != prefix)
        return false;

    const std::string malformed =
        "invalid OData V2 date " + quote(text) + ": expected /Date(milliseconds)/ or "
        "/Date(milliseconds+minutes)/";
    if (text.size() < prefix.size() + suffix.size() ||
        text.substr(text.size() - suffix.size()) != suffix)
    {
        error = malformed;
        return false;
    }
    std::string_view inner =
        text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());

    bool negative = false;
    if (!inner.empty() && inner[0] == '-')
    {
        negative = true;
        inner.remove_prefix(1);
    }
    size_t digits_end = 0;
    while (digits_end < inner.size() && is_digit(inner[digits_end]))
        digits_end++;
    if (digits_end == 0 || digits_end > 15)
    {
        error = digits_end > 15 ? "OData V2 date " + quote(text) + " is out of range"
                                : malformed;
        return false;
    }
    int64_t value = 0;
    for (size_t i = 0; i < digits_end; i++)
        value = value * 10 + (inner[i] - '0');
    millis = negative ? -value : value;

    std::string_view offset = inner.substr(digits_end);
    has_offset = !offset.empty();
    offset_minutes = 0;
    if (has_offset)
    {
        std::string_view minutes = offset.substr(1);
        if ((offset[0] != '+' && offset[0] != '-') || minutes.empty() ||
            minutes.size() > 4 || !all_digits(minutes))
        {
            error = malformed;
            return false;
        }
        offset_minutes = std::stoi(std::string(minutes));
        if (offset_minutes > 1439)
        {
            error = "invalid OData V2 date " + quote(text) + ": offset of " +
                    std::to_string(offset_minutes) + " minutes exceeds 1439";
            return false;
        }
        if (offset[0] == '-')
            offset_minutes = -offset_minutes;
    }
    return true;
}

/* Parses D.M.YYYY style layouts; first and second are day and month in the
 * order the layout writes them. */
bool
parse_numeric_date(std::string_view text, char separator, bool day_first, int &year,
                   int &month, int &day)
{
    size_t first_end = text.find(separator);
    if (first_end == std::string_view::npos)
        return false;
    size_t second_end = text.find(separator, first_end + 1);
    if (second_end == std::string_view::npos)
        return false;

    std::string_view first = text.substr(0, first_end);
    std::string_view second = text.substr(first_end + 1, second_end - first_end - 1);
    std::string_view third = text.substr(second_end + 1);
    if (first.empty() || first.size() > 2 || !all_digits(first) || second.empty() ||
        second.size() > 2 || !all_digits(second) || third.size() != 4 || !all_digits(third))
        return false;

    int a = std::stoi(std::string(first));
    int b = std::stoi(std::string(second));
    year = std::stoi(std::string(third));
    day = day_first ? a : b;
    month = day_first ? b : a;
    return true;
}

/* Removes grouping from the integer part of a number, checking that the
 * groups have three digits. */
bool
ungroup_integer_part(std::string_view part, char group, std::string &digits)
{
    size_t start = 0;
    bool first = true;
    digits.clear();
    while (true)
    {
        size_t end = part.find(group, start);
        std::string_view chunk =
            part.substr(start, end == std::string_view::npos ? std::string_view::npos
                                                              : end - start);
        if (!all_digits(chunk) || chunk.empty())
            return false;
        if (first ? chunk.size() > 3 : chunk.size() != 3)
            return false;
        digits += chunk;
        first = false;
        if (end == std::string_view::npos)
            return true;
        start = end + 1;
    }
}

/* Moves the decimal point of int_digits.frac_digits by exponent places. */
void
apply_exponent(std::string &int_digits, std::string &frac_digits, int exponent)
{
    std::string digits = int_digits + frac_digits;
    int64_t point = static_cast<int64_t>(int_digits.size()) + exponent;
    if (point <= 0)
    {
        int_digits = "0";
        frac_digits = std::string(static_cast<size_t>(-point), '0') + digits;
    }
    else if (point >= static_cast<int64_t>(digits.size()))
    {
        int_digits = digits + std::string(static_cast<size_t>(point) - digits.size(), '0');
        frac_digits.clear();
    }
    else
    {
        int_digits = digits.substr(0, static_cast<size_t>(point));
        frac_digits = digits.substr(static_cast<size_t>(point));
    }
}

/* Parses the exponent part after 'e' or 'E'. */
bool
parse_exponent(std::string_view text, int &exponent)
{
    bool negative = false;
    if (!text.empty() && (text[0] == '+' || text[0] == '-'))
    {
        negative = text[0] == '-';
        text.remove_prefix(1);
    }
    if (text.empty() || text.size() > 4 || !all_digits(text))
        return false;
    exponent = std::stoi(std::string(text));
    if (exponent > kMaxExponent)
        return false;
    if (negative)
        exponent = -exponent;
    return true;
}

/*
 * Reads the digits of a mantissa without sign or exponent: the integer part
 * (grouped in threes by the other separator, or not grouped) and the
 * fraction.  value is the whole input, for messages.
 */
bool
read_mantissa(std::string_view mantissa, char decimal_separator, const std::string &value,
              std::string &int_digits, std::string &frac_digits, bool &grouped,
              std::string &error)
{
    const char group = decimal_separator == '.' ? ',' : '.';
    const std::string decimal_name = quote(std::string_view(&decimal_separator, 1));
    const std::string group_name = quote(std::string_view(&group, 1));

    size_t point = mantissa.find(decimal_separator);
    if (point != std::string_view::npos &&
        mantissa.find(decimal_separator, point + 1) != std::string_view::npos)
    {
        error = "invalid number " + quote(value) + ": more than one decimal separator " +
                decimal_name;
        return false;
    }
    std::string_view int_part = mantissa.substr(0, point);
    std::string_view frac_part =
        point == std::string_view::npos ? std::string_view() : mantissa.substr(point + 1);

    if (frac_part.find(group) != std::string_view::npos)
    {
        error = "invalid number " + quote(value) + ": thousands separator " + group_name +
                " after the decimal separator " + decimal_name;
        return false;
    }
    if (!all_digits(frac_part))
    {
        error = "invalid number " + quote(value) + ": unexpected character " +
                first_non_digit(frac_part);
        return false;
    }

    grouped = int_part.find(group) != std::string_view::npos;
    if (grouped && !ungroup_integer_part(int_part, group, int_digits))
    {
        error = "invalid number " + quote(value) + ": digit groups separated by " +
                group_name + " must have three digits (the decimal separator is " +
                decimal_name + ")";
        return false;
    }
    if (!grouped && !all_digits(int_part))
    {
        error = "invalid number " + quote(value) + ": unexpected character " +
                first_non_digit(int_part);
        return false;
    }
    if (!grouped)
        int_digits = std::string(int_part);

    if (int_digits.empty() && frac_part.empty())
    {
        error = "invalid number " + quote(value) + ": no digits";
        return false;
    }
    frac_digits = std::string(frac_part);
    return true;
}

/* The body of parse_decimal, which may throw std::bad_alloc. */
bool
parse_decimal_impl(std::string_view text, char decimal_separator, std::string &out,
                   std::string &error)
{
    if (decimal_separator != '.' && decimal_separator != ',')
    {
        error = "invalid decimal separator " + quote(std::string_view(&decimal_separator, 1)) +
                ": expected \".\" or \",\"";
        return false;
    }
    const std::string value = trim(text);
    if (value.empty())
    {
        error = "empty value is not a number";
        return false;
    }
    if (value.size() > kMaxNumberLength)
    {
        error = "number is longer than " + std::to_string(kMaxNumberLength) + " characters";
        return false;
    }

    std::string_view rest = value;
    bool negative = false;
    if (rest[0] == '+' || rest[0] == '-')
    {
        negative = rest[0] == '-';
        rest.remove_prefix(1);
    }

    /* Split off an exponent, then read the mantissa. */
    size_t exponent_pos = rest.find_first_of("eE");
    bool has_exponent = exponent_pos != std::string_view::npos;
    std::string_view exponent_text = has_exponent ? rest.substr(exponent_pos + 1) : "";
    std::string int_digits;
    std::string frac_digits;
    bool grouped = false;
    if (!read_mantissa(rest.substr(0, exponent_pos), decimal_separator, value, int_digits,
                       frac_digits, grouped, error))
        return false;

    if (has_exponent)
    {
        int exponent = 0;
        if (decimal_separator != '.' || grouped || !parse_exponent(exponent_text, exponent))
        {
            error = "invalid number " + quote(value) +
                    ": an exponent is allowed only with \".\" as decimal separator, "
                    "without grouping and up to " + std::to_string(kMaxExponent);
            return false;
        }
        apply_exponent(int_digits, frac_digits, exponent);
    }

    /* Canonical form: no leading zeros, no sign on zero. */
    size_t first_significant = int_digits.find_first_not_of('0');
    int_digits = first_significant == std::string::npos ? "0"
                                                         : int_digits.substr(first_significant);
    bool is_zero = int_digits == "0" && frac_digits.find_first_not_of('0') == std::string::npos;

    out.clear();
    if (negative && !is_zero)
        out += '-';
    out += int_digits;
    if (!frac_digits.empty())
    {
        out += '.';
        out += frac_digits;
    }
    return true;
}

}  // namespace

std::string
trim(std::string_view text)
{
    auto is_ascii_space = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
    };
    auto is_nbsp = [&text](size_t pos) {
        return pos + 1 < text.size() && static_cast<unsigned char>(text[pos]) == 0xC2 &&
               static_cast<unsigned char>(text[pos + 1]) == 0xA0;
    };

    try
    {
        size_t start = 0;
        size_t end = text.size();
        while (start < end)
        {
            if (is_ascii_space(text[start]))
                start += 1;
            else if (end - start >= 2 && is_nbsp(start))
                start += 2;
            else
                break;
        }
        while (end > start)
        {
            if (is_ascii_space(text[end - 1]))
                end -= 1;
            else if (end - start >= 2 && is_nbsp(end - 2))
                end -= 2;
            else
                break;
        }
        return std::string(text.substr(start, end - start));
    }
    catch (...)
    {
        return std::string();
    }
}

std::string
upper(std::string_view text)
{
    try
    {
        std::string result(text);
        for (char &c : result)
        {
            if (c >= 'a' && c <= 'z')
                c = static_cast<char>(c - 'a' + 'A');
        }
        return result;
    }
    catch (...)
    {
        return std::string();
    }
}

std::string
lower(std::string_view text)
{
    try
    {
        std::string result(text);
        for (char &c : result)
        {
            if (c >= 'A' && c <= 'Z')
                c = static_cast<char>(c - 'A' + 'a');
        }
        return result;
    }
    catch (...)
    {
        return std::string();
    }
}

bool
parse_decimal(std::string_view text, char decimal_separator, std::string &out,
              std::string &error)
{
    try
    {
        return parse_decimal_impl(text, decimal_separator, out, error);
    }
    catch (...)
    {
        error = "out of memory while parsing a number";
        return false;
    }
}

bool
parse_integer(std::string_view text, int64_t &out, std::string &error)
{
    try
    {
        const std::string value = trim(text);
        if (value.empty())
        {
            error = "empty value is not an integer";
            return false;
        }
        std::string_view digits = value;
        bool negative = false;
        if (digits[0] == '+' || digits[0] == '-')
        {
            negative = digits[0] == '-';
            digits.remove_prefix(1);
        }
        if (digits.empty() || !all_digits(digits))
        {
            error = "invalid integer " + quote(value) + ": unexpected character " +
                    (digits.empty() ? std::string("\"\"") : first_non_digit(digits));
            return false;
        }

        /* Accumulate as unsigned; the negative limit is one larger. */
        const uint64_t limit = negative ? uint64_t(std::numeric_limits<int64_t>::max()) + 1
                                        : uint64_t(std::numeric_limits<int64_t>::max());
        uint64_t magnitude = 0;
        for (char c : digits)
        {
            unsigned digit = static_cast<unsigned>(c - '0');
            if (magnitude > (limit - digit) / 10)
            {
                error = "integer " + quote(value) + " is out of range for a 64-bit integer";
                return false;
            }
            magnitude = magnitude * 10 + digit;
        }
        if (negative)
            out = magnitude == limit ? std::numeric_limits<int64_t>::min()
                                     : -static_cast<int64_t>(magnitude);
        else
            out = static_cast<int64_t>(magnitude);
        return true;
    }
    catch (...)
    {
        error = "out of memory while parsing an integer";
        return false;
    }
}

bool
parse_json_integer(const nlohmann::json &value, int64_t &out, std::string &error)
{
    try
    {
        if (value.is_number_unsigned())
        {
            uint64_t number = value.get<uint64_t>();
            if (number > uint64_t(std::numeric_limits<int64_t>::max()))
            {
                error = "integer " + std::to_string(number) +
                        " is out of range for a 64-bit integer";
                return false;
            }
            out = static_cast<int64_t>(number);
            return true;
        }
        if (value.is_number_integer())
        {
            out = value.get<int64_t>();
            return true;
        }
        if (value.is_number_float())
        {
            /* 2^53: beyond it a double cannot represent every integer. */
            const double limit = 9007199254740992.0;
            double number = value.get<double>();
            if (!std::isfinite(number) || std::trunc(number) != number ||
                std::fabs(number) > limit)
            {
                error = "JSON number " + value.dump() + " is not an integer";
                return false;
            }
            out = static_cast<int64_t>(number);
            return true;
        }
        if (value.is_string())
            return parse_integer(std::string_view(value.get_ref<const std::string &>()), out,
                                 error);

        error = std::string("expected an integer, got a JSON ") + value.type_name();
        return false;
    }
    catch (...)
    {
        error = "could not read the JSON value as an integer";
        return false;
    }
}

bool
parse_bool(std::string_view text, bool &out, std::string &error)
{
    try
    {
        const std::string value = lower(trim(text));
        if (value == "true" || value == "t" || value == "yes" || value == "y" ||
            value == "1" || value == "x")
        {
            out = true;
            return true;
        }
        if (value == "false" || value == "f" || value == "no" || value == "n" ||
            value == "0" || value.empty())
        {
            out = false;
            return true;
        }
        error = "invalid boolean " + quote(text) +
                ": expected true/false, yes/no, y/n, t/f, 1/0, or X/empty";
        return false;
    }
    catch (...)
    {
        error = "out of memory while parsing a boolean";
        return false;
    }
}

bool
parse_date(std::string_view text, DateFormat format, std::optional<std::string> &out,
           std::string &error)
{
    try
    {
        const std::string value = trim(text);
        if (value.empty())
        {
            error = "empty value is not a date";
            return false;
        }

        /* The OData V2 form, whatever the layout. */
        int64_t millis = 0;
        int offset_minutes = 0;
        bool has_offset = false;
        error.clear();
        if (parse_v2_date(value, millis, offset_minutes, has_offset, error))
        {
            int64_t year = 0;
            int month = 0;
            int day = 0;
            civil_from_days(floor_div(millis, 86400000), year, month, day);
            if (!check_date(year, month, day, value, error))
                return false;
            out = format_date(year, month, day);
            return true;
        }
        if (!error.empty())
            return false;

        int year = 0;
        int month = 0;
        int day = 0;
        bool layout_ok = false;
        const char *layout = to_string(format);
        switch (format)
        {
            case DateFormat::Iso:
            {
                IsoFields fields;
                bool has_time = false;
                layout_ok = parse_iso(value, fields, has_time);
                year = fields.year;
                month = fields.month;
                day = fields.day;
                break;
            }
            case DateFormat::DayMonthYearDot:
                layout_ok = parse_numeric_date(value, '.', true, year, month, day);
                break;
            case DateFormat::DayMonthYearSlash:
                layout_ok = parse_numeric_date(value, '/', true, year, month, day);
                break;
            case DateFormat::MonthDayYearSlash:
                layout_ok = parse_numeric_date(value, '/', false, year, month, day);
                break;
            case DateFormat::SapDats:
            {
                if (value == "00000000")
                {
                    out = std::nullopt;
                    return true;
                }
                size_t pos = 0;
                layout_ok = value.size() == 8 && read_digits(value, pos, 4, year) &&
                            read_digits(value, pos, 2, month) &&
                            read_digits(value, pos, 2, day);
                break;
            }
        }
        if (!layout_ok)
        {
            error = "invalid date " + quote(value) + ": expected the layout " + layout;
            if (format == DateFormat::Iso)
                error += " or an ISO 8601 timestamp";
            return false;
        }
        if (!check_date(year, month, day, value, error))
            return false;
        out = format_date(year, month, day);
        return true;
    }
    catch (...)
    {
        error = "out of memory while parsing a date";
        return false;
    }
}

bool
parse_timestamp(std::string_view text, Timestamp &out, std::string &error)
{
    try
    {
        const std::string value = trim(text);
        if (value.empty())
        {
            error = "empty value is not a timestamp";
            return false;
        }

        int64_t micros = 0;
        int64_t millis = 0;
        int offset_minutes = 0;
        bool has_offset = false;
        error.clear();
        if (parse_v2_date(value, millis, offset_minutes, has_offset, error))
        {
            micros = (millis - int64_t(offset_minutes) * 60000) * 1000;
        }
        else if (!error.empty())
            return false;
        else
        {
            IsoFields fields;
            bool has_time = false;
            if (!parse_iso(value, fields, has_time))
            {
                error = "invalid timestamp " + quote(value) +
                        ": expected ISO 8601 such as 2024-01-31T12:00:00Z or /Date(ms)/";
                return false;
            }
            if (!check_date(fields.year, fields.month, fields.day, value, error))
                return false;
            int64_t seconds = days_from_civil(fields.year, fields.month, fields.day) * 86400 +
                              fields.hour * 3600 + fields.minute * 60 + fields.second -
                              int64_t(fields.offset_minutes) * 60;
            micros = seconds * kMicrosPerSecond + fields.fraction_micros;
        }
        if (micros < kMinMicros || micros > kMaxMicros)
        {
            error = "timestamp " + quote(value) + " is out of range (years 1 to 9999)";
            return false;
        }
        out.micros = micros;
        out.text = format_timestamp(micros);
        return true;
    }
    catch (...)
    {
        error = "out of memory while parsing a timestamp";
        return false;
    }
}

std::string
format_timestamp(int64_t micros)
{
    try
    {
        if (micros < kMinMicros)
            micros = kMinMicros;
        if (micros > kMaxMicros)
            micros = kMaxMicros;

        int64_t days = floor_div(micros, kMicrosPerDay);
        int64_t micros_of_day = micros - days * kMicrosPerDay;
        int64_t year = 0;
        int month = 0;
        int day = 0;
        civil_from_days(days, year, month, day);

        int64_t seconds_of_day = micros_of_day / kMicrosPerSecond;
        char buffer[40];
        std::snprintf(buffer, sizeof(buffer), "%sT%02d:%02d:%02d.%06dZ",
                      format_date(year, month, day).c_str(),
                      static_cast<int>(seconds_of_day / 3600),
                      static_cast<int>(seconds_of_day / 60 % 60),
                      static_cast<int>(seconds_of_day % 60),
                      static_cast<int>(micros_of_day % kMicrosPerSecond));
        return buffer;
    }
    catch (...)
    {
        return std::string();
    }
}

std::optional<DateFormat>
parse_date_format(std::string_view text)
{
    if (text == "YYYY-MM-DD")
        return DateFormat::Iso;
    if (text == "DD.MM.YYYY")
        return DateFormat::DayMonthYearDot;
    if (text == "DD/MM/YYYY")
        return DateFormat::DayMonthYearSlash;
    if (text == "MM/DD/YYYY")
        return DateFormat::MonthDayYearSlash;
    if (text == "YYYYMMDD")
        return DateFormat::SapDats;
    return std::nullopt;
}

const char *
to_string(DateFormat format)
{
    switch (format)
    {
        case DateFormat::Iso:
            return "YYYY-MM-DD";
        case DateFormat::DayMonthYearDot:
            return "DD.MM.YYYY";
        case DateFormat::DayMonthYearSlash:
            return "DD/MM/YYYY";
        case DateFormat::MonthDayYearSlash:
            return "MM/DD/YYYY";
        case DateFormat::SapDats:
            return "YYYYMMDD";
    }
    return "YYYY-MM-DD";
}

}  // namespace stocktech
