/*-------------------------------------------------------------------------
 *
 * cdc.c
 *	  Gold AUTO CDC flows: the incremental apply of change events into an
 *	  SCD type 1 or type 2 target with the semantics of Databricks AUTO CDC
 *	  INTO, by an update or by auto_cdc_apply().
 *
 * Semantics (the README documents these)
 * --------------------------------------
 * - Every source row is one change event.  It is a truncate when
 *   apply_as_truncates is true for it, else a delete when apply_as_deletes
 *   is true, else an upsert (a NULL condition counts as false).  Its
 *   sequence is sequence_by evaluated on the row; a NULL sequence, or a NULL
 *   key in an upsert or delete, is a data error (not-null violation) that
 *   fails the whole apply: nothing of the batch is written.
 * - The target is defined as if every event of the source up to the
 *   flow's watermark were sorted by sequence and applied in that order, so
 *   it never depends on arrival order or on how events were split into
 *   batches.  Per key and sequence value only one event counts: a delete
 *   wins over upserts, and among upserts the one with the highest source
 *   _row_id (the one that arrived last) wins.
 * - SCD type 1: a key's row holds the values of its last event when that
 *   is an upsert, and does not exist when it is a delete.  The source event
 *   log itself is the tombstone store, so a late event older than a delete
 *   never resurrects the key, while a newer upsert re-inserts it; tombstones
 *   never expire.  A truncate at sequence t removes every key whose last
 *   event is at or before t: events at or before the highest truncate are
 *   ignored, later ones apply.
 * - SCD type 2: consecutive upserts of a key form one version (a "run")
 *   while they are equal, null-safely, on every tracked column
 *   (track_history_column_list, or every kept column but
 *   track_history_except_column_list; by default every kept non-key
 *   column).  A version carries the values of its run's latest event,
 *   __start_at is the sequence of the run's first event, and __end_at the
 *   sequence of the next event (the next run's start, or a delete), NULL for
 *   the current version.  So late events split or extend closed versions, a
 *   delete closes the version current at its sequence and adds no row, and
 *   an upsert after a delete opens a new version.  Truncates are rejected
 *   for SCD type 2 when the flow is created.
 * - ignore_null_updates: a NULL column of an upsert takes the value the
 *   column had after the previous event of the key, back to the last delete
 *   (or truncate); after a delete the key starts from nothing.
 * - Tracked columns whose type has no equality operator (json, xml, ...)
 *   are compared by their text form.
 *
 * How an apply works
 * ------------------
 * Pipeline sources are append-only logs with an increasing _row_id, and
 * create_auto_cdc_flow indexes the source on the keys.  An apply of the
 * events with low < _row_id <= high runs one query (CdcEventsSql) that
 * returns, sorted by key and sequence, the events and target rows it needs,
 * walks them in C (CdcRunner) deriving the key's rows, then deletes the
 * rows it replaces (by ctid) and bulk-inserts the derived ones.  The keys of
 * the batch are of two kinds:
 * - "fast" keys, whose new events are all later than every event applied
 *   before (flow_state keeps the highest sequence applied, binary-encoded):
 *   the key's current row (SCD1) or current version (SCD2) stands for its
 *   whole history, and the new events follow it.  Closing an SCD2 version
 *   without changing it is an in-place update of __end_at (SCD2 targets
 *   have fillfactor 90, so it is a HOT update).  This is the in-order case,
 *   and costs what a hand-written close-and-insert costs.
 * - "slow" keys (late events): all their events are read from the source
 *   (key index) and their rows derived again; for SCD2 only the versions
 *   that end at or after the key's earliest new event are replaced, the
 *   older ones cannot change.
 * Every key is looked up by index, one at a time, so the cost of an apply
 * grows with the keys it touches and their histories, not with the size of
 * the target.  The first apply (and the one after a full refresh), and an
 * SCD1 batch holding a truncate, derive the whole target from the source in
 * one sorted pass.  The result equals a from-scratch recompute by
 * construction; t/050_cdc_property.pl checks it under random arrival
 * orders and batch splits.
 *
 * Triggers and row-level security on the target are refused (rows are
 * bulk-inserted); cdc_create.c says what the creation of a flow decides.
 *
 * User SQL (sequence_by and the conditions) is checked to be one SQL
 * expression and placed into the generated statements by user_sql.c, when
 * the flow is created and at each apply, and analysed against the source;
 * column names are quoted.
 * Applies run in the pipeline owner's context (FlowApplyIncremental).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "bulk_insert.h"
#include "catalog.h"
#include "cdc_internal.h"
#include "change_feed.h"
#include "flow.h"
#include "flow_definition.h"
#include "user_sql.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_auto_cdc_apply);

/* ---- flow_state ------------------------------------------------------ */

