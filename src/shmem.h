/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  The shared memory of continuous mode: who the launcher is, which
 *	  databases asked to be looked at, and how many pipeline workers run.
 *
 * Locking: every field is protected by the spinlock "mutex"; hold it only
 * to read or write fields, never across a call that may block or raise.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SHMEM_H
#define MEDALLION_SHMEM_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/spin.h"

#define MEDALLION_MAX_DATABASES 64

typedef struct DatabaseSlot
{
	Oid			database_id;	/* InvalidOid: free slot */
	bool		wake_requested; /* look at this database again now */
	Latch	   *scheduler_latch;	/* the scheduler's latch, when running */
} DatabaseSlot;

typedef struct MedallionShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	int			pipeline_workers;	/* pipeline workers running */
	DatabaseSlot databases[MEDALLION_MAX_DATABASES];
} MedallionShared;

/* NULL unless medallion was preloaded. */
extern MedallionShared *medallion_shared;

extern void ShmemInstallHooks(void);

/* Find or claim the slot of a database; NULL when all slots are taken. */
extern DatabaseSlot *ShmemDatabaseSlot(Oid database_id);

#endif							/* MEDALLION_SHMEM_H */
