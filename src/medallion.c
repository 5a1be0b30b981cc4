/*-------------------------------------------------------------------------
 *
 * medallion.c
 *	  Entry point of the medallion shared library: module magic and
 *	  _PG_init.
 *
 * Triggered mode (run_pipeline) works without preloading the library;
 * continuous mode needs medallion in shared_preload_libraries, where
 * _PG_init registers the launcher background worker.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/medallion.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "guc.h"
#include "launcher.h"
#include "medallion.h"

PG_MODULE_MAGIC;

bool		medallion_preloaded = false;

void		_PG_init(void);

/*
 * _PG_init defines the GUCs and, when preloaded, registers the launcher.
 * Nothing is started during a binary upgrade.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	medallion_preloaded = process_shared_preload_libraries_in_progress;
	GucDefineAll();

	if (medallion_preloaded)
		LauncherRegister();
}
