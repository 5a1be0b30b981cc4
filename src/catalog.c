/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Reading and writing medallion's configuration tables and event log.
 *
 * Every statement here is fixed, schema-qualified and parameterised, and
 * runs as the extension owner so that callers need no privileges on the
 * tables themselves.  Callers decide who may do what (for example with
 * CatalogCheckPipelineOwner) before they call in.  Each function connects
 * to SPI itself and copies its results into the caller's memory context.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "guc.h"
#include "flow.h"
#include "spi_util.h"

#define PIPELINE_COLUMNS \
	"pipeline_id, pipeline_name, owner::oid, mode, " \
	"(pg_catalog.date_part('epoch', trigger_interval) * 1000)::bigint, " \
	"search_path, state, consecutive_failures"

#define FLOW_COLUMNS \
	"flow_id, pipeline_id, flow_name, flow_type, target_table::oid, " \
	"source_table::oid, source, definition, watermark, flow_state, " \
	"refresh_pending"

/* A PipelineDesc from row of SPI_tuptable (PIPELINE_COLUMNS). */
static PipelineDesc *
pipeline_from_row(uint64 row)
{
	PipelineDesc *pipeline = palloc0(sizeof(PipelineDesc));
	bool		isnull;

	pipeline->pipeline_id = (int32) SpiGetInt64(row, 1, NULL);
	pipeline->pipeline_name = SpiGetText(row, 2);
	pipeline->owner = DatumGetObjectId(SpiGetDatum(row, 3, &isnull));
	pipeline->mode = SpiGetText(row, 4);
	pipeline->trigger_interval_ms = SpiGetInt64(row, 5, NULL);
	pipeline->search_path = SpiGetText(row, 6);
	pipeline->state = SpiGetText(row, 7);
	pipeline->consecutive_failures = (int32) SpiGetInt64(row, 8, NULL);
	return pipeline;
}

static Jsonb *
copy_jsonb_column(uint64 row, int attnum)
{
	bool		isnull;
	Datum		value = SpiGetDatum(row, attnum, &isnull);

	if (isnull)
		return NULL;
	return DatumGetJsonbPCopy(value);
}

/* A FlowDesc from row of SPI_tuptable (FLOW_COLUMNS). */
static FlowDesc *
flow_from_row(uint64 row)
{
	FlowDesc   *flow = palloc0(sizeof(FlowDesc));
	bool		isnull;
	Datum		value;

	flow->flow_id = (int32) SpiGetInt64(row, 1, NULL);
	flow->pipeline_id = (int32) SpiGetInt64(row, 2, NULL);
	flow->flow_name = SpiGetText(row, 3);
	flow->flow_type = SpiGetText(row, 4);
	flow->type = CatalogFlowTypeFromName(flow->flow_type);
	flow->target_relid = DatumGetObjectId(SpiGetDatum(row, 5, &isnull));
	value = SpiGetDatum(row, 6, &isnull);
	flow->source_relid = isnull ? InvalidOid : DatumGetObjectId(value);
	flow->source = SpiGetText(row, 7);
	flow->definition = copy_jsonb_column(row, 8);
	flow->watermark = SpiGetInt64(row, 9, NULL);
	flow->flow_state = copy_jsonb_column(row, 10);
	flow->refresh_pending = DatumGetBool(SpiGetDatum(row, 11, &isnull));
	return flow;
}

/*
 * Run a catalog query and turn its rows into structs allocated in the
 * caller's memory context.
 */
static List *
catalog_query(const char *sql, int nargs, Oid *types, Datum *values,
			  void *(*from_row) (uint64 row))
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext spi_context;
	List	   *result = NIL;
	uint64		row;

	SPI_connect();
	SpiExecuteAsExtensionOwner(sql, nargs, types, values, NULL, SPI_OK_SELECT);
	spi_context = MemoryContextSwitchTo(caller_context);
	for (row = 0; row < SPI_processed; row++)
		result = lappend(result, from_row(row));
	MemoryContextSwitchTo(spi_context);
	SPI_finish();
	return result;
}

static void *
pipeline_row(uint64 row)
{
	return pipeline_from_row(row);
}

static void *
flow_row(uint64 row)
{
	return flow_from_row(row);
}

