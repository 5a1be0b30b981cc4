/*-------------------------------------------------------------------------
 *
 * worker_slots.c
 *	  The slots of medallion.max_workers in shared memory, and the
 *	  continuous pipelines waiting for one: how workers are shared.
 *
 * Sharing rule: a pipeline worker holds its slot for one update at a time.
 * After each update (one batch, when draining a backlog), and while it
 * sleeps until its next trigger interval, a worker gives its slot up as
 * soon as more pipelines wait than slots are free; its pipeline then waits
 * in line like the others.  Waiting pipelines get free slots in this
 * order: those whose role holds the fewest slots first, then the one that
 * has waited longest.  medallion.max_workers_per_role, when set, caps the
 * slots of one role.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/worker_slots.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "dynamic_worker.h"
#include "shmem.h"
#include "version.h"
#include "worker_slots.h"

#define WORKER_SLOTS_TRANCHE "medallion worker slots"

/* a claimed slot whose worker never attached, and whose scheduler is gone */
#define UNATTACHED_SLOT_TIMEOUT_MS 10000

typedef struct WorkerSlot
{
	Oid			database_id;	/* InvalidOid: free */
	int32		pipeline_id;
	Oid			owner;
	uint64		generation;
	int			pid;			/* the worker; 0 until it attached */
	int			claimer_pid;	/* the scheduler that claimed the slot */
	TimestampTz claimed_at;
	Latch	   *latch;			/* the worker's, once attached */
} WorkerSlot;

typedef struct WaitingEntry
{
	Oid			database_id;	/* InvalidOid: free */
	int32		pipeline_id;
	Oid			owner;
	int			scheduler_pid;
	Latch	   *scheduler_latch;
	TimestampTz since;
} WaitingEntry;

typedef struct WorkerSlotsShared
{
	LWLock	   *lock;
	uint64		next_generation;
	WorkerSlot	slots[WORKER_SLOTS_MAX];
	WaitingEntry waiting[WORKER_SLOTS_MAX_WAITING];
} WorkerSlotsShared;

static WorkerSlotsShared *worker_slots = NULL;

PG_FUNCTION_INFO_V1(medallion_waiting_pipeline_ids);

Size
WorkerSlotsShmemSize(void)
{
	return MAXALIGN(sizeof(WorkerSlotsShared));
}

void
WorkerSlotsShmemRequest(void)
{
	RequestAddinShmemSpace(WorkerSlotsShmemSize());
	RequestNamedLWLockTranche(WORKER_SLOTS_TRANCHE, 1);
}

/* Called with AddinShmemInitLock held. */
void
WorkerSlotsShmemInit(void)
{
	bool		found;

	worker_slots = ShmemInitStruct("medallion worker slots",
								   sizeof(WorkerSlotsShared), &found);
	if (!found)
	{
		memset(worker_slots, 0, sizeof(WorkerSlotsShared));
		worker_slots->lock = &(GetNamedLWLockTranche(WORKER_SLOTS_TRANCHE))->lock;
		worker_slots->next_generation = 1;
	}
}

static int
slot_limit(void)
{
	return Min(medallion_max_workers, WORKER_SLOTS_MAX);
}

/* Slots in use; with the lock held. */
static int
slots_in_use(void)
{
	int			used = 0;
	int			index;

	for (index = 0; index < WORKER_SLOTS_MAX; index++)
	{
		if (OidIsValid(worker_slots->slots[index].database_id))
			used++;
	}
	return used;
}

/* Slots held by one role; with the lock held. */
static int
slots_of_role(Oid owner)
{
	int			held = 0;
	int			index;

	for (index = 0; index < WORKER_SLOTS_MAX; index++)
	{
		WorkerSlot *slot = &worker_slots->slots[index];

		if (OidIsValid(slot->database_id) && slot->owner == owner)
			held++;
	}
	return held;
}

/* May a pipeline of this role get a slot under the per-role cap? */
static bool
role_under_cap(Oid owner, int held)
{
	return medallion_max_workers_per_role <= 0 ||
		held < medallion_max_workers_per_role;
}

/* The waiting list's entry of a pipeline, or NULL; the caller holds the lock. */
static WaitingEntry *
find_waiting(Oid database_id, int32 pipeline_id)
{
	int			index;

	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		WaitingEntry *entry = &worker_slots->waiting[index];

		if (entry->database_id == database_id &&
			entry->pipeline_id == pipeline_id)
			return entry;
	}
	return NULL;
}

/*
 * Waiting pipelines that may take a slot now (their role is under the cap);
 * with the lock held.  A slot of yielding_owner counts as freed already.
 */
