/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  The shared memory of continuous mode: who the launcher is, which
 *	  databases asked to be looked at and who their scheduler is.  The
 *	  slots of the pipeline workers are in worker_slots.h.
 *
 * Locking: every field is protected by the spinlock "mutex"; hold it only
 * to read or write fields, never across a call that may block or raise.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SHMEM_H
#define MEDALLION_SHMEM_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#define MEDALLION_MAX_DATABASES 64

typedef struct DatabaseSlot
{
	Oid			database_id;	/* InvalidOid: free slot */
	bool		wake_requested; /* look at this database again now */
	Latch	   *scheduler_latch;	/* the scheduler's latch, when running */
	int			scheduler_pid;	/* the one scheduler of the database, or 0 */
	bool		scheduler_wanted;	/* it has pipelines to run: restart it */
	TimestampTz drop_started;	/* a DROP DATABASE made its workers leave */
} DatabaseSlot;

typedef struct MedallionShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	DatabaseSlot databases[MEDALLION_MAX_DATABASES];
} MedallionShared;

/* NULL unless medallion was preloaded. */
extern MedallionShared *medallion_shared;

extern void ShmemInstallHooks(void);

/* Find or claim the slot of a database; NULL when all slots are taken. */
extern DatabaseSlot *ShmemDatabaseSlot(Oid database_id);

/* Find the slot of a database without claiming one; NULL when it has none. */
extern DatabaseSlot *ShmemFindDatabaseSlot(Oid database_id);

/* Free the slots of the databases that are not in the list (dropped). */
extern void ShmemForgetDatabases(List *database_ids);


#endif							/* MEDALLION_SHMEM_H */