PipelineDesc *
CatalogGetPipeline(const char *pipeline_name, bool missing_ok)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *rows;

	if (pipeline_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline name must not be null")));

	values[0] = CStringGetTextDatum(pipeline_name);
	rows = catalog_query("SELECT " PIPELINE_COLUMNS
						 " FROM medallion.pipeline"
						 " WHERE pipeline_name OPERATOR(pg_catalog.=) $1",
						 1, types, values, pipeline_row);
	if (rows == NIL)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", pipeline_name),
				 errhint("Pipelines are listed in medallion.pipelines.")));
	}
	return linitial(rows);
}

PipelineDesc *
CatalogGetPipelineById(int32 pipeline_id, bool missing_ok)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	List	   *rows;

	values[0] = Int32GetDatum(pipeline_id);
	rows = catalog_query("SELECT " PIPELINE_COLUMNS
						 " FROM medallion.pipeline"
						 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
						 1, types, values, pipeline_row);
	if (rows == NIL)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline with id %d does not exist", pipeline_id)));
	}
	return linitial(rows);
}

List *
CatalogGetFlows(int32 pipeline_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(pipeline_id);
	return catalog_query("SELECT " FLOW_COLUMNS
						 " FROM medallion.flow"
						 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
						 " ORDER BY flow_id",
						 1, types, values, flow_row);
}

FlowDesc *
CatalogGetFlowByTarget(Oid target_relid, bool missing_ok)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	List	   *rows;

	values[0] = ObjectIdGetDatum(target_relid);
	rows = catalog_query("SELECT " FLOW_COLUMNS
						 " FROM medallion.flow"
						 " WHERE target_table::oid OPERATOR(pg_catalog.=) $1"
						 " ORDER BY flow_type OPERATOR(pg_catalog.=) 'append', flow_id",
						 1, types, values, flow_row);
	if (rows == NIL)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" is not the target of a medallion flow",
						CatalogQualifiedRelationName(target_relid))));
	}
	return linitial(rows);
}

List *
CatalogGetFlowsByTarget(Oid target_relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(target_relid);
	return catalog_query("SELECT " FLOW_COLUMNS
						 " FROM medallion.flow"
						 " WHERE target_table::oid OPERATOR(pg_catalog.=) $1"
						 " ORDER BY flow_id",
						 1, types, values, flow_row);
}

FlowDesc *
CatalogGetFlowById(int32 flow_id, bool missing_ok)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	List	   *rows;

	values[0] = Int32GetDatum(flow_id);
	rows = catalog_query("SELECT " FLOW_COLUMNS
						 " FROM medallion.flow"
						 " WHERE flow_id OPERATOR(pg_catalog.=) $1",
						 1, types, values, flow_row);
	if (rows == NIL)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("flow with id %d does not exist", flow_id)));
	}
	return linitial(rows);
}

void
CatalogCheckPipelineOwner(PipelineDesc *pipeline)
{
	if (!has_privs_of_role(GetUserId(), pipeline->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of pipeline \"%s\"",
						pipeline->pipeline_name)));
}

char *
CatalogQualifiedRelationName(Oid relid)
{
	char	   *relation_name = get_rel_name(relid);

	if (relation_name == NULL)
		return psprintf("(dropped table %u)", relid);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relation_name);
}

/* medallion.flow.flow_type of each FlowType, in enum order. */
static const char *const flow_type_names[FLOW_TYPE_COUNT] = {
	[FLOW_TYPE_BRONZE] = "bronze",
	[FLOW_TYPE_SILVER] = "silver",
	[FLOW_TYPE_AUTO_CDC] = "auto_cdc",
	[FLOW_TYPE_AGGREGATE] = "aggregate",
	[FLOW_TYPE_MATVIEW] = "matview",
	[FLOW_TYPE_AUTO_CDC_SNAPSHOT] = "auto_cdc_snapshot",
	[FLOW_TYPE_APPEND] = "append",
	[FLOW_TYPE_MATERIALIZED_VIEW] = "materialized_view",
};

const char *
CatalogFlowTypeName(FlowType type)
{
	Assert(type >= 0 && type < FLOW_TYPE_COUNT);
	return flow_type_names[type];
}

/*
 * A flow_type the library does not know can only come from a catalog
 * written by another version of medallion (the version check prevents that)
 * or edited by hand.
 */
