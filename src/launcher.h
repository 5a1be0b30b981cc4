/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  Continuous mode: the launcher, the per-database schedulers and the
 *	  per-pipeline workers.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/launcher.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_LAUNCHER_H
#define MEDALLION_LAUNCHER_H

#include "postgres.h"

/* Register the launcher and shared memory; from _PG_init while preloading. */
extern void LauncherRegister(void);

/*
 * Ask the launcher and this database's scheduler to look at the pipelines
 * again as soon as the current transaction commits; does nothing when
 * medallion is not preloaded.
 */
extern void LauncherWakeUp(void);

/*
 * Has DROP DATABASE of this database begun lately?  Its scheduler and
 * workers then leave, and none is started there.
 */
extern bool LauncherDatabaseDropping(Oid database_id);

PGDLLEXPORT void MedallionLauncherMain(Datum main_arg);
PGDLLEXPORT void MedallionSchedulerMain(Datum main_arg);

#endif							/* MEDALLION_LAUNCHER_H */
