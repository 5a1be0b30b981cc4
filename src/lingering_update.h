/*-------------------------------------------------------------------------
 *
 * lingering_update.h
 *	  The run_pipeline workers that stay, after an update, for the next run
 *	  of the same pipeline (medallion.update_worker_linger).
 *
 * A new background worker starts with empty catalog caches: in an update
 * of a few milliseconds, filling them (and planning every statement anew)
 * costs more than the work itself.  So a run_pipeline worker, once it has
 * reported its result, waits a while in this registry, keyed by database,
 * pipeline and session role; the next run_pipeline of that pipeline hands
 * it its request (the caller's dynamic shared memory) instead of starting
 * a worker, and the update runs with warm caches and kept statements, as
 * in a continuous worker.
 *
 * An idle worker holds no transaction, snapshot or lock; it leaves when
 * its time is up, when the role or database settings it started with
 * changed, when its database is being dropped, and when a background
 * worker could not be started for want of a free slot (LingeringEvictIdle).
 * At most a quarter of max_worker_processes (at least one) wait at once.
 * Only a preloaded library has the registry; otherwise every worker exits
 * after its update, as before.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/lingering_update.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_LINGERING_UPDATE_H
#define MEDALLION_LINGERING_UPDATE_H

#include "postgres.h"

#include "storage/dsm.h"

/* the most lingering workers the registry can hold */
#define LINGERING_UPDATE_MAX 16

/* Which runs a worker may take: those of one pipeline, as one session role. */
typedef struct LingeringKey
{
	Oid			database_id;
	Oid			extension_id;	/* the medallion extension's OID */
	int32		pipeline_id;
	Oid			worker_role;	/* its session user (InvalidOid: the
								 * bootstrap superuser) */
} LingeringKey;

extern void LingeringUpdateShmemRequest(void);

/* Called with AddinShmemInitLock held. */
extern void LingeringUpdateShmemInit(void);

/*
 * Caller side: hand the request to an idle worker of this key (and of the
 * caller's library version).  Returns the worker's PID, or 0 when none
 * waits (then start a new one).
 */
extern int	LingeringUpdateClaim(const LingeringKey *key, dsm_handle request);

/*
 * Worker side, after an update: enter the registry as idle (false when the
 * worker is not to linger: the setting is 0, or the registry is full or
 * absent).  Then, once the caller has checked that its database is not
 * being dropped (whoever drops it either sees the entry or is seen),
 * LingeringUpdateWait waits up to medallion.update_worker_linger seconds
 * for the next request: its handle, or DSM_HANDLE_INVALID when the worker
 * is to exit.
 */
extern bool LingeringUpdateEnter(const LingeringKey *key);
extern dsm_handle LingeringUpdateWait(void);

/*
 * Tell idle workers to leave: all of them, those of one database when
 * database_id is valid, of one pipeline there when pipeline_id is not 0
 * (it was dropped, or handed to another role).  Returns how many were told.
 */
extern int	LingeringUpdateEvictIdle(Oid database_id, int32 pipeline_id);

/*
 * Worker side: a fingerprint of the role and database settings of this
 * session, to tell whether they changed since it started.  Needs a
 * transaction.
 */
extern uint32 LingeringUpdateSettingsSignature(void);

#endif							/* MEDALLION_LINGERING_UPDATE_H */
