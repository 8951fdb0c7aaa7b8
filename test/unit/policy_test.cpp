/*
 * policy_test.cpp
 *    Unit tests of the per-field conflict policy engine (core/policy.hpp).
 *
 * The rules under test are the 18 rows of the default policy version 3.2
 * that the extension ships, plus a few hand-made rules for cases that the
 * default policy does not contain.  The two truth tables state every
 * expected outcome literally.  Their loops only expand a row over the modes,
 * sources and transit states it names, so no expected value is computed by
 * logic that mirrors the engine.
 *
 * The engine compares canonical texts and never checks a column's type, so
 * the tests use placeholder texts such as "base", "local" and "erp" for
 * every field, booleans and dates included.
 */
#include "core/policy.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stocktech {

/* Print the enumerations by their SQL spelling in gtest failure output. */
[[maybe_unused]] static void PrintTo(Decision value, std::ostream *os)
{
    *os << to_string(value);
}

[[maybe_unused]] static void PrintTo(Mode value, std::ostream *os)
{
    *os << to_string(value);
}

[[maybe_unused]] static void PrintTo(Strategy value, std::ostream *os)
{
    *os << to_string(value);
}

[[maybe_unused]] static void PrintTo(ErpAccess value, std::ostream *os)
{
    *os << to_string(value);
}

[[maybe_unused]] static void PrintTo(StocktechAccess value, std::ostream *os)
{
    *os << to_string(value);
}

[[maybe_unused]] static void PrintTo(Source value, std::ostream *os)
{
    *os << to_string(value);
}

