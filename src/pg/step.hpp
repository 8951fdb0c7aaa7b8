/*
 * step.hpp
 *    A database step of a sync or drain run.  In RunMode::Worker each step
 *    is its own transaction with SPI connected, committed by commit(); a
 *    step left without commit() is aborted by the caller's error handling.
 *    In RunMode::Atomic a step does nothing: the caller's transaction and
 *    SPI connection are used.
 *
 * Include postgres.h, access/xact.h, executor/spi.h and utils/snapmgr.h
 * (inside extern "C") and pg/boundary.hpp first.
 */
#ifndef STOCKTECH_PG_STEP_HPP
#define STOCKTECH_PG_STEP_HPP

#include "pg/sync.hpp"

namespace stocktech::pg {

class Step
{
  public:
    explicit Step(RunMode mode) : mode_(mode)
    {
        if (mode_ != RunMode::Worker)
            return;
        pg_call([] {
            SetCurrentStatementStartTimestamp();
            StartTransactionCommand();
            PushActiveSnapshot(GetTransactionSnapshot());
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "SPI_connect failed");
        });
        open_ = true;
    }

    /* Commit the step; without it the destructor leaves the transaction for
     * the caller's abort. */
    void commit()
    {
        if (!open_)
            return;
        pg_call([] {
            SPI_finish();
            PopActiveSnapshot();
            CommitTransactionCommand();
        });
        open_ = false;
    }

    Step(const Step &) = delete;
    Step &operator=(const Step &) = delete;

  private:
    RunMode mode_;
    bool open_ = false;
};

}  // namespace stocktech::pg

#endif
