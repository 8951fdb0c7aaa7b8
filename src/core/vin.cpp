/*
 * vin.cpp
 *    VIN normalisation and validation (see vin.hpp for the rules).
 */
#include "core/vin.hpp"

#include <cstddef>

namespace stocktech {

namespace {

constexpr std::size_t kVinLength = 17;
constexpr std::size_t kCheckDigitPosition = 8; /* zero-based; position 9 */

/* Weights of 49 CFR 565.15, by zero-based position. */
constexpr int kWeights[kVinLength] = {8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2};

bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Transliterated value of an allowed VIN character, or -1. */
int
transliterate(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    switch (c)
    {
        case 'A': case 'J': return 1;
        case 'B': case 'K': case 'S': return 2;
        case 'C': case 'L': case 'T': return 3;
        case 'D': case 'M': case 'U': return 4;
        case 'E': case 'N': case 'V': return 5;
        case 'F': case 'W': return 6;
        case 'G': case 'P': case 'X': return 7;
        case 'H': case 'Y': return 8;
        case 'R': case 'Z': return 9;
        default: return -1;
    }
}

/* Printable form of one input character for an error message. */
std::string
quote_char(char c)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f)
        return std::string("\"") + c + "\"";
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 0xf];
}

}  // namespace

std::string
normalize_vin_text(std::string_view input)
{
    std::size_t begin = 0;
    std::size_t end = input.size();
    while (begin < end && is_space(input[begin]))
        begin++;
    while (end > begin && is_space(input[end - 1]))
        end--;

    std::string out(input.substr(begin, end - begin));
    for (char &c : out)
    {
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

char
compute_check_digit(std::string_view vin)
{
    if (vin.size() != kVinLength)
        return '\0';

    int sum = 0;
    for (std::size_t i = 0; i < kVinLength; i++)
    {
        int value = transliterate(vin[i]);
        if (value < 0)
            return '\0';
        sum += value * kWeights[i];
    }
    int remainder = sum % 11;
    return remainder == 10 ? 'X' : static_cast<char>('0' + remainder);
}

bool
is_north_american(std::string_view vin)
{
    return !vin.empty() && vin[0] >= '1' && vin[0] <= '5';
}

VinCheck
check_vin(std::string_view input, bool strict)
{
    VinCheck result;
    result.normalized = normalize_vin_text(input);
    const std::string &vin = result.normalized;

    if (vin.empty())
    {
        result.rule = VinRule::Empty;
        result.reason = "The VIN is empty.";
        return result;
    }

    /* Characters first: a wrong letter explains a wrong length less often
     * than the other way round, but it is the more precise message. */
    for (std::size_t i = 0; i < vin.size(); i++)
    {
        char c = vin[i];
        if (c == 'I' || c == 'O' || c == 'Q')
        {
            result.rule = VinRule::Character;
            result.reason = "The letter " + quote_char(c) + " at position " +
                            std::to_string(i + 1) +
                            " is not allowed: VINs never contain I, O or Q.";
            return result;
        }
        if (transliterate(c) < 0)
        {
            result.rule = VinRule::Character;
            result.reason = "The character " + quote_char(c) + " at position " +
                            std::to_string(i + 1) +
                            " is not allowed: only 0-9 and A-Z without I, O and Q are.";
            return result;
        }
    }

    if (vin.size() != kVinLength)
    {
        result.rule = VinRule::Length;
        result.reason = "The VIN has " + std::to_string(vin.size()) +
                        " characters, but 17 were expected.";
        return result;
    }

    char expected = compute_check_digit(vin);
    char actual = vin[kCheckDigitPosition];
    result.check_digit_expected = expected;
    if (actual == expected)
    {
        result.valid = true;
        result.check_digit_verified = true;
        return result;
    }

    std::string mismatch = std::string("The check digit at position 9 is ") + actual +
                           ", but " + expected + " was expected";
    if (is_north_american(vin) || strict)
    {
        result.rule = VinRule::CheckDigit;
        result.reason = mismatch + (is_north_american(vin)
                                        ? "; it is mandatory for North American VINs."
                                        : "; strict VIN checking is on.");
        return result;
    }

    result.valid = true;
    result.reason = mismatch + "; accepted as unverified because the check digit is "
                               "optional outside North America.";
    return result;
}

}  // namespace stocktech
