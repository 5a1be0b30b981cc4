/*-------------------------------------------------------------------------
 *
 * dynamic_worker.h
 *	  Starting the dynamic background workers of medallion (update, object,
 *	  scheduler and pipeline workers) in one way.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/dynamic_worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_DYNAMIC_WORKER_H
#define MEDALLION_DYNAMIC_WORKER_H

#include "postgres.h"

#include "postmaster/bgworker.h"

/*
 * Register a dynamic worker running function_name of medallion's library,
 * connected to a database, never restarted, notifying this process.  extra
 * (at most BGW_EXTRALEN bytes) is copied to bgw_extra.  Returns NULL when
 * no background worker slot is free; the idle run_pipeline workers are then
 * told to leave, so that a next attempt may find one.
 */
extern BackgroundWorkerHandle *DynamicWorkerStart(const char *function_name,
												  const char *type,
												  const char *name,
												  Datum main_arg,
												  const void *extra,
												  Size extra_size);

/*
 * Connect a medallion background worker to a database and pin its
 * session's search_path to "pg_catalog, pg_temp": a database owner's ALTER
 * DATABASE ... SET search_path must not decide how a superuser process
 * resolves names.  The session user is session_role (so pg_stat_activity
 * shows it and it may pg_cancel_backend the worker), or the bootstrap
 * superuser when InvalidOid; medallion's own work runs as the bootstrap
 * superuser either way.  Flows switch to their pipeline owner's role and
 * search_path themselves (FlowEnterOwnerContext).
 */
extern void DynamicWorkerConnect(Oid database_id, Oid session_role);

/*
 * The session role for a worker of a pipeline owned by owner: the owner
 * when PostgreSQL would let it connect (it can log in, has CONNECT on the
 * current database, and no connection limit applies), otherwise
 * InvalidOid.  Needs a transaction.
 */
extern Oid	DynamicWorkerSessionRole(Oid owner);

/*
 * Is the process with this PID a medallion background worker of the given
 * type (bgw_type) connected to database_id?  Worker PIDs recorded in shared
 * memory are checked this way, as a PID alone may have been reused.
 */
extern bool DynamicWorkerAlive(int pid, Oid database_id, const char *type);

#endif							/* MEDALLION_DYNAMIC_WORKER_H */
