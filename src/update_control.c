/*-------------------------------------------------------------------------
 *
 * update_control.c
 *	  The registry of running pipeline updates in shared memory, and the
 *	  stop requests sent through it (see update_control.h for the protocol
 *	  and its locking).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/update_control.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"
#include "utils/timestamp.h"
#include "storage/latch.h"
#include "pgstat.h"

#include "update_control.h"

/* updates that may run at once, in all databases */
#define UPDATE_CONTROL_SLOTS 128

typedef struct UpdateControlEntry
{
	Oid			database_id;	/* InvalidOid: free entry */
	int32		pipeline_id;
	pid_t		pid;
	uint64		generation;		/* unique among all entries ever made */
	bool		in_step;		/* inside a flow step: may be cancelled */
	UpdateStopReason stop_reason;

	/*
	 * Not an update but a stop request held until the end of the
	 * requester's transaction (pid): updates of the pipeline that start
	 * meanwhile are stopped before they take the pipeline's lock.
	 */
	bool		held_request;
} UpdateControlEntry;

typedef struct UpdateControlShared
{
	LWLock		lock;
	int			tranche_id;
	uint64		next_generation;
	UpdateControlEntry entries[UPDATE_CONTROL_SLOTS];
} UpdateControlShared;

static UpdateControlShared *control = NULL;

/* this process's entry, while it runs an update */
static int	my_slot = -1;
static uint64 my_generation = 0;
static bool exit_callback_registered = false;

/* this process holds stop requests until its transaction ends */
static bool holds_requests = false;
static bool xact_callback_registered = false;

const char *
UpdateStopReasonName(UpdateStopReason reason)
{
	switch (reason)
	{
		case UPDATE_STOP_STOP_PIPELINE:
			return "stop_pipeline";
		case UPDATE_STOP_DROP_PIPELINE:
			return "drop_pipeline";
		case UPDATE_STOP_ALTER_PIPELINE:
			return "alter_pipeline";
		case UPDATE_STOP_DROP_FLOW:
			return "drop_flow";
		case UPDATE_STOP_NONE:
			break;
	}
	return "none";
}

Size
UpdateControlShmemSize(void)
{
	return MAXALIGN(sizeof(UpdateControlShared));
}

/*
 * UpdateControlAttach finds the registry in shared memory, or creates it:
 * in the postmaster's reserve when medallion is preloaded, otherwise in
 * the spare shared memory PostgreSQL keeps for add-ins.
 */
void
UpdateControlAttach(void)
{
	bool		found;
	UpdateControlShared *shared;

	if (control != NULL)
		return;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("medallion update control",
							 UpdateControlShmemSize(), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(UpdateControlShared));
		shared->tranche_id = LWLockNewTrancheId();
		LWLockInitialize(&shared->lock, shared->tranche_id);
		shared->next_generation = 1;
	}
	LWLockRelease(AddinShmemInitLock);
	LWLockRegisterTranche(shared->tranche_id, "medallion_update_control");
	control = shared;
}

/* Signal a process and its process group, as pg_signal_backend does. */
static void
signal_update(pid_t pid, int signal)
{
	if (pid == MyProcPid)
		return;
#ifdef HAVE_SETSID
	if (kill(-pid, signal) != 0)
#else
	if (kill(pid, signal) != 0)
#endif
	{
		if (errno != ESRCH)
			ereport(WARNING,
					(errmsg("could not send signal to process %d: %m",
							(int) pid)));
	}
}

/* Remove the stop requests this process holds. */
static void
release_held_requests(void)
{
	int			index;

	if (!holds_requests || control == NULL)
		return;
	LWLockAcquire(&control->lock, LW_EXCLUSIVE);
	for (index = 0; index < UPDATE_CONTROL_SLOTS; index++)
	{
		UpdateControlEntry *entry = &control->entries[index];

		if (entry->held_request && entry->pid == MyProcPid)
			memset(entry, 0, sizeof(UpdateControlEntry));
	}
	LWLockRelease(&control->lock);
	holds_requests = false;
}

