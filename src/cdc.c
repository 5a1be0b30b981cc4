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
#include "utils/json.h"
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

/*
 * Sequence values kept in flow_state between applies: the highest
 * sequence applied (any event) and the highest truncate applied.
 */
typedef struct CdcState
{
	bool		has_max;
	Datum		max_seq;
	bool		has_truncate;
	Datum		truncate_seq;
} CdcState;

/* ---- flow_state ------------------------------------------------------ */

static int
cdc_compare(CdcSpec *spec, Datum a, Datum b)
{
	TypeCacheEntry *typentry = lookup_type_cache(spec->seq_basetype,
												 TYPECACHE_CMP_PROC_FINFO);

	return DatumGetInt32(FunctionCall2Coll(&typentry->cmp_proc_finfo,
										   spec->seq_collation, a, b));
}

static char *
cdc_state_get_string(Jsonb *state, const char *key)
{
	JsonbValue *value;

	if (state == NULL || !JB_ROOT_IS_OBJECT(state))
		return NULL;
	value = getKeyJsonValueFromContainer(&state->root, key, strlen(key), NULL);
	if (value == NULL || value->type != jbvString)
		return NULL;
	return pnstrdup(value->val.string.val, value->val.string.len);
}

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
cdc_state_read(CdcSpec *spec, Jsonb *state, CdcState *out)
{
	char	   *type_name = cdc_state_get_string(state, "seq_type");
	char	   *max_seq = cdc_state_get_string(state, "max_seq");
	char	   *truncate_seq = cdc_state_get_string(state, "truncate_seq");

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

static Jsonb *
cdc_state_build(CdcSpec *spec, CdcState *state)
{
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"seq_type\": ");
	escape_json(&json, format_type_be(spec->seq_basetype));
	if (state->has_max)
		appendStringInfo(&json, ", \"max_seq\": \"%s\"",
						 cdc_encode_seq(spec, state->max_seq));
	if (state->has_truncate)
		appendStringInfo(&json, ", \"truncate_seq\": \"%s\"",
						 cdc_encode_seq(spec, state->truncate_seq));
	appendStringInfoChar(&json, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(json.data)));
}

/* Raise *current to value if it is higher; true when it changed. */
static bool
cdc_raise(CdcSpec *spec, bool *has, Datum *current, Datum value)
{
	if (*has && cdc_compare(spec, value, *current) <= 0)
		return false;
	*has = true;
	*current = value;
	return true;
}

