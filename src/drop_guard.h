/*-------------------------------------------------------------------------
 *
 * drop_guard.h
 *	  DROP EXTENSION medallion needs CASCADE while pipelines exist.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/drop_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_DROP_GUARD_H
#define MEDALLION_DROP_GUARD_H

#include "postgres.h"

#include "fmgr.h"

/* The ddl_command_start event trigger on DROP EXTENSION. */
extern Datum medallion_guard_drop_extension(PG_FUNCTION_ARGS);

#endif							/* MEDALLION_DROP_GUARD_H */