/* Compare two sequence values by the btree ordering of their type. */
static int
cdc_compare(CdcSpec *spec, Datum a, Datum b)
{
	TypeCacheEntry *typentry = lookup_type_cache(spec->seq_basetype,
												 TYPECACHE_CMP_PROC_FINFO);

	return DatumGetInt32(FunctionCall2Coll(&typentry->cmp_proc_finfo,
										   spec->seq_collation, a, b));
}

/* A sequence value from its binary form in hex, as flow_state keeps it. */
static Datum
cdc_decode_seq(CdcSpec *spec, const char *hex)
{
	size_t		hexlen = strlen(hex);
	StringInfoData buf;
	Oid			receive;
	Oid			ioparam;

	getTypeBinaryInputInfo(spec->seq_basetype, &receive, &ioparam);
	initStringInfo(&buf);
	enlargeStringInfo(&buf, hexlen / 2 + 1);
	buf.len = (int) hex_decode(hex, hexlen, buf.data);
	buf.data[buf.len] = '\0';
	return OidReceiveFunctionCall(receive, &buf, ioparam, -1);
}

/* The binary form of a sequence value in hex, for flow_state. */
static char *
cdc_encode_seq(CdcSpec *spec, Datum value)
{
	Oid			send;
	bool		isvarlena;
	bytea	   *bytes;
	size_t		len;
	char	   *hex;

	getTypeBinaryOutputInfo(spec->seq_basetype, &send, &isvarlena);
	bytes = OidSendFunctionCall(send, value);
	len = VARSIZE(bytes) - VARHDRSZ;
	hex = palloc(len * 2 + 1);
	hex[hex_encode(VARDATA(bytes), len, hex)] = '\0';
	return hex;
}

/*
 * Read the sequence values kept in flow_state.  They are ignored when they
 * were written for another sequence type (the source changed).
 */
static void
cdc_state_read(CdcSpec *spec, const FlowDesc *flow, CdcState *out)
{
	char	   *type_name = FlowStateString(flow, "seq_type");
	char	   *max_seq = FlowStateString(flow, "max_seq");
	char	   *truncate_seq = FlowStateString(flow, "truncate_seq");

	memset(out, 0, sizeof(CdcState));
	if (!spec->seq_storable || type_name == NULL ||
		strcmp(type_name, format_type_be(spec->seq_basetype)) != 0)
		return;
	if (max_seq != NULL)
	{
		out->max_seq = cdc_decode_seq(spec, max_seq);
		out->has_max = true;
	}
	if (truncate_seq != NULL)
	{
		out->truncate_seq = cdc_decode_seq(spec, truncate_seq);
		out->has_truncate = true;
	}
}

/* flow_state for the sequence values kept, written like a definition. */
static Jsonb *
cdc_state_build(CdcSpec *spec, CdcState *state)
{
	FlowDefinitionBuilder builder;

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutString(&builder, "seq_type",
							format_type_be(spec->seq_basetype));
	if (state->has_max)
		FlowDefinitionPutString(&builder, "max_seq",
								cdc_encode_seq(spec, state->max_seq));
	if (state->has_truncate)
		FlowDefinitionPutString(&builder, "truncate_seq",
								cdc_encode_seq(spec, state->truncate_seq));
	return FlowDefinitionEnd(&builder);
}