static int
eligible_waiting(Oid yielding_owner)
{
	int			count = 0;
	int			index;

	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		WaitingEntry *entry = &worker_slots->waiting[index];
		int			held;

		if (!OidIsValid(entry->database_id))
			continue;
		held = slots_of_role(entry->owner);
		if (entry->owner == yielding_owner)
			held--;
		if (role_under_cap(entry->owner, held))
			count++;
	}
	return count;
}

/*
 * Collect the latches of the schedulers with waiting pipelines, to set them
 * once the lock is released; with the lock held.
 */
static int
waiting_scheduler_latches(Latch **latches, int max_latches)
{
	int			count = 0;
	int			index;

	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		WaitingEntry *entry = &worker_slots->waiting[index];
		int			other;
		bool		seen = false;

		if (!OidIsValid(entry->database_id) || entry->scheduler_latch == NULL)
			continue;
		for (other = 0; other < count; other++)
		{
			if (latches[other] == entry->scheduler_latch)
				seen = true;
		}
		if (!seen && count < max_latches)
			latches[count++] = entry->scheduler_latch;
	}
	return count;
}

static void
set_latches(Latch **latches, int count)
{
	int			index;

	for (index = 0; index < count; index++)
		SetLatch(latches[index]);
}

/* Free a slot and wake the schedulers that wait for one; lock held. */
static int
free_slot(WorkerSlot *slot, Latch **latches, int max_latches)
{
	memset(slot, 0, sizeof(WorkerSlot));
	return waiting_scheduler_latches(latches, max_latches);
}

bool
WorkerSlotsHasWorker(Oid database_id, int32 pipeline_id)
{
	bool		found = false;
	int			index;

	if (worker_slots == NULL)
		return false;
	LWLockAcquire(worker_slots->lock, LW_SHARED);
	for (index = 0; index < WORKER_SLOTS_MAX; index++)
	{
		WorkerSlot *slot = &worker_slots->slots[index];

		if (slot->database_id == database_id && slot->pipeline_id == pipeline_id)
			found = true;
	}
	LWLockRelease(worker_slots->lock);
	return found;
}

void
WorkerSlotsSetWaiting(Oid database_id, const DuePipeline *due, int count)
{
	Latch	   *latches[WORKER_SLOTS_MAX];
	int			latch_count = 0;
	TimestampTz now = GetCurrentTimestamp();
	int			index;

	if (worker_slots == NULL)
		return;
	LWLockAcquire(worker_slots->lock, LW_EXCLUSIVE);
	/* forget the pipelines of this database that no longer wait */
	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		WaitingEntry *entry = &worker_slots->waiting[index];
		bool		still_due = false;
		int			item;

		if (entry->database_id != database_id)
			continue;
		for (item = 0; item < count; item++)
		{
			if (due[item].pipeline_id == entry->pipeline_id)
				still_due = true;
		}
		if (!still_due)
			memset(entry, 0, sizeof(WaitingEntry));
	}
	/* add the new ones; those that waited keep their place in line */
	for (index = 0; index < count; index++)
	{
		WaitingEntry *entry = find_waiting(database_id, due[index].pipeline_id);

		if (entry == NULL)
		{
			entry = find_waiting(InvalidOid, 0);
			if (entry == NULL)
				break;
			entry->database_id = database_id;
			entry->pipeline_id = due[index].pipeline_id;
			entry->since = now;
		}
		entry->owner = due[index].owner;
		entry->scheduler_pid = MyProcPid;
		entry->scheduler_latch = MyLatch;
	}
	/* more pipelines wait than slots are free: let idle workers yield */
	if (eligible_waiting(InvalidOid) > slot_limit() - slots_in_use())
	{
		for (index = 0; index < WORKER_SLOTS_MAX; index++)
		{
			WorkerSlot *slot = &worker_slots->slots[index];

			if (OidIsValid(slot->database_id) && slot->latch != NULL)
				latches[latch_count++] = slot->latch;
		}
	}
	LWLockRelease(worker_slots->lock);
	set_latches(latches, latch_count);
}

TimestampTz
WorkerSlotsWaitingSince(Oid database_id, int32 pipeline_id)
{
	TimestampTz since = 0;
	WaitingEntry *entry;

	if (worker_slots == NULL)
		return 0;
	LWLockAcquire(worker_slots->lock, LW_SHARED);
	entry = find_waiting(database_id, pipeline_id);
	if (entry != NULL)
		since = entry->since;
	LWLockRelease(worker_slots->lock);
	return since;
}

/* Does waiting entry a come before a pipeline of a role holding held slots? */
static bool
waits_before(const WaitingEntry *a, int a_held, int held, TimestampTz since,
			 Oid database_id, int32 pipeline_id)
{
	if (a_held != held)
		return a_held < held;
	if (a->since != since)
		return a->since < since;
	if (a->database_id != database_id)
		return a->database_id < database_id;
	return a->pipeline_id < pipeline_id;
}

