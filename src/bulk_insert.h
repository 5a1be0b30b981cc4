/*-------------------------------------------------------------------------
 *
 * bulk_insert.h
 *	  Fast insertion of many rows into one table, the way COPY FROM does it:
 *	  buffered table_multi_insert plus index maintenance, with the _row_id of
 *	  each row drawn from the table's identity sequence.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bulk_insert.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_BULK_INSERT_H
#define MEDALLION_BULK_INSERT_H

#include "postgres.h"

#include "utils/relcache.h"

typedef struct BulkInserter BulkInserter;

/*
 * Open relid for insertion (RowExclusiveLock) and check that the current
 * user may INSERT into it.  When fill_row_id is true the first column must
 * be "_row_id bigint" with an identity sequence, and each row's value is
 * taken from that sequence (the caller's value is ignored).  Must be
 * called inside a transaction; BulkInsertEnd must be called before commit.
 */
extern BulkInserter *BulkInsertBegin(Oid relid, bool fill_row_id);

/* The relation being inserted into (its tuple descriptor tells columns). */
extern Relation BulkInsertRelation(BulkInserter *inserter);

/*
 * Queue one row: values/nulls for every column in attribute order.  The
 * values are copied, so the caller may free or reset them afterwards.
 * Returns the _row_id given to the row (0 when fill_row_id is false).
 */
extern int64 BulkInsertRow(BulkInserter *inserter, Datum *values,
						   bool *nulls);

/*
 * Right after BulkInsertBegin: when the table has no page at all (just
 * truncated, or new), leave its indexes alone while rows are inserted and
 * build them once in BulkInsertEnd (which then takes a ShareLock on the
 * table and an exclusive lock on each index).  Only for a caller that does
 * not read the table through an index before BulkInsertEnd.
 */
extern void BulkInsertDeferIndexes(BulkInserter *inserter);

/* Flush the buffered rows, close the relation; returns rows inserted. */
extern int64 BulkInsertEnd(BulkInserter *inserter);

#endif							/* MEDALLION_BULK_INSERT_H */
