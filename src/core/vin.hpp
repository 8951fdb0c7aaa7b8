/*
 * vin.hpp
 *    Vehicle identification number (VIN) normalisation and validation.
 *
 * A VIN is trimmed and upper-cased, then checked: 17 characters from 0-9 and
 * A-Z without I, O and Q.  The check digit in position 9 (weights of 49 CFR
 * 565.15, "X" standing for 10) is mandatory for North American VINs, whose
 * first character is 1 to 5.  Elsewhere it is optional, so a mismatch is
 * accepted and reported as unverified unless the caller asks for the strict
 * check.  Pure C++: no PostgreSQL headers, no exceptions thrown on any input.
 */
#ifndef STOCKTECH_CORE_VIN_HPP
#define STOCKTECH_CORE_VIN_HPP

#include <string>
#include <string_view>

namespace stocktech {

/* Which rule a VIN broke; VinRule::None for a valid VIN. */
enum class VinRule { None, Empty, Length, Character, CheckDigit };

struct VinCheck
{
    std::string normalized;            /* trimmed and upper-cased input */
    bool valid = false;
    bool check_digit_verified = false; /* position 9 matches the computed digit */
    VinRule rule = VinRule::None;      /* the rule that failed, if !valid */
    char check_digit_expected = '\0';  /* computed digit, when it could be computed */

    /*
     * One sentence ending with a period: for an invalid VIN the rule that
     * failed and what was expected; for a valid but unverified VIN why the
     * mismatch was accepted; empty for a verified VIN.
     */
    std::string reason;
};

/* Trim ASCII white space and upper-case ASCII letters. */
std::string normalize_vin_text(std::string_view input);

/*
 * Compute the check digit of a 17-character VIN made of allowed characters:
 * '0'..'9' or 'X'.  Returns '\0' when a character has no transliteration.
 */
char compute_check_digit(std::string_view vin);

/* Whether the VIN belongs to North America: first character 1 to 5. */
bool is_north_american(std::string_view vin);

/* Normalise and validate a VIN; strict also enforces the check digit outside
 * North America. */
VinCheck check_vin(std::string_view input, bool strict);

}  // namespace stocktech

#endif