FlowType
CatalogFlowTypeFromName(const char *name)
{
	int			type;

	for (type = 0; type < FLOW_TYPE_COUNT; type++)
	{
		if (strcmp(flow_type_names[type], name) == 0)
			return (FlowType) type;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("unknown flow type \"%s\" in medallion.flow", name),
			 errhint("Flows are written by medallion only; drop the flow and create it again.")));
	pg_unreachable();
}

/*
 * Flow names are unique across pipelines.  A flow keeps the name it was
 * created with: a table created again under the name of a flow whose target
 * was dropped by hand (or renamed) cannot take the name while that flow
 * exists, and an explicit flow name (several flows into one target) may
 * already be taken.  Say which, rather than fail on the catalog's unique
 * index.
 */
static void
refuse_taken_flow_name(const char *flow_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(flow_name)};
	char	   *pipeline_name = NULL;
	char	   *target_name = NULL;
	MemoryContext caller_context = CurrentMemoryContext;

	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT p.pipeline_name,"
							   "       (SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
							   "               OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)"
							   "          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
							   "            ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
							   "         WHERE c.oid OPERATOR(pg_catalog.=) f.target_table)"
							   "  FROM medallion.flow f JOIN medallion.pipeline p USING (pipeline_id)"
							   " WHERE f.flow_name OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		char	   *target = SpiGetText(0, 2);

		pipeline_name = MemoryContextStrdup(caller_context, SpiGetText(0, 1));
		if (target != NULL)
			target_name = MemoryContextStrdup(caller_context, target);
	}
	SPI_finish();
	if (pipeline_name == NULL)
		return;
	if (target_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("flow \"%s\" already exists in pipeline \"%s\"",
						flow_name, pipeline_name),
				 errdetail("Its target table was dropped, but the flow was not."),
				 errhint("Remove the old flow first with medallion.drop_flow('%s').",
						 flow_name)));
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("flow \"%s\" already exists in pipeline \"%s\"",
					flow_name, pipeline_name),
			 strcmp(target_name, flow_name) == 0 ?
			 errdetail("It feeds table %s.", target_name) :
			 errdetail("It feeds table %s (a flow keeps the name it was created with, even when its target is renamed).",
					   target_name),
			 errhint("Choose another flow name, or remove the old flow first with medallion.drop_flow('%s').",
					 flow_name)));
}

/*
 * A flow's source, when a table: of the same pipeline, and with a _row_id
 * for the flow types that read by it.
 */
static void
catalog_check_flow_source(PipelineDesc *pipeline, FlowType type,
						  Oid source_relid)
{
	FlowDesc   *source_flow;

	if (!OidIsValid(source_relid))
		return;
	source_flow = CatalogGetFlowByTarget(source_relid, true);
	if (source_flow != NULL && source_flow->pipeline_id != pipeline->pipeline_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" belongs to another pipeline",
						CatalogQualifiedRelationName(source_relid)),
				 errhint("A flow reads tables of its own pipeline only.")));
	/* flows that read by _row_id need one; error clearly otherwise */
	if (type == FLOW_TYPE_SILVER || type == FLOW_TYPE_AUTO_CDC ||
		type == FLOW_TYPE_APPEND)
		(void) FlowRowIdSequence(source_relid);
}

int32
CatalogCreateFlow(PipelineDesc *pipeline, FlowType type,
				  Oid target_relid, Oid source_relid, const char *source,
				  Jsonb *definition)
{
	return CatalogCreateNamedFlow(pipeline, type, NULL, target_relid,
								  source_relid, source, definition);
}