/* Held stop requests last until the requester's transaction ends. */
static void
release_at_end_of_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		release_held_requests();
}

/* Remove this process's entries: the process exit callback. */
static void
unregister_entry(int code, Datum arg)
{
	release_held_requests();
	UpdateControlUnregister();
}

static void
register_exit_callback(void)
{
	if (!exit_callback_registered)
	{
		before_shmem_exit(unregister_entry, (Datum) 0);
		exit_callback_registered = true;
	}
}

void
UpdateControlRegister(int32 pipeline_id)
{
	int			index;

	UpdateControlAttach();
	register_exit_callback();
	UpdateControlUnregister();

	LWLockAcquire(&control->lock, LW_EXCLUSIVE);
	for (index = 0; index < UPDATE_CONTROL_SLOTS; index++)
	{
		UpdateControlEntry *entry = &control->entries[index];

		if (entry->database_id != InvalidOid)
			continue;
		memset(entry, 0, sizeof(UpdateControlEntry));
		entry->database_id = MyDatabaseId;
		entry->pipeline_id = pipeline_id;
		entry->pid = MyProcPid;
		entry->generation = control->next_generation++;
		my_slot = index;
		my_generation = entry->generation;
		break;
	}
	/* a stop request held for this pipeline applies to this update too */
	for (index = 0; my_slot >= 0 && index < UPDATE_CONTROL_SLOTS; index++)
	{
		UpdateControlEntry *entry = &control->entries[index];

		if (entry->held_request && entry->database_id == MyDatabaseId &&
			entry->pipeline_id == pipeline_id)
			control->entries[my_slot].stop_reason = entry->stop_reason;
	}
	LWLockRelease(&control->lock);

	if (my_slot < 0)
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("too many pipeline updates are running to register this one"),
				 errdetail("Neither stop_pipeline nor drop_pipeline could end this update early; at most %d updates can be stopped at once.",
						   UPDATE_CONTROL_SLOTS)));
}

/* Set or clear the in_step flag of this process's entry. */
static UpdateStopReason
set_in_step(bool in_step)
{
	UpdateStopReason reason = UPDATE_STOP_NONE;
	UpdateControlEntry *entry;

	if (my_slot < 0)
		return UPDATE_STOP_NONE;
	LWLockAcquire(&control->lock, LW_EXCLUSIVE);
	entry = &control->entries[my_slot];
	if (entry->generation == my_generation)
	{
		reason = entry->stop_reason;
		/* a step that would be stopped at once is not entered */
		entry->in_step = in_step && reason == UPDATE_STOP_NONE;
	}
	LWLockRelease(&control->lock);
	return reason;
}

UpdateStopReason
UpdateControlStopRequested(void)
{
	UpdateStopReason reason = UPDATE_STOP_NONE;

	if (my_slot < 0)
		return UPDATE_STOP_NONE;
	LWLockAcquire(&control->lock, LW_SHARED);
	if (control->entries[my_slot].generation == my_generation)
		reason = control->entries[my_slot].stop_reason;
	LWLockRelease(&control->lock);
	return reason;
}

UpdateStopReason
UpdateControlEnterStep(void)
{
	return set_in_step(true);
}

UpdateStopReason
UpdateControlLeaveStep(void)
{
	return set_in_step(false);
}

/*
 * Give up this process's slot in the registry: no stop request can reach
 * it any more.  Safe to call twice (the update's end and its cleanup).
 */
void
UpdateControlUnregister(void)
{
	if (my_slot < 0 || control == NULL)
		return;
	LWLockAcquire(&control->lock, LW_EXCLUSIVE);
	if (control->entries[my_slot].generation == my_generation)
		memset(&control->entries[my_slot], 0, sizeof(UpdateControlEntry));
	LWLockRelease(&control->lock);
	my_slot = -1;
	my_generation = 0;
}

