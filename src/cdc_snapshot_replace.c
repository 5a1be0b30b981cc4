/*-------------------------------------------------------------------------
 *
 * cdc_snapshot_replace.c
 *	  create_auto_cdc_from_snapshot_flow(..., replace => true) on an
 *	  existing flow: its definition replaced, its target altered in place,
 *	  and the target recomputed from every snapshot at the next update.
 *
 * The target keeps its OID, so views, grants and BI tools that use it go
 * on working: it is emptied, its columns dropped, added or retyped to fit
 * the new definition (SCD type, keys, kept columns, version type), its
 * primary key and <target>_current view made again.  The flow's watermark
 * and flow_state are reset, which is how a full refresh leaves a flow, so
 * the next update derives the target from the first snapshot on and tells
 * the readers of its change feed to start over.  While other flows read
 * the target, a replace that would change its columns is refused (their
 * definitions name them).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_snapshot_replace.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"

#include "catalog.h"
#include "cdc_internal.h"
#include "cdc_snapshot.h"
#include "flow_definition.h"
#include "flow_order.h"
#include "spi_util.h"
#include "sql_names.h"
#include "update_control.h"

/* A column the new definition gives the target. */
typedef struct SnapshotColumn
{
	char	   *name;
	Oid			type;
	int32		typmod;
	Oid			collation;
} SnapshotColumn;

/* The target's columns as the new definition wants them. */
static List *
snapshot_wanted_columns(const CdcArguments *args)
{
	const CdcSpec *spec = &args->spec;
	List	   *wanted = NIL;
	ListCell   *cell;

	foreach(cell, args->target_columns)
	{
		SnapshotColumn *column = palloc0(sizeof(SnapshotColumn));
		AttrNumber	attnum = get_attnum(spec->source_relid, lfirst(cell));

		column->name = lfirst(cell);
		get_atttypetypmodcoll(spec->source_relid, attnum, &column->type,
							  &column->typmod, &column->collation);
		wanted = lappend(wanted, column);
	}
	if (spec->scd_type == 2)
	{
		static const char *const names[] = {"__start_at", "__end_at"};
		int			i;

		for (i = 0; i < 2; i++)
		{
			SnapshotColumn *column = palloc0(sizeof(SnapshotColumn));

			column->name = pstrdup(names[i]);
			column->type = spec->seq_type;
			column->typmod = spec->seq_typmod;
			wanted = lappend(wanted, column);
		}
	}
	return wanted;
}

/* The wanted column of this name, or NULL. */
static SnapshotColumn *
snapshot_find_column(List *wanted, const char *name)
{
	ListCell   *cell;

	foreach(cell, wanted)
	{
		SnapshotColumn *column = lfirst(cell);

		if (strcmp(column->name, name) == 0)
			return column;
	}
	return NULL;
}

/*
 * The ALTER TABLE actions that make the target's columns the wanted ones
 * (empty when they are already); key columns that are keys no more lose
 * their NOT NULL.
 */
static char *
snapshot_column_actions(Relation target, List *wanted, List *keys)
{
	TupleDesc	desc = RelationGetDescr(target);
	StringInfoData actions;
	ListCell   *cell;
	int			i;

	initStringInfo(&actions);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *name = NameStr(attr->attname);
		SnapshotColumn *column = snapshot_find_column(wanted, name);

		if (attr->attisdropped)
			continue;
		if (column == NULL)
			appendStringInfo(&actions, "%sDROP COLUMN %s",
							 actions.len > 0 ? ", " : "",
							 quote_identifier(name));
		else if (column->type != attr->atttypid ||
				 column->typmod != attr->atttypmod)
		{
			char	   *type = format_type_extended(column->type,
													column->typmod,
													FORMAT_TYPE_TYPEMOD_GIVEN |
													FORMAT_TYPE_FORCE_QUALIFY);

			appendStringInfo(&actions, "%sALTER COLUMN %s TYPE %s USING NULL::%s",
							 actions.len > 0 ? ", " : "",
							 quote_identifier(name), type, type);
		}
	}
	foreach(cell, wanted)
	{
		SnapshotColumn *column = lfirst(cell);

		if (CdcFindAttribute(desc, column->name) != InvalidAttrNumber)
			continue;
		appendStringInfoString(&actions, actions.len > 0 ? ", ADD COLUMN " :
							   "ADD COLUMN ");
		SqlAppendColumnDefinition(&actions, column->name, column->type,
								  column->typmod, column->collation);
	}
	return actions.data;
}

/* The name of the target's primary key constraint, or NULL. */
static char *
snapshot_primary_key_name(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	char	   *name = NULL;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	SpiExecute("SELECT conname::pg_catalog.text FROM pg_catalog.pg_constraint"
			   " WHERE conrelid OPERATOR(pg_catalog.=) $1"
			   "   AND contype OPERATOR(pg_catalog.=) 'p'",
			   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		char	   *found = SpiGetText(0, 1);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		name = pstrdup(found);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return name;
}

/* Refuse a change of columns while other flows read the target. */
static void
snapshot_refuse_if_read(const FlowDesc *flow)
{
	ListCell   *cell;

	foreach(cell, CatalogGetFlows(flow->pipeline_id))
	{
		FlowDesc   *reader = lfirst(cell);

		if (FlowReads(reader, flow))
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot change the columns of table %s because flow \"%s\" reads it",
							flow->flow_name, reader->flow_name),
					 errhint("Keep the columns, or drop the flows that read the table first.")));
	}
}

/*
 * CdcSnapshotAlterTarget: alter the target in place to fit the new
 * definition, as the pipeline owner: emptied, its view and primary key made
 * again around the column changes.  A change feed whose columns no longer
 * fit is dropped (returns true: the new definition records none).
 */