int32
CatalogCreateNamedFlow(PipelineDesc *pipeline, FlowType type,
					   const char *flow_name, Oid target_relid,
					   Oid source_relid, const char *source,
					   Jsonb *definition)
{
	Oid			types[7] = {INT4OID, TEXTOID, TEXTOID, OIDOID, OIDOID,
	TEXTOID, JSONBOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	List	   *flows = CatalogGetFlows(pipeline->pipeline_id);
	int32		flow_id;

	if (list_length(flows) >= MEDALLION_MAX_FLOWS_PER_PIPELINE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("pipeline \"%s\" already has %d flows",
						pipeline->pipeline_name,
						MEDALLION_MAX_FLOWS_PER_PIPELINE),
				 errhint("Split the work into several pipelines.")));

	catalog_check_flow_source(pipeline, type, source_relid);
	if (flow_name == NULL)
		flow_name = CatalogQualifiedRelationName(target_relid);
	refuse_taken_flow_name(flow_name);
	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = CStringGetTextDatum(flow_name);
	values[2] = CStringGetTextDatum(CatalogFlowTypeName(type));
	values[3] = ObjectIdGetDatum(target_relid);
	values[4] = ObjectIdGetDatum(source_relid);
	if (!OidIsValid(source_relid))
		nulls[4] = 'n';
	if (source != NULL)
		values[5] = CStringGetTextDatum(source);
	else
		nulls[5] = 'n';
	values[6] = JsonbPGetDatum(definition);

	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.flow"
							   " (pipeline_id, flow_name, flow_type, target_table,"
							   " source_table, source, definition)"
							   " VALUES ($1, $2, $3, $4::pg_catalog.regclass,"
							   " $5::pg_catalog.regclass, $6, $7)"
							   " RETURNING flow_id",
							   7, types, values, nulls, SPI_OK_INSERT_RETURNING);
	flow_id = (int32) SpiGetInt64(0, 1, NULL);
	SPI_finish();
	return flow_id;
}

/* A text parameter, or NULL (marking *null) when value is NULL. */
static Datum
nullable_text(const char *value, char *null)
{
	if (value == NULL)
	{
		*null = 'n';
		return (Datum) 0;
	}
	return CStringGetTextDatum(value);
}

static void
catalog_update(const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls)
{
	SPI_connect();
	SpiExecuteAsExtensionOwner(sql, nargs, types, values, nulls, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * CatalogReplaceFlow: see catalog.h.  The row keeps its flow_id, so that
 * expectations and the bronze ledger, which reference it, stay.
 */
void
CatalogReplaceFlow(PipelineDesc *pipeline, const FlowDesc *flow,
				   Oid source_relid, const char *source, Jsonb *definition)
{
	Oid			types[4] = {INT4OID, OIDOID, TEXTOID, JSONBOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	catalog_check_flow_source(pipeline, flow->type, source_relid);
	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = ObjectIdGetDatum(source_relid);
	if (!OidIsValid(source_relid))
		nulls[1] = 'n';
	values[2] = nullable_text(source, &nulls[2]);
	values[3] = JsonbPGetDatum(definition);
	catalog_update("UPDATE medallion.flow"
				   " SET source_table = $2::pg_catalog.regclass, source = $3,"
				   "     definition = $4"
				   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
				   4, types, values, nulls);
}

/* CatalogSetRefreshPending: see catalog.h. */
void
CatalogSetRefreshPending(List *flow_ids, bool pending)
{
	Oid			types[2] = {INT4ARRAYOID, BOOLOID};
	Datum		values[2];
	Datum	   *ids;
	int			count = list_length(flow_ids);
	int			i = 0;
	ListCell   *cell;

	if (count == 0)
		return;
	ids = palloc(sizeof(Datum) * count);
	foreach(cell, flow_ids)
		ids[i++] = Int32GetDatum(lfirst_int(cell));
	values[0] = PointerGetDatum(construct_array(ids, count, INT4OID, 4, true,
												TYPALIGN_INT));
	values[1] = BoolGetDatum(pending);
	catalog_update("UPDATE medallion.flow SET refresh_pending = $2"
				   " WHERE flow_id OPERATOR(pg_catalog.=) ANY ($1)"
				   "   AND refresh_pending OPERATOR(pg_catalog.<>) $2",
				   2, types, values, NULL);
}

/*
 * Lock a flow's catalog row until the end of the transaction, with lock
 * (FOR UPDATE or FOR SHARE); the row must still exist.  SPI must be
 * connected.
 */
static void
catalog_lock_flow_row(const FlowDesc *flow, const char *lock)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(flow->flow_id)};

	SpiExecuteAsExtensionOwner(psprintf("SELECT watermark, flow_state, refresh_pending"
										" FROM medallion.flow"
										" WHERE flow_id OPERATOR(pg_catalog.=) $1 %s",
										lock),
							   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("flow \"%s\" was dropped", flow->flow_name)));
}