/* CdcStateRaise: raise *current to value if it is higher; true when it changed. */
bool
CdcStateRaise(CdcSpec *spec, bool *has, Datum *current, Datum value)
{
	if (*has && cdc_compare(spec, value, *current) <= 0)
		return false;
	*has = true;
	*current = value;
	return true;
}

/* ---- the phases of an apply ------------------------------------------ */

/*
 * CdcApplyBegin: set up an apply inside SPI, with JIT off: the statements touch a few
 * rows per key, but the planner cannot know how few keys a batch has, and
 * its estimates would often trigger JIT compilation, which then costs more
 * than the statement itself.  The spec and flow_state are read as of now:
 * the caller's copy of the flow was read before it locked the flow's row,
 * and an apply that committed meanwhile moved flow_state on.
 */
void
CdcApplyBegin(CdcApplyState *apply, FlowDesc *flow, int64 low, int64 high)
{
	int			i;

	memset(apply, 0, sizeof(CdcApplyState));
	SPI_connect();
	apply->guc_nest_level = UserSqlSettingsEnter(NULL);
	SetSettingInNestLevel("jit", "off");

	apply->flow = CatalogGetFlowById(flow->flow_id, false);
	apply->spec = CdcLoadSpec(apply->flow);
	apply->low = low;
	apply->batch_rows = -1;
	cdc_state_read(apply->spec, apply->flow, &apply->state);
	apply->new_state = apply->state;

	for (i = 0; i < CDC_NPARAMS; i++)
	{
		apply->types[i] = apply->spec->seq_basetype;
		apply->nulls[i] = true;
	}
	apply->types[CDC_PARAM_LOW] = INT8OID;
	apply->types[CDC_PARAM_HIGH] = INT8OID;
	apply->values[CDC_PARAM_LOW] = Int64GetDatum(low);
	apply->values[CDC_PARAM_HIGH] = Int64GetDatum(high);
	apply->nulls[CDC_PARAM_LOW] = false;
	apply->nulls[CDC_PARAM_HIGH] = false;
}

/*
 * CdcApplyRelease: free what one batch derived and close the target, so
 * that another batch can follow in the same apply.
 */
void
CdcApplyRelease(CdcApplyState *apply)
{
	CdcRunnerFree(&apply->runner);
	if (apply->target != NULL)
		table_close(apply->target, NoLock);
	apply->target = NULL;
	apply->feed = NULL;
}

/* CdcApplyEnd: end an apply: its memory, the target, its settings, SPI. */
void
CdcApplyEnd(CdcApplyState *apply)
{
	CdcApplyRelease(apply);
	AtEOXact_GUC(true, apply->guc_nest_level);
	SPI_finish();
}

/* Set a parameter of the events query. */
static void
cdc_apply_set_param(CdcApplyState *apply, int param, Datum value)
{
	apply->values[param] = value;
	apply->nulls[param] = false;
}

/*
 * When the flow has truncates: count the batch and find its highest
 * truncate.  Returns false when the batch is empty (nothing to do).
 */
static bool
cdc_apply_find_truncates(CdcApplyState *apply)
{
	CdcSpec    *spec = apply->spec;
	int16		typlen;
	bool		typbyval;
	bool		is_truncate;
	bool		isnull;
	Datum		seq;

	if (spec->truncates == NULL)
		return true;
	SpiExecute(CdcTruncateCheckSql(spec), 2, apply->types, apply->values,
			   NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	apply->batch_rows = SpiGetInt64(0, 4, NULL);
	is_truncate = DatumGetBool(SpiGetDatum(0, 1, &isnull));
	seq = SpiGetDatum(0, 2, &isnull);
	if (is_truncate && isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null sequence value in change event of flow \"%s\"",
						spec->flow_name),
				 errdetail("The sequence_by expression (%s) is null for the truncate with _row_id " INT64_FORMAT " of %s.",
						   spec->sequence_by, SpiGetInt64(0, 3, NULL),
						   spec->source_name)));
	if (is_truncate)
	{
		get_typlenbyval(spec->seq_basetype, &typlen, &typbyval);
		apply->batch_has_truncate = true;
		apply->batch_truncate = datumCopy(seq, typbyval, typlen);
	}
	return apply->batch_rows > 0;
}