bool
CdcSnapshotAlterTarget(const CdcArguments *args, const FlowDesc *flow)
{
	const char *target_name = CatalogQualifiedRelationName(flow->target_relid);
	char	   *view_name = QuoteQualifiedName(get_rel_namespace(flow->target_relid),
											   psprintf("%s%s",
														get_rel_name(flow->target_relid),
														CDC_VIEW_SUFFIX));
	Relation	target = relation_open(flow->target_relid, AccessExclusiveLock);
	char	   *actions = snapshot_column_actions(target,
												  snapshot_wanted_columns(args),
												  args->keys.names);
	char	   *primary_key = snapshot_primary_key_name(flow->target_relid);
	char	   *feed = FlowDefinitionString(flow, "change_feed", false);
	ListCell   *cell;

	relation_close(target, NoLock);
	if (actions[0] != '\0')
		snapshot_refuse_if_read(flow);
	FlowCreateExecute(psprintf("TRUNCATE %s", target_name));
	FlowCreateExecute(psprintf("DROP VIEW IF EXISTS %s", view_name));
	if (primary_key != NULL)
		FlowCreateExecute(psprintf("ALTER TABLE %s DROP CONSTRAINT %s",
								   target_name, quote_identifier(primary_key)));
	if (actions[0] != '\0')
		FlowCreateExecute(psprintf("ALTER TABLE %s %s", target_name, actions));
	foreach(cell, args->columns)
		FlowCreateExecute(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL",
								   target_name,
								   quote_identifier(lfirst(cell))));
	FlowCreateExecute(psprintf("ALTER TABLE %s SET (fillfactor = %d)",
							   target_name,
							   args->spec.scd_type == 2 ? 90 : 100));
	FlowCreateExecute(CdcPrimaryKeySql(&args->spec, target_name));
	FlowCreateExecute(CdcCurrentViewSql(&args->spec, view_name, target_name,
										args->target_columns));
	if (actions[0] == '\0' || feed == NULL ||
		!OidIsValid(RelidFromQualifiedName(feed, true)))
		return false;
	FlowCreateExecute(psprintf("DROP TABLE %s", feed));
	return true;
}

/*
 * CdcSnapshotReplaceCatalog: record the new definition (keeping the change
 * feed it still has), the source, and the state of a flow to be
 * recomputed: watermark 0, no flow_state; an event says so.
 */
void
CdcSnapshotReplaceCatalog(const FlowDesc *flow, const CdcArguments *args,
						  Jsonb *definition, bool feed_dropped)
{
	Oid			types[4] = {INT4OID, JSONBOID, OIDOID, TEXTOID};
	Datum		values[4];
	FlowDefinitionBuilder empty;
	FlowDesc   *source_flow = CatalogGetFlowByTarget(args->spec.source_relid,
													 true);

	if (source_flow != NULL && source_flow->pipeline_id != flow->pipeline_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" belongs to another pipeline",
						args->spec.source_name),
				 errhint("A flow reads tables of its own pipeline only.")));
	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = JsonbPGetDatum(definition);
	values[2] = ObjectIdGetDatum(args->spec.source_relid);
	values[3] = CStringGetTextDatum(args->spec.source_name);
	SPI_connect();
	SpiExecuteAsExtensionOwner(feed_dropped ?
							   "UPDATE medallion.flow SET definition = $2,"
							   " source_table = $3::pg_catalog.regclass, source = $4"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1" :
							   "UPDATE medallion.flow SET definition = $2"
							   " OPERATOR(pg_catalog.||) pg_catalog.jsonb_strip_nulls("
							   "pg_catalog.jsonb_build_object('change_feed',"
							   " definition OPERATOR(pg_catalog.->) 'change_feed')),"
							   " source_table = $3::pg_catalog.regclass, source = $4"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   4, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
	CatalogSetWatermark(flow->flow_id, 0);
	FlowDefinitionBegin(&empty);
	CatalogSetFlowState(flow->flow_id, FlowDefinitionEnd(&empty));
	EventLogWrite(CatalogGetPipelineById(flow->pipeline_id, false), 0,
				  flow->flow_name, "flow_replaced", "INFO",
				  "flow definition replaced; the target is recomputed from every snapshot at the next update",
				  NULL);
}

/*
 * CdcSnapshotFlowToReplace: the flow of the pipeline whose target
 * target_table names, when replace is asked for and there is one; errors
 * when the table is the target of another kind of flow, or of another
 * pipeline's.  Holds the pipeline's update lock from here on (an update in
 * progress is waited for).
 */
FlowDesc *
CdcSnapshotFlowToReplace(const char *pipeline_name, const char *target_table)
{
	PipelineDesc *pipeline = CatalogGetPipeline(pipeline_name, false);
	RangeVar   *target_rv;
	Oid			target_relid;
	FlowDesc   *flow;

	CatalogCheckPipelineOwner(pipeline);
	target_rv = makeRangeVarFromNameList(stringToQualifiedNameList(target_table));
	target_relid = RangeVarGetRelid(target_rv, NoLock, true);
	flow = OidIsValid(target_relid) ?
		CatalogGetFlowByTarget(target_relid, true) : NULL;
	if (flow == NULL)
		return NULL;
	if (flow->pipeline_id != pipeline->pipeline_id ||
		flow->type != FLOW_TYPE_AUTO_CDC_SNAPSHOT)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table %s is not the target of an auto_cdc_snapshot flow of pipeline \"%s\"",
						flow->flow_name, pipeline_name),
				 errhint("replace => true replaces a flow of the same type and pipeline; drop the other flow first.")));
	UpdateControlLockPipeline(pipeline->pipeline_id, UPDATE_STOP_NONE);
	return CatalogGetFlowById(flow->flow_id);
}
