/*
 * spi_util.hpp
 *    Running prepared SPI statements from C++ with text parameters and text
 *    results.
 *
 * Include postgres.h, executor/spi.h and utils/builtins.h (inside
 * extern "C") and pg/boundary.hpp first.
 */
#ifndef STOCKTECH_PG_SPI_UTIL_HPP
#define STOCKTECH_PG_SPI_UTIL_HPP

#include <optional>
#include <string>
#include <vector>

namespace stocktech::pg {

/* Row count and, when requested, the first row's columns as text. */
struct SpiResult
{
    uint64 processed = 0;
    std::vector<std::optional<std::string>> row;
};

/*
 * Execute plan with text parameters (std::nullopt is NULL).  Raises the
 * PostgreSQL error directly, so call it inside pg_call() only; the result
 * columns are not read.
 */
inline SpiResult
execute_plan_raw(SPIPlanPtr plan, const std::vector<std::optional<std::string>> &params,
                 bool read_only)
{
    size_t n = params.size();
    Datum *values = (Datum *) palloc(sizeof(Datum) * (n + 1));
    char *nulls = (char *) palloc(n + 1);
    for (size_t i = 0; i < n; i++)
    {
        values[i] = params[i] ? CStringGetTextDatum(params[i]->c_str()) : (Datum) 0;
        nulls[i] = params[i] ? ' ' : 'n';
    }
    int rc = SPI_execute_plan(plan, values, nulls, read_only, 0);
    if (rc < 0)
        elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
    pfree(values);
    pfree(nulls);
    SpiResult result;
    result.processed = SPI_processed;
    return result;
}

/*
 * Execute plan and return the first row's first columns columns as text.
 * PostgreSQL errors become PgError.
 */
inline SpiResult
execute_plan(SPIPlanPtr plan, const std::vector<std::optional<std::string>> &params,
             bool read_only, size_t columns)
{
    uint64 processed = 0;
    char **texts = nullptr;
    pg_call([&] {
        SpiResult raw = execute_plan_raw(plan, params, read_only);
        processed = raw.processed;
        if (processed > 0 && columns > 0 && SPI_tuptable != nullptr)
        {
            texts = (char **) palloc0(sizeof(char *) * columns);
            for (size_t i = 0; i < columns && (int) i < SPI_tuptable->tupdesc->natts; i++)
                texts[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
        }
        /* A batch runs many statements in one SPI connection: free each
         * result at once instead of at SPI_finish. */
        SPI_freetuptable(SPI_tuptable);
    });

    SpiResult result;
    result.processed = processed;
    result.row.assign(columns, std::nullopt);
    for (size_t i = 0; texts != nullptr && i < columns; i++)
    {
        if (texts[i] != nullptr)
            result.row[i] = std::string(texts[i]);
    }
    return result;
}

/*
 * Run sql (not prepared) with text parameters and return every row as text.
 * PostgreSQL errors become PgError.
 */
inline std::vector<std::vector<std::optional<std::string>>>
query_rows(const std::string &sql, const std::vector<std::optional<std::string>> &params,
           bool read_only)
{
    uint64 rows = 0;
    int columns = 0;
    char ***texts = nullptr;
    pg_call([&] {
        int n = static_cast<int>(params.size());
        Oid *types = (Oid *) palloc(sizeof(Oid) * (n + 1));
        Datum *values = (Datum *) palloc(sizeof(Datum) * (n + 1));
        char *nulls = (char *) palloc(n + 1);
        for (int i = 0; i < n; i++)
        {
            types[i] = TEXTOID;
            values[i] = params[i] ? CStringGetTextDatum(params[i]->c_str()) : (Datum) 0;
            nulls[i] = params[i] ? ' ' : 'n';
        }
        int rc = SPI_execute_with_args(sql.c_str(), n, types, values, nulls, read_only, 0);
        if (rc < 0)
            elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
        rows = SPI_processed;
        if (SPI_tuptable != nullptr && rows > 0)
        {
            columns = SPI_tuptable->tupdesc->natts;
            texts = (char ***) palloc(sizeof(char **) * rows);
            for (uint64 r = 0; r < rows; r++)
            {
                texts[r] = (char **) palloc(sizeof(char *) * columns);
                for (int c = 0; c < columns; c++)
                    texts[r][c] =
                        SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);
            }
        }
        SPI_freetuptable(SPI_tuptable);
    });
    std::vector<std::vector<std::optional<std::string>>> out;
    for (uint64 r = 0; r < rows; r++)
    {
        std::vector<std::optional<std::string>> row;
        for (int c = 0; c < columns; c++)
            row.push_back(texts[r][c] ? std::optional<std::string>(texts[r][c]) : std::nullopt);
        out.push_back(std::move(row));
    }
    return out;
}

/* Run sql with text parameters and return the row count and the first row. */
inline SpiResult
execute_plan_text(const std::string &sql, const std::vector<std::optional<std::string>> &params)
{
    auto rows = query_rows(sql, params, false);
    SpiResult result;
    result.processed = rows.size();
    if (!rows.empty())
        result.row = std::move(rows[0]);
    return result;
}

}  // namespace stocktech::pg

#endif
