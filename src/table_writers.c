/*-------------------------------------------------------------------------
 *
 * table_writers.c
 *	  Waiting for the transactions that may be writing a table, and only
 *	  for those.
 *
 * Reading a table exactly once (flow.h, capture.c) reads a position first,
 * then waits for every transaction that may have drawn an id up to it and
 * not committed yet: each holds ROW EXCLUSIVE on the table since before it
 * drew it.  PostgreSQL's WaitForLockers(table, SHARE), which CREATE INDEX
 * CONCURRENTLY uses for the same purpose, also waits for the holders of
 * SHARE UPDATE EXCLUSIVE, which conflicts with SHARE too: a VACUUM or
 * ANALYZE of the table, by hand or by autovacuum, and CREATE INDEX
 * CONCURRENTLY.  An update would then stall for as long as a VACUUM of a
 * large bronze table runs, and would cancel autovacuum's after
 * deadlock_timeout, again at every update, so that autovacuum never
 * finishes the table.
 *
 * So the lockers are taken from GetLockConflicts, as WaitForLockers does,
 * and a locker is skipped only when it holds a lock that conflicts with
 * SHARE UPDATE EXCLUSIVE too (a holder of ROW EXCLUSIVE alone is a writer,
 * whatever else it is doing) and its backend is, in that same transaction,
 * an autovacuum worker, a lazy VACUUM or a safe CREATE or REINDEX
 * CONCURRENTLY (the status flags PostgreSQL sets for the snapshot horizons):
 * none of them writes rows of the table.  A manual ANALYZE, or any other
 * holder, is still waited for: it may have written in the same transaction.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/table_writers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/sinvaladt.h"

#include "compat.h"
#include "table_writers.h"

/* The status flags of a transaction that writes no rows of the table. */
#define MAINTENANCE_STATUS_FLAGS \
	(PROC_IS_AUTOVACUUM | PROC_IN_VACUUM | PROC_IN_SAFE_IC)

/*
 * Is the locker's transaction maintenance work?  Its flags are read
 * between two reads of the transaction its backend is running: the same
 * one both times means the flags were that transaction's.  A locker that
 * has ended is reported as not maintenance; waiting for it returns at once.
 */
static bool
locker_is_maintenance(VirtualTransactionId locker)
{
	PGPROC	   *proc = MedallionVirtualXactProc(locker);
	LocalTransactionId before;
	uint8		flags;

	if (proc == NULL)
		return false;
	before = MedallionProcLocalXid(proc);
	pg_read_barrier();
	flags = proc->statusFlags;
	pg_read_barrier();
	return before == locker.localTransactionId &&
		MedallionProcLocalXid(proc) == before &&
		(flags & MAINTENANCE_STATUS_FLAGS) != 0;
}

/* Is locker among the (InvalidVirtualTransactionId-terminated) lockers? */
static bool
among(VirtualTransactionId locker, const VirtualTransactionId *lockers)
{
	for (; VirtualTransactionIdIsValid(*lockers); lockers++)
		if (VirtualTransactionIdEquals(locker, *lockers))
			return true;
	return false;
}

/*
 * WaitForTableWriters: see table_writers.h.  Never called during recovery
 * (flows write), where GetLockConflicts would return the same static array
 * twice.
 */
void
WaitForTableWriters(Oid relid)
{
	LOCKTAG		tag;
	VirtualTransactionId *lockers;
	VirtualTransactionId *maybe_maintenance;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	lockers = GetLockConflicts(&tag, ShareLock, NULL);
	maybe_maintenance = GetLockConflicts(&tag, ShareUpdateExclusiveLock, NULL);
	for (; VirtualTransactionIdIsValid(*lockers); lockers++)
	{
		if (among(*lockers, maybe_maintenance) &&
			locker_is_maintenance(*lockers))
			continue;
		VirtualXactLock(*lockers, true);
	}
}
