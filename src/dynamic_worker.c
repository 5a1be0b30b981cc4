/*-------------------------------------------------------------------------
 *
 * dynamic_worker.c
 *	  Starting the dynamic background workers of medallion.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/dynamic_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/guc.h"

#include "dynamic_worker.h"
#include "medallion.h"
#include "spi_util.h"

BackgroundWorkerHandle *
DynamicWorkerStart(const char *function_name, const char *type,
				   const char *name, Datum main_arg, const void *extra,
				   Size extra_size)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	Assert(extra_size <= BGW_EXTRALEN);
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, MEDALLION_LIBRARY_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function_name);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", type);
	worker.bgw_main_arg = main_arg;
	if (extra != NULL)
		memcpy(worker.bgw_extra, extra, extra_size);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

void
DynamicWorkerConnect(Oid database_id)
{
	BackgroundWorkerInitializeConnectionByOid(database_id, InvalidOid, 0);
	SetConfigOption("search_path", MEDALLION_SAFE_SEARCH_PATH,
					PGC_SUSET, PGC_S_SESSION);
}

/*
 * A PID alone could have been reused by another process since it was
 * recorded; the database and the background worker type make a mistake
 * practically impossible.
 */
bool
DynamicWorkerAlive(int pid, Oid database_id, const char *type)
{
	PGPROC	   *proc;
	const char *actual_type;

	if (pid == 0)
		return false;
	proc = BackendPidGetProc(pid);
	if (proc == NULL || proc->databaseId != database_id)
		return false;
	actual_type = GetBackgroundWorkerTypeByPid(pid);
	return actual_type != NULL && strcmp(actual_type, type) == 0;
}