bool
WorkerSlotsClaim(Oid database_id, int32 pipeline_id, Oid owner,
				 WorkerSlotClaim *claim)
{
	bool		claimed = false;
	int			used;
	int			held;

	if (worker_slots == NULL)
		return false;
	LWLockAcquire(worker_slots->lock, LW_EXCLUSIVE);
	used = slots_in_use();
	held = slots_of_role(owner);
	if (used < slot_limit() && role_under_cap(owner, held))
	{
		WaitingEntry *me = find_waiting(database_id, pipeline_id);
		TimestampTz since = me ? me->since : GetCurrentTimestamp();
		int			ahead = 0;
		int			index;

		/* the pipelines whose turn comes first, among those that may run */
		for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
		{
			WaitingEntry *entry = &worker_slots->waiting[index];
			int			entry_held;

			if (!OidIsValid(entry->database_id) || entry == me)
				continue;
			entry_held = slots_of_role(entry->owner);
			if (role_under_cap(entry->owner, entry_held) &&
				waits_before(entry, entry_held, held, since, database_id,
							 pipeline_id))
				ahead++;
		}
		if (ahead < slot_limit() - used)
		{
			for (index = 0; index < WORKER_SLOTS_MAX; index++)
			{
				WorkerSlot *slot = &worker_slots->slots[index];

				if (OidIsValid(slot->database_id))
					continue;
				slot->database_id = database_id;
				slot->pipeline_id = pipeline_id;
				slot->owner = owner;
				slot->generation = worker_slots->next_generation++;
				slot->pid = 0;
				slot->claimer_pid = MyProcPid;
				slot->claimed_at = GetCurrentTimestamp();
				slot->latch = NULL;
				claim->index = index;
				claim->generation = slot->generation;
				claimed = true;
				break;
			}
			if (claimed && me != NULL)
				memset(me, 0, sizeof(WaitingEntry));
		}
	}
	LWLockRelease(worker_slots->lock);
	return claimed;
}

void
WorkerSlotsRelease(const WorkerSlotClaim *claim)
{
	Latch	   *latches[WORKER_SLOTS_MAX_WAITING];
	int			latch_count = 0;
	WorkerSlot *slot;

	if (worker_slots == NULL || claim->index < 0 ||
		claim->index >= WORKER_SLOTS_MAX)
		return;
	LWLockAcquire(worker_slots->lock, LW_EXCLUSIVE);
	slot = &worker_slots->slots[claim->index];
	if (OidIsValid(slot->database_id) && slot->generation == claim->generation)
		latch_count = free_slot(slot, latches, lengthof(latches));
	LWLockRelease(worker_slots->lock);
	set_latches(latches, latch_count);
}

/*
 * Entries are first read under the lock, then checked without it (the
 * checks take other locks), then freed only if they did not change.
 */
void
WorkerSlotsReclaimDead(void)
{
	WorkerSlot	slots[WORKER_SLOTS_MAX];
	bool		dead[WORKER_SLOTS_MAX];
	int			scheduler_pids[WORKER_SLOTS_MAX_WAITING];
	Oid			scheduler_databases[WORKER_SLOTS_MAX_WAITING];
	bool		scheduler_dead[WORKER_SLOTS_MAX_WAITING];
	Latch	   *latches[WORKER_SLOTS_MAX_WAITING];
	int			latch_count = 0;
	TimestampTz now = GetCurrentTimestamp();
	int			index;

	if (worker_slots == NULL)
		return;
	LWLockAcquire(worker_slots->lock, LW_SHARED);
	memcpy(slots, worker_slots->slots, sizeof(slots));
	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		scheduler_pids[index] = worker_slots->waiting[index].scheduler_pid;
		scheduler_databases[index] = worker_slots->waiting[index].database_id;
	}
	LWLockRelease(worker_slots->lock);

	for (index = 0; index < WORKER_SLOTS_MAX; index++)
	{
		WorkerSlot *slot = &slots[index];

		dead[index] = false;
		if (!OidIsValid(slot->database_id))
			continue;
		if (slot->pid != 0)
			dead[index] = !DynamicWorkerAlive(slot->pid, slot->database_id,
											 "medallion worker");
		else
			dead[index] = !DynamicWorkerAlive(slot->claimer_pid, slot->database_id,
											 "medallion scheduler") &&
				TimestampDifferenceExceeds(slot->claimed_at, now,
										   UNATTACHED_SLOT_TIMEOUT_MS);
	}
	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		int			earlier;

		scheduler_dead[index] = false;
		if (!OidIsValid(scheduler_databases[index]))
			continue;
		/* one check per scheduler */
		for (earlier = 0; earlier < index; earlier++)
		{
			if (scheduler_pids[earlier] == scheduler_pids[index] &&
				scheduler_databases[earlier] == scheduler_databases[index])
				break;
		}
		if (earlier < index)
			scheduler_dead[index] = scheduler_dead[earlier];
		else
			scheduler_dead[index] = !DynamicWorkerAlive(scheduler_pids[index],
													   scheduler_databases[index],
													   "medallion scheduler");
	}

	LWLockAcquire(worker_slots->lock, LW_EXCLUSIVE);
	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		WaitingEntry *entry = &worker_slots->waiting[index];

		if (scheduler_dead[index] &&
			entry->database_id == scheduler_databases[index] &&
			entry->scheduler_pid == scheduler_pids[index])
			memset(entry, 0, sizeof(WaitingEntry));
	}
	for (index = 0; index < WORKER_SLOTS_MAX; index++)
	{
		WorkerSlot *slot = &worker_slots->slots[index];

		if (dead[index] && OidIsValid(slot->database_id) &&
			slot->generation == slots[index].generation &&
			slot->pid == slots[index].pid)
		{
			elog(LOG, "medallion: reclaiming the worker slot of pipeline %d of database %u, whose process is gone",
				 slot->pipeline_id, slot->database_id);
			latch_count = free_slot(slot, latches, lengthof(latches));
		}
	}
	LWLockRelease(worker_slots->lock);
	set_latches(latches, latch_count);
}