/* Is the target empty (the first apply, or the one after a refresh)? */
static bool
cdc_target_is_empty(CdcSpec *spec)
{
	SpiExecute(psprintf("SELECT 1 FROM %s LIMIT 1", spec->target_name), 0,
			   NULL, NULL, NULL, SPI_OK_SELECT);
	return SPI_processed == 0;
}

/*
 * How to apply the keys of this batch (see the file header), and the
 * sequence values the events query compares with.
 */
static void
cdc_apply_choose_mode(CdcApplyState *apply)
{
	CdcSpec    *spec = apply->spec;
	CdcState   *state = &apply->state;
	CdcState   *new_state = &apply->new_state;

	if (apply->batch_has_truncate)
	{
		apply->state_changed |= CdcStateRaise(spec, &new_state->has_max,
										  &new_state->max_seq,
										  apply->batch_truncate);
		apply->state_changed |= CdcStateRaise(spec, &new_state->has_truncate,
										  &new_state->truncate_seq,
										  apply->batch_truncate);
		apply->mode = CDC_MODE_FULL;
		cdc_apply_set_param(apply, CDC_PARAM_TRUNCATE_SEQ,
							new_state->truncate_seq);
		return;
	}
	if (apply->low == 0 && cdc_target_is_empty(spec))
		apply->mode = CDC_MODE_FULL;
	else if (state->has_max)
	{
		apply->mode = CDC_MODE_BY_MAX;
		cdc_apply_set_param(apply, CDC_PARAM_MAX_SEQ, state->max_seq);
	}
	else
		apply->mode = CDC_MODE_ALL_SLOW;
	if (state->has_truncate)
		cdc_apply_set_param(apply, CDC_PARAM_TRUNCATE_SEQ,
							state->truncate_seq);
}

/*
 * The walk stopped at an invalid event, or at a target column of another
 * type: raise the error now that the query is over, so that it does not
 * come with the query's text as context.
 */
static void
cdc_apply_report_invalid(CdcApplyState *apply)
{
	CdcSpec    *spec = apply->spec;
	CdcRunner  *runner = &apply->runner;

	if (runner->mismatch != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table %s has type %s, but flow \"%s\" derives type %s",
						runner->mismatch, spec->target_name,
						format_type_be(runner->mismatch_type), spec->flow_name,
						format_type_be(runner->mismatch_derived)),
				 errhint("Recreate the flow, or restore the column's type.")));
	if (runner->invalid && runner->invalid_key < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null sequence value in change event of flow \"%s\"",
						spec->flow_name),
				 errdetail("The sequence_by expression (%s) is null for the row with _row_id " INT64_FORMAT " of %s.",
						   spec->sequence_by, runner->invalid_rid,
						   spec->source_name),
				 errhint("Every change event needs a sequence value: filter such rows out upstream, or use coalesce() in sequence_by.")));
	if (runner->invalid)
		CdcReportNullKey(spec, runner->invalid_key, runner->invalid_rid);
}

/*
 * CdcReportNullKey: the error of a change event whose key column number
 * key_index (0-based) is null; rid is its source row's _row_id, when the
 * source has one (a snapshot source may have none).
 */
void
CdcReportNullKey(CdcSpec *spec, int key_index, int64 rid)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("null value in key column \"%s\" of change event of flow \"%s\"",
					(char *) list_nth(spec->keys, key_index),
					spec->flow_name),
			 get_attnum(spec->source_relid, "_row_id") != InvalidAttrNumber ?
			 errdetail("The row with _row_id " INT64_FORMAT " of %s has a null key.",
					   rid, spec->source_name) :
			 errdetail("A row of %s has a null key.", spec->source_name)));
}

