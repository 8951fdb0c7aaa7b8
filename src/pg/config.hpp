/*
 * config.hpp
 *    The sync configuration of the current database, cached per backend:
 *    the mode, the VIN strictness, the active policy version and its rules,
 *    and the type I/O functions of the governed vin_master columns.
 *
 * The cache is filled on first use and dropped when a relcache invalidation
 * arrives for stocktech_sync.settings or stocktech_sync.policy_versions.  The
 * configuration functions send that invalidation when they commit (see
 * _config_changed()), so every backend sees a new mode or policy at its
 * next transaction, and the changing backend at its next command.
 *
 * Include postgres.h, fmgr.h and miscadmin.h (inside extern "C") first.
 */
#ifndef STOCKTECH_PG_CONFIG_HPP
#define STOCKTECH_PG_CONFIG_HPP

#include <string>
#include <vector>

#include "core/fields.hpp"
#include "core/policy.hpp"

namespace stocktech::pg {

/* Type I/O of one governed column of vin_master. */
struct ColumnIo
{
    const FieldSpec *spec = nullptr;
    AttrNumber attnum = InvalidAttrNumber;
    Oid type_oid = InvalidOid;
    int32 typmod = -1;
    FmgrInfo input;
    Oid input_param = InvalidOid;
    FmgrInfo output;
};

struct SyncConfig
{
    Mode mode = Mode::Manual;
    bool strict_vin_check = false;
    std::string policy_version;
    std::vector<FieldRule> rules;  /* indexed like governed_fields() */
    std::vector<ColumnIo> columns; /* indexed like governed_fields() */
    Oid vin_master_relid = InvalidOid;
    Oid extension_owner = InvalidOid; /* internal writes run as this role */
};

/*
 * Return the current configuration, loading it through SPI when the cache
 * is empty.  Must be called inside a transaction; throws PgError or
 * SqlError (no active policy, a rule missing for a governed field).
 */
const SyncConfig &current_config();

/* Canonical texts of booleans: the output of the boolean type. */
inline constexpr const char *kTrueText = "t";
inline constexpr const char *kFalseText = "f";

/*
 * Makes date and timestamp output ISO 8601 (DateStyle ISO, YMD) while it
 * lives, so canonical texts, baselines and audit values do not depend on
 * the session's DateStyle.  Every entry point that reads or writes
 * canonical texts holds one inside run_at_boundary(); C++ unwinding
 * restores the session's style before an error is raised.
 */
class CanonicalDateStyle
{
  public:
    CanonicalDateStyle() : style_(DateStyle), order_(DateOrder)
    {
        DateStyle = USE_ISO_DATES;
        DateOrder = DATEORDER_YMD;
    }
    ~CanonicalDateStyle()
    {
        DateStyle = style_;
        DateOrder = order_;
    }
    CanonicalDateStyle(const CanonicalDateStyle &) = delete;
    CanonicalDateStyle &operator=(const CanonicalDateStyle &) = delete;

  private:
    int style_;
    int order_;
};

/*
 * The extension owner as current user with search_path pg_catalog, pg_temp,
 * for as long as the object lives.  The fixed search_path keeps operators
 * and functions of the caller's schemas from running with the owner's
 * rights.  Constructing it may throw PgError.
 */
class OwnerSection
{
  public:
    explicit OwnerSection(Oid owner);
    ~OwnerSection();
    OwnerSection(const OwnerSection &) = delete;
    OwnerSection &operator=(const OwnerSection &) = delete;

  private:
    Oid saved_user_ = InvalidOid;
    int saved_context_ = 0;
    int guc_level_ = 0;
};

/*
 * Run fn as the extension owner (see OwnerSection), so the engine's own
 * writes (audit rows, dead letters, deferred changes) do not need the
 * caller to hold privileges on those tables.  The caller's user and
 * search_path come back also when fn throws.
 */
template <typename Fn>
void
as_extension_owner(const SyncConfig &config, Fn &&fn)
{
    OwnerSection section(config.extension_owner);
    fn();
}

/* The text form of a timestamptz (DateStyle of the caller) and back;
 * parsing throws PgError for invalid text. */
std::string format_timestamptz(int64_t ts);
int64_t parse_timestamptz(const std::string &text);

/* Index of a governed field in governed_fields(), or -1. */
int field_index(std::string_view name);

/*
 * Canonical text of value for column: the column type's output of its input.
 * Throws PgError when the text is not valid for the type, for example a
 * value outside an enumeration.
 */
std::string canonical_text(const ColumnIo &column, const std::string &value);

}  // namespace stocktech::pg

#endif
