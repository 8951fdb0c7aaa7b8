/*
 * transform_test.cpp
 *    Unit tests of the value parsers in src/core/transform.cpp: decimal
 *    separators and grouping, exact precision, integers, booleans, date
 *    layouts, OData V2 dates with offsets, leap years and timestamps.
 */
#include <gtest/gtest.h>

#include "core/transform.hpp"

namespace stocktech {
namespace {

/* Parses text as a decimal and returns the canonical text, or "ERROR: ..." */
std::string
decimal(std::string_view text, char separator)
{
    std::string out;
    std::string error;
    if (!parse_decimal(text, separator, out, error))
        return "ERROR: " + error;
    return out;
}

/* Parses text as a date and returns YYYY-MM-DD, "NULL" or "ERROR: ...". */
std::string
date(std::string_view text, DateFormat format)
{
    std::optional<std::string> out;
    std::string error;
    if (!parse_date(text, format, out, error))
        return "ERROR: " + error;
    return out ? *out : "NULL";
}

/* Parses text as a timestamp and returns the canonical text or "ERROR: ...". */
std::string
timestamp(std::string_view text)
{
    Timestamp out;
    std::string error;
    if (!parse_timestamp(text, out, error))
        return "ERROR: " + error;
    return out.text;
}

bool
is_error(const std::string &result)
{
    return result.rfind("ERROR: ", 0) == 0;
}

TEST(TrimTest, AsciiWhitespace)
{
    EXPECT_EQ(trim("  abc \t\r\n"), "abc");
    EXPECT_EQ(trim("\v\fabc"), "abc");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("   "), "");
    EXPECT_EQ(trim("a b"), "a b");
}

TEST(TrimTest, NoBreakSpace)
{
    EXPECT_EQ(trim("\xC2\xA0" "89.990,50\xC2\xA0"), "89.990,50");
    EXPECT_EQ(trim(" \xC2\xA0 x \xC2\xA0 "), "x");
    EXPECT_EQ(trim("\xC2\xA0"), "");
}

TEST(TrimTest, KeepsOtherUtf8)
{
    /* U+2003 EM SPACE is not trimmed; a lone 0xC2 is not a no-break space. */
    EXPECT_EQ(trim("\xE2\x80\x83x"), "\xE2\x80\x83x");
    EXPECT_EQ(trim("x\xC2"), "x\xC2");
    EXPECT_EQ(trim("\xC3\xA9t\xC3\xA9"), "\xC3\xA9t\xC3\xA9");
}

TEST(CaseTest, AsciiOnly)
{
    EXPECT_EQ(upper("wp0zzz99zts392124"), "WP0ZZZ99ZTS392124");
    EXPECT_EQ(lower("ABC-def"), "abc-def");
    /* "Größe": ö and ß stay as their UTF-8 bytes. */
    EXPECT_EQ(upper("Gr\xC3\xB6\xC3\x9F" "e"), "GR\xC3\xB6\xC3\x9F" "E");
    EXPECT_EQ(lower("\xC3\x84" "B"), "\xC3\x84" "b");
}

TEST(DecimalTest, PlainNumbers)
{
    EXPECT_EQ(decimal("89990.50", '.'), "89990.50");
    EXPECT_EQ(decimal("89990,5", ','), "89990.5");
    EXPECT_EQ(decimal("0", '.'), "0");
    EXPECT_EQ(decimal("42", ','), "42");
    EXPECT_EQ(decimal("  12.5  ", '.'), "12.5");
}

TEST(DecimalTest, GroupingWithOtherSeparator)
{
    EXPECT_EQ(decimal("89.990,50", ','), "89990.50");
    EXPECT_EQ(decimal("89,990.50", '.'), "89990.50");
    EXPECT_EQ(decimal("1.234.567,89", ','), "1234567.89");
    EXPECT_EQ(decimal("1,234,567", '.'), "1234567");
    EXPECT_EQ(decimal("89.990", ','), "89990");
}

TEST(DecimalTest, NeverReadsDecimalCommaAsGrouping)
{
    /* The classic bug: 89.990,50 parsed with '.' must not become 8999050. */
    std::string result = decimal("89.990,50", '.');
    EXPECT_TRUE(is_error(result)) << result;
    EXPECT_NE(result, "8999050");
    EXPECT_NE(result, "89.99050");
    EXPECT_TRUE(is_error(decimal("89990.5", ','))) << "'.' is grouping with ',' decimals";
    EXPECT_TRUE(is_error(decimal("1,23", '.')));
    EXPECT_TRUE(is_error(decimal("1234,567.5", '.')));
}

TEST(DecimalTest, RejectsAmbiguousAndGarbage)
{
    EXPECT_TRUE(is_error(decimal("1,2,3", ',')));
    EXPECT_TRUE(is_error(decimal("12a", '.')));
    EXPECT_TRUE(is_error(decimal("", '.')));
    EXPECT_TRUE(is_error(decimal("   ", ',')));
    EXPECT_TRUE(is_error(decimal("-", '.')));
    EXPECT_TRUE(is_error(decimal(".", '.')));
    EXPECT_TRUE(is_error(decimal("1.000,5,0", ',')));
    EXPECT_TRUE(is_error(decimal("1 000", '.')));
    EXPECT_TRUE(is_error(decimal("0x10", '.')));
    EXPECT_TRUE(is_error(decimal("1,5", '.'))) << "a 1-digit group after ',' is invalid";
    EXPECT_TRUE(is_error(decimal("1.000.5", ','))) << "the last group has one digit";
    EXPECT_TRUE(is_error(decimal("1,0", '?')));
}

TEST(DecimalTest, ErrorMessagesNameTheProblem)
{
    std::string result = decimal("1,2,3", ',');
    EXPECT_NE(result.find("more than one decimal separator"), std::string::npos) << result;
    result = decimal("12a", '.');
    EXPECT_NE(result.find("\"a\""), std::string::npos) << result;
    result = decimal("89990.5", ',');
    EXPECT_NE(result.find("three digits"), std::string::npos) << result;
}

TEST(DecimalTest, SignsAndZeros)
{
    EXPECT_EQ(decimal("-1.234,5", ','), "-1234.5");
    EXPECT_EQ(decimal("+7", '.'), "7");
    EXPECT_EQ(decimal("-0.00", '.'), "0.00");
    EXPECT_EQ(decimal("007.50", '.'), "7.50");
    EXPECT_EQ(decimal(".5", '.'), "0.5");
    EXPECT_EQ(decimal(",5", ','), "0.5");
    EXPECT_EQ(decimal("5.", '.'), "5");
}

TEST(DecimalTest, KeepsEveryDigit)
{
    EXPECT_EQ(decimal("12345678901234567.89", '.'), "12345678901234567.89");
    EXPECT_EQ(decimal("12.345.678.901.234.567,89", ','), "12345678901234567.89");
    EXPECT_EQ(decimal("0.1000000000000000055511151231257827", '.'),
              "0.1000000000000000055511151231257827");
}

TEST(DecimalTest, Exponent)
{
    EXPECT_EQ(decimal("1.5E3", '.'), "1500");
    EXPECT_EQ(decimal("1.25e-2", '.'), "0.0125");
    EXPECT_EQ(decimal("-2e+1", '.'), "-20");
    EXPECT_TRUE(is_error(decimal("1,5E3", ','))) << "no exponent with ',' decimals";
    EXPECT_TRUE(is_error(decimal("1e", '.')));
    EXPECT_TRUE(is_error(decimal("1e99999", '.')));
}

TEST(IntegerTest, Text)
{
    int64_t value = 0;
    std::string error;
    EXPECT_TRUE(parse_integer(" 123 ", value, error));
    EXPECT_EQ(value, 123);
    EXPECT_TRUE(parse_integer("-42", value, error));
    EXPECT_EQ(value, -42);
    EXPECT_TRUE(parse_integer("9223372036854775807", value, error));
    EXPECT_EQ(value, INT64_MAX);
    EXPECT_TRUE(parse_integer("-9223372036854775808", value, error));
    EXPECT_EQ(value, INT64_MIN);
}

TEST(IntegerTest, RejectsOverflowAndGarbage)
{
    int64_t value = 0;
    std::string error;
    EXPECT_FALSE(parse_integer("9223372036854775808", value, error));
    EXPECT_NE(error.find("out of range"), std::string::npos) << error;
    EXPECT_FALSE(parse_integer("-9223372036854775809", value, error));
    EXPECT_FALSE(parse_integer("12.0", value, error));
    EXPECT_FALSE(parse_integer("1e3", value, error));
    EXPECT_FALSE(parse_integer("", value, error));
    EXPECT_FALSE(parse_integer("-", value, error));
    EXPECT_FALSE(parse_integer("1 000", value, error));
}

TEST(IntegerTest, JsonValues)
{
    int64_t value = 0;
    std::string error;
    EXPECT_TRUE(parse_json_integer(nlohmann::json(57), value, error));
    EXPECT_EQ(value, 57);
    EXPECT_TRUE(parse_json_integer(nlohmann::json("9007199254740993"), value, error))
        << "Edm.Int64 as a string keeps every digit";
    EXPECT_EQ(value, 9007199254740993LL);
    EXPECT_TRUE(parse_json_integer(nlohmann::json(12.0), value, error));
    EXPECT_EQ(value, 12);
    EXPECT_FALSE(parse_json_integer(nlohmann::json(12.5), value, error));
    EXPECT_FALSE(parse_json_integer(nlohmann::json(18446744073709551615ULL), value, error));
    EXPECT_FALSE(parse_json_integer(nlohmann::json(true), value, error));
    EXPECT_FALSE(parse_json_integer(nlohmann::json::object(), value, error));
}

TEST(BoolTest, AcceptedSpellings)
{
    bool value = false;
    std::string error;
    for (const char *text : {"true", "TRUE", "t", "yes", "Y", "1", "X", "x", " true "})
    {
        value = false;
        EXPECT_TRUE(parse_bool(text, value, error)) << text;
        EXPECT_TRUE(value) << text;
    }
    for (const char *text : {"false", "False", "f", "no", "N", "0", "", "  "})
    {
        value = true;
        EXPECT_TRUE(parse_bool(text, value, error)) << text;
        EXPECT_FALSE(value) << text;
    }
}

TEST(BoolTest, RejectsOthers)
{
    bool value = false;
    std::string error;
    EXPECT_FALSE(parse_bool("2", value, error));
    EXPECT_FALSE(parse_bool("ja", value, error));
    EXPECT_FALSE(parse_bool("tru", value, error));
    EXPECT_NE(error.find("\"tru\""), std::string::npos) << error;
}

TEST(DateTest, IsoAndTimestamps)
{
    EXPECT_EQ(date("2024-03-15", DateFormat::Iso), "2024-03-15");
    EXPECT_EQ(date("2024-03-15T23:30:00Z", DateFormat::Iso), "2024-03-15");
    EXPECT_EQ(date("2024-03-15T23:30:00-05:00", DateFormat::Iso), "2024-03-15")
        << "the date as written, not converted to UTC";
    EXPECT_EQ(date("2024-03-15 08:00:00.123", DateFormat::Iso), "2024-03-15");
    EXPECT_TRUE(is_error(date("2024-3-15", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("2024-03-15T25:00:00Z", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("2024-03-15Tgarbage", DateFormat::Iso)));
}

TEST(DateTest, EuropeanAndUsLayouts)
{
    EXPECT_EQ(date("15.03.2024", DateFormat::DayMonthYearDot), "2024-03-15");
    EXPECT_EQ(date("5.3.2024", DateFormat::DayMonthYearDot), "2024-03-05");
    EXPECT_EQ(date("15/03/2024", DateFormat::DayMonthYearSlash), "2024-03-15");
    EXPECT_EQ(date("03/15/2024", DateFormat::MonthDayYearSlash), "2024-03-15");
    EXPECT_TRUE(is_error(date("03/15/2024", DateFormat::DayMonthYearSlash)));
    EXPECT_TRUE(is_error(date("15.03.24", DateFormat::DayMonthYearDot)));
    EXPECT_TRUE(is_error(date("2024-03-15", DateFormat::DayMonthYearDot)));
    EXPECT_TRUE(is_error(date("15.03.2024", DateFormat::DayMonthYearSlash)));
}

TEST(DateTest, SapDats)
{
    EXPECT_EQ(date("20240315", DateFormat::SapDats), "2024-03-15");
    EXPECT_EQ(date("00000000", DateFormat::SapDats), "NULL");
    EXPECT_TRUE(is_error(date("2024031", DateFormat::SapDats)));
    EXPECT_TRUE(is_error(date("20241301", DateFormat::SapDats)));
}

TEST(DateTest, CalendarValidation)
{
    EXPECT_TRUE(is_error(date("2024-02-30", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("31.04.2024", DateFormat::DayMonthYearDot)));
    EXPECT_TRUE(is_error(date("2024-00-10", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("0000-01-01", DateFormat::Iso)));
    std::string result = date("2024-02-30", DateFormat::Iso);
    EXPECT_NE(result.find("day 30"), std::string::npos) << result;
}

TEST(DateTest, LeapYears)
{
    EXPECT_EQ(date("2024-02-29", DateFormat::Iso), "2024-02-29");
    EXPECT_EQ(date("29.02.2000", DateFormat::DayMonthYearDot), "2000-02-29");
    EXPECT_TRUE(is_error(date("2023-02-29", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("19000229", DateFormat::SapDats))) << "1900 is not a leap year";
    EXPECT_EQ(date("21000228", DateFormat::SapDats), "2100-02-28");
    EXPECT_TRUE(is_error(date("21000229", DateFormat::SapDats)));
}

TEST(DateTest, ODataV2Dates)
{
    /* 1710460800000 ms is 2024-03-15T00:00:00Z. */
    EXPECT_EQ(date("/Date(1710460800000)/", DateFormat::Iso), "2024-03-15");
    EXPECT_EQ(date("/Date(1710460800000)/", DateFormat::DayMonthYearDot), "2024-03-15")
        << "the V2 form is recognised in every layout";
    EXPECT_EQ(date("/Date(1710460800000+0060)/", DateFormat::Iso), "2024-03-15");
    EXPECT_EQ(date("/Date(1710460800000-0300)/", DateFormat::Iso), "2024-03-15");
    EXPECT_EQ(date("/Date(1709164800000)/", DateFormat::Iso), "2024-02-29");
    EXPECT_EQ(date("/Date(0)/", DateFormat::Iso), "1970-01-01");
    EXPECT_EQ(date("/Date(-86400000)/", DateFormat::Iso), "1969-12-31");
    EXPECT_EQ(date("/Date(-1)/", DateFormat::Iso), "1969-12-31");
    EXPECT_TRUE(is_error(date("/Date(abc)/", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("/Date(1710460800000", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("/Date(1710460800000+01:00)/", DateFormat::Iso)));
    EXPECT_TRUE(is_error(date("/Date(999999999999999999)/", DateFormat::Iso)));
}

TEST(TimestampTest, IsoWithZoneAndFraction)
{
    EXPECT_EQ(timestamp("2024-01-01T00:00:00Z"), "2024-01-01T00:00:00.000000Z");
    EXPECT_EQ(timestamp("2024-01-01T01:00:00+01:00"), "2024-01-01T00:00:00.000000Z");
    EXPECT_EQ(timestamp("2024-01-01T00:30:00+0100"), "2023-12-31T23:30:00.000000Z");
    EXPECT_EQ(timestamp("2023-12-31T19:00:00-05"), "2024-01-01T00:00:00.000000Z");
    EXPECT_EQ(timestamp("2025-01-16T13:51:53.104Z"), "2025-01-16T13:51:53.104000Z");
    EXPECT_EQ(timestamp("2025-01-16T13:51:53.1234567Z"), "2025-01-16T13:51:53.123456Z")
        << "digits beyond microseconds are dropped";
    EXPECT_EQ(timestamp("2025-01-16 13:51"), "2025-01-16T13:51:00.000000Z");
    EXPECT_EQ(timestamp("2024-01-15"), "2024-01-15T00:00:00.000000Z");
}

TEST(TimestampTest, Micros)
{
    Timestamp out;
    std::string error;
    ASSERT_TRUE(parse_timestamp("1970-01-01T00:00:01.5Z", out, error)) << error;
    EXPECT_EQ(out.micros, 1500000);
    ASSERT_TRUE(parse_timestamp("1969-12-31T23:59:59.999999Z", out, error)) << error;
    EXPECT_EQ(out.micros, -1);
    ASSERT_TRUE(parse_timestamp("2024-02-29T12:00:00Z", out, error)) << error;
    EXPECT_EQ(out.micros, 1709208000LL * 1000000);
}

TEST(TimestampTest, ODataV2Forms)
{
    EXPECT_EQ(timestamp("/Date(1737035513104)/"), "2025-01-16T13:51:53.104000Z");
    EXPECT_EQ(timestamp("/Date(1737035513104+0000)/"), "2025-01-16T13:51:53.104000Z");
    /* The offset is in minutes and ms is local time at that offset. */
    EXPECT_EQ(timestamp("/Date(1704067200000+0060)/"), "2023-12-31T23:00:00.000000Z");
    EXPECT_EQ(timestamp("/Date(1704067200000-0090)/"), "2024-01-01T01:30:00.000000Z");
    EXPECT_EQ(timestamp("/Date(1704067200000+0100)/"), "2023-12-31T22:20:00.000000Z");
    EXPECT_EQ(timestamp("/Date(-1000)/"), "1969-12-31T23:59:59.000000Z");
}

TEST(TimestampTest, Rejects)
{
    EXPECT_TRUE(is_error(timestamp("")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T24:00:00Z")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T12:60:00Z")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T12:00:60Z")));
    EXPECT_TRUE(is_error(timestamp("2024-02-30T12:00:00Z")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T12:00:00+25:00")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T12:00:00+01:")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T12:00:00.Z")));
    EXPECT_TRUE(is_error(timestamp("2024-01-01T12:00:00Zjunk")));
    EXPECT_TRUE(is_error(timestamp("/Date(1704067200000+2000)/")));
    EXPECT_TRUE(is_error(timestamp("yesterday")));
}

TEST(TimestampTest, FormatRoundTrip)
{
    EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00.000000Z");
    EXPECT_EQ(format_timestamp(-1), "1969-12-31T23:59:59.999999Z");
    EXPECT_EQ(format_timestamp(951782400000000), "2000-02-29T00:00:00.000000Z");
    Timestamp out;
    std::string error;
    ASSERT_TRUE(parse_timestamp("0001-01-01T00:00:00Z", out, error)) << error;
    EXPECT_EQ(format_timestamp(out.micros), "0001-01-01T00:00:00.000000Z");
    ASSERT_TRUE(parse_timestamp("9999-12-31T23:59:59.999999Z", out, error)) << error;
    EXPECT_EQ(format_timestamp(out.micros), "9999-12-31T23:59:59.999999Z");
}

TEST(DateFormatTest, Spellings)
{
    for (DateFormat format : {DateFormat::Iso, DateFormat::DayMonthYearDot,
                              DateFormat::DayMonthYearSlash, DateFormat::MonthDayYearSlash,
                              DateFormat::SapDats})
    {
        std::optional<DateFormat> parsed = parse_date_format(to_string(format));
        ASSERT_TRUE(parsed.has_value()) << to_string(format);
        EXPECT_EQ(*parsed, format);
    }
    EXPECT_FALSE(parse_date_format("dd.mm.yyyy").has_value());
}

TEST(QuoteValueTest, EscapesAndTruncates)
{
    EXPECT_EQ(quote_value("a\"b"), "\"a\\\"b\"");
    EXPECT_EQ(quote_value("a\nb"), "\"a\\x0Ab\"");
    std::string long_text(100, 'x');
    EXPECT_EQ(quote_value(long_text), "\"" + std::string(64, 'x') + "...\"");
}

}  // namespace
}  // namespace stocktech
