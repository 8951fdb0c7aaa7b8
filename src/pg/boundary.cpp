/*
 * boundary.cpp
 *    Raising the PostgreSQL error that matches a caught C++ exception.
 */
extern "C" {
#include "postgres.h"
}

#include "pg/boundary.hpp"

namespace stocktech::pg::detail {

void
copy_text(char *target, size_t size, const char *source)
{
    strlcpy(target, source ? source : "", size);
}

/*
 * Raise the error described by caught.  Runs after every C++ object of the
 * failed call has been destroyed, so the longjmp skips no destructor.
 */
void
raise_caught(const CaughtError &caught)
{
    if (caught.pg_error != nullptr)
        ReThrowError(caught.pg_error);

    if (caught.sqlstate == ERRCODE_INTERNAL_ERROR)
        ereport(ERROR,
                (errcode(ERRCODE_INTERNAL_ERROR),
                 errmsg("stocktech_sync internal error: %s", caught.message)));

    ereport(ERROR,
            (errcode(caught.sqlstate), errmsg_internal("%s", caught.message),
             caught.detail[0] ? errdetail_internal("%s", caught.detail) : 0,
             caught.hint[0] ? errhint("%s", caught.hint) : 0));
    pg_unreachable();
}

}  // namespace stocktech::pg::detail