void
CatalogLockFlow(const FlowDesc *flow, int64 *watermark, Jsonb **flow_state)
{
	MemoryContext caller_context = CurrentMemoryContext;
	bool		isnull;

	SPI_connect();
	catalog_lock_flow_row(flow, "FOR UPDATE");
	/* what was read of a replaced flow before this lock may be stale */
	if (DatumGetBool(SpiGetDatum(0, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flow \"%s\" was replaced and waits to be recomputed",
						flow->flow_name),
				 errhint("Run an update of its pipeline with medallion.run_pipeline(); it recomputes the flow first.")));
	*watermark = SpiGetInt64(0, 1, NULL);
	if (flow_state != NULL)
	{
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		*flow_state = copy_jsonb_column(0, 2);
		MemoryContextSwitchTo(spi_context);
	}
	SPI_finish();
}

void
CatalogShareLockFlow(const FlowDesc *flow)
{
	SPI_connect();
	catalog_lock_flow_row(flow, "FOR SHARE");
	SPI_finish();
}

void
CatalogSetWatermark(int32 flow_id, int64 watermark)
{
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		values[2] = {Int32GetDatum(flow_id), Int64GetDatum(watermark)};

	catalog_update("UPDATE medallion.flow SET watermark = $2"
				   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
				   2, types, values, NULL);
}

void
CatalogSetFlowState(int32 flow_id, Jsonb *flow_state)
{
	Oid			types[2] = {INT4OID, JSONBOID};
	Datum		values[2] = {Int32GetDatum(flow_id), JsonbPGetDatum(flow_state)};

	catalog_update("UPDATE medallion.flow SET flow_state = $2"
				   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
				   2, types, values, NULL);
}

void
CatalogSetFlowStateText(int32 flow_id, const char *flow_state_json)
{
	CatalogSetFlowState(flow_id,
						DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														   CStringGetDatum(flow_state_json))));
}

void
CatalogMergeFlowState(int32 flow_id, const char *members_json)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2] = {Int32GetDatum(flow_id),
	CStringGetTextDatum(members_json)};

	catalog_update("UPDATE medallion.flow SET flow_state = flow_state"
				   " OPERATOR(pg_catalog.||) $2::pg_catalog.jsonb"
				   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
				   2, types, values, NULL);
}

void
CatalogSetPipelineState(int32 pipeline_id, const char *state,
						const char *last_error)
{
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	values[0] = Int32GetDatum(pipeline_id);
	values[1] = CStringGetTextDatum(state);
	values[2] = nullable_text(last_error, &nulls[2]);
	catalog_update("UPDATE medallion.pipeline SET state = $2, last_error = $3,"
				   " consecutive_failures = CASE WHEN $2 OPERATOR(pg_catalog.=) 'failed'"
				   " THEN consecutive_failures ELSE 0 END,"
				   " next_attempt_at = NULL"
				   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
				   3, types, values, nulls);
}

/*
 * A triggered pipeline shows "running" while its update runs; the pipelines
 * view believes that only while the update lock is held, so the marker that
 * a crash or a failover leaves behind misreports nothing.  Nothing else is
 * written at the start of an update: see CatalogMarkUpdateEnd.
 */
void
CatalogMarkUpdateStart(int32 pipeline_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(pipeline_id)};

	catalog_update("UPDATE medallion.pipeline SET state = 'running'"
				   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
				   " AND mode OPERATOR(pg_catalog.=) 'triggered'",
				   1, types, values, NULL);
}

/*
 * The last_update_* columns are written together when an update ends, so
 * that they always describe a completed update: an update in progress, or
 * one that a crash or a failover cut short, leaves the previous one's
 * figures in place rather than an "in progress" mark that only a later
 * update would clear (and that a dashboard polling a replica would see
 * flicker during every update).
 */
