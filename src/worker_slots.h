/*-------------------------------------------------------------------------
 *
 * worker_slots.h
 *	  The slots of medallion.max_workers in shared memory: which pipeline
 *	  workers hold one (database, pipeline, owner, PID, generation) and
 *	  which continuous pipelines wait for one.
 *
 * A scheduler claims a slot for a pipeline that is due, then starts its
 * worker with the slot's index and generation; the worker attaches to the
 * slot, and gives it back when it exits, or after an update when other
 * pipelines wait (WorkerSlotsShouldYield).  Since the slots live in shared
 * memory, a restarted launcher or scheduler sees the workers that still run
 * instead of starting duplicates, and entries of dead processes are
 * reclaimed (WorkerSlotsReclaimDead).  Nothing here is persisted: a crash
 * restart begins with an empty table.
 *
 * Locking: one LWLock of its own; liveness checks (which take
 * ProcArrayLock) are never made while holding it.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/worker_slots.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_WORKER_SLOTS_H
#define MEDALLION_WORKER_SLOTS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"

/* the largest value of medallion.max_workers */
#define WORKER_SLOTS_MAX 64

/* continuous pipelines that can be shown waiting at once */
#define WORKER_SLOTS_MAX_WAITING 1024

/* What a scheduler claimed and its worker attaches to. */
typedef struct WorkerSlotClaim
{
	int			index;
	uint64		generation;
} WorkerSlotClaim;

/* A pipeline that is due and has no worker, as a scheduler sees it. */
typedef struct DuePipeline
{
	int32		pipeline_id;
	Oid			owner;
} DuePipeline;

/* Shared memory: from the shmem request and startup hooks. */
extern Size WorkerSlotsShmemSize(void);
extern void WorkerSlotsShmemRequest(void);
extern void WorkerSlotsShmemInit(void);

/* Does a live or starting worker hold a slot for this pipeline? */
extern bool WorkerSlotsHasWorker(Oid database_id, int32 pipeline_id);

/*
 * Record which pipelines of this database wait (replacing the previous
 * list of this scheduler); a pipeline that waited already keeps its start
 * of waiting.  Wakes the workers when there are more waiting pipelines than
 * free slots, so that idle ones give theirs up.
 */
extern void WorkerSlotsSetWaiting(Oid database_id, const DuePipeline *due,
								  int count);

/* Since when a pipeline waits; 0 when it does not. */
extern TimestampTz WorkerSlotsWaitingSince(Oid database_id, int32 pipeline_id);

/*
 * Claim a slot for a due pipeline, if its turn has come: roles holding the
 * fewest slots first, then the longest waiting pipeline, within
 * medallion.max_workers and medallion.max_workers_per_role.
 */
extern bool WorkerSlotsClaim(Oid database_id, int32 pipeline_id, Oid owner,
							 WorkerSlotClaim *claim);

/* Free a claimed slot, if it still is that claim. */
extern void WorkerSlotsRelease(const WorkerSlotClaim *claim);

/* Free the slots and waiting entries of processes that are gone. */
extern void WorkerSlotsReclaimDead(void);

/* Worker side: attach at start; false when the claim is gone. */
extern bool WorkerSlotsAttach(const WorkerSlotClaim *claim, Oid database_id,
							  int32 pipeline_id);

/*
 * Worker side, between updates: true when the worker must leave, because
 * its slot is gone or (then the slot is freed here) others wait for one or
 * the limits were lowered.
 */
extern bool WorkerSlotsShouldYield(const WorkerSlotClaim *claim);

/* The PIDs of the workers attached in a database (for DROP DATABASE). */
extern int	WorkerSlotsDatabasePids(Oid database_id, int *pids, int max_pids);

/* SQL: the pipelines of the current database that wait for a slot. */
extern Datum medallion_waiting_pipeline_ids(PG_FUNCTION_ARGS);

#endif							/* MEDALLION_WORKER_SLOTS_H */
