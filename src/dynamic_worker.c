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

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "dynamic_worker.h"
#include "lingering_update.h"
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
	{
		/* idle run_pipeline workers leave, to make room for a next attempt */
		(void) LingeringUpdateEvictIdle(InvalidOid, 0);
		return NULL;
	}
	return handle;
}

/*
 * PostgreSQL 15 connects a background worker as a role only when that role
 * could open a session itself: it may log in, has CONNECT on the database,
 * and no connection limit (of the role or the database) could refuse it.
 * Anything else would end the worker at its start.
 */
Oid
DynamicWorkerSessionRole(Oid owner)
{
	HeapTuple	tuple;
	Form_pg_authid role;
	bool		usable;

	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(owner));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	role = (Form_pg_authid) GETSTRUCT(tuple);
	usable = role->rolcanlogin &&
		(role->rolsuper ||
		 (role->rolconnlimit < 0 &&
		  pg_database_aclcheck(MyDatabaseId, owner, ACL_CONNECT) == ACLCHECK_OK));
	ReleaseSysCache(tuple);
	if (usable && !superuser_arg(owner))
	{
		tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
		if (!HeapTupleIsValid(tuple))
			return InvalidOid;
		usable = ((Form_pg_database) GETSTRUCT(tuple))->datconnlimit < 0;
		ReleaseSysCache(tuple);
	}
	return usable ? owner : InvalidOid;
}

/*
 * The session user is the role the worker is shown as and signalled as;
 * the current user, for medallion's own work, stays the bootstrap
 * superuser, as when the worker connects without a role.  Flows switch to
 * the owner for user SQL (FlowEnterOwnerContext), and catalog statements
 * go through SpiExecuteAsExtensionOwner, as they do in any session.
 * SECURITY_LOCAL_USERID_CHANGE keeps SET ROLE and SET SESSION
 * AUTHORIZATION out of reach for good.
 */
void
DynamicWorkerConnect(Oid database_id, Oid session_role)
{
	BackgroundWorkerInitializeConnectionByOid(database_id, session_role, 0);
	if (OidIsValid(session_role))
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   SECURITY_LOCAL_USERID_CHANGE);
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