void
CatalogMarkUpdateEnd(int32 pipeline_id, int64 update_id,
					 TimestampTz update_start, const char *state,
					 const char *last_error)
{
	Oid			types[5] = {INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = Int32GetDatum(pipeline_id);
	values[1] = CStringGetTextDatum(state);
	values[2] = nullable_text(last_error, &nulls[2]);
	values[3] = Int64GetDatum(update_id);
	values[4] = TimestampTzGetDatum(update_start);
	catalog_update("UPDATE medallion.pipeline SET state = $2,"
				   " last_update_id = $4,"
				   " last_update_start = $5,"
				   " last_update_end = pg_catalog.clock_timestamp(),"
				   " last_error = $3,"
				   " consecutive_failures = CASE WHEN $3 IS NULL THEN 0"
				   " ELSE consecutive_failures OPERATOR(pg_catalog.+) 1 END"
				   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
				   5, types, values, nulls);
}

/*
 * The targets that an update changed get that update's end as their
 * last_changed (read by medallion.table_freshness and pipeline_graph): the
 * same value as the pipeline's last_update_end, which CatalogMarkUpdateEnd
 * has just written in this transaction.  Kept in the catalog rather than
 * derived from the event log, which is trimmed: a table that changes once a
 * month still shows when.
 */
void
CatalogMarkTargetsChanged(int32 pipeline_id, List *target_relids)
{
	Oid			types[2] = {INT4OID, OIDARRAYOID};
	Datum		values[2];
	Datum	   *relids;
	ListCell   *cell;

	if (target_relids == NIL)
		return;
	relids = palloc(list_length(target_relids) * sizeof(Datum));
	foreach(cell, target_relids)
		relids[foreach_current_index(cell)] = ObjectIdGetDatum(lfirst_oid(cell));
	values[0] = Int32GetDatum(pipeline_id);
	values[1] = PointerGetDatum(construct_array(relids, list_length(target_relids),
												OIDOID, sizeof(Oid), true,
												TYPALIGN_INT));
	catalog_update("UPDATE medallion.flow f SET last_changed = p.last_update_end"
				   "  FROM medallion.pipeline p"
				   " WHERE p.pipeline_id OPERATOR(pg_catalog.=) $1"
				   "   AND f.pipeline_id OPERATOR(pg_catalog.=) $1"
				   "   AND f.target_table::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($2)",
				   2, types, values, NULL);
}

/*
 * CatalogMarkTargetChangedNow: see catalog.h.  A direct auto_cdc_apply runs
 * outside of an update, so there is no update end to copy: the moment the
 * apply finished is the closest to when its rows became visible (its
 * caller's commit), and a freshness dashboard must not show the table as
 * older than the rows it holds.
 */
void
CatalogMarkTargetChangedNow(int32 flow_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(flow_id);
	catalog_update("UPDATE medallion.flow SET last_changed = pg_catalog.clock_timestamp()"
				   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
				   1, types, values, NULL);
}

/*
 * CatalogMarkInputChanged: see catalog.h.  An update leaves alone a view
 * recomputed in full, or an attached materialized view, when none of the
 * tables it reads changed in the update; it cannot see a change made
 * between updates, so the change marks them itself: a view recomputed in
 * full loses its "computed" mark (matview_apply.c), an attached one gains
 * "input_changed" (aggregate_matview.c).  In the changer's transaction: a
 * view's update holds its flow row until it commits, so a mark set now
 * lands after that update, not under it.
 */
void
CatalogMarkInputChanged(Oid target_relid)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(CatalogFlowTypeName(FLOW_TYPE_MATERIALIZED_VIEW));
	values[1] = CStringGetTextDatum(CatalogFlowTypeName(FLOW_TYPE_MATVIEW));
	values[2] = CStringGetTextDatum(CatalogQualifiedRelationName(target_relid));
	catalog_update("UPDATE medallion.flow"
				   "   SET flow_state = CASE WHEN flow_type OPERATOR(pg_catalog.=) $1"
				   "       THEN flow_state OPERATOR(pg_catalog.-) 'computed'::pg_catalog.text"
				   "       ELSE COALESCE(flow_state, '{}'::pg_catalog.jsonb)"
				   "            OPERATOR(pg_catalog.||) '{\"" MATVIEW_INPUT_CHANGED_KEY "\": true}'::pg_catalog.jsonb END"
				   " WHERE flow_type OPERATOR(pg_catalog.=) ANY (ARRAY[$1, $2])"
				   "   AND (flow_type OPERATOR(pg_catalog.=) $2"
				   "        OR flow_state OPERATOR(pg_catalog.?) 'computed')"
				   "   AND (definition OPERATOR(pg_catalog.->) 'inputs') OPERATOR(pg_catalog.?) $3",
				   3, types, values, NULL);
}

