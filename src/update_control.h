/*-------------------------------------------------------------------------
 *
 * update_control.h
 *	  The registry of running pipeline updates, in shared memory, through
 *	  which stop_pipeline, drop_pipeline and alter_pipeline end an update on
 *	  behalf of the pipeline's owner.
 *
 * An update runs in a background worker, a superuser process that the
 * pipeline's owner may not signal (pg_cancel_backend refuses).  Each update
 * registers itself here (database, pipeline, PID, a generation number) for
 * as long as it runs; a stop request sets the entry's flag and, while the
 * update is inside a flow step, sends it SIGINT, as pg_cancel_backend would.
 * The update sees the flag and ends with a clear record of who stopped it.
 *
 * Locking: every field is protected by the registry's LWLock.  A signal is
 * sent with the lock held, and an update leaves a flow step (after which no
 * cancel may reach it) under the same lock, so that a stop request never
 * cancels an update outside its steps.  Entries are removed when the update
 * ends and, in any case, when the process exits; a crash restart
 * reinitialises shared memory.
 *
 * The registry is reserved by the shared memory request hook when medallion
 * is preloaded, and otherwise created on first use from the small reserve
 * PostgreSQL keeps for add-ins, so that triggered mode works without
 * preloading too.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/update_control.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_UPDATE_CONTROL_H
#define MEDALLION_UPDATE_CONTROL_H

#include "postgres.h"

#include "storage/lock.h"

/* Who asked a running update to stop. */
typedef enum UpdateStopReason
{
	UPDATE_STOP_NONE = 0,
	UPDATE_STOP_STOP_PIPELINE,	/* stop_pipeline */
	UPDATE_STOP_DROP_PIPELINE,	/* drop_pipeline */
	UPDATE_STOP_ALTER_PIPELINE,	/* alter_pipeline left continuous mode */
	UPDATE_STOP_DROP_FLOW		/* drop_flow */
} UpdateStopReason;

/* The name of the SQL function behind a stop reason. */
extern const char *UpdateStopReasonName(UpdateStopReason reason);

/* The shared memory the registry needs (for the request hook). */
extern Size UpdateControlShmemSize(void);

/*
 * Attach to the registry (creating it on first use); errors when shared
 * memory is exhausted.  Every other function attaches by itself.
 */
extern void UpdateControlAttach(void);

/*
 * The running update's side.  UpdateControlRegister records this process
 * as running an update of the pipeline (in the current database); it
 * warns and does nothing when the registry is full, and the update then
 * cannot be stopped early.  UpdateControlEnterStep returns the stop reason
 * requested so far (UPDATE_STOP_NONE: go on, signals may now arrive);
 * UpdateControlLeaveStep ends the step and returns the stop reason
 * requested so far; UpdateControlStopRequested just returns it.
 * UpdateControlUnregister removes the entry.
 */
extern void UpdateControlRegister(int32 pipeline_id);
extern UpdateStopReason UpdateControlStopRequested(void);
extern UpdateStopReason UpdateControlEnterStep(void);
extern UpdateStopReason UpdateControlLeaveStep(void);
extern void UpdateControlUnregister(void);

/*
 * The stopping side (the caller has checked the pipeline's ownership).
 * UpdateControlRequestStop flags every running update of the pipeline not
 * flagged yet, and cancels those of them that are inside a flow step; it
 * returns the highest generation of the pipeline's registered updates, 0
 * when none runs.  With hold, the request also applies to every update of
 * the pipeline that registers until the caller's transaction ends (such
 * an update stops before it takes the pipeline's lock), so that the caller
 * can take that lock without racing new updates.  UpdateControlTerminate sends SIGTERM to the updates of
 * the pipeline with a generation up to the given one (for a flow step that
 * ignores cancels).
 */
extern uint64 UpdateControlRequestStop(int32 pipeline_id,
									   UpdateStopReason reason, bool hold);
extern void UpdateControlTerminate(int32 pipeline_id, uint64 generation);

/* How long a flow step may ignore a stop request before it is terminated. */
#define UPDATE_STOP_GRACE_MS	10000

/*
 * The advisory lock an update of the pipeline holds from start to end
 * (class MEDALLION_LOCK_CLASS, the pipeline id, 3; the medallion.pipelines
 * view looks for it in pg_locks).
 */
#define MEDALLION_LOCK_CLASS	0x4D45444C	/* 1296385100 */
extern void UpdateLockTag(LOCKTAG *tag, int32 pipeline_id);

/*
 * Take the pipeline's update lock until the end of the transaction: no
 * update of it runs meanwhile.  A running update is asked to stop on
 * behalf of reason (and terminated after UPDATE_STOP_GRACE_MS); with
 * UPDATE_STOP_NONE it is waited for.
 */
extern void UpdateControlLockPipeline(int32 pipeline_id,
									  UpdateStopReason reason);

#endif							/* MEDALLION_UPDATE_CONTROL_H */