namespace {

/* The default policy 3.2: field, ERP access, StockTech access, strategy,
 * frozen in transit, outbound. */
std::vector<FieldRule> default_policy_rules()
{
    using E = ErpAccess;
    using S = StocktechAccess;
    using St = Strategy;
    return {
        {"model_code", E::Master, S::Read, St::ErpWins, false, false},
        {"model_year", E::Master, S::Read, St::ErpWins, false, false},
        {"version_code", E::Master, S::Read, St::ErpWins, false, false},
        {"color_code", E::Master, S::Read, St::ErpWins, false, false},
        {"engine_number", E::Master, S::Read, St::ErpWins, false, false},
        {"dealer_code", E::Master, S::Read, St::ErpWins, false, false},
        {"commercial_status", E::ReadWrite, S::ReadWrite, St::ErpWins, false, true},
        {"financial_status", E::ReadWrite, S::ReadWrite, St::ErpWins, false, true},
        {"list_price", E::Master, S::Read, St::ErpWins, false, false},
        {"sales_order", E::Master, S::Read, St::ErpWins, false, false},
        {"customer_ref", E::Master, S::Read, St::ErpWins, false, false},
        {"warehouse_location", E::Read, S::Write, St::Merge, true, true},
        {"maint_status", E::Read, S::Master, St::StocktechWins, true, true},
        {"pdi_status", E::Read, S::Master, St::StocktechWins, true, true},
        {"vitw_in_transit", E::Locked, S::Master, St::LockedDuringTransit, false, true},
        {"customs_evidence", E::Read, S::Master, St::StocktechWins, false, false},
        {"arrival_date", E::ReadWrite, S::ReadWrite, St::Merge, false, true},
        {"odometer_km", E::Read, S::Master, St::StocktechWins, true, true},
    };
}

std::vector<std::string> default_governed_fields()
{
    return {"model_code",        "model_year",       "version_code",     "color_code",
            "engine_number",     "dealer_code",      "commercial_status", "financial_status",
            "list_price",        "sales_order",      "customer_ref",     "warehouse_location",
            "maint_status",      "pdi_status",       "vitw_in_transit",  "customs_evidence",
            "arrival_date",      "odometer_km"};
}

/* Returns the default 3.2 rule of field.  A field without a rule fails the test. */
FieldRule rule_for(const std::string &field)
{
    for (const FieldRule &rule : default_policy_rules())
    {
        if (rule.field == field)
            return rule;
    }
    ADD_FAILURE() << "no default rule for field \"" << field << "\"";
    return FieldRule{};
}

FieldRule custom_rule(ErpAccess erp_access, StocktechAccess stocktech_access,
                      Strategy strategy, bool locked_in_transit, bool outbound)
{
    return FieldRule{"custom_field", erp_access, stocktech_access, strategy,
                     locked_in_transit, outbound};
}

RowContext inbound_row(Mode mode, int64_t source_ts, bool in_transit,
                       Source source = Source::Erp)
{
    RowContext row;
    row.mode = mode;
    row.source = source;
    row.source_ts = source_ts;
    row.row_exists = true;
    row.in_transit_before = in_transit;
    row.in_transit_after = in_transit;
    return row;
}

RowContext local_row(Mode mode, bool in_transit_before, bool in_transit_after)
{
    RowContext row;
    row.mode = mode;
    row.source = Source::Stocktech;
    row.source_ts = 5000;
    row.row_exists = true;
    row.in_transit_before = in_transit_before;
    row.in_transit_after = in_transit_after;
    return row;
}

FieldInput make_input(Value current, bool has_baseline, Value baseline,
                      std::optional<int64_t> local_changed_at, Value incoming)
{
    FieldInput input;
    input.current = std::move(current);
    input.has_baseline = has_baseline;
    input.baseline = std::move(baseline);
    input.local_changed_at = local_changed_at;
    input.incoming = std::move(incoming);
    return input;
}

Value to_value(const char *value)
{
    return value == nullptr ? Value() : Value(value);
}

bool contains(const std::string &haystack, const std::string &needle)
{
    return haystack.find(needle) != std::string::npos;
}

constexpr Mode kModes[] = {Mode::Manual, Mode::ReadOnly, Mode::Hybrid, Mode::Bidirectional};

/* Bit masks naming the modes that a table row covers. */
constexpr unsigned kManual = 1u << 0;
constexpr unsigned kReadOnly = 1u << 1;
constexpr unsigned kHybrid = 1u << 2;
constexpr unsigned kBidirectional = 1u << 3;
constexpr unsigned kAllModes = kManual | kReadOnly | kHybrid | kBidirectional;

unsigned mode_bit(Mode mode)
{
    switch (mode)
    {
        case Mode::Manual:
            return kManual;
        case Mode::ReadOnly:
            return kReadOnly;
        case Mode::Hybrid:
            return kHybrid;
        case Mode::Bidirectional:
            return kBidirectional;
    }
    return 0;
}

/*
 * What changed since the baseline "base" before an inbound event arrives.
 * With a baseline, incoming can equal current only when neither side
 * changed or both changed to the same value, so these six cases cover every
 * combination of (ERP changed, local changed) and (incoming equal to or
 * different from current).
 */
enum class Change
{
    None,           /* baseline, current and incoming are all "base" */
    ErpOnly,        /* current "base", incoming "erp" */
    LocalOnly,      /* current "local", incoming "base" */
    BothSame,       /* current and incoming are both "same" */
    BothErpLater,   /* current "local", incoming "erp", ERP change later */
    BothLocalLater, /* current "local", incoming "erp", local change later */
};

const char *change_name(Change change)
{
    switch (change)
    {
        case Change::None:
            return "none";
        case Change::ErpOnly:
            return "erp_only";
        case Change::LocalOnly:
            return "local_only";
        case Change::BothSame:
            return "both_same";
        case Change::BothErpLater:
            return "both_erp_later";
        case Change::BothLocalLater:
            return "both_local_later";
    }
    return "?";
}

/* Source timestamp of the inbound event in each change case. */
int64_t change_source_ts(Change change)
{
    return change == Change::BothLocalLater ? 1000 : 2000;
}

FieldInput change_input(Change change)
{
    switch (change)
    {
        case Change::None:
            return make_input("base", true, "base", std::nullopt, "base");
        case Change::ErpOnly:
            return make_input("base", true, "base", std::nullopt, "erp");
        case Change::LocalOnly:
            return make_input("local", true, "base", 1500, "base");
        case Change::BothSame:
            return make_input("same", true, "base", 1500, "same");
        case Change::BothErpLater:
            return make_input("local", true, "base", 1500, "erp");
        case Change::BothLocalLater:
            return make_input("local", true, "base", 1500, "erp");
    }
    return FieldInput{};
}

/* One row of the inbound truth table. */
struct InboundCase
{
    const char *field;
    unsigned modes;
    Change change;
    bool in_transit;
    Decision decision;
    const char *new_value;
    bool set_baseline;
    bool conflict;
    bool winner_is_erp;
};

constexpr unsigned kNotReadOnly = kManual | kHybrid | kBidirectional;

using C = Change;
using D = Decision;

/*
 * Inbound truth table.  The fields stand for the strategies of policy 3.2:
 * commercial_status (erp_wins), pdi_status (stocktech_wins, frozen in
 * transit), warehouse_location (merge, frozen in transit, not supplied by
 * the ERP), arrival_date (merge, supplied by the ERP, so read_only mode
 * applies it) and vitw_in_transit (locked_during_transit).
 */
const InboundCase kInboundCases[] = {
    /* field, modes, change, in transit, decision, new value, set baseline,
     * conflict, winner is ERP */
    {"commercial_status", kAllModes, C::None, false, D::Unchanged, "base", true, false, false},
    {"commercial_status", kAllModes, C::ErpOnly, false, D::Applied, "erp", true, false, false},
    {"commercial_status", kNotReadOnly, C::LocalOnly, false, D::Unchanged, "local", false, false,
     false},
    {"commercial_status", kReadOnly, C::LocalOnly, false, D::Applied, "base", true, false, false},
    {"commercial_status", kAllModes, C::BothSame, false, D::Unchanged, "same", true, false, false},
    {"commercial_status", kAllModes, C::BothErpLater, false, D::Applied, "erp", true, false,
     false},
    {"commercial_status", kAllModes, C::BothLocalLater, false, D::Applied, "erp", true, false,
     false},
    {"commercial_status", kAllModes, C::None, true, D::Unchanged, "base", true, false, false},
    {"commercial_status", kAllModes, C::ErpOnly, true, D::Applied, "erp", true, false, false},
    {"commercial_status", kNotReadOnly, C::LocalOnly, true, D::Unchanged, "local", false, false,
     false},
    {"commercial_status", kReadOnly, C::LocalOnly, true, D::Applied, "base", true, false, false},
    {"commercial_status", kAllModes, C::BothSame, true, D::Unchanged, "same", true, false, false},
    {"commercial_status", kAllModes, C::BothErpLater, true, D::Applied, "erp", true, false, false},
    {"commercial_status", kAllModes, C::BothLocalLater, true, D::Applied, "erp", true, false,
     false},

    {"pdi_status", kAllModes, C::None, false, D::Unchanged, "base", true, false, false},
    {"pdi_status", kAllModes, C::ErpOnly, false, D::Ignored, "base", true, false, false},
    {"pdi_status", kAllModes, C::LocalOnly, false, D::Unchanged, "local", false, false, false},
    {"pdi_status", kAllModes, C::BothSame, false, D::Unchanged, "same", true, false, false},
    {"pdi_status", kAllModes, C::BothErpLater, false, D::Ignored, "local", true, false, false},
    {"pdi_status", kAllModes, C::BothLocalLater, false, D::Ignored, "local", true, false, false},
    {"pdi_status", kAllModes, C::None, true, D::Unchanged, "base", true, false, false},
    {"pdi_status", kAllModes, C::ErpOnly, true, D::Deferred, "base", false, false, false},
    {"pdi_status", kAllModes, C::LocalOnly, true, D::Unchanged, "local", false, false, false},
    {"pdi_status", kAllModes, C::BothSame, true, D::Unchanged, "same", true, false, false},
    {"pdi_status", kAllModes, C::BothErpLater, true, D::Deferred, "local", false, false, false},
    {"pdi_status", kAllModes, C::BothLocalLater, true, D::Deferred, "local", false, false, false},

    {"warehouse_location", kAllModes, C::None, false, D::Unchanged, "base", true, false, false},
    {"warehouse_location", kAllModes, C::ErpOnly, false, D::Applied, "erp", true, false, false},
    {"warehouse_location", kAllModes, C::LocalOnly, false, D::Unchanged, "local", false, false,
     false},
    {"warehouse_location", kAllModes, C::BothSame, false, D::Unchanged, "same", true, false,
     false},
    {"warehouse_location", kAllModes, C::BothErpLater, false, D::ConflictResolved, "erp", true,
     true, true},
    {"warehouse_location", kAllModes, C::BothLocalLater, false, D::ConflictResolved, "local",
     true, true, false},
    {"warehouse_location", kAllModes, C::None, true, D::Unchanged, "base", true, false, false},
    {"warehouse_location", kAllModes, C::ErpOnly, true, D::Deferred, "base", false, false, false},
    {"warehouse_location", kAllModes, C::LocalOnly, true, D::Unchanged, "local", false, false,
     false},
    {"warehouse_location", kAllModes, C::BothSame, true, D::Unchanged, "same", true, false, false},
    {"warehouse_location", kAllModes, C::BothErpLater, true, D::Deferred, "local", false, false,
     false},
    {"warehouse_location", kAllModes, C::BothLocalLater, true, D::Deferred, "local", false, false,
     false},

    {"arrival_date", kNotReadOnly, C::None, false, D::Unchanged, "base", true, false, false},
    {"arrival_date", kNotReadOnly, C::ErpOnly, false, D::Applied, "erp", true, false, false},
    {"arrival_date", kNotReadOnly, C::LocalOnly, false, D::Unchanged, "local", false, false,
     false},
    {"arrival_date", kNotReadOnly, C::BothSame, false, D::Unchanged, "same", true, false, false},
    {"arrival_date", kNotReadOnly, C::BothErpLater, false, D::ConflictResolved, "erp", true, true,
     true},
    {"arrival_date", kNotReadOnly, C::BothLocalLater, false, D::ConflictResolved, "local", true,
     true, false},
    {"arrival_date", kNotReadOnly, C::None, true, D::Unchanged, "base", true, false, false},
    {"arrival_date", kNotReadOnly, C::ErpOnly, true, D::Applied, "erp", true, false, false},
    {"arrival_date", kNotReadOnly, C::LocalOnly, true, D::Unchanged, "local", false, false, false},
    {"arrival_date", kNotReadOnly, C::BothSame, true, D::Unchanged, "same", true, false, false},
    {"arrival_date", kNotReadOnly, C::BothErpLater, true, D::ConflictResolved, "erp", true, true,
     true},
    {"arrival_date", kNotReadOnly, C::BothLocalLater, true, D::ConflictResolved, "local", true,
     true, false},
    {"arrival_date", kReadOnly, C::None, false, D::Unchanged, "base", true, false, false},
    {"arrival_date", kReadOnly, C::ErpOnly, false, D::Applied, "erp", true, false, false},
    {"arrival_date", kReadOnly, C::LocalOnly, false, D::Applied, "base", true, false, false},
    {"arrival_date", kReadOnly, C::BothSame, false, D::Unchanged, "same", true, false, false},
    {"arrival_date", kReadOnly, C::BothErpLater, false, D::Applied, "erp", true, false, false},
    {"arrival_date", kReadOnly, C::BothLocalLater, false, D::Applied, "erp", true, false, false},
    {"arrival_date", kReadOnly, C::None, true, D::Unchanged, "base", true, false, false},
    {"arrival_date", kReadOnly, C::ErpOnly, true, D::Applied, "erp", true, false, false},
    {"arrival_date", kReadOnly, C::LocalOnly, true, D::Applied, "base", true, false, false},
    {"arrival_date", kReadOnly, C::BothSame, true, D::Unchanged, "same", true, false, false},
    {"arrival_date", kReadOnly, C::BothErpLater, true, D::Applied, "erp", true, false, false},
    {"arrival_date", kReadOnly, C::BothLocalLater, true, D::Applied, "erp", true, false, false},

    {"vitw_in_transit", kAllModes, C::None, false, D::Unchanged, "base", true, false, false},
    {"vitw_in_transit", kAllModes, C::ErpOnly, false, D::Rejected, "base", true, false, false},
    {"vitw_in_transit", kAllModes, C::LocalOnly, false, D::Unchanged, "local", false, false,
     false},
    {"vitw_in_transit", kAllModes, C::BothSame, false, D::Unchanged, "same", true, false, false},
    {"vitw_in_transit", kAllModes, C::BothErpLater, false, D::Rejected, "local", true, false,
     false},
    {"vitw_in_transit", kAllModes, C::BothLocalLater, false, D::Rejected, "local", true, false,
     false},
    {"vitw_in_transit", kAllModes, C::None, true, D::Unchanged, "base", true, false, false},
    {"vitw_in_transit", kAllModes, C::ErpOnly, true, D::Rejected, "base", true, false, false},
    {"vitw_in_transit", kAllModes, C::LocalOnly, true, D::Unchanged, "local", false, false, false},
    {"vitw_in_transit", kAllModes, C::BothSame, true, D::Unchanged, "same", true, false, false},
    {"vitw_in_transit", kAllModes, C::BothErpLater, true, D::Rejected, "local", true, false,
     false},
    {"vitw_in_transit", kAllModes, C::BothLocalLater, true, D::Rejected, "local", true, false,
     false},
};

TEST(PolicyTruthTable, InboundEveryStrategyAndMode)
{
    int cases_run = 0;

    for (const InboundCase &expected : kInboundCases)
    {
        const FieldRule rule = rule_for(expected.field);

        for (Mode mode : kModes)
        {
            if ((expected.modes & mode_bit(mode)) == 0)
                continue;

            for (Source source : {Source::Erp, Source::Csv})
            {
                SCOPED_TRACE(std::string("field=") + expected.field + " mode=" + to_string(mode)
                             + " source=" + to_string(source)
                             + " change=" + change_name(expected.change)
                             + " in_transit=" + (expected.in_transit ? "true" : "false"));

                const RowContext row = inbound_row(mode, change_source_ts(expected.change),
                                                   expected.in_transit, source);
                const FieldOutcome outcome =
                    decide_field(rule, row, change_input(expected.change));

                EXPECT_EQ(outcome.decision, expected.decision);
                EXPECT_EQ(outcome.new_value, to_value(expected.new_value));
                EXPECT_EQ(outcome.set_baseline, expected.set_baseline);
                EXPECT_EQ(outcome.conflict, expected.conflict);
                EXPECT_EQ(outcome.winner_is_erp, expected.winner_is_erp);
                EXPECT_FALSE(outcome.enqueue_outbound);
                EXPECT_FALSE(outcome.set_local_changed);
                EXPECT_TRUE(contains(outcome.reason, to_string(rule.strategy)))
                    << "reason: " << outcome.reason;
                ++cases_run;
            }
        }
    }

    /* Four fields have 12 rows for all 4 modes, arrival_date has 12 rows for 3 modes
     * and 12 for read_only, and every case runs for 2 sources. */
    EXPECT_EQ(cases_run, (4 * 4 + 4) * 12 * 2);
}

/* Bit masks naming the transit states, before and after a local write, that a row covers. */
constexpr unsigned kNotInTransit = 1u << 0;   /* before false, after false */
constexpr unsigned kTransitEnds = 1u << 1;    /* before true, after false */
constexpr unsigned kTransitStarts = 1u << 2;  /* before false, after true */
constexpr unsigned kStaysInTransit = 1u << 3; /* before true, after true */
constexpr unsigned kAnyTransit = kNotInTransit | kTransitEnds | kTransitStarts | kStaysInTransit;
constexpr unsigned kNotFrozen = kNotInTransit | kTransitEnds | kTransitStarts;

struct TransitState
{
    unsigned bit;
    bool before;
    bool after;
};

constexpr TransitState kTransitStates[] = {
    {kNotInTransit, false, false},
    {kTransitEnds, true, false},
    {kTransitStarts, false, true},
    {kStaysInTransit, true, true},
};

/* One row of the local write truth table.  The write changes "old" to
 * "new", or stores "old" again when equal is set. */
struct LocalCase
{
    const char *field;
    unsigned modes;
    unsigned transits;
    bool equal;
    Decision decision;
    const char *new_value;
    bool set_local_changed;
    bool enqueue_outbound;
};

constexpr unsigned kNotBidirectional = kManual | kReadOnly | kHybrid;

/*
 * Local write truth table.  model_code is read for StockTech,
 * commercial_status and arrival_date are supplied by the ERP and writable,
 * pdi_status and warehouse_location are frozen in transit, customs_evidence
 * has no outbound flag, and vitw_in_transit is the transit flag itself.
 */
const LocalCase kLocalCases[] = {
    /* field, modes, transit states, equal, decision, new value,
     * set local changed, enqueue outbound */
    {"model_code", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"model_code", kAllModes, kAnyTransit, false, D::Rejected, "old", false, false},

    {"commercial_status", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"commercial_status", kReadOnly, kAnyTransit, false, D::Rejected, "old", false, false},
    {"commercial_status", kManual | kHybrid, kAnyTransit, false, D::Applied, "new", true, false},
    {"commercial_status", kBidirectional, kAnyTransit, false, D::Applied, "new", true, true},

    {"pdi_status", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"pdi_status", kAllModes, kStaysInTransit, false, D::Rejected, "old", false, false},
    {"pdi_status", kNotBidirectional, kNotFrozen, false, D::Applied, "new", true, false},
    {"pdi_status", kBidirectional, kNotFrozen, false, D::Applied, "new", true, true},

    {"warehouse_location", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"warehouse_location", kAllModes, kStaysInTransit, false, D::Rejected, "old", false, false},
    {"warehouse_location", kNotBidirectional, kNotFrozen, false, D::Applied, "new", true, false},
    {"warehouse_location", kBidirectional, kNotFrozen, false, D::Applied, "new", true, true},

    {"customs_evidence", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"customs_evidence", kAllModes, kAnyTransit, false, D::Applied, "new", true, false},

    {"arrival_date", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"arrival_date", kReadOnly, kAnyTransit, false, D::Rejected, "old", false, false},
    {"arrival_date", kManual | kHybrid, kAnyTransit, false, D::Applied, "new", true, false},
    {"arrival_date", kBidirectional, kAnyTransit, false, D::Applied, "new", true, true},

    {"vitw_in_transit", kAllModes, kAnyTransit, true, D::Unchanged, "old", false, false},
    {"vitw_in_transit", kNotBidirectional, kAnyTransit, false, D::Applied, "new", true, false},
    {"vitw_in_transit", kBidirectional, kAnyTransit, false, D::Applied, "new", true, true},
};

TEST(PolicyTruthTable, LocalWriteEveryModeAndTransit)
{
    int cases_run = 0;

    for (const LocalCase &expected : kLocalCases)
    {
        const FieldRule rule = rule_for(expected.field);

        for (Mode mode : kModes)
        {
            if ((expected.modes & mode_bit(mode)) == 0)
                continue;

            for (const TransitState &transit : kTransitStates)
            {
                if ((expected.transits & transit.bit) == 0)
                    continue;

                SCOPED_TRACE(std::string("field=") + expected.field + " mode=" + to_string(mode)
                             + " in_transit_before=" + (transit.before ? "true" : "false")
                             + " in_transit_after=" + (transit.after ? "true" : "false")
                             + " equal=" + (expected.equal ? "true" : "false"));

                const RowContext row = local_row(mode, transit.before, transit.after);
                const FieldInput input = make_input("old", true, "old", 1000,
                                                    expected.equal ? "old" : "new");
                const FieldOutcome outcome = decide_field(rule, row, input);

                EXPECT_EQ(outcome.decision, expected.decision);
                EXPECT_EQ(outcome.new_value, to_value(expected.new_value));
                EXPECT_EQ(outcome.set_local_changed, expected.set_local_changed);
                EXPECT_EQ(outcome.enqueue_outbound, expected.enqueue_outbound);
                EXPECT_FALSE(outcome.set_baseline);
                EXPECT_FALSE(outcome.conflict);
                EXPECT_FALSE(outcome.winner_is_erp);
                EXPECT_TRUE(contains(outcome.reason, to_string(rule.strategy)))
                    << "reason: " << outcome.reason;
                ++cases_run;
            }
        }
    }

    /* 7 fields, each covering every mode and transit state twice (equal or not). */
    EXPECT_EQ(cases_run, 7 * 4 * 4 * 2);
}

TEST(PolicyLocalWrite, ReadAccessRejectedInEveryMode)
{
    for (Mode mode : kModes)
    {
        SCOPED_TRACE(std::string("mode=") + to_string(mode));
        const FieldOutcome outcome = decide_field(
            rule_for("list_price"), local_row(mode, false, false),
            make_input("100.00", true, "100.00", std::nullopt, "90.00"));

        EXPECT_EQ(outcome.decision, Decision::Rejected);
        EXPECT_EQ(outcome.new_value, Value("100.00"));
        EXPECT_FALSE(outcome.set_local_changed);
        EXPECT_FALSE(outcome.enqueue_outbound);
        EXPECT_TRUE(contains(outcome.reason, "stocktech_access read")) << outcome.reason;
    }
}

TEST(PolicyLocalWrite, ReadOnlyRejectsErpSuppliedFields)
{
    const RowContext row = local_row(Mode::ReadOnly, false, false);
    const FieldInput input = make_input("available", true, "available", std::nullopt, "sold");

    const FieldOutcome supplied = decide_field(rule_for("commercial_status"), row, input);
    EXPECT_EQ(supplied.decision, Decision::Rejected);
    EXPECT_TRUE(contains(supplied.reason, "read_only")) << supplied.reason;

    /* The ERP only reads pdi_status, so read_only mode leaves it writable. */
    const FieldOutcome not_supplied = decide_field(rule_for("pdi_status"), row, input);
    EXPECT_EQ(not_supplied.decision, Decision::Applied);
    EXPECT_FALSE(not_supplied.enqueue_outbound);
}

TEST(PolicyLocalWrite, FreezeNeedsTransitBeforeAndAfter)
{
    const FieldRule frozen = rule_for("odometer_km");
    const FieldInput input = make_input("10", true, "10", std::nullopt, "25");

    const FieldOutcome stays = decide_field(frozen, local_row(Mode::Hybrid, true, true), input);
    EXPECT_EQ(stays.decision, Decision::Rejected);
    EXPECT_EQ(stays.new_value, Value("10"));
    EXPECT_TRUE(contains(stays.reason, "in transit")) << stays.reason;

    const FieldOutcome ends = decide_field(frozen, local_row(Mode::Hybrid, true, false), input);
    EXPECT_EQ(ends.decision, Decision::Applied);

    const FieldOutcome starts = decide_field(frozen, local_row(Mode::Hybrid, false, true), input);
    EXPECT_EQ(starts.decision, Decision::Applied);

    const FieldOutcome outside =
        decide_field(frozen, local_row(Mode::Hybrid, false, false), input);
    EXPECT_EQ(outside.decision, Decision::Applied);

    /* customs_evidence is not frozen in transit. */
    const FieldOutcome unfrozen =
        decide_field(rule_for("customs_evidence"), local_row(Mode::Hybrid, true, true), input);
    EXPECT_EQ(unfrozen.decision, Decision::Applied);
}

TEST(PolicyLocalWrite, OutboundOnlyBidirectionalWithFlag)
{
    const FieldInput input = make_input("reserved", true, "reserved", 100, "sold");

    const FieldOutcome bidirectional = decide_field(
        rule_for("commercial_status"), local_row(Mode::Bidirectional, false, false), input);
    EXPECT_EQ(bidirectional.decision, Decision::Applied);
    EXPECT_TRUE(bidirectional.enqueue_outbound);
    EXPECT_TRUE(bidirectional.set_local_changed);
    EXPECT_TRUE(contains(bidirectional.reason, "queued")) << bidirectional.reason;

    const FieldOutcome hybrid = decide_field(rule_for("commercial_status"),
                                             local_row(Mode::Hybrid, false, false), input);
    EXPECT_EQ(hybrid.decision, Decision::Applied);
    EXPECT_FALSE(hybrid.enqueue_outbound);

    const FieldOutcome manual = decide_field(rule_for("commercial_status"),
                                             local_row(Mode::Manual, false, false), input);
    EXPECT_EQ(manual.decision, Decision::Applied);
    EXPECT_FALSE(manual.enqueue_outbound);

    const FieldOutcome no_flag = decide_field(
        rule_for("customs_evidence"), local_row(Mode::Bidirectional, false, false), input);
    EXPECT_EQ(no_flag.decision, Decision::Applied);
    EXPECT_FALSE(no_flag.enqueue_outbound);
}

TEST(PolicyLocalWrite, NullValues)
{
    const FieldRule rule = rule_for("customs_evidence");
    const RowContext row = local_row(Mode::Hybrid, false, false);

    const FieldOutcome cleared =
        decide_field(rule, row, make_input("photo/1.jpg", false, std::nullopt, 100, std::nullopt));
    EXPECT_EQ(cleared.decision, Decision::Applied);
    EXPECT_EQ(cleared.new_value, Value());

    const FieldOutcome null_again =
        decide_field(rule, row, make_input(std::nullopt, false, std::nullopt, 100, std::nullopt));
    EXPECT_EQ(null_again.decision, Decision::Unchanged);
    EXPECT_FALSE(null_again.set_local_changed);

    /* The empty string is a value, not NULL. */
    const FieldOutcome empty =
        decide_field(rule, row, make_input(std::nullopt, false, std::nullopt, 100, ""));
    EXPECT_EQ(empty.decision, Decision::Applied);
    EXPECT_EQ(empty.new_value, Value(""));
}

TEST(PolicyMerge, TieGoesToErp)
{
    const FieldOutcome outcome =
        decide_field(rule_for("warehouse_location"), inbound_row(Mode::Hybrid, 1000, false),
                     make_input("B-07", true, "A-01", 1000, "C-12"));

    EXPECT_EQ(outcome.decision, Decision::ConflictResolved);
    EXPECT_EQ(outcome.new_value, Value("C-12"));
    EXPECT_TRUE(outcome.conflict);
    EXPECT_TRUE(outcome.winner_is_erp);
    EXPECT_TRUE(outcome.set_baseline);
    EXPECT_TRUE(contains(outcome.reason, "tie")) << outcome.reason;
    EXPECT_TRUE(contains(outcome.reason, "merge")) << outcome.reason;
}

TEST(PolicyMerge, MissingLocalTimestampGoesToErp)
{
    /* The ERP change has the earliest possible timestamp and still wins. */
    const FieldOutcome outcome = decide_field(
        rule_for("warehouse_location"), inbound_row(Mode::Hybrid, INT64_MIN, false),
        make_input("B-07", true, "A-01", std::nullopt, "C-12"));

    EXPECT_EQ(outcome.decision, Decision::ConflictResolved);
    EXPECT_EQ(outcome.new_value, Value("C-12"));
    EXPECT_TRUE(outcome.conflict);
    EXPECT_TRUE(outcome.winner_is_erp);
    EXPECT_TRUE(contains(outcome.reason, "no timestamp")) << outcome.reason;
}

TEST(PolicyMerge, LaterLocalChangeWins)
{
    const FieldOutcome outcome =
        decide_field(rule_for("arrival_date"), inbound_row(Mode::Bidirectional, 1000, false),
                     make_input("2024-05-02", true, "2024-05-01", 1001, "2024-05-03"));

    EXPECT_EQ(outcome.decision, Decision::ConflictResolved);
    EXPECT_EQ(outcome.new_value, Value("2024-05-02"));
    EXPECT_TRUE(outcome.conflict);
    EXPECT_FALSE(outcome.winner_is_erp);
    EXPECT_TRUE(outcome.set_baseline);
    EXPECT_FALSE(outcome.enqueue_outbound);
    EXPECT_TRUE(contains(outcome.reason, "local change is later")) << outcome.reason;
    EXPECT_TRUE(contains(outcome.reason, "keeps the local value")) << outcome.reason;
}

TEST(PolicyMerge, ResentErpValueIsNoNewConflict)
{
    const FieldRule rule = rule_for("warehouse_location");
    const FieldOutcome first = decide_field(rule, inbound_row(Mode::Hybrid, 1000, false),
                                            make_input("B-07", true, "A-01", 2000, "C-12"));
    ASSERT_EQ(first.decision, Decision::ConflictResolved);
    ASSERT_FALSE(first.winner_is_erp);
    ASSERT_TRUE(first.set_baseline);

    /* The caller has stored "C-12" as the baseline, and the ERP sends it again:
     * nothing new, so no decision worth an audit entry. */
    const FieldOutcome again = decide_field(rule, inbound_row(Mode::Hybrid, 3000, false),
                                            make_input("B-07", true, "C-12", 2000, "C-12"));
    EXPECT_EQ(again.decision, Decision::Unchanged);
    EXPECT_EQ(again.new_value, Value("B-07"));
    EXPECT_FALSE(again.conflict);
}

TEST(PolicyMerge, NullBaselineIsABaseline)
{
    const FieldRule rule = rule_for("arrival_date");
    const RowContext row = inbound_row(Mode::Hybrid, 2000, false);

    const FieldOutcome erp_only =
        decide_field(rule, row, make_input(std::nullopt, true, std::nullopt, 1000, "2024-05-01"));
    EXPECT_EQ(erp_only.decision, Decision::Applied);
    EXPECT_EQ(erp_only.new_value, Value("2024-05-01"));
    EXPECT_FALSE(erp_only.conflict);

    const FieldOutcome local_only =
        decide_field(rule, row, make_input("2024-05-01", true, std::nullopt, 1000, std::nullopt));
    EXPECT_EQ(local_only.decision, Decision::Unchanged);
    EXPECT_EQ(local_only.new_value, Value("2024-05-01"));
    EXPECT_FALSE(local_only.conflict);

    const FieldOutcome both =
        decide_field(rule, row, make_input("2024-05-01", true, std::nullopt, 1000, "2024-06-01"));
    EXPECT_EQ(both.decision, Decision::ConflictResolved);
    EXPECT_TRUE(both.conflict);
}

TEST(PolicyNoBaseline, MergeAppliesWhenNoLocalValue)
{
    RowContext row = inbound_row(Mode::Hybrid, 2000, false);
    row.row_exists = false;
    const FieldOutcome outcome =
        decide_field(rule_for("warehouse_location"), row,
                     make_input(std::nullopt, false, std::nullopt, std::nullopt, "A-01"));

    EXPECT_EQ(outcome.decision, Decision::Applied);
    EXPECT_EQ(outcome.new_value, Value("A-01"));
    EXPECT_TRUE(outcome.set_baseline);
    EXPECT_FALSE(outcome.conflict);
    EXPECT_TRUE(contains(outcome.reason, "no baseline")) << outcome.reason;
}

TEST(PolicyNoBaseline, MergeLocalValueIsConflict)
{
    const FieldRule rule = rule_for("warehouse_location");

    const FieldOutcome erp_later = decide_field(
        rule, inbound_row(Mode::Hybrid, 2000, false),
        make_input("B-07", false, std::nullopt, 1000, "A-01"));
    EXPECT_EQ(erp_later.decision, Decision::ConflictResolved);
    EXPECT_EQ(erp_later.new_value, Value("A-01"));
    EXPECT_TRUE(erp_later.conflict);
    EXPECT_TRUE(erp_later.winner_is_erp);
    EXPECT_TRUE(erp_later.set_baseline);
    EXPECT_TRUE(contains(erp_later.reason, "no baseline")) << erp_later.reason;

    const FieldOutcome local_later = decide_field(
        rule, inbound_row(Mode::Hybrid, 1000, false),
        make_input("B-07", false, std::nullopt, 2000, "A-01"));
    EXPECT_EQ(local_later.decision, Decision::ConflictResolved);
    EXPECT_EQ(local_later.new_value, Value("B-07"));
    EXPECT_TRUE(local_later.conflict);
    EXPECT_FALSE(local_later.winner_is_erp);
    EXPECT_TRUE(local_later.set_baseline);

    const FieldOutcome no_timestamp = decide_field(
        rule, inbound_row(Mode::Hybrid, 1000, false),
        make_input("B-07", false, std::nullopt, std::nullopt, "A-01"));
    EXPECT_EQ(no_timestamp.decision, Decision::ConflictResolved);
    EXPECT_EQ(no_timestamp.new_value, Value("A-01"));
    EXPECT_TRUE(no_timestamp.winner_is_erp);
}

TEST(PolicyNoBaseline, EqualValueUnchanged)
{
    const FieldOutcome outcome =
        decide_field(rule_for("warehouse_location"), inbound_row(Mode::Hybrid, 2000, false),
                     make_input("A-01", false, std::nullopt, 1000, "A-01"));

    EXPECT_EQ(outcome.decision, Decision::Unchanged);
    EXPECT_EQ(outcome.new_value, Value("A-01"));
    EXPECT_TRUE(outcome.set_baseline);
    EXPECT_FALSE(outcome.conflict);
}

TEST(PolicyNoBaseline, ErpWinsAndStocktechWins)
{
    const RowContext row = inbound_row(Mode::Hybrid, 2000, false);
    const FieldInput input = make_input("local", false, std::nullopt, 1000, "erp");

    const FieldOutcome erp_wins = decide_field(rule_for("financial_status"), row, input);
    EXPECT_EQ(erp_wins.decision, Decision::Applied);
    EXPECT_EQ(erp_wins.new_value, Value("erp"));
    EXPECT_TRUE(erp_wins.set_baseline);

    const FieldOutcome stocktech_wins = decide_field(rule_for("maint_status"), row, input);
    EXPECT_EQ(stocktech_wins.decision, Decision::Ignored);
    EXPECT_EQ(stocktech_wins.new_value, Value("local"));
    EXPECT_TRUE(stocktech_wins.set_baseline);

    /* A new VIN: stocktech_wins keeps NULL rather than taking the ERP value. */
    RowContext new_row = row;
    new_row.row_exists = false;
    const FieldOutcome created = decide_field(
        rule_for("maint_status"), new_row,
        make_input(std::nullopt, false, std::nullopt, std::nullopt, "scheduled"));
    EXPECT_EQ(created.decision, Decision::Ignored);
    EXPECT_EQ(created.new_value, Value());
}

TEST(PolicyInbound, LockedAndNoneAccessRejected)
{
    for (ErpAccess access : {ErpAccess::Locked, ErpAccess::None})
    {
        for (Strategy strategy : {Strategy::ErpWins, Strategy::StocktechWins, Strategy::Merge})
        {
            for (Mode mode : kModes)
            {
                SCOPED_TRACE(std::string("erp_access=") + to_string(access) + " strategy="
                             + to_string(strategy) + " mode=" + to_string(mode));
                const FieldRule rule =
                    custom_rule(access, StocktechAccess::Master, strategy, false, true);
                const FieldOutcome outcome =
                    decide_field(rule, inbound_row(mode, 2000, false),
                                 make_input("local", true, "base", 1000, "erp"));

                EXPECT_EQ(outcome.decision, Decision::Rejected);
                EXPECT_EQ(outcome.new_value, Value("local"));
                EXPECT_TRUE(outcome.set_baseline);
                EXPECT_FALSE(outcome.conflict);
                const std::string access_text = std::string("erp_access ") + to_string(access);
                EXPECT_TRUE(contains(outcome.reason, access_text)) << outcome.reason;
            }
        }
    }
}

TEST(PolicyInbound, LockedAccessEqualValueUnchanged)
{
    const FieldRule rule =
        custom_rule(ErpAccess::None, StocktechAccess::Master, Strategy::ErpWins, false, false);
    const FieldOutcome outcome = decide_field(rule, inbound_row(Mode::Hybrid, 2000, false),
                                              make_input("x", true, "base", 1000, "x"));

    EXPECT_EQ(outcome.decision, Decision::Unchanged);
    EXPECT_TRUE(outcome.set_baseline);
}

TEST(PolicyInbound, ReadOnlyOverridesStrategy)
{
    const FieldInput input = make_input("local", true, "base", 1000, "erp");

    const FieldRule stocktech_wins = custom_rule(ErpAccess::Master, StocktechAccess::ReadWrite,
                                                 Strategy::StocktechWins, false, false);
    const FieldOutcome read_only =
        decide_field(stocktech_wins, inbound_row(Mode::ReadOnly, 2000, false), input);
    EXPECT_EQ(read_only.decision, Decision::Applied);
    EXPECT_EQ(read_only.new_value, Value("erp"));
    EXPECT_TRUE(read_only.set_baseline);
    EXPECT_TRUE(contains(read_only.reason, "read_only")) << read_only.reason;

    const FieldOutcome hybrid =
        decide_field(stocktech_wins, inbound_row(Mode::Hybrid, 2000, false), input);
    EXPECT_EQ(hybrid.decision, Decision::Ignored);

    /* "Whatever the strategy" includes locked_during_transit when the policy lets
     * the ERP supply the field. */
    const FieldRule transit = custom_rule(ErpAccess::ReadWrite, StocktechAccess::Master,
                                          Strategy::LockedDuringTransit, false, false);
    EXPECT_EQ(decide_field(transit, inbound_row(Mode::ReadOnly, 2000, false), input).decision,
              Decision::Applied);
    EXPECT_EQ(decide_field(transit, inbound_row(Mode::Hybrid, 2000, false), input).decision,
              Decision::Rejected);
}

TEST(PolicyInbound, DeferralComesBeforeReadOnly)
{
    const FieldRule rule = custom_rule(ErpAccess::Master, StocktechAccess::Read,
                                       Strategy::ErpWins, true, false);
    const FieldOutcome outcome =
        decide_field(rule, inbound_row(Mode::ReadOnly, 2000, true),
                     make_input("local", true, "base", 1000, "erp"));

    EXPECT_EQ(outcome.decision, Decision::Deferred);
    EXPECT_EQ(outcome.new_value, Value("local"));
    EXPECT_FALSE(outcome.set_baseline);
    EXPECT_TRUE(contains(outcome.reason, "transit")) << outcome.reason;
}

TEST(PolicyInbound, OnlyTransitBeforeDefers)
{
    RowContext row = inbound_row(Mode::Hybrid, 2000, false);
    row.in_transit_after = true;
    const FieldOutcome outcome = decide_field(rule_for("warehouse_location"), row,
                                              make_input("A-01", true, "A-01", 1000, "C-12"));

    EXPECT_EQ(outcome.decision, Decision::Applied);
    EXPECT_EQ(outcome.new_value, Value("C-12"));
}

TEST(PolicyInbound, NullIncomingApplied)
{
    const FieldOutcome outcome =
        decide_field(rule_for("customer_ref"), inbound_row(Mode::Hybrid, 2000, false),
                     make_input("C-100", true, "C-100", std::nullopt, std::nullopt));

    EXPECT_EQ(outcome.decision, Decision::Applied);
    EXPECT_EQ(outcome.new_value, Value());
    EXPECT_TRUE(outcome.set_baseline);
}

TEST(PolicyInbound, ReasonNamesSource)
{
    const FieldInput input = make_input("local", true, "base", 1000, "erp");

    const FieldOutcome csv =
        decide_field(rule_for("model_code"), inbound_row(Mode::Manual, 2000, false, Source::Csv),
                     input);
    EXPECT_EQ(csv.decision, Decision::Applied);
    EXPECT_EQ(csv.reason.rfind("CSV value", 0), 0u) << csv.reason;

    const FieldOutcome erp =
        decide_field(rule_for("model_code"), inbound_row(Mode::Hybrid, 2000, false), input);
    EXPECT_EQ(erp.reason.rfind("ERP value", 0), 0u) << erp.reason;

    const FieldOutcome csv_conflict =
        decide_field(rule_for("warehouse_location"),
                     inbound_row(Mode::Manual, 2000, false, Source::Csv), input);
    EXPECT_EQ(csv_conflict.decision, Decision::ConflictResolved);
    EXPECT_TRUE(contains(csv_conflict.reason, "CSV change is later")) << csv_conflict.reason;
}

TEST(PolicyRobustness, OutOfRangeEnumsDoNotThrow)
{
    const Strategy bad_strategy = static_cast<Strategy>(42);
    const FieldRule bad_rule{"custom_field", static_cast<ErpAccess>(42),
                             static_cast<StocktechAccess>(42), bad_strategy, true, true};
    const FieldInput input = make_input("local", true, "base", std::nullopt, "erp");

    for (int mode = 0; mode < 6; ++mode)
    {
        for (int source = 0; source < 5; ++source)
        {
            SCOPED_TRACE("mode=" + std::to_string(mode) + " source=" + std::to_string(source));
            RowContext row = inbound_row(static_cast<Mode>(mode), 2000, mode % 2 == 0,
                                         static_cast<Source>(source));
            FieldOutcome outcome;
            EXPECT_NO_THROW(outcome = decide_field(bad_rule, row, input));
            EXPECT_FALSE(outcome.reason.empty());
        }
    }

    const FieldOutcome inbound =
        decide_field(custom_rule(ErpAccess::Master, StocktechAccess::Read, bad_strategy, false,
                                 false),
                     inbound_row(Mode::Hybrid, 2000, false), input);
    EXPECT_EQ(inbound.decision, Decision::Rejected);
    EXPECT_EQ(inbound.new_value, Value("local"));
    EXPECT_TRUE(contains(inbound.reason, "unrecognized strategy")) << inbound.reason;

    EXPECT_STREQ(to_string(static_cast<Mode>(42)), "unknown");
    EXPECT_STREQ(to_string(bad_strategy), "unknown");
    EXPECT_STREQ(to_string(static_cast<ErpAccess>(42)), "unknown");
    EXPECT_STREQ(to_string(static_cast<StocktechAccess>(42)), "unknown");
    EXPECT_STREQ(to_string(static_cast<Source>(42)), "unknown");
    EXPECT_STREQ(to_string(static_cast<Decision>(42)), "unknown");
}

TEST(PolicySpelling, ModeRoundTrip)
{
    const std::pair<Mode, const char *> spellings[] = {
        {Mode::Manual, "manual"},
        {Mode::ReadOnly, "read_only"},
        {Mode::Hybrid, "hybrid"},
        {Mode::Bidirectional, "bidirectional"},
    };
    for (const auto &[value, spelling] : spellings)
    {
        SCOPED_TRACE(spelling);
        EXPECT_STREQ(to_string(value), spelling);
        EXPECT_EQ(parse_mode(spelling), value);
    }
}

TEST(PolicySpelling, StrategyRoundTrip)
{
    const std::pair<Strategy, const char *> spellings[] = {
        {Strategy::ErpWins, "erp_wins"},
        {Strategy::StocktechWins, "stocktech_wins"},
        {Strategy::Merge, "merge"},
        {Strategy::LockedDuringTransit, "locked_during_transit"},
    };
    for (const auto &[value, spelling] : spellings)
    {
        SCOPED_TRACE(spelling);
        EXPECT_STREQ(to_string(value), spelling);
        EXPECT_EQ(parse_strategy(spelling), value);
    }
}

TEST(PolicySpelling, ErpAccessRoundTrip)
{
    const std::pair<ErpAccess, const char *> spellings[] = {
        {ErpAccess::Master, "master"}, {ErpAccess::ReadWrite, "read_write"},
        {ErpAccess::Read, "read"},     {ErpAccess::Locked, "locked"},
        {ErpAccess::None, "none"},
    };
    for (const auto &[value, spelling] : spellings)
    {
        SCOPED_TRACE(spelling);
        EXPECT_STREQ(to_string(value), spelling);
        EXPECT_EQ(parse_erp_access(spelling), value);
    }
}

TEST(PolicySpelling, StocktechAccessRoundTrip)
{
    const std::pair<StocktechAccess, const char *> spellings[] = {
        {StocktechAccess::Master, "master"},
        {StocktechAccess::ReadWrite, "read_write"},
        {StocktechAccess::Write, "write"},
        {StocktechAccess::Read, "read"},
    };
    for (const auto &[value, spelling] : spellings)
    {
        SCOPED_TRACE(spelling);
        EXPECT_STREQ(to_string(value), spelling);
        EXPECT_EQ(parse_stocktech_access(spelling), value);
    }
}

TEST(PolicySpelling, SourceRoundTrip)
{
    const std::pair<Source, const char *> spellings[] = {
        {Source::Erp, "erp"},
        {Source::Csv, "csv"},
        {Source::Stocktech, "stocktech"},
    };
    for (const auto &[value, spelling] : spellings)
    {
        SCOPED_TRACE(spelling);
        EXPECT_STREQ(to_string(value), spelling);
        EXPECT_EQ(parse_source(spelling), value);
    }
}

TEST(PolicySpelling, DecisionSpellings)
{
    EXPECT_STREQ(to_string(Decision::Applied), "applied");
    EXPECT_STREQ(to_string(Decision::Rejected), "rejected");
    EXPECT_STREQ(to_string(Decision::Ignored), "ignored");
    EXPECT_STREQ(to_string(Decision::Deferred), "deferred");
    EXPECT_STREQ(to_string(Decision::ConflictResolved), "conflict_resolved");
    EXPECT_STREQ(to_string(Decision::Unchanged), "unchanged");
}

TEST(PolicySpelling, UnknownSpellingsRejected)
{
    /* Matching is exact, without case folding, trimming or other separators. */
    for (const char *spelling : {"", "Hybrid", "HYBRID", " hybrid", "hybrid ", "read-only",
                                 "readonly", "unknown", "m3"})
    {
        SCOPED_TRACE(spelling);
        EXPECT_EQ(parse_mode(spelling), std::nullopt);
    }

    for (const char *spelling : {"", "ERP_WINS", "erp-wins", "locked", "unknown"})
    {
        SCOPED_TRACE(spelling);
        EXPECT_EQ(parse_strategy(spelling), std::nullopt);
    }

    /* "write" is a StockTech access level only.  "locked" and "none" are ERP levels only. */
    EXPECT_EQ(parse_erp_access("write"), std::nullopt);
    EXPECT_EQ(parse_erp_access("Master"), std::nullopt);
    EXPECT_EQ(parse_erp_access("unknown"), std::nullopt);
    EXPECT_EQ(parse_stocktech_access("locked"), std::nullopt);
    EXPECT_EQ(parse_stocktech_access("none"), std::nullopt);
    EXPECT_EQ(parse_stocktech_access(""), std::nullopt);

    EXPECT_EQ(parse_source("sap"), std::nullopt);
    EXPECT_EQ(parse_source("ERP"), std::nullopt);
    EXPECT_EQ(parse_source("local"), std::nullopt);

    /* A string_view that is not NUL-terminated is compared by its length. */
    const std::string_view prefix = std::string_view("hybridx").substr(0, 6);
    EXPECT_EQ(parse_mode(prefix), Mode::Hybrid);
    EXPECT_EQ(parse_mode(std::string_view("hybrid").substr(0, 5)), std::nullopt);
}

TEST(PolicyValidate, DefaultPolicyValid)
{
    EXPECT_EQ(default_policy_rules().size(), 18u);
    EXPECT_EQ(validate_policy(default_policy_rules(), default_governed_fields()), "");
}

TEST(PolicyValidate, MissingRule)
{
    std::vector<FieldRule> rules = default_policy_rules();
    rules.pop_back(); /* odometer_km */

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"odometer_km\" has no rule");
}

