/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *	  Inserting many rows into one table the way COPY FROM does: slots
 *	  buffered and written with table_multi_insert, then index entries.
 *
 * Used by bronze ingestion, silver and gold flows, where inserting row by
 * row through SPI would cost several times more than COPY.  Constraints are
 * checked and insert triggers fire as they do for COPY FROM (BEFORE ROW
 * triggers may change or skip a row; AFTER ROW and statement triggers,
 * with transition tables, fire at the end), so a DBA's trigger on a
 * pipeline table, or a change log kept by another flow, sees every row.
 * Row-level security is not supported on pipeline tables and is refused
 * when enabled, so that nothing is bypassed silently.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bulk_insert.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "bulk_insert.h"
#include "flow.h"

/* flush after this many rows or this many bytes of row data */
#define BULK_INSERT_MAX_ROWS	1000
#define BULK_INSERT_MAX_BYTES	(4 * 1024 * 1024)

struct BulkInserter
{
	Relation	relation;
	EState	   *estate;
	ResultRelInfo *result_relation;
	BulkInsertState bulk_state;
	CommandId	command_id;
	TupleTableSlot *slots[BULK_INSERT_MAX_ROWS];
	int			buffered_rows;
	Size		buffered_bytes;
	int64		inserted_rows;
	bool		fill_row_id;
	Oid			row_id_sequence;
	bool		has_triggers;
	TransitionCaptureState *transition_capture;
	bool		defer_indexes;	/* build the indexes at the end instead */
};

BulkInserter *
BulkInsertBegin(Oid relid, bool fill_row_id)
{
	BulkInserter *inserter = palloc0(sizeof(BulkInserter));
	Relation	relation;
	AclResult	acl;

	relation = table_open(relid, RowExclusiveLock);
	if (relation->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table",
						RelationGetRelationName(relation))));
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(relation));
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row-level security is not supported on pipeline table \"%s\"",
						RelationGetRelationName(relation))));

	inserter->relation = relation;
	inserter->fill_row_id = fill_row_id;
	if (fill_row_id)
		inserter->row_id_sequence = FlowRowIdSequence(relid);

	inserter->estate = CreateExecutorState();
	inserter->result_relation = makeNode(ResultRelInfo);
	InitResultRelInfo(inserter->result_relation, relation, 0, NULL, 0);
	ExecOpenIndices(inserter->result_relation, false);
	inserter->bulk_state = GetBulkInsertState();
	inserter->command_id = GetCurrentCommandId(true);

	/* insert triggers, as COPY FROM fires them */
	if (relation->trigdesc != NULL)
	{
		inserter->has_triggers = true;
		AfterTriggerBeginQuery();
		inserter->transition_capture =
			MakeTransitionCaptureState(relation->trigdesc, relid, CMD_INSERT);
		ExecBSInsertTriggers(inserter->estate, inserter->result_relation);
	}
	return inserter;
}

/*
 * BulkInsertDeferIndexes: see bulk_insert.h.  A table with no page at all
 * holds no row: filling it and then building each index by one sort costs
 * a fraction of one index insertion per row (random keys in particular),
 * as a DBA's CREATE INDEX after a load does.
 */
void
BulkInsertDeferIndexes(BulkInserter *inserter)
{
	if (inserter->result_relation->ri_NumIndices > 0 &&
		RelationGetNumberOfBlocks(inserter->relation) == 0)
		inserter->defer_indexes = true;
}

Relation
BulkInsertRelation(BulkInserter *inserter)
{
	return inserter->relation;
}

/*
 * Write the buffered rows with table_multi_insert, then insert their index
 * entries and fire their AFTER INSERT row triggers, as COPY FROM does for
 * a full buffer.
 */