/*
 * CdcApplyParams: the parameters of the events query ($1 low, $2 high, $3
 * the highest sequence, $4 the truncate's), as the apply holds them.
 */
ParamListInfo
CdcApplyParams(CdcApplyState *apply)
{
	ParamListInfo params = makeParamList(CDC_NPARAMS);
	int			i;

	for (i = 0; i < CDC_NPARAMS; i++)
	{
		params->params[i].value = apply->values[i];
		params->params[i].isnull = apply->nulls[i];
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = apply->types[i];
	}
	params->numParams = CDC_NPARAMS;
	return params;
}

/*
 * CdcApplyDerive: run the events query (CdcEventsSql, or a query of the
 * same shape), its rows going straight to the runner, which derives the
 * target rows of the batch's keys and notes the rows they replace.
 */
void
CdcApplyDerive(CdcApplyState *apply, const char *events_sql)
{
	CdcSpec    *spec = apply->spec;
	SPIExecuteOptions options;
	int			result_code;

	apply->target = table_open(spec->target_relid, RowExclusiveLock);
	memset(&options, 0, sizeof(options));
	options.params = CdcApplyParams(apply);
	options.read_only = false;
	options.dest = CdcRunnerReceiver(&apply->runner, spec, apply->target,
									 apply->low);
	result_code = SPI_execute_extended(events_sql, &options);
	/* with a DestNone receiver of our own, SPI says SPI_OK_UTILITY */
	if (result_code != SPI_OK_SELECT && result_code != SPI_OK_UTILITY)
		elog(ERROR, "unexpected SPI result %s for the events of flow \"%s\"",
			 SPI_result_code_string(result_code), spec->flow_name);
	if (apply->runner.spec == NULL)
		elog(ERROR, "the events query of flow \"%s\" returned no description",
			 spec->flow_name);
	cdc_apply_report_invalid(apply);
	CdcRunnerFinish(&apply->runner);
}

/* A tid[] of the given ctids. */
static Datum
cdc_tid_array(ItemPointerData *tids, int count)
{
	Datum	   *elements = palloc(sizeof(Datum) * count);
	int			i;

	for (i = 0; i < count; i++)
		elements[i] = PointerGetDatum(&tids[i]);
	return PointerGetDatum(construct_array(elements, count, TIDOID,
										   sizeof(ItemPointerData), false,
										   TYPALIGN_SHORT));
}

/*
 * Run a statement that finds target rows by ctid, recording what it
 * changes in the change feed when there is one; returns the rows the
 * statement (or its capture) processed.  The rows are found by ctid
 * whatever the planner estimates: a sequential scan would make the cost
 * grow with the target.
 */
static int64
cdc_execute_by_ctid(CdcApplyState *apply, const char *sql, bool closing,
					int nargs, Oid *types, Datum *values)
{
	int			nest_level = NewGUCNestLevel();
	int64		count;

	SetSettingInNestLevel("enable_seqscan", "off");
	if (apply->feed != NULL)
		count = (int64) SpiExecute(ChangeFeedCaptureSql(apply->feed, sql,
														closing),
								   nargs, types, values, NULL, SPI_OK_INSERT);
	else
		count = (int64) SpiExecute(sql, nargs, types, values, NULL,
								   closing ? SPI_OK_UPDATE : SPI_OK_DELETE);
	AtEOXact_GUC(true, nest_level);
	return count;
}

/* Delete the rows derived again: all of them when the whole target is. */
static void
cdc_apply_delete_replaced(CdcApplyState *apply)
{
	CdcRunner  *runner = &apply->runner;
	Oid			tid_array_type = TIDARRAYOID;
	Datum		tids;

	if (apply->mode == CDC_MODE_FULL)
	{
		apply->deleted = (int64) SpiExecute(psprintf("DELETE FROM %s",
													 apply->spec->target_name),
											0, NULL, NULL, NULL,
											SPI_OK_DELETE);
		if (apply->feed != NULL)
			ChangeFeedReset(apply->feed);
		return;
	}
	if (runner->nreplaced == 0)
		return;
	tids = cdc_tid_array(runner->replaced, runner->nreplaced);
	apply->deleted = cdc_execute_by_ctid(apply,
										 CdcDeleteReplacedSql(apply->spec),
										 false, 1, &tid_array_type, &tids);
}