uint64
UpdateControlRequestStop(int32 pipeline_id, UpdateStopReason reason,
						 bool hold)
{
	uint64		highest = 0;
	int			index;
	int			free_slot = -1;
	bool		held = false;

	UpdateControlAttach();
	if (hold)
	{
		register_exit_callback();
		if (!xact_callback_registered)
		{
			RegisterXactCallback(release_at_end_of_xact, NULL);
			xact_callback_registered = true;
		}
	}
	LWLockAcquire(&control->lock, LW_EXCLUSIVE);
	for (index = 0; index < UPDATE_CONTROL_SLOTS; index++)
	{
		UpdateControlEntry *entry = &control->entries[index];

		if (entry->database_id == InvalidOid && free_slot < 0)
			free_slot = index;
		if (entry->database_id != MyDatabaseId ||
			entry->pipeline_id != pipeline_id)
			continue;
		if (entry->held_request)
		{
			held |= entry->pid == MyProcPid;
			continue;
		}
		highest = Max(highest, entry->generation);
		if (entry->stop_reason != UPDATE_STOP_NONE)
			continue;
		entry->stop_reason = reason;

		/*
		 * Under the lock: the update cannot leave its step before the
		 * signal is sent, so the cancel never reaches it outside a step.
		 */
		if (entry->in_step)
			signal_update(entry->pid, SIGINT);
	}
	if (hold && !held && free_slot >= 0)
	{
		UpdateControlEntry *entry = &control->entries[free_slot];

		memset(entry, 0, sizeof(UpdateControlEntry));
		entry->database_id = MyDatabaseId;
		entry->pipeline_id = pipeline_id;
		entry->pid = MyProcPid;
		entry->generation = control->next_generation++;
		entry->stop_reason = reason;
		entry->held_request = true;
		holds_requests = true;
	}
	LWLockRelease(&control->lock);
	return highest;
}

void
UpdateControlTerminate(int32 pipeline_id, uint64 generation)
{
	int			index;

	UpdateControlAttach();
	LWLockAcquire(&control->lock, LW_SHARED);
	for (index = 0; index < UPDATE_CONTROL_SLOTS; index++)
	{
		UpdateControlEntry *entry = &control->entries[index];

		if (entry->database_id == MyDatabaseId &&
			entry->pipeline_id == pipeline_id && !entry->held_request &&
			entry->generation <= generation)
		{
			ereport(LOG,
					(errmsg("terminating the update of pipeline %d in process %d: it ignored a stop request for %d ms",
							pipeline_id, (int) entry->pid,
							UPDATE_STOP_GRACE_MS)));
			signal_update(entry->pid, SIGTERM);
		}
	}
	LWLockRelease(&control->lock);
}

void
UpdateLockTag(LOCKTAG *tag, int32 pipeline_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, MEDALLION_LOCK_CLASS,
						 (uint32) pipeline_id, 3);
}

/*
 * Wait for a running update of the pipeline to end, and keep others from
 * starting until this transaction ends.  With a stop reason, the update
 * is first asked to stop (and so is any that starts before this
 * transaction ends, before it takes the lock), and an update that ignores
 * the request for UPDATE_STOP_GRACE_MS is terminated; the wait is then a
 * matter of seconds, whatever the update was doing.
 */
void
UpdateControlLockPipeline(int32 pipeline_id, UpdateStopReason reason)
{
	LOCKTAG		tag;
	TimestampTz started = GetCurrentTimestamp();
	uint64		first_generation = 0;
	bool		terminated = false;

	UpdateLockTag(&tag, pipeline_id);
	if (reason == UPDATE_STOP_NONE)
	{
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		return;
	}
	for (;;)
	{
		uint64		generation = UpdateControlRequestStop(pipeline_id, reason,
															  true);

		if (first_generation == 0)
			first_generation = generation;
		if (LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
			break;
		if (!terminated && first_generation != 0 &&
			TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
									   UPDATE_STOP_GRACE_MS))
		{
			UpdateControlTerminate(pipeline_id, first_generation);
			terminated = true;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
