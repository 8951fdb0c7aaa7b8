/*
 * policy.hpp
 *    The per-field conflict policy engine of stocktech_sync.
 *
 * This is the only place where the rules of the conflict matrix live: the
 * SQL functions that apply ERP and CSV records and the triggers that guard
 * local writes both call decide_field() for every governed field of an event
 * and store what it returns.  The engine is pure C++: it does not include
 * PostgreSQL headers, allocates with the standard library only and never
 * touches the database.
 *
 * Values are passed in their canonical text form (the output of the column
 * type's output function); std::nullopt stands for SQL NULL.  Two values are
 * equal when their canonical texts are equal, so the caller canonicalises
 * numerics and dates before calling.
 *
 * Timestamps are microseconds on any fixed epoch; the engine only compares
 * them.
 */
#ifndef STOCKTECH_CORE_POLICY_HPP
#define STOCKTECH_CORE_POLICY_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stocktech {

enum class Mode { Manual, ReadOnly, Hybrid, Bidirectional };
enum class Strategy { ErpWins, StocktechWins, Merge, LockedDuringTransit };
enum class ErpAccess { Master, ReadWrite, Read, Locked, None };
enum class StocktechAccess { Master, ReadWrite, Write, Read };
enum class Source { Erp, Csv, Stocktech };
enum class Decision { Applied, Rejected, Ignored, Deferred, ConflictResolved, Unchanged };

/* SQL spellings: "manual", "read_only", "hybrid", "bidirectional"; "erp_wins",
 * "stocktech_wins", "merge", "locked_during_transit"; "master", "read_write",
 * "read", "locked", "none", "write"; "erp", "csv", "stocktech"; "applied",
 * "rejected", "ignored", "deferred", "conflict_resolved", "unchanged".
 * The parse functions return std::nullopt for an unknown spelling. */
const char *to_string(Mode mode);
const char *to_string(Strategy strategy);
const char *to_string(ErpAccess access);
const char *to_string(StocktechAccess access);
const char *to_string(Source source);
const char *to_string(Decision decision);
std::optional<Mode> parse_mode(std::string_view text);
std::optional<Strategy> parse_strategy(std::string_view text);
std::optional<ErpAccess> parse_erp_access(std::string_view text);
std::optional<StocktechAccess> parse_stocktech_access(std::string_view text);
std::optional<Source> parse_source(std::string_view text);

/* One row of a policy version. */
struct FieldRule
{
    std::string field;
    ErpAccess erp_access = ErpAccess::Master;
    StocktechAccess stocktech_access = StocktechAccess::Read;
    Strategy strategy = Strategy::ErpWins;
    bool locked_in_transit = false;
    bool outbound = false;
};

/* Name of the transit flag column; its rule has strategy LockedDuringTransit. */
inline constexpr std::string_view kTransitField = "vitw_in_transit";

/*
 * Check a policy version before it is published: every governed field has
 * exactly one rule, no rule names an unknown field, exactly one rule uses
 * LockedDuringTransit and it is the rule of kTransitField, and that rule does
 * not itself have locked_in_transit set.  Returns an empty string when the
 * policy is valid, otherwise one sentence naming the first problem found.
 */
std::string validate_policy(const std::vector<FieldRule> &rules,
                            const std::vector<std::string> &governed_fields);

/* Whether the ERP supplies the field: erp_access is Master or ReadWrite. */
bool erp_supplies(const FieldRule &rule);

using Value = std::optional<std::string>;

/* What the caller knows about one vehicle when an event arrives. */
struct RowContext
{
    Mode mode = Mode::Hybrid;
    Source source = Source::Erp;
    int64_t source_ts = 0;          /* when the source made the change */
    bool row_exists = false;        /* false: the event creates the VIN */
    bool in_transit_before = false; /* stored vitw_in_transit */
    bool in_transit_after = false;  /* local writes: the new vitw_in_transit */
};

/* The state of one field and the value an event brings for it. */
struct FieldInput
{
    Value current;                            /* stored value now */
    bool has_baseline = false;                /* an ERP value was ever decided */
    Value baseline;                           /* last ERP value applied or acknowledged */
    std::optional<int64_t> local_changed_at;  /* last accepted local change */
    Value incoming;                           /* value the event brings */
};

/* The engine's decision for one field. */
struct FieldOutcome
{
    Decision decision = Decision::Unchanged;
    Value new_value;                /* value to store after the event */
    std::string reason;             /* one sentence, for the audit log */
    bool conflict = false;          /* both sides changed since the baseline */
    bool winner_is_erp = false;     /* for conflicts: which side prevailed */
    bool set_baseline = false;      /* inbound: baseline := incoming */
    bool set_local_changed = false; /* local: local_changed_at := source_ts */
    bool enqueue_outbound = false;  /* local: send the new value to the ERP */
};

/*
 * Decide one field of one event.  The rules, by source:
 *
 * Inbound (Source::Erp and Source::Csv; Mode::Manual behaves as Hybrid).
 * "Repeats the baseline" means has_baseline and incoming equal to baseline:
 * the ERP sends a value it already sent, as overlap re-reads do.
 *  - incoming equal to current: Unchanged, set_baseline.
 *  - erp_access Locked or None: Unchanged when it repeats the baseline,
 *    otherwise Rejected (the ERP may not change the field), set_baseline.
 *  - repeats the baseline, unless Mode::ReadOnly and erp_supplies(rule):
 *    Unchanged, value kept, so a local change made after the ERP value was
 *    decided stays until the ERP changes again.
 *  - row in transit (in_transit_before) and rule.locked_in_transit: Deferred,
 *    value kept; the caller stores the incoming value and decides it again,
 *    with in_transit_before false, when transit ends.
 *  - Mode::ReadOnly and erp_supplies(rule): Applied, set_baseline, whatever
 *    the strategy.
 *  - ErpWins: Applied, set_baseline.
 *  - StocktechWins: Ignored, value kept, set_baseline.
 *  - Merge against the baseline B, current L and incoming E:
 *      no baseline and L is NULL: Applied.
 *      no baseline and L set, or E != B and L != B: both changed, so the
 *        later of source_ts and local_changed_at wins, ties and a missing
 *        local_changed_at go to the ERP: ConflictResolved with conflict set.
 *      E == B (only StockTech changed): Ignored, value kept.
 *      L == B (only the ERP changed): Applied.
 *    Every merge decision except Deferred sets set_baseline, so a value the
 *    ERP sends again is not a new conflict.
 *  - LockedDuringTransit: Rejected.
 *
 * Local writes (Source::Stocktech), incoming is the value the write stores:
 *  - incoming equal to current: Unchanged.
 *  - stocktech_access Read: Rejected (in every mode).
 *  - Mode::ReadOnly and erp_supplies(rule): Rejected.
 *  - rule.locked_in_transit and the row is in transit before and after the
 *    write: Rejected (frozen during transit).
 *  - otherwise Applied, set_local_changed, and enqueue_outbound when the mode
 *    is Bidirectional and rule.outbound is set.
 */
FieldOutcome decide_field(const FieldRule &rule, const RowContext &row,
                          const FieldInput &input);

}  // namespace stocktech

#endif