void
EventLogWrite(const PipelineDesc *pipeline, int64 update_id,
			  const char *flow_name, const char *event_type,
			  const char *level, const char *message,
			  const char *details_json)
{
	EventLogWriteAt(0, pipeline, update_id, flow_name, event_type, level,
					message, details_json);
}

void
EventLogWriteAt(TimestampTz event_time, const PipelineDesc *pipeline,
				int64 update_id, const char *flow_name,
				const char *event_type, const char *level,
				const char *message, const char *details_json)
{
	Oid			types[10] = {INT4OID, TEXTOID, OIDOID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[10];
	char		nulls[11] = "          ";

	if (pipeline != NULL)
	{
		values[0] = Int32GetDatum(pipeline->pipeline_id);
		values[1] = CStringGetTextDatum(pipeline->pipeline_name);
		values[2] = ObjectIdGetDatum(pipeline->owner);
	}
	else
		nulls[0] = nulls[1] = nulls[2] = 'n';
	values[3] = Int64GetDatum(update_id);
	if (update_id == 0)
		nulls[3] = 'n';
	values[4] = nullable_text(flow_name, &nulls[4]);
	values[5] = CStringGetTextDatum(event_type);
	values[6] = CStringGetTextDatum(level);
	values[7] = nullable_text(message, &nulls[7]);
	values[8] = nullable_text(details_json, &nulls[8]);
	values[9] = TimestampTzGetDatum(event_time);
	if (event_time == 0)
		nulls[9] = 'n';

	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.event"
							   " (pipeline_id, pipeline_name, owner, update_id,"
							   " flow_name, event_type, level, message, details, ts)"
							   " VALUES ($1, $2, $3::pg_catalog.regrole, $4, $5, $6, $7, $8,"
							   " $9::pg_catalog.jsonb,"
							   " COALESCE($10, pg_catalog.clock_timestamp()))",
							   10, types, values, nulls, SPI_OK_INSERT);
	SPI_finish();
}

/*
 * EventLogTrim deletes a pipeline's events older than
 * medallion.event_log_retention, and beyond its newest
 * medallion.event_log_max_rows, so that no role can fill the disk with
 * events (a pipeline updating every 10 ms keeps writing them).  Counting
 * costs an index scan over the kept events, so a continuous pipeline's
 * worker counts at every sixteenth trim only; a triggered update, at its
 * first (EventLogTrimCountNext), also in a worker that stayed for it.
 */
static int	trims_in_this_process = 0;

void
EventLogTrimCountNext(void)
{
	trims_in_this_process = 0;
}

void
EventLogTrim(const PipelineDesc *pipeline)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	SPI_connect();
	if (medallion_event_log_retention_min > 0)
	{
		values[1] = Int32GetDatum(medallion_event_log_retention_min);
		SpiExecuteAsExtensionOwner("DELETE FROM medallion.event"
								   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
								   " AND ts OPERATOR(pg_catalog.<) (pg_catalog.now()"
								   " OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $2))",
								   2, types, values, NULL, SPI_OK_DELETE);
	}
	if (medallion_event_log_max_rows > 0 && trims_in_this_process++ % 16 == 0)
	{
		values[1] = Int32GetDatum(medallion_event_log_max_rows);
		SpiExecuteAsExtensionOwner("DELETE FROM medallion.event"
								   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
								   " AND ts OPERATOR(pg_catalog.<) ("
								   "   SELECT e.ts FROM medallion.event e"
								   "    WHERE e.pipeline_id OPERATOR(pg_catalog.=) $1"
								   "    ORDER BY e.ts DESC OFFSET $2 OPERATOR(pg_catalog.-) 1 LIMIT 1)",
								   2, types, values, NULL, SPI_OK_DELETE);
	}
	SPI_finish();
}

int64
CatalogNextUpdateId(void)
{
	int64		update_id;

	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT pg_catalog.nextval('medallion.update_id_seq')",
							   0, NULL, NULL, NULL, SPI_OK_SELECT);
	update_id = SpiGetInt64(0, 1, NULL);
	SPI_finish();
	return update_id;
}
