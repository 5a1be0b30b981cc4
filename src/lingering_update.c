/*-------------------------------------------------------------------------
 *
 * lingering_update.c
 *	  The registry of run_pipeline workers waiting for the next run of
 *	  their pipeline, in shared memory.
 *
 * Each entry belongs to one worker from its first wait until it exits; a
 * spinlock guards the table (every critical section is a short loop over
 * it, with no call that could raise or sleep).  An entry is idle (the
 * worker waits on its latch), claimed (a caller stored its request and set
 * the latch), busy (the worker runs the request) or leaving (evicted: the
 * worker exits at its next look).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/lingering_update.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_db_role_setting.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "lingering_update.h"

typedef enum LingeringState
{
	LINGERING_IDLE,
	LINGERING_CLAIMED,
	LINGERING_BUSY,
	LINGERING_LEAVING
} LingeringState;

typedef struct LingeringEntry
{
	int			pid;			/* 0: a free entry */
	Oid			database_id;
	Oid			extension_id;	/* pipeline ids restart with the extension */
	int32		pipeline_id;
	Oid			worker_role;
	char		library_version[16];
	LingeringState state;
	dsm_handle	request;		/* when claimed */
	Latch	   *latch;
} LingeringEntry;

typedef struct LingeringRegistry
{
	slock_t		mutex;
	LingeringEntry entries[LINGERING_UPDATE_MAX];
} LingeringRegistry;

static LingeringRegistry *registry = NULL;

/* this worker's entry, once it has waited */
static int	my_entry = -1;

void
LingeringUpdateShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(LingeringRegistry)));
}

void
LingeringUpdateShmemInit(void)
{
	bool		found;

	registry = ShmemInitStruct("medallion lingering updates",
							   sizeof(LingeringRegistry), &found);
	if (!found)
	{
		memset(registry, 0, sizeof(LingeringRegistry));
		SpinLockInit(&registry->mutex);
	}
}

/*
 * Lingering workers hold background worker slots that parallel queries
 * and continuous pipelines may need: a quarter of them at most.
 */
static int
lingering_limit(void)
{
	return Min(LINGERING_UPDATE_MAX, Max(1, max_worker_processes / 4));
}

/*
 * Is the entry an idle worker in this database (any, when database_id is
 * invalid), waiting for this pipeline (any, when pipeline_id is 0)?  With
 * the spinlock held.
 */
static bool
idle_worker_of(const LingeringEntry *entry, Oid database_id,
			   int32 pipeline_id)
{
	return entry->pid != 0 && entry->state == LINGERING_IDLE &&
		(!OidIsValid(database_id) || entry->database_id == database_id) &&
		(pipeline_id == 0 || entry->pipeline_id == pipeline_id);
}

int
LingeringUpdateClaim(const LingeringKey *key, dsm_handle request)
{
	Latch	   *latch = NULL;
	int			pid = 0;
	int			index;

	if (registry == NULL)
		return 0;
	SpinLockAcquire(&registry->mutex);
	for (index = 0; index < LINGERING_UPDATE_MAX; index++)
	{
		LingeringEntry *entry = &registry->entries[index];

		if (idle_worker_of(entry, key->database_id, key->pipeline_id) &&
			entry->extension_id == key->extension_id &&
			entry->worker_role == key->worker_role &&
			strcmp(entry->library_version, MEDALLION_VERSION) == 0)
		{
			entry->state = LINGERING_CLAIMED;
			entry->request = request;
			pid = entry->pid;
			latch = entry->latch;
			break;
		}
	}
	SpinLockRelease(&registry->mutex);
	if (latch != NULL)
		SetLatch(latch);
	return pid;
}

static void
forget_my_entry(int code, Datum arg)
{
	if (registry == NULL || my_entry < 0)
		return;
	SpinLockAcquire(&registry->mutex);
	if (registry->entries[my_entry].pid == MyProcPid)
		memset(&registry->entries[my_entry], 0, sizeof(LingeringEntry));
	SpinLockRelease(&registry->mutex);
	my_entry = -1;
}

/* Take an entry for this worker; false when the registry is full. */
static bool
enter_registry(const LingeringKey *key)
{
	static bool exit_callback_registered = false;
	int			used = 0;
	int			free_entry = -1;
	int			index;

	if (!exit_callback_registered)
	{
		before_shmem_exit(forget_my_entry, (Datum) 0);
		exit_callback_registered = true;
	}
	SpinLockAcquire(&registry->mutex);
	for (index = 0; index < LINGERING_UPDATE_MAX; index++)
	{
		if (registry->entries[index].pid != 0)
			used++;
		else if (free_entry < 0)
			free_entry = index;
	}
	if (free_entry >= 0 && used < lingering_limit())
	{
		LingeringEntry *entry = &registry->entries[free_entry];

		entry->pid = MyProcPid;
		entry->database_id = key->database_id;
		entry->extension_id = key->extension_id;
		entry->pipeline_id = key->pipeline_id;
		entry->worker_role = key->worker_role;
		strlcpy(entry->library_version, MEDALLION_VERSION,
				sizeof(entry->library_version));
		entry->state = LINGERING_IDLE;
		entry->latch = MyLatch;
		my_entry = free_entry;
	}
	SpinLockRelease(&registry->mutex);
	return my_entry >= 0;
}