bool
WorkerSlotsAttach(const WorkerSlotClaim *claim, Oid database_id,
				  int32 pipeline_id)
{
	bool		attached = false;
	WorkerSlot *slot;

	if (worker_slots == NULL || claim->index < 0 ||
		claim->index >= WORKER_SLOTS_MAX)
		return false;
	LWLockAcquire(worker_slots->lock, LW_EXCLUSIVE);
	slot = &worker_slots->slots[claim->index];
	if (slot->generation == claim->generation &&
		slot->database_id == database_id &&
		slot->pipeline_id == pipeline_id && slot->pid == 0)
	{
		slot->pid = MyProcPid;
		slot->latch = MyLatch;
		attached = true;
	}
	LWLockRelease(worker_slots->lock);
	return attached;
}

bool
WorkerSlotsShouldYield(const WorkerSlotClaim *claim)
{
	Latch	   *latches[WORKER_SLOTS_MAX_WAITING];
	int			latch_count = 0;
	bool		yield;
	WorkerSlot *slot;

	if (worker_slots == NULL)
		return false;
	LWLockAcquire(worker_slots->lock, LW_EXCLUSIVE);
	slot = &worker_slots->slots[claim->index];
	if (!OidIsValid(slot->database_id) || slot->generation != claim->generation)
		yield = true;
	else
	{
		int			used = slots_in_use();
		int			held = slots_of_role(slot->owner);

		yield = used > slot_limit() ||
			(medallion_max_workers_per_role > 0 &&
			 held > medallion_max_workers_per_role) ||
			eligible_waiting(slot->owner) > slot_limit() - used;
		if (yield)
			latch_count = free_slot(slot, latches, lengthof(latches));
	}
	LWLockRelease(worker_slots->lock);
	set_latches(latches, latch_count);
	return yield;
}

int
WorkerSlotsDatabasePids(Oid database_id, int *pids, int max_pids)
{
	int			count = 0;
	int			index;

	if (worker_slots == NULL)
		return 0;
	LWLockAcquire(worker_slots->lock, LW_SHARED);
	for (index = 0; index < WORKER_SLOTS_MAX && count < max_pids; index++)
	{
		WorkerSlot *slot = &worker_slots->slots[index];

		if (slot->database_id == database_id && slot->pid != 0)
			pids[count++] = slot->pid;
	}
	LWLockRelease(worker_slots->lock);
	return count;
}

/*
 * medallion.waiting_pipeline_ids(): the pipeline ids of the current
 * database that wait for a worker slot; nothing when medallion is not
 * preloaded.  The pipelines view derives the state waiting from it, so that
 * no stored state can outlive a crash or a promotion.
 */
Datum
medallion_waiting_pipeline_ids(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		ids[WORKER_SLOTS_MAX_WAITING];
	int			count = 0;
	int			index;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (worker_slots == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(worker_slots->lock, LW_SHARED);
	for (index = 0; index < WORKER_SLOTS_MAX_WAITING; index++)
	{
		WaitingEntry *entry = &worker_slots->waiting[index];

		if (entry->database_id == MyDatabaseId)
			ids[count++] = entry->pipeline_id;
	}
	LWLockRelease(worker_slots->lock);

	for (index = 0; index < count; index++)
	{
		Datum		value = Int32GetDatum(ids[index]);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value,
							 &isnull);
	}
	PG_RETURN_VOID();
}
