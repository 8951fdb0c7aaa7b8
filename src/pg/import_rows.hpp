/*
 * import_rows.hpp
 *    The part of the CSV import shared by import_csv() and apply_staged():
 *    the connector's CSV profile with the caller's options, applying one
 *    row through the mapping and the policy engine, and the summary.
 *
 * A row is a JSON object of source name (a CSV header, a staging column)
 * to text.  apply_import_row() maps it with the profile, applies it in its
 * own subtransaction, and writes it to inbound_dead_letter when the mapping
 * or the engine rejects it.  It throws only for errors that are not about
 * the row (a cancel, out of memory, a lost connection), which abort the
 * whole import.
 *
 * Include postgres.h, executor/spi.h and miscadmin.h (inside extern "C")
 * first.  Every function expects SPI to be connected.
 */
#ifndef STOCKTECH_PG_IMPORT_ROWS_HPP
#define STOCKTECH_PG_IMPORT_ROWS_HPP

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/profile.hpp"
#include "pg/apply_sql.hpp"

namespace stocktech::pg {

/* Where the rows of an import come from, which decides how the profile is
 * read. */
enum class ImportSource
{
    File,   /* import_csv(): sources are the CSV headers of the mapping */
    Staging /* apply_staged(): sources are the staging columns, named like vin_master */
};

/* The connector's CSV profile after the options were merged into it. */
struct ImportProfile
{
    std::string connector;
    int profile_version = 0;
    ConnectorProfile profile;
    bool strict = false; /* an unmapped header rejects the file */
    std::string vin_source; /* source name that the VIN is read from */

    /* Staging only: the source name that the stored profile reads each
     * column from.  Dead letters use these names, so that retry_inbound()
     * maps them with the stored profile. */
    std::map<std::string, std::string> stored_sources;
};

/*
 * Read the connector's current profile, merge options into it key by key
 * and validate the result.  options may hold delimiter, encoding,
 * decimal_separator, date_format, quote, header, strict and mapping (an
 * object of column entries replacing those of the profile; null removes
 * one).  Throws SqlError when the connector does not exist, is not a CSV
 * connector, or the merged profile is invalid.
 */
ImportProfile load_import_profile(const std::string &connector, const nlohmann::json &options,
                                  ImportSource source);

/* The counts of an import: BatchCounts plus what only CSV files have. */
struct ImportCounts
{
    BatchCounts batch; /* read counts every data row, skipped ones included */
    long skipped_empty_rows = 0;
    long skipped_empty_columns = 0;
    std::vector<std::string> ignored_headers;
};

/* One row to apply. */
struct ImportRow
{
    nlohmann::json values = nlohmann::json::object(); /* source name -> text */
    std::string source_ref;                            /* "file.csv line 12" */
    std::vector<std::string> layout_errors; /* values the header cannot place */
};

/* Whether text is empty or only whitespace, as the mapping treats it. */
bool is_blank(const std::string &text);

/*
 * Apply row with source csv at source_ts, dead-letter it when it fails, and
 * add the outcome to counts.  Runs in its own SPI connection, so the memory
 * of the row is freed when it returns.  Returns whether the row applied.
 */
bool apply_import_row(const ImportProfile &import, const ImportRow &row, int64_t source_ts,
                      ImportCounts &counts);

/* The summary returned by import_csv() and apply_staged(), as JSON text;
 * file is null for staged rows. */
std::string import_summary_json(const ImportProfile &import, const std::optional<std::string> &file,
                                const ImportCounts &counts);

/* Send a NOTICE every kImportNoticeRows rows, so a long import shows that it
 * advances.  origin names the input, such as file "/srv/export.csv". */
constexpr long kImportNoticeRows = 100000;
void notice_import_progress(const char *origin, const ImportCounts &counts);

/* Write one LOG line with the counts of a finished import of origin. */
void log_import_summary(const char *origin, const ImportProfile &import,
                        const ImportCounts &counts);

}  // namespace stocktech::pg

#endif