/*
 * Look at this worker's entry: the claimed request (the entry is then
 * busy), or, when the worker is to leave, free the entry.  Returns
 * DSM_HANDLE_INVALID while it should wait on.
 */
static dsm_handle
look_at_entry(bool time_is_up, bool *leave)
{
	LingeringEntry *entry = &registry->entries[my_entry];
	dsm_handle	request = DSM_HANDLE_INVALID;

	*leave = false;
	SpinLockAcquire(&registry->mutex);
	if (entry->state == LINGERING_CLAIMED)
	{
		entry->state = LINGERING_BUSY;
		request = entry->request;
	}
	else if (time_is_up || entry->state == LINGERING_LEAVING)
	{
		memset(entry, 0, sizeof(LingeringEntry));
		*leave = true;
	}
	SpinLockRelease(&registry->mutex);
	if (*leave)
		my_entry = -1;
	return request;
}

bool
LingeringUpdateEnter(const LingeringKey *key)
{
	if (registry == NULL || medallion_update_worker_linger_s <= 0)
		return false;
	if (my_entry < 0)
		return enter_registry(key);
	SpinLockAcquire(&registry->mutex);
	registry->entries[my_entry].state = LINGERING_IDLE;
	SpinLockRelease(&registry->mutex);
	return true;
}

dsm_handle
LingeringUpdateWait(void)
{
	TimestampTz idle_since = GetCurrentTimestamp();

	Assert(my_entry >= 0);
	pgstat_report_activity(STATE_IDLE, NULL);

	for (;;)
	{
		long		remaining_ms;
		bool		leave;
		dsm_handle	request;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		remaining_ms =
			TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
											TimestampTzPlusMilliseconds(idle_since,
																		(int64) medallion_update_worker_linger_s * 1000));
		request = look_at_entry(remaining_ms <= 0 ||
								medallion_update_worker_linger_s <= 0, &leave);
		if (request != DSM_HANDLE_INVALID || leave)
			return request;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 remaining_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

int
LingeringUpdateEvictIdle(Oid database_id, int32 pipeline_id)
{
	Latch	   *latches[LINGERING_UPDATE_MAX];
	int			count = 0;
	int			index;

	if (registry == NULL)
		return 0;
	SpinLockAcquire(&registry->mutex);
	for (index = 0; index < LINGERING_UPDATE_MAX; index++)
	{
		LingeringEntry *entry = &registry->entries[index];

		if (idle_worker_of(entry, database_id, pipeline_id))
		{
			entry->state = LINGERING_LEAVING;
			latches[count++] = entry->latch;
		}
	}
	SpinLockRelease(&registry->mutex);
	for (index = 0; index < count; index++)
		SetLatch(latches[index]);
	return count;
}

/*
 * A fingerprint of the settings of pg_db_role_setting that apply to this
 * session (ALTER ROLE ... SET, ALTER DATABASE ... SET): a new worker
 * would start with them, so a worker that started with others must not
 * serve another run.  Needs a transaction.
 */
uint32
LingeringUpdateSettingsSignature(void)
{
	Oid			role = GetSessionUserId();
	Relation	relation;
	SysScanDesc scan;
	HeapTuple	tuple;
	uint32		signature = 0;

	relation = table_open(DbRoleSettingRelationId, AccessShareLock);
	scan = systable_beginscan(relation, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_db_role_setting setting = (Form_pg_db_role_setting) GETSTRUCT(tuple);
		struct varlena *config;
		Datum		datum;
		bool		isnull;
		uint32		row_hash;

		if ((OidIsValid(setting->setdatabase) &&
			 setting->setdatabase != MyDatabaseId) ||
			(OidIsValid(setting->setrole) && setting->setrole != role))
			continue;
		datum = heap_getattr(tuple, Anum_pg_db_role_setting_setconfig,
							 RelationGetDescr(relation), &isnull);
		if (isnull)
			continue;
		config = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(datum));
		row_hash = hash_bytes((const unsigned char *) VARDATA_ANY(config),
							  VARSIZE_ANY_EXHDR(config));
		row_hash = hash_combine(row_hash, setting->setdatabase);
		row_hash = hash_combine(row_hash, setting->setrole);
		/* the order of the rows does not matter */
		signature ^= row_hash;
	}
	systable_endscan(scan);
	table_close(relation, AccessShareLock);
	return signature;
}