TEST(PolicyValidate, EmptyPolicy)
{
    EXPECT_EQ(validate_policy({}, default_governed_fields()), "field \"model_code\" has no rule");
}

TEST(PolicyValidate, UnknownField)
{
    std::vector<FieldRule> rules = default_policy_rules();
    rules.push_back(custom_rule(ErpAccess::Master, StocktechAccess::Read, Strategy::ErpWins,
                                false, false));
    rules.back().field = "foo";

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"foo\" is not a governed field");
}

TEST(PolicyValidate, EmptyFieldName)
{
    std::vector<FieldRule> rules = default_policy_rules();
    rules.front().field = "";

    EXPECT_EQ(validate_policy(rules, default_governed_fields()), "a rule has an empty field name");
}

TEST(PolicyValidate, DuplicateRule)
{
    std::vector<FieldRule> rules = default_policy_rules();
    rules.push_back(rule_for("pdi_status"));

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"pdi_status\" has two rules");
}

TEST(PolicyValidate, TransitRuleWrongStrategy)
{
    std::vector<FieldRule> rules = default_policy_rules();
    for (FieldRule &rule : rules)
    {
        if (rule.field == kTransitField)
            rule.strategy = Strategy::StocktechWins;
    }

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"vitw_in_transit\" must use strategy locked_during_transit, not "
              "stocktech_wins");
}

