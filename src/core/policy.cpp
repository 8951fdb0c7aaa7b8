/*
 * policy.cpp
 *    The per-field conflict policy engine of stocktech_sync.
 *
 * decide_field() applies the rules documented above its declaration in
 * policy.hpp.  Each rule is checked in the documented order and the first
 * one that matches decides, so the order of the checks below is part of the
 * contract.
 *
 * Invariants:
 *  - No PostgreSQL header is included, so the file builds and is unit-tested
 *    without a server.
 *  - No function here throws for any input, including enumeration values
 *    outside their declared range; only std::bad_alloc from building a
 *    std::string can escape.
 *  - Every outcome carries a reason: one lowercase sentence without a final
 *    period (the PostgreSQL message style) that names the strategy and, for
 *    a conflict, which side won and why.
 */
#include "core/policy.hpp"

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace stocktech {

namespace {

/* Spelling returned by to_string() for a value outside its enumeration. */
constexpr const char *kUnknownSpelling = "unknown";

/* One SQL spelling of an enumeration value. */
template <typename Enum>
struct Spelling
{
    Enum value;
    const char *text;
};

constexpr Spelling<Mode> kModeSpellings[] = {
    {Mode::Manual, "manual"},
    {Mode::ReadOnly, "read_only"},
    {Mode::Hybrid, "hybrid"},
    {Mode::Bidirectional, "bidirectional"},
};

constexpr Spelling<Strategy> kStrategySpellings[] = {
    {Strategy::ErpWins, "erp_wins"},
    {Strategy::StocktechWins, "stocktech_wins"},
    {Strategy::Merge, "merge"},
    {Strategy::LockedDuringTransit, "locked_during_transit"},
};

constexpr Spelling<ErpAccess> kErpAccessSpellings[] = {
    {ErpAccess::Master, "master"},
    {ErpAccess::ReadWrite, "read_write"},
    {ErpAccess::Read, "read"},
    {ErpAccess::Locked, "locked"},
    {ErpAccess::None, "none"},
};

constexpr Spelling<StocktechAccess> kStocktechAccessSpellings[] = {
    {StocktechAccess::Master, "master"},
    {StocktechAccess::ReadWrite, "read_write"},
    {StocktechAccess::Write, "write"},
    {StocktechAccess::Read, "read"},
};

constexpr Spelling<Source> kSourceSpellings[] = {
    {Source::Erp, "erp"},
    {Source::Csv, "csv"},
    {Source::Stocktech, "stocktech"},
};

constexpr Spelling<Decision> kDecisionSpellings[] = {
    {Decision::Applied, "applied"},
    {Decision::Rejected, "rejected"},
    {Decision::Ignored, "ignored"},
    {Decision::Deferred, "deferred"},
    {Decision::ConflictResolved, "conflict_resolved"},
    {Decision::Unchanged, "unchanged"},
};

/* Returns the SQL spelling of value, or nullptr when it is out of range. */
template <typename Enum, std::size_t N>
const char *find_spelling(const Spelling<Enum> (&table)[N], Enum value)
{
    for (const Spelling<Enum> &entry : table)
    {
        if (entry.value == value)
            return entry.text;
    }
    return nullptr;
}

/* Finds the value spelt text in table.  The match is exact and case-sensitive. */
template <typename Enum, std::size_t N>
std::optional<Enum> find_value(const Spelling<Enum> (&table)[N], std::string_view text)
{
    for (const Spelling<Enum> &entry : table)
    {
        if (text == entry.text)
            return entry.value;
    }
    return std::nullopt;
}

template <typename Enum, std::size_t N>
const char *spelling_or_unknown(const Spelling<Enum> (&table)[N], Enum value)
{
    const char *text = find_spelling(table, value);
    return text != nullptr ? text : kUnknownSpelling;
}

/* Returns "CSV" for a CSV source and "ERP" otherwise, for use in reasons. */
std::string source_noun(Source source)
{
    return source == Source::Csv ? "CSV" : "ERP";
}

/* Quotes a field name the way PostgreSQL messages quote object names. */
std::string quoted(const std::string &field)
{
    return "\"" + field + "\"";
}

FieldOutcome make_outcome(Decision decision, const Value &new_value, std::string reason)
{
    FieldOutcome outcome;
    outcome.decision = decision;
    outcome.new_value = new_value;
    outcome.reason = std::move(reason);
    return outcome;
}

/*
 * Resolves a merge conflict, which exists when both sides changed since the
 * baseline or when the field has no baseline but already has a local value.
 * The later of the source timestamp and local_changed_at wins.  A tie, or a
 * local change without a timestamp, goes to the inbound value.
 */
FieldOutcome resolve_merge_conflict(const RowContext &row, const FieldInput &input)
{
    const std::string noun = source_noun(row.source);
    const std::string basis = input.has_baseline
                                  ? "both sides changed since the baseline"
                                  : "the field has no baseline but has a local value";
    std::string cause;
    bool inbound_wins = true;

    if (!input.local_changed_at.has_value())
        cause = "the local change has no timestamp";
    else if (row.source_ts > *input.local_changed_at)
        cause = "the " + noun + " change is later";
    else if (row.source_ts == *input.local_changed_at)
        cause = "both changes have the same timestamp and a tie goes to the " + noun;
    else
    {
        cause = "the local change is later";
        inbound_wins = false;
    }

    const std::string result = inbound_wins ? "applies the " + noun + " value"
                                            : "keeps the local value";
    FieldOutcome outcome = make_outcome(Decision::ConflictResolved,
                                        inbound_wins ? input.incoming : input.current,
                                        basis + " and " + cause + ", so strategy merge "
                                            + result);
    outcome.conflict = true;
    outcome.winner_is_erp = inbound_wins;
    outcome.set_baseline = true;
    return outcome;
}

/*
 * Merges an inbound value E three-way against the baseline B and the current
 * value L.  The caller has already handled E == L.  Every outcome sets
 * set_baseline, so a value that the ERP sends again is not a new conflict.
 */
FieldOutcome decide_merge(const RowContext &row, const FieldInput &input)
{
    const std::string value_noun = source_noun(row.source) + " value";
    const bool local_changed = !input.has_baseline || input.current != input.baseline;
    const bool inbound_changed = !input.has_baseline || input.incoming != input.baseline;
    FieldOutcome outcome;

    if (!input.has_baseline && !input.current.has_value())
    {
        outcome = make_outcome(Decision::Applied, input.incoming,
                               value_noun + " applied under strategy merge because the "
                                            "field has no baseline and no local value");
    }
    else if (local_changed && inbound_changed)
    {
        return resolve_merge_conflict(row, input);
    }
    else if (!inbound_changed)
    {
        outcome = make_outcome(Decision::Ignored, input.current,
                               value_noun + " ignored and local value kept under strategy "
                                            "merge because only StockTech changed since "
                                            "the baseline");
    }
    else
    {
        outcome = make_outcome(Decision::Applied, input.incoming,
                               value_noun + " applied under strategy merge because only "
                                            "the ERP side changed since the baseline");
    }

    outcome.set_baseline = true;
    return outcome;
}

/* Decides one field of an ERP record or a CSV row. */
/* The outcome for an inbound value equal to the baseline and different from
 * the stored value: the local change since the baseline stays. */
FieldOutcome repeated_outcome(const std::string &value_noun, const FieldInput &input,
                              const std::string &strategy)
{
    return make_outcome(Decision::Unchanged, input.current,
                        value_noun + " equals the ERP value already decided, so the local "
                                     "value stays under strategy " + strategy);
}

FieldOutcome decide_inbound(const FieldRule &rule, const RowContext &row,
                            const FieldInput &input)
{
    const std::string value_noun = source_noun(row.source) + " value";
    const std::string strategy = to_string(rule.strategy);
    FieldOutcome outcome;

    if (input.incoming == input.current)
    {
        outcome = make_outcome(Decision::Unchanged, input.current,
                               value_noun + " equals the stored value, so the field is "
                                            "unchanged under strategy " + strategy);
        outcome.set_baseline = true;
        return outcome;
    }

    /* A value the ERP already sent and that was decided then brings nothing
     * new: overlap re-reads must neither undo later local changes nor repeat
     * rejections in the audit log. */
    const bool repeats_baseline = input.has_baseline && input.incoming == input.baseline;

    if (rule.erp_access == ErpAccess::Locked || rule.erp_access == ErpAccess::None)
    {
        if (repeats_baseline)
            return repeated_outcome(value_noun, input, strategy);
        outcome = make_outcome(Decision::Rejected, input.current,
                               value_noun + " rejected under strategy " + strategy
                                   + " because erp_access " + to_string(rule.erp_access)
                                   + " does not let the ERP change the field");
        outcome.set_baseline = true;
        return outcome;
    }

    /* read_only mode keeps converging to the ERP, so it skips this rule. */
    if (repeats_baseline && !(row.mode == Mode::ReadOnly && erp_supplies(rule)))
        return repeated_outcome(value_noun, input, strategy);

    if (row.in_transit_before && rule.locked_in_transit)
    {
        return make_outcome(Decision::Deferred, input.current,
                            value_noun + " deferred under strategy " + strategy
                                + " because the field is frozen while the vehicle is in "
                                  "transit, and is decided again when transit ends");
    }

    if (row.mode == Mode::ReadOnly && erp_supplies(rule))
    {
        outcome = make_outcome(Decision::Applied, input.incoming,
                               value_noun + " applied because read_only mode makes the "
                                            "ERP master of every field it supplies, "
                                            "overriding strategy " + strategy);
        outcome.set_baseline = true;
        return outcome;
    }

    switch (rule.strategy)
    {
        case Strategy::ErpWins:
            outcome = make_outcome(Decision::Applied, input.incoming,
                                   value_noun + " applied under strategy erp_wins");
            outcome.set_baseline = true;
            return outcome;

        case Strategy::StocktechWins:
            outcome = make_outcome(Decision::Ignored, input.current,
                                   value_noun + " ignored and local value kept because "
                                                "strategy stocktech_wins ignores ERP values");
            outcome.set_baseline = true;
            return outcome;

        case Strategy::Merge:
            return decide_merge(row, input);

        case Strategy::LockedDuringTransit:
            outcome = make_outcome(Decision::Rejected, input.current,
                                   value_noun + " rejected because strategy "
                                                "locked_during_transit lets only StockTech "
                                                "change the transit flag");
            outcome.set_baseline = true;
            return outcome;
    }

    return make_outcome(Decision::Rejected, input.current,
                        value_noun + " rejected because the rule has an unrecognized "
                                     "strategy");
}

/* Decides one field of a local row change made through SQL. */
FieldOutcome decide_local(const FieldRule &rule, const RowContext &row,
                          const FieldInput &input)
{
    const std::string strategy = to_string(rule.strategy);

    if (input.incoming == input.current)
    {
        return make_outcome(Decision::Unchanged, input.current,
                            "local write stores the value already stored, so the field "
                            "is unchanged under strategy " + strategy);
    }

    if (rule.stocktech_access == StocktechAccess::Read)
    {
        return make_outcome(Decision::Rejected, input.current,
                            "local write rejected under strategy " + strategy
                                + " because stocktech_access read does not let "
                                  "StockTech change the field");
    }

    if (row.mode == Mode::ReadOnly && erp_supplies(rule))
    {
        return make_outcome(Decision::Rejected, input.current,
                            "local write rejected under strategy " + strategy
                                + " because read_only mode makes the ERP master of every "
                                  "field it supplies");
    }

    if (rule.locked_in_transit && row.in_transit_before && row.in_transit_after)
    {
        return make_outcome(Decision::Rejected, input.current,
                            "local write rejected under strategy " + strategy
                                + " because the field is frozen while the vehicle is in "
                                  "transit");
    }

    const bool send = row.mode == Mode::Bidirectional && rule.outbound;
    FieldOutcome outcome = make_outcome(
        Decision::Applied, input.incoming,
        "local write applied under strategy " + strategy
            + (send ? " and queued for sending to the ERP" : ""));
    outcome.set_local_changed = true;
    outcome.enqueue_outbound = send;
    return outcome;
}

/* Checks that a rule names a governed field and uses known enumeration values. */
std::string validate_rule(const FieldRule &rule, const std::set<std::string> &governed)
{
    if (rule.field.empty())
        return "a rule has an empty field name";

    if (governed.count(rule.field) == 0)
        return "field " + quoted(rule.field) + " is not a governed field";

    if (find_spelling(kErpAccessSpellings, rule.erp_access) == nullptr)
        return "field " + quoted(rule.field) + " has an unrecognized erp_access";

    if (find_spelling(kStocktechAccessSpellings, rule.stocktech_access) == nullptr)
        return "field " + quoted(rule.field) + " has an unrecognized stocktech_access";

    if (find_spelling(kStrategySpellings, rule.strategy) == nullptr)
        return "field " + quoted(rule.field) + " has an unrecognized strategy";

    return std::string();
}

/* Checks the rule of the transit flag and the use of locked_during_transit. */
std::string validate_transit_rule(const FieldRule &rule)
{
    const std::string transit_field(kTransitField);
    const bool is_transit_field = rule.field == transit_field;
    const bool uses_transit_strategy = rule.strategy == Strategy::LockedDuringTransit;

    if (uses_transit_strategy && !is_transit_field)
    {
        return "field " + quoted(rule.field) + " uses strategy locked_during_transit, "
               "which only field " + quoted(transit_field) + " may use";
    }

    if (is_transit_field && !uses_transit_strategy)
    {
        return "field " + quoted(rule.field) + " must use strategy locked_during_transit, "
               "not " + to_string(rule.strategy);
    }

    if (is_transit_field && rule.locked_in_transit)
    {
        return "field " + quoted(rule.field) + " must not have locked_in_transit set, "
               "because the transit flag cannot be frozen by its own value";
    }

    /* StockTech owns the transit flag: only a local write ends transit and
     * releases the deferred values. */
    if (is_transit_field && erp_supplies(rule))
    {
        return "field " + quoted(rule.field) + " cannot have erp_access " +
               to_string(rule.erp_access) + ", because only StockTech may change the transit "
               "flag";
    }

    return std::string();
}

}  // namespace

const char *to_string(Mode mode)
{
    return spelling_or_unknown(kModeSpellings, mode);
}

const char *to_string(Strategy strategy)
{
    return spelling_or_unknown(kStrategySpellings, strategy);
}

const char *to_string(ErpAccess access)
{
    return spelling_or_unknown(kErpAccessSpellings, access);
}

const char *to_string(StocktechAccess access)
{
    return spelling_or_unknown(kStocktechAccessSpellings, access);
}

const char *to_string(Source source)
{
    return spelling_or_unknown(kSourceSpellings, source);
}

const char *to_string(Decision decision)
{
    return spelling_or_unknown(kDecisionSpellings, decision);
}

std::optional<Mode> parse_mode(std::string_view text)
{
    return find_value(kModeSpellings, text);
}

std::optional<Strategy> parse_strategy(std::string_view text)
{
    return find_value(kStrategySpellings, text);
}

std::optional<ErpAccess> parse_erp_access(std::string_view text)
{
    return find_value(kErpAccessSpellings, text);
}

std::optional<StocktechAccess> parse_stocktech_access(std::string_view text)
{
    return find_value(kStocktechAccessSpellings, text);
}

std::optional<Source> parse_source(std::string_view text)
{
    return find_value(kSourceSpellings, text);
}

/*
 * Checks the rules in their order, then the governed fields in theirs, and
 * returns the first problem.  Field names are compared exactly.
 */
std::string validate_policy(const std::vector<FieldRule> &rules,
                            const std::vector<std::string> &governed_fields)
{
    const std::set<std::string> governed(governed_fields.begin(), governed_fields.end());
    std::set<std::string> ruled;
    bool has_transit_rule = false;

    for (const FieldRule &rule : rules)
    {
        std::string problem = validate_rule(rule, governed);
        if (!problem.empty())
            return problem;

        if (!ruled.insert(rule.field).second)
            return "field " + quoted(rule.field) + " has two rules";

        problem = validate_transit_rule(rule);
        if (!problem.empty())
            return problem;

        if (rule.strategy == Strategy::LockedDuringTransit)
            has_transit_rule = true;
    }

    for (const std::string &field : governed_fields)
    {
        if (ruled.count(field) == 0)
            return "field " + quoted(field) + " has no rule";
    }

    /* Reached only when the transit flag is not among the governed fields. */
    if (!has_transit_rule)
    {
        return "field " + quoted(std::string(kTransitField))
               + " has no rule with strategy locked_during_transit";
    }

    return std::string();
}

bool erp_supplies(const FieldRule &rule)
{
    return rule.erp_access == ErpAccess::Master || rule.erp_access == ErpAccess::ReadWrite;
}

/* Routes local writes to decide_local() and every other source, including an
 * out-of-range one, to decide_inbound(). */
FieldOutcome decide_field(const FieldRule &rule, const RowContext &row,
                          const FieldInput &input)
{
    if (row.source == Source::Stocktech)
        return decide_local(rule, row, input);
    return decide_inbound(rule, row, input);
}

}  // namespace stocktech
