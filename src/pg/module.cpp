/*
 * module.cpp
 *    Module entry point of stocktech_sync: the module magic and _PG_init.
 *
 * _PG_init runs in every backend that loads the library, either at server
 * start through shared_preload_libraries or on the first call of one of its
 * functions.  It defines the settings under the stocktech_sync. prefix.
 */
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

extern "C" void
_PG_init(void)
{
    MarkGUCPrefixReserved("stocktech_sync");
}
