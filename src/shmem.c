/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Reserving and initialising medallion's shared memory (when preloaded).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"

#include "lingering_update.h"
#include "shmem.h"
#include "update_control.h"
#include "worker_slots.h"

MedallionShared *medallion_shared = NULL;

static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

static void
medallion_shmem_request(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(MedallionShared)));
	WorkerSlotsShmemRequest();
	LingeringUpdateShmemRequest();
	RequestAddinShmemSpace(UpdateControlShmemSize());
}

/*
 * The shmem_startup_hook: create (postmaster) or attach to (EXEC_BACKEND
 * children) medallion's shared state, once per process.
 */
static void
medallion_shmem_startup(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	medallion_shared = ShmemInitStruct("medallion", sizeof(MedallionShared),
									   &found);
	if (!found)
	{
		memset(medallion_shared, 0, sizeof(MedallionShared));
		SpinLockInit(&medallion_shared->mutex);
	}
	WorkerSlotsShmemInit();
	LingeringUpdateShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

void
ShmemInstallHooks(void)
{
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = medallion_shmem_request;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = medallion_shmem_startup;
}

/* Find the slot of a database; claim a free one when asked to. */
static DatabaseSlot *
lookup_database_slot(Oid database_id, bool claim)
{
	DatabaseSlot *free_slot = NULL;
	DatabaseSlot *found = NULL;
	int			index;

	if (medallion_shared == NULL)
		return NULL;
	SpinLockAcquire(&medallion_shared->mutex);
	for (index = 0; index < MEDALLION_MAX_DATABASES; index++)
	{
		DatabaseSlot *slot = &medallion_shared->databases[index];

		if (slot->database_id == database_id)
		{
			found = slot;
			break;
		}
		if (slot->database_id == InvalidOid && free_slot == NULL)
			free_slot = slot;
	}
	if (found == NULL && free_slot != NULL && claim)
	{
		memset(free_slot, 0, sizeof(DatabaseSlot));
		free_slot->database_id = database_id;
		found = free_slot;
	}
	SpinLockRelease(&medallion_shared->mutex);
	return found;
}

DatabaseSlot *
ShmemDatabaseSlot(Oid database_id)
{
	return lookup_database_slot(database_id, true);
}

DatabaseSlot *
ShmemFindDatabaseSlot(Oid database_id)
{
	return lookup_database_slot(database_id, false);
}

/*
 * The launcher frees the slots of dropped databases, so that nothing of a
 * database is left in shared memory once it is gone.
 */
void
ShmemForgetDatabases(List *database_ids)
{
	int			index;

	if (medallion_shared == NULL)
		return;
	SpinLockAcquire(&medallion_shared->mutex);
	for (index = 0; index < MEDALLION_MAX_DATABASES; index++)
	{
		DatabaseSlot *slot = &medallion_shared->databases[index];

		if (OidIsValid(slot->database_id) &&
			!list_member_oid(database_ids, slot->database_id))
			memset(slot, 0, sizeof(DatabaseSlot));
	}
	SpinLockRelease(&medallion_shared->mutex);
}