/*
 * Current versions closed without change: only __end_at is set, in place
 * (a HOT update), found by ctid like the deleted rows.  A capture records
 * two feed rows per version.
 */
static void
cdc_apply_close_versions(CdcApplyState *apply)
{
	CdcSpec    *spec = apply->spec;
	CdcRunner  *runner = &apply->runner;
	Oid			types[2];
	Datum		values[2];
	int16		seq_len;
	bool		seq_byval;
	char		seq_align;
	int64		count;

	if (runner->nclosed == 0)
		return;
	get_typlenbyvalalign(spec->seq_basetype, &seq_len, &seq_byval,
						 &seq_align);
	types[0] = TIDARRAYOID;
	types[1] = get_array_type(spec->seq_basetype);
	values[0] = cdc_tid_array(runner->closed, runner->nclosed);
	values[1] = PointerGetDatum(construct_array(runner->closed_at,
												runner->nclosed,
												spec->seq_basetype, seq_len,
												seq_byval, seq_align));
	count = cdc_execute_by_ctid(apply, CdcCloseVersionsSql(spec), true, 2,
								types, values);
	apply->closed = apply->feed != NULL ? count / 2 : count;
}

/* Bulk-insert the derived rows, adding them to the change feed. */
static void
cdc_apply_insert_derived(CdcApplyState *apply)
{
	CdcRunner  *runner = &apply->runner;
	BulkInserter *inserter;
	TupleTableSlot *slot;

	if (tuplestore_tuple_count(runner->output) == 0)
		return;
	inserter = BulkInsertBegin(apply->spec->target_relid, false);
	slot = MakeSingleTupleTableSlot(runner->target_desc, &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(runner->output, true, false, slot))
	{
		slot_getallattrs(slot);
		BulkInsertRow(inserter, slot->tts_values, slot->tts_isnull);
		if (apply->feed != NULL && apply->mode != CDC_MODE_FULL)
			ChangeFeedAddRow(apply->feed, slot->tts_values, slot->tts_isnull);
	}
	ExecDropSingleTupleTableSlot(slot);
	apply->inserted = BulkInsertEnd(inserter);
	CommandCounterIncrement();
}

/*
 * CdcApplyWrite: delete the rows derived again, close versions in place,
 * insert the derived rows, and tell the change feed (when an aggregate flow
 * reads it) what changed.
 */
void
CdcApplyWrite(CdcApplyState *apply)
{
	apply->feed = ChangeFeedBegin(apply->flow, apply->spec->target_relid,
								  apply->mode == CDC_MODE_FULL);
	cdc_apply_delete_replaced(apply);
	cdc_apply_close_versions(apply);
	cdc_apply_insert_derived(apply);
	if (apply->feed != NULL)
		ChangeFeedEnd(apply->feed);
}

/*
 * CdcApplySaveState: keep the batch's highest sequence in flow_state, when
 * it can be kept.
 */
void
CdcApplySaveState(CdcApplyState *apply)
{
	CdcSpec    *spec = apply->spec;
	CdcRunner  *runner = &apply->runner;

	if (runner->has_batch_max)
		apply->state_changed |= CdcStateRaise(spec, &apply->new_state.has_max,
										  &apply->new_state.max_seq,
										  runner->batch_max);
	if (apply->state_changed && spec->seq_storable)
		CatalogSetFlowState(apply->flow->flow_id,
							cdc_state_build(spec, &apply->new_state));
}