TEST(PolicyValidate, SecondTransitStrategy)
{
    std::vector<FieldRule> rules = default_policy_rules();
    for (FieldRule &rule : rules)
    {
        if (rule.field == "pdi_status")
            rule.strategy = Strategy::LockedDuringTransit;
    }

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"pdi_status\" uses strategy locked_during_transit, which only field "
              "\"vitw_in_transit\" may use");
}

TEST(PolicyValidate, TransitRuleFrozen)
{
    std::vector<FieldRule> rules = default_policy_rules();
    for (FieldRule &rule : rules)
    {
        if (rule.field == kTransitField)
            rule.locked_in_transit = true;
    }

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"vitw_in_transit\" must not have locked_in_transit set, because the "
              "transit flag cannot be frozen by its own value");
}

TEST(PolicyValidate, TransitFlagNotGoverned)
{
    std::vector<FieldRule> rules;
    std::vector<std::string> governed;
    for (const FieldRule &rule : default_policy_rules())
    {
        if (rule.field == kTransitField)
            continue;
        rules.push_back(rule);
        governed.push_back(rule.field);
    }

    EXPECT_EQ(validate_policy(rules, governed),
              "field \"vitw_in_transit\" has no rule with strategy locked_during_transit");
}

TEST(PolicyValidate, UnrecognizedEnumValues)
{
    std::vector<FieldRule> rules = default_policy_rules();
    rules[0].strategy = static_cast<Strategy>(42);
    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"model_code\" has an unrecognized strategy");

    rules = default_policy_rules();
    rules[1].erp_access = static_cast<ErpAccess>(42);
    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"model_year\" has an unrecognized erp_access");

    rules = default_policy_rules();
    rules[2].stocktech_access = static_cast<StocktechAccess>(42);
    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"version_code\" has an unrecognized stocktech_access");
}