static bool
cdc_target_is_empty(CdcSpec *spec)
{
	SpiExecute(psprintf("SELECT 1 FROM %s LIMIT 1", spec->target_name), 0,
			   NULL, NULL, NULL, SPI_OK_SELECT);
	return SPI_processed == 0;
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
	FlowDesc   *current;
	CdcSpec    *spec;
	CdcState	state;
	CdcState	new_state;
	CdcMode		mode;
	CdcRunner	runner;
	Oid			types[4];
	Datum		values[4];
	char		nulls[4] = {' ', ' ', 'n', 'n'};
	bool		batch_has_truncate = false;
	Datum		batch_truncate = (Datum) 0;
	int64		batch_rows = -1;
	int64		deleted;
	int64		inserted = 0;
	int64		closed = 0;
	int16		typlen;
	bool		typbyval;
	bool		state_changed = false;
	bool		isnull;
	int			guc_nest_level;
	Relation	target;
	SPIExecuteOptions options;
	ParamListInfo params;
	int			result_code;
	int			i;
	ChangeFeed *feed;
	char	   *sql;

	SPI_connect();

	/*
	 * The statements below touch a few rows per key, but the planner cannot
	 * know how few keys a batch has, and its estimates would often trigger
	 * JIT compilation, which then costs more than the statement itself.
	 */
	guc_nest_level = UserSqlSettingsEnter(NULL);
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/*
	 * flow_state as of now: the caller's copy was read before it locked the
	 * flow's row, and an apply that committed meanwhile moved it on.
	 */
	current = CatalogGetFlowById(flow->flow_id);
	spec = CdcLoadSpec(current);
	cdc_state_read(spec, current->flow_state, &state);
	get_typlenbyval(spec->seq_basetype, &typlen, &typbyval);

	types[0] = INT8OID;
	types[1] = INT8OID;
	types[2] = spec->seq_basetype;
	types[3] = spec->seq_basetype;
	values[0] = Int64GetDatum(low);
	values[1] = Int64GetDatum(high);
	values[2] = (Datum) 0;
	values[3] = (Datum) 0;

	/* truncates in the batch? */
	if (spec->truncates != NULL)
	{
		SpiExecute(CdcTruncateCheckSql(spec), 2, types, values, NULL,
				   SPI_OK_SELECT);
		batch_rows = 0;
		if (SPI_processed > 0)
		{
			bool		is_truncate = DatumGetBool(SpiGetDatum(0, 1, &isnull));
			Datum		seq = SpiGetDatum(0, 2, &isnull);

			batch_rows = SpiGetInt64(0, 4, NULL);
			if (is_truncate && isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("null sequence value in change event of flow \"%s\"",
								spec->flow_name),
						 errdetail("sequence_by (%s) is null for the truncate with _row_id " INT64_FORMAT " of %s.",
								   spec->sequence_by, SpiGetInt64(0, 3, NULL),
								   spec->source_name)));
			if (is_truncate)
			{
				batch_has_truncate = true;
				batch_truncate = datumCopy(seq, typbyval, typlen);
			}
		}
		if (batch_rows == 0)
		{
			AtEOXact_GUC(true, guc_nest_level);
			SPI_finish();
			return;
		}
	}

	/* how to apply the keys of this batch */
	new_state = state;
	if (batch_has_truncate)
	{
		state_changed |= cdc_raise(spec, &new_state.has_max,
								   &new_state.max_seq, batch_truncate);
		state_changed |= cdc_raise(spec, &new_state.has_truncate,
								   &new_state.truncate_seq, batch_truncate);
		mode = CDC_MODE_FULL;
		values[3] = new_state.truncate_seq;
		nulls[3] = ' ';
	}
	else
	{
		if (low == 0 && cdc_target_is_empty(spec))
			mode = CDC_MODE_FULL;	/* the first apply, or after a refresh */
		else if (state.has_max)
		{
			mode = CDC_MODE_BY_MAX;
			values[2] = state.max_seq;
			nulls[2] = ' ';
		}
		else
			mode = CDC_MODE_ALL_SLOW;
		if (state.has_truncate)
		{
			values[3] = state.truncate_seq;
			nulls[3] = ' ';
		}
	}

	/* walk the events, deriving the target rows */
	target = table_open(spec->target_relid, RowExclusiveLock);
	params = makeParamList(4);
	for (i = 0; i < 4; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = nulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	params->numParams = 4;
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	options.dest = CdcRunnerReceiver(&runner, spec, target, low);
	result_code = SPI_execute_extended(CdcEventsSql(spec, mode,
													  spec->truncates != NULL &&
													  nulls[3] == ' '),
									   &options);
	/* with a DestNone receiver of our own, SPI says SPI_OK_UTILITY */
	if (result_code != SPI_OK_SELECT && result_code != SPI_OK_UTILITY)
		elog(ERROR, "unexpected SPI result %s for the events of flow \"%s\"",
			 SPI_result_code_string(result_code), spec->flow_name);
	if (runner.spec == NULL)
		elog(ERROR, "the events query of flow \"%s\" returned no description",
			 spec->flow_name);
	if (runner.mismatch != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table %s has type %s, but flow \"%s\" derives type %s",
						runner.mismatch, spec->target_name,
						format_type_be(runner.mismatch_type), spec->flow_name,
						format_type_be(runner.mismatch_derived)),
				 errhint("Recreate the flow, or restore the column's type.")));
	if (runner.invalid && runner.invalid_key < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null sequence value in change event of flow \"%s\"",
						spec->flow_name),
				 errdetail("sequence_by (%s) is null for the row with _row_id " INT64_FORMAT " of %s.",
						   spec->sequence_by, runner.invalid_rid,
						   spec->source_name),
				 errhint("Every change event needs a sequence value: filter such rows out upstream, or use coalesce() in sequence_by.")));
	if (runner.invalid)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in key column \"%s\" of change event of flow \"%s\"",
						(char *) list_nth(spec->keys, runner.invalid_key),
						spec->flow_name),
				 errdetail("The row with _row_id " INT64_FORMAT " of %s has a null key.",
						   runner.invalid_rid, spec->source_name)));
	CdcRunnerFinish(&runner);

	/*
	 * replace: delete the rows derived again, insert the derived rows, and
	 * tell the change feed (when an aggregate flow reads it) what changed
	 */
	feed = ChangeFeedBegin(current, spec->target_relid,
						   mode == CDC_MODE_FULL);
	if (mode == CDC_MODE_FULL)
	{
		deleted = (int64) SpiExecute(psprintf("DELETE FROM %s",
											  spec->target_name),
									 0, NULL, NULL, NULL, SPI_OK_DELETE);
		if (feed != NULL)
			ChangeFeedReset(feed);
	}
	else if (runner.nreplaced > 0)
	{
		Oid			tid_array_type = TIDARRAYOID;
		Datum		tids[1];
		Datum	   *elements = palloc(sizeof(Datum) * runner.nreplaced);
		int			nest_level;

		for (i = 0; i < runner.nreplaced; i++)
			elements[i] = PointerGetDatum(&runner.replaced[i]);
		tids[0] = PointerGetDatum(construct_array(elements, runner.nreplaced,
												  TIDOID, sizeof(ItemPointerData),
												  false, TYPALIGN_SHORT));

		/*
		 * Found by ctid, whatever the planner estimates: a sequential scan
		 * would make the cost grow with the target.
		 */
		nest_level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
		sql = psprintf("DELETE FROM %s WHERE ctid"
					   " OPERATOR(pg_catalog.=) ANY ($1)",
					   spec->target_name);
		if (feed != NULL)
			deleted = (int64) SpiExecute(ChangeFeedCaptureSql(feed, sql, false),
										 1, &tid_array_type, tids, NULL,
										 SPI_OK_INSERT);
		else
			deleted = (int64) SpiExecute(sql, 1, &tid_array_type, tids, NULL,
										 SPI_OK_DELETE);
		AtEOXact_GUC(true, nest_level);
	}
	else
		deleted = 0;

	if (runner.nclosed > 0)
	{
		Oid			update_types[2] = {TIDARRAYOID,
		get_array_type(spec->seq_basetype)};
		Datum		update_values[2];
		Datum	   *elements = palloc(sizeof(Datum) * runner.nclosed);
		int			nest_level;
		int16		seq_len;
		bool		seq_byval;
		char		seq_align;

		/*
		 * Current versions closed without change: only __end_at is set, in
		 * place, found by ctid like the deleted rows.
		 */
		get_typlenbyvalalign(spec->seq_basetype, &seq_len, &seq_byval,
							 &seq_align);
		for (i = 0; i < runner.nclosed; i++)
			elements[i] = PointerGetDatum(&runner.closed[i]);
		update_values[0] = PointerGetDatum(construct_array(elements,
														   runner.nclosed,
														   TIDOID,
														   sizeof(ItemPointerData),
														   false,
														   TYPALIGN_SHORT));
		update_values[1] = PointerGetDatum(construct_array(runner.closed_at,
														   runner.nclosed,
														   spec->seq_basetype,
														   seq_len, seq_byval,
														   seq_align));
		nest_level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
		sql = psprintf("UPDATE %s AS __medallion_t SET __end_at = __u.__end"
					   " FROM ROWS FROM (pg_catalog.unnest($1),"
					   " pg_catalog.unnest($2))"
					   " AS __u(__tid, __end)"
					   " WHERE __medallion_t.ctid OPERATOR(pg_catalog.=) __u.__tid",
					   spec->target_name);
		if (feed != NULL)
			closed = (int64) SpiExecute(ChangeFeedCaptureSql(feed, sql, true),
										2, update_types, update_values, NULL,
										SPI_OK_INSERT) / 2;
		else
			closed = (int64) SpiExecute(sql, 2, update_types, update_values,
										NULL, SPI_OK_UPDATE);
		AtEOXact_GUC(true, nest_level);
	}
	if (tuplestore_tuple_count(runner.output) > 0)
	{
		BulkInserter *inserter = BulkInsertBegin(spec->target_relid, false);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(runner.target_desc,
														&TTSOpsMinimalTuple);

		while (tuplestore_gettupleslot(runner.output, true, false, slot))
		{
			slot_getallattrs(slot);
			BulkInsertRow(inserter, slot->tts_values, slot->tts_isnull);
			if (feed != NULL && mode != CDC_MODE_FULL)
				ChangeFeedAddRow(feed, slot->tts_values, slot->tts_isnull);
		}
		ExecDropSingleTupleTableSlot(slot);
		inserted = BulkInsertEnd(inserter);
		CommandCounterIncrement();
	}
	if (feed != NULL)
		ChangeFeedEnd(feed);
	table_close(target, NoLock);

	/* the state after this batch */
	if (runner.has_batch_max)
		state_changed |= cdc_raise(spec, &new_state.has_max,
								   &new_state.max_seq, runner.batch_max);
	if (state_changed && spec->seq_storable)
		CatalogSetFlowState(flow->flow_id, cdc_state_build(spec, &new_state));

	result->rows_read += batch_rows >= 0 ? batch_rows : runner.rows_read;
	result->rows_written += inserted + closed;
	if (deleted > 0 || inserted > 0 || closed > 0)
		result->changed = true;
	if (result->details.len > 0)
		appendStringInfoString(&result->details, ", ");
	appendStringInfo(&result->details,
					 "\"cdc\": {\"scd_type\": %d, \"rows_inserted\": " INT64_FORMAT
					 ", \"rows_deleted\": " INT64_FORMAT
					 ", \"versions_closed\": " INT64_FORMAT,
					 spec->scd_type, inserted, deleted, closed);
	if (mode == CDC_MODE_FULL)
		appendStringInfoString(&result->details, ", \"full_recompute\": true}");
	else
		appendStringInfo(&result->details,
						 ", \"keys\": " INT64_FORMAT
						 ", \"keys_recomputed\": " INT64_FORMAT "}",
						 runner.keys, runner.keys_recomputed);
	CdcRunnerFree(&runner);
	AtEOXact_GUC(true, guc_nest_level);
	SPI_finish();
}

/*
 * CdcReset: a full refresh empties the target and the watermark; the
 * sequence values kept in flow_state go with them.
 */
void
CdcReset(FlowDesc *flow)
{
	CatalogSetFlowState(flow->flow_id,
						DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														   CStringGetDatum("{}"))));
}

/* ---- auto_cdc_apply -------------------------------------------------- */

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

	/* reported like a flow of an update, marked as a direct apply */
	if (result.details.len > 0)
		appendStringInfoString(&result.details, ", ");
	appendStringInfoString(&result.details, "\"direct\": true");
	EventLogWrite(pipeline, context.update_id, flow->flow_name,
				  "flow_progress", "INFO", "flow completed",
				  FlowProgressDetails(flow, &result,
									  GetCurrentTimestamp() - start,
									  "COMPLETED"));

	PG_RETURN_INT64(result.rows_read);
}