/* The counters, and the "cdc" member of the flow_progress details. */
static void
cdc_apply_report(CdcApplyState *apply, FlowResult *result)
{
	CdcRunner  *runner = &apply->runner;

	result->rows_read += apply->batch_rows >= 0 ? apply->batch_rows :
		runner->rows_read;
	result->rows_written += apply->inserted + apply->closed;
	if (apply->deleted > 0 || apply->inserted > 0 || apply->closed > 0)
		result->changed = true;
	FlowResultDetail(result);
	appendStringInfo(&result->details,
					 "\"cdc\": {\"scd_type\": %d, \"rows_inserted\": " INT64_FORMAT
					 ", \"rows_deleted\": " INT64_FORMAT
					 ", \"versions_closed\": " INT64_FORMAT,
					 apply->spec->scd_type, apply->inserted, apply->deleted,
					 apply->closed);
	if (apply->mode == CDC_MODE_FULL)
		appendStringInfoString(&result->details, ", \"full_recompute\": true}");
	else
		appendStringInfo(&result->details,
						 ", \"keys\": " INT64_FORMAT
						 ", \"keys_recomputed\": " INT64_FORMAT "}",
						 runner->keys, runner->keys_recomputed);
}

/*
 * CdcApply: see cdc.h and the file header.  Runs in the pipeline owner's
 * context, inside FlowApplyIncremental's transaction, which holds the
 * flow's catalog row lock.
 */
void
CdcApply(FlowContext *context, FlowDesc *flow, int64 low, int64 high,
		 FlowResult *result)
{
	CdcApplyState apply;

	CdcApplyBegin(&apply, flow, low, high);
	if (cdc_apply_find_truncates(&apply))
	{
		CdcSpec    *spec = apply.spec;

		cdc_apply_choose_mode(&apply);
		CdcApplyDerive(&apply,
					   CdcEventsSql(spec, apply.mode,
									spec->truncates != NULL &&
									!apply.nulls[CDC_PARAM_TRUNCATE_SEQ]));
		CdcApplyWrite(&apply);
		CdcApplySaveState(&apply);
		cdc_apply_report(&apply, result);
	}
	CdcApplyEnd(&apply);
}

/*
 * CdcReset: a full refresh empties the target and the watermark; the
 * sequence values kept in flow_state go with them.
 */
void
CdcReset(FlowDesc *flow)
{
	FlowDefinitionBuilder empty;

	FlowDefinitionBegin(&empty);
	CatalogSetFlowState(flow->flow_id, FlowDefinitionEnd(&empty));
}

/* ---- auto_cdc_apply -------------------------------------------------- */

/*
 * auto_cdc_apply(target): apply the source rows beyond the flow's
 * watermark now, in the calling transaction, as an update would (same
 * lock, ceiling and owner context: FlowApplyIncremental), and log it as a
 * flow_progress event of its own update id.  Returns the rows read.
 */
Datum
medallion_auto_cdc_apply(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	Oid			target_relid = PG_GETARG_OID(0);
	FlowDesc   *flow;
	PipelineDesc *pipeline;
	FlowContext context;
	FlowResult	result;
	TimestampTz start;

	flow = CatalogGetFlowByTarget(target_relid, true);
	if (flow == NULL || flow->type != FLOW_TYPE_AUTO_CDC)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table %s is not the target of an auto CDC flow",
						CatalogQualifiedRelationName(target_relid))));
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);
	CatalogCheckPipelineOwner(pipeline);

	memset(&context, 0, sizeof(context));
	context.pipeline = pipeline;
	context.update_id = CatalogNextUpdateId();
	context.full_refresh = false;
	FlowResultInit(&result);

	start = GetCurrentTimestamp();
	FlowApplyIncremental(&context, flow, CdcApply, &result);
	if (result.changed)
	{
		CatalogMarkTargetChangedNow(flow->flow_id);
		CatalogMarkInputChanged(target_relid);
	}

	/* reported like a flow of an update, marked as a direct apply */
	FlowResultDetail(&result);
	appendStringInfoString(&result.details, "\"direct\": true");
	EventLogWrite(pipeline, context.update_id, flow->flow_name,
				  "flow_progress", "INFO", "flow completed",
				  FlowProgressDetails(flow, &result,
									  GetCurrentTimestamp() - start,
									  "COMPLETED"));

	PG_RETURN_INT64(result.rows_read);
}
