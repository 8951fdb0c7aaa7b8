/*
 * outbound_sql.cpp
 *    SQL entry point of mode M4: drain_outbound().
 */
extern "C" {
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
}

#include <string>

#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/outbound.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_drain_outbound)

/* drain_outbound(max integer) RETURNS jsonb */
extern "C" Datum
stocktech_drain_outbound(PG_FUNCTION_ARGS)
{
    int32 max = PG_GETARG_INT32(0);
    Datum result = (Datum) 0;
    bool interrupted = false;

    if (max < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("max must be at least 1, not %d", max)));

    stocktech::pg::run_at_boundary([&] {
        try
        {
            stocktech::pg::pg_call([] { SPI_connect(); });
            std::string counts =
                stocktech::pg::drain_outbound(max, stocktech::pg::RunMode::Atomic);
            stocktech::pg::pg_call([] { SPI_finish(); });
            result = stocktech::pg::jsonb_datum(counts);
        }
        catch (const stocktech::pg::SyncInterrupted &)
        {
            interrupted = true;
        }
    });
    if (interrupted)
    {
        CHECK_FOR_INTERRUPTS();
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("outbound drain interrupted")));
    }
    PG_RETURN_DATUM(result);
}