TEST(PolicyValidate, FirstProblemReported)
{
    /* Rules are checked before missing fields, in the order of the rules. */
    std::vector<FieldRule> rules = default_policy_rules();
    rules.pop_back();
    rules[3].field = "colour_code";
    rules.push_back(rule_for("model_code"));

    EXPECT_EQ(validate_policy(rules, default_governed_fields()),
              "field \"colour_code\" is not a governed field");
}

TEST(PolicyErpSupplies, DependsOnErpAccessOnly)
{
    EXPECT_TRUE(erp_supplies(custom_rule(ErpAccess::Master, StocktechAccess::Read,
                                         Strategy::ErpWins, false, false)));
    EXPECT_TRUE(erp_supplies(custom_rule(ErpAccess::ReadWrite, StocktechAccess::Read,
                                         Strategy::ErpWins, false, false)));
    EXPECT_FALSE(erp_supplies(custom_rule(ErpAccess::Read, StocktechAccess::Read,
                                          Strategy::ErpWins, false, false)));
    EXPECT_FALSE(erp_supplies(custom_rule(ErpAccess::Locked, StocktechAccess::Read,
                                          Strategy::ErpWins, false, false)));
    EXPECT_FALSE(erp_supplies(custom_rule(ErpAccess::None, StocktechAccess::Read,
                                          Strategy::ErpWins, false, false)));
}


TEST(PolicyValidate, TransitFlagSuppliedByErp)
{
    for (ErpAccess access :
         {ErpAccess::Master, ErpAccess::ReadWrite})
    {
        std::vector<FieldRule> rules = default_policy_rules();
        for (FieldRule &rule : rules)
        {
            if (rule.field == "vitw_in_transit")
                rule.erp_access = access;
        }
        SCOPED_TRACE(to_string(access));
        EXPECT_EQ(validate_policy(rules, default_governed_fields()),
                  std::string("field \"vitw_in_transit\" cannot have erp_access ") +
                      to_string(access) +
                      ", because only StockTech may change the transit flag");
    }
}

}  // namespace
}  // namespace stocktech
