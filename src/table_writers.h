/*-------------------------------------------------------------------------
 *
 * table_writers.h
 *	  Waiting for the transactions that may be writing a table, and only
 *	  for those: never for a VACUUM, ANALYZE or CREATE INDEX CONCURRENTLY.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/table_writers.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_TABLE_WRITERS_H
#define MEDALLION_TABLE_WRITERS_H

/*
 * Wait until every transaction that, when called, held a lock on relid
 * that lets it write rows has ended (committed or rolled back).  New
 * writers are not waited for, nor is a lazy VACUUM, autovacuum's work, or
 * CREATE or REINDEX ... CONCURRENTLY of the table (their SHARE UPDATE
 * EXCLUSIVE lock conflicts with SHARE like a writer's lock, but they write
 * no rows).
 */
extern void WaitForTableWriters(Oid relid);

#endif							/* MEDALLION_TABLE_WRITERS_H */
