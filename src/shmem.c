/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Reserving and initialising medallion's shared memory (when preloaded).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "update_control.h"

MedallionShared *medallion_shared = NULL;

static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

static void
medallion_shmem_request(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(MedallionShared)));
	RequestAddinShmemSpace(UpdateControlShmemSize());
}

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

DatabaseSlot *
ShmemDatabaseSlot(Oid database_id)
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
	if (found == NULL && free_slot != NULL)
	{
		free_slot->database_id = database_id;
		free_slot->wake_requested = false;
		free_slot->scheduler_latch = NULL;
		found = free_slot;
	}
	SpinLockRelease(&medallion_shared->mutex);
	return found;
}
