/*
 * vin_test.cpp
 *    Unit tests of VIN normalisation and validation.
 */
#include "core/vin.hpp"

#include <gtest/gtest.h>

using stocktech::check_vin;
using stocktech::VinCheck;
using stocktech::VinRule;

TEST(VinCheck, NorthAmericanWithXCheckDigit)
{
    VinCheck r = check_vin("1FT1RKFMXRK330792", false);
    EXPECT_TRUE(r.valid);
    EXPECT_TRUE(r.check_digit_verified);
    EXPECT_EQ(r.normalized, "1FT1RKFMXRK330792");
    EXPECT_EQ(r.rule, VinRule::None);
    EXPECT_EQ(r.reason, "");
}

TEST(VinCheck, NorthAmericanWrongCheckDigit)
{
    VinCheck r = check_vin("1FT1RKFM1RK330792", false);
    EXPECT_FALSE(r.valid);
    EXPECT_EQ(r.rule, VinRule::CheckDigit);
    EXPECT_EQ(r.check_digit_expected, 'X');
    EXPECT_EQ(r.reason, "The check digit at position 9 is 1, but X was expected; "
                        "it is mandatory for North American VINs.");
}

TEST(VinCheck, TranspositionDetected)
{
    VinCheck r = check_vin("3VWP5LHY7PD190281", false);
    EXPECT_FALSE(r.valid);
    EXPECT_EQ(r.rule, VinRule::CheckDigit);
    EXPECT_EQ(r.check_digit_expected, '5');
}

TEST(VinCheck, ForbiddenLetters)
{
    for (const char *vin : {"1FTIRKFMXRK330792", "1FT1RKFMXRK33O792", "QFT1RKFMXRK330792"})
    {
        SCOPED_TRACE(vin);
        VinCheck r = check_vin(vin, false);
        EXPECT_FALSE(r.valid);
        EXPECT_EQ(r.rule, VinRule::Character);
    }
    VinCheck r = check_vin("1FTIRKFMXRK330792", false);
    EXPECT_EQ(r.reason, "The letter \"I\" at position 4 is not allowed: "
                        "VINs never contain I, O or Q.");
}

TEST(VinCheck, OtherCharactersRejected)
{
    VinCheck r = check_vin("1FT1RK-MXRK330792", false);
    EXPECT_FALSE(r.valid);
    EXPECT_EQ(r.rule, VinRule::Character);
    EXPECT_EQ(r.reason, "The character \"-\" at position 7 is not allowed: "
                        "only 0-9 and A-Z without I, O and Q are.");

    VinCheck control = check_vin(std::string("1FT1RK\x01MXRK330792"), false);
    EXPECT_EQ(control.rule, VinRule::Character);
    EXPECT_NE(control.reason.find("byte 0x01"), std::string::npos);
}

TEST(VinCheck, WrongLengths)
{
    VinCheck short_vin = check_vin("1FT1RKFMXRK33079", false);
    EXPECT_FALSE(short_vin.valid);
    EXPECT_EQ(short_vin.rule, VinRule::Length);
    EXPECT_EQ(short_vin.reason, "The VIN has 16 characters, but 17 were expected.");

    VinCheck long_vin = check_vin("1FT1RKFMXRK3307921", false);
    EXPECT_FALSE(long_vin.valid);
    EXPECT_EQ(long_vin.rule, VinRule::Length);
    EXPECT_EQ(long_vin.reason, "The VIN has 18 characters, but 17 were expected.");
}

TEST(VinCheck, EmptyAndBlank)
{
    EXPECT_EQ(check_vin("", false).rule, VinRule::Empty);
    EXPECT_EQ(check_vin("  \t ", false).rule, VinRule::Empty);
    EXPECT_FALSE(check_vin(" ", true).valid);
}

TEST(VinCheck, LowercaseAndSpacesNormalised)
{
    VinCheck r = check_vin("  1ft1rkfmxrk330792 \n", false);
    EXPECT_TRUE(r.valid);
    EXPECT_TRUE(r.check_digit_verified);
    EXPECT_EQ(r.normalized, "1FT1RKFMXRK330792");
}

TEST(VinCheck, InnerSpaceIsNotTrimmed)
{
    VinCheck r = check_vin("1FT1RKFM XRK330792", false);
    EXPECT_FALSE(r.valid);
    EXPECT_EQ(r.rule, VinRule::Character);
}

TEST(VinCheck, EuropeanLetterInPosition9Unverified)
{
    VinCheck r = check_vin("WVWZZZ3CZPE512349", false);
    EXPECT_TRUE(r.valid);
    EXPECT_FALSE(r.check_digit_verified);
    EXPECT_EQ(r.check_digit_expected, '8');
    EXPECT_EQ(r.reason, "The check digit at position 9 is Z, but 8 was expected; accepted as "
                        "unverified because the check digit is optional outside North America.");
}

TEST(VinCheck, EuropeanRejectedWhenStrict)
{
    VinCheck r = check_vin("WVWZZZ3CZPE512349", true);
    EXPECT_FALSE(r.valid);
    EXPECT_EQ(r.rule, VinRule::CheckDigit);
    EXPECT_EQ(r.reason, "The check digit at position 9 is Z, but 8 was expected; "
                        "strict VIN checking is on.");
}

TEST(VinCheck, BrazilianStartingWith9)
{
    VinCheck lax = check_vin("9BWZZZ377VT004251", false);
    EXPECT_TRUE(lax.valid);
    EXPECT_FALSE(lax.check_digit_verified);
    EXPECT_EQ(lax.check_digit_expected, '2');
    EXPECT_FALSE(check_vin("9BWZZZ377VT004251", true).valid);

    VinCheck verified = check_vin("9BWZZZ372VT004251", true);
    EXPECT_TRUE(verified.valid);
    EXPECT_TRUE(verified.check_digit_verified);
}

TEST(VinCheck, ComputeCheckDigit)
{
    EXPECT_EQ(stocktech::compute_check_digit("1HGCM82633A004352"), '3');
    EXPECT_EQ(stocktech::compute_check_digit("1FT1RKFMXRK330792"), 'X');
    EXPECT_EQ(stocktech::compute_check_digit("SHORT"), '\0');
    EXPECT_EQ(stocktech::compute_check_digit("1HGCM8263IA004352"), '\0');
}

TEST(VinCheck, NorthAmericanRange)
{
    EXPECT_TRUE(stocktech::is_north_american("1"));
    EXPECT_TRUE(stocktech::is_north_american("5YJ"));
    EXPECT_FALSE(stocktech::is_north_american("6"));
    EXPECT_FALSE(stocktech::is_north_american("W"));
    EXPECT_FALSE(stocktech::is_north_american(""));
}