static void
bulk_insert_flush(BulkInserter *inserter)
{
	int			index;
	EState	   *estate = inserter->estate;

	if (inserter->buffered_rows == 0)
		return;

	table_multi_insert(inserter->relation, inserter->slots,
					   inserter->buffered_rows, inserter->command_id, 0,
					   inserter->bulk_state);
	for (index = 0; index < inserter->buffered_rows; index++)
	{
		TupleTableSlot *slot = inserter->slots[index];

		List	   *recheck = NIL;

		if (inserter->result_relation->ri_NumIndices > 0 &&
			!inserter->defer_indexes)
			recheck = ExecInsertIndexTuples(inserter->result_relation, slot,
											estate, false, false, NULL, NIL);
		if (inserter->has_triggers)
			ExecARInsertTriggers(estate, inserter->result_relation, slot,
								 recheck, inserter->transition_capture);
		list_free(recheck);
		ExecClearTuple(slot);
	}
	ResetPerTupleExprContext(estate);
	inserter->inserted_rows += inserter->buffered_rows;
	inserter->buffered_rows = 0;
	inserter->buffered_bytes = 0;
}

int64
BulkInsertRow(BulkInserter *inserter, Datum *values, bool *nulls)
{
	TupleDesc	descriptor = RelationGetDescr(inserter->relation);
	TupleTableSlot *slot;
	int			column;
	int64		row_id = 0;

	slot = inserter->slots[inserter->buffered_rows];
	if (slot == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(inserter->estate->es_query_cxt);

		slot = MakeSingleTupleTableSlot(descriptor,
										table_slot_callbacks(inserter->relation));
		inserter->slots[inserter->buffered_rows] = slot;
		MemoryContextSwitchTo(old);
	}

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * descriptor->natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * descriptor->natts);
	if (inserter->fill_row_id)
	{
		row_id = nextval_internal(inserter->row_id_sequence, false);
		slot->tts_values[0] = Int64GetDatum(row_id);
		slot->tts_isnull[0] = false;
	}
	ExecStoreVirtualTuple(slot);

	/* copy the values into the slot, so the caller may free its own */
	ExecMaterializeSlot(slot);

	/* a BEFORE ROW trigger may change the row, or skip it */
	if (inserter->has_triggers &&
		inserter->relation->trigdesc->trig_insert_before_row &&
		!ExecBRInsertTriggers(inserter->estate, inserter->result_relation, slot))
	{
		ExecClearTuple(slot);
		return row_id;
	}

	for (column = 0; column < descriptor->natts; column++)
	{
		Form_pg_attribute attribute = TupleDescAttr(descriptor, column);

		if (!slot->tts_isnull[column] && attribute->attlen == -1)
			inserter->buffered_bytes +=
				VARSIZE_ANY(DatumGetPointer(slot->tts_values[column]));
	}

	if (descriptor->constr != NULL)
		ExecConstraints(inserter->result_relation, slot, inserter->estate);

	inserter->buffered_rows++;
	if (inserter->buffered_rows >= BULK_INSERT_MAX_ROWS ||
		inserter->buffered_bytes >= BULK_INSERT_MAX_BYTES)
		bulk_insert_flush(inserter);
	return row_id;
}

int64
BulkInsertEnd(BulkInserter *inserter)
{
	int			index;
	int64		inserted;

	bulk_insert_flush(inserter);
	if (inserter->has_triggers)
	{
		ExecASInsertTriggers(inserter->estate, inserter->result_relation,
							 inserter->transition_capture);
		AfterTriggerEndQuery(inserter->estate);
	}
	for (index = 0; index < BULK_INSERT_MAX_ROWS; index++)
		if (inserter->slots[index] != NULL)
			ExecDropSingleTupleTableSlot(inserter->slots[index]);
	ExecCloseIndices(inserter->result_relation);
	FreeBulkInsertState(inserter->bulk_state);
	table_finish_bulk_insert(inserter->relation, 0);
	if (inserter->defer_indexes && inserter->inserted_rows > 0)
	{
		ReindexParams params = {0};

		/* unique and exclusion constraints are checked by the build */
		(void) reindex_relation(RelationGetRelid(inserter->relation),
								REINDEX_REL_CHECK_CONSTRAINTS, &params);
	}
	FreeExecutorState(inserter->estate);
	table_close(inserter->relation, NoLock);
	inserted = inserter->inserted_rows;
	pfree(inserter);
	return inserted;
}
