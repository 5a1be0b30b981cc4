/*-------------------------------------------------------------------------
 *
 * flow_lifecycle.c
 *	  drop_flow, and finding a flow by the name a DBA types (see
 *	  flow_lifecycle.h).
 *
 * A flow leaves the pipeline with everything medallion made for it: its
 * catalog row with its watermark and progress, its expectations, its
 * ledger (bronze), and its internal objects: the state tables its
 * definition records (state_table.h: an aggregate's __groups, __values_*
 * and pending changes, an auto CDC target's change feed), whether or not
 * the target still exists, and the objects recorded as going away with the
 * target (an automatic dependency on the whole target, see
 * agg_depend_on_target): the capture triggers and index an aggregate put
 * on its source.  With drop_table the target goes
 * too, with the quarantine table of a silver flow and the _current view of
 * an auto CDC flow; an attached materialized view is the DBA's own and is
 * kept, as drop_pipeline keeps it.
 *
 * drop_flow holds the pipeline's update lock (stopping a running update,
 * as drop_pipeline does), so that no update runs the flow while it goes,
 * and refuses while other flows read its target.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_lifecycle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "cdc.h"
#include "flow_lifecycle.h"
#include "flow_order.h"
#include "spi_util.h"
#include "update_control.h"
#include "sql_names.h"
#include "state_table.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_drop_flow);

/* The flow of this exact flow_name (of the pipeline, unless 0), or NULL. */
static FlowDesc *
flow_by_exact_name(const char *flow_name, int32 pipeline_id)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	int32		flow_id = 0;

	values[0] = CStringGetTextDatum(flow_name);
	values[1] = Int32GetDatum(pipeline_id);
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT flow_id FROM medallion.flow"
							   " WHERE flow_name OPERATOR(pg_catalog.=) $1"
							   "   AND ($2 OPERATOR(pg_catalog.=) 0"
							   "        OR pipeline_id OPERATOR(pg_catalog.=) $2)",
							   2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
		flow_id = (int32) SpiGetInt64(0, 1, NULL);
	SPI_finish();
	return flow_id != 0 ? CatalogGetFlowById(flow_id, false) : NULL;
}

/* The lookup proper, under the search_path the caller chose. */
static FlowDesc *
lookup_in_search_path(const char *name, int32 pipeline_id)
{
	Oid			relid = RelidFromQualifiedName(name, true);
	FlowDesc   *flow = NULL;
	List	   *names;
	ListCell   *cell;

	if (OidIsValid(relid))
	{
		/* a table's defining flow (CatalogGetFlowByTarget) */
		flow = CatalogGetFlowByTarget(relid, true);
		if (flow != NULL &&
			(pipeline_id == 0 || flow->pipeline_id == pipeline_id))
			return flow;
	}
	flow = flow_by_exact_name(name, pipeline_id);
	if (flow != NULL || OidIsValid(relid))
		return flow;

	/*
	 * The name denotes no table: the target may have been dropped by hand,
	 * so look for the names it may have had.
	 */
	if (!SplitIdentifierString(pstrdup(name), '.', &names))
		return NULL;
	if (list_length(names) == 2)
		return flow_by_exact_name(quote_qualified_identifier(linitial(names),
															 lsecond(names)),
								  pipeline_id);
	if (list_length(names) != 1)
		return NULL;
	foreach(cell, fetch_search_path(false))
	{
		char	   *schema = get_namespace_name(lfirst_oid(cell));

		if (schema == NULL)
			continue;
		flow = flow_by_exact_name(quote_qualified_identifier(schema,
															 linitial(names)),
								  pipeline_id);
		if (flow != NULL)
			return flow;
	}
	return NULL;
}

/* FlowLookupByName: see flow_lifecycle.h. */
FlowDesc *
FlowLookupByName(const char *name, int32 pipeline_id, const char *search_path)
{
	FlowDesc   *flow;
	int			nest_level;

	if (search_path == NULL)
		return lookup_in_search_path(name, pipeline_id);
	nest_level = UserSqlSettingsEnter(search_path);
	flow = lookup_in_search_path(name, pipeline_id);
	UserSqlSettingsLeave(nest_level);
	return flow;
}

/* FlowNameForTarget: see flow_lifecycle.h. */
char *
FlowNameForTarget(const char *flow_name, Oid target_namespace,
				  Oid target_relid)
{
	List	   *names;
	char	   *schema = get_namespace_name(target_namespace);
	char	   *name;
	Oid			relid;

	if (flow_name == NULL)
		return NULL;
	if (!SplitIdentifierString(pstrdup(flow_name), '.', &names) ||
		list_length(names) < 1 || list_length(names) > 2 ||
		strlen(llast(names)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid flow name \"%s\"", flow_name),
				 errhint("A flow name is an identifier, optionally qualified by the schema of its target table.")));
	if (list_length(names) == 2 && strcmp(linitial(names), schema) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("flow \"%s\" must be in the schema of its target table, \"%s\"",
						flow_name, schema)));
	name = llast(names);
	relid = get_relname_relid(name, target_namespace);
	if (OidIsValid(relid) && relid != target_relid)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("flow name \"%s\" is the name of relation %s",
						flow_name, QuoteQualifiedName(target_namespace, name)),
				 errdetail("refresh_tables and drop_flow take table and flow names alike."),
				 errhint("Choose a flow name that no table or view of schema \"%s\" has.",
						 schema)));
	return quote_qualified_identifier(schema, name);
}

/* FlowRefreshTableIds: see flow_lifecycle.h. */
List *
FlowRefreshTableIds(const PipelineDesc *pipeline, ArrayType *refresh_tables)
{
	Datum	   *elements;
	bool	   *nulls;
	int			count;
	int			i;
	List	   *flow_ids = NIL;

	deconstruct_array(refresh_tables, TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &nulls, &count);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("refresh_tables must name at least one flow"),
				 errhint("Pass NULL to run an ordinary update.")));
	for (i = 0; i < count; i++)
	{
		char	   *name;
		FlowDesc   *flow;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("refresh_tables must not contain nulls")));
		name = TextDatumGetCString(elements[i]);
		flow = FlowLookupByName(name, pipeline->pipeline_id,
								pipeline->search_path);
		if (flow == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("pipeline \"%s\" has no flow \"%s\"",
							pipeline->pipeline_name, name),
					 errhint("Flows are named after their target tables, as medallion.flows lists them.")));
		flow_ids = list_append_unique_int(flow_ids, flow->flow_id);
	}
	return flow_ids;
}

/*
 * The objects medallion made for a flow besides its target and its state
 * tables: those with an automatic dependency on the whole target that are
 * tables, or triggers and indexes on other tables (the target's own
 * indexes and constraints are the target's).
 */
static void
drop_dependent_objects(const FlowDesc *flow)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(flow->target_relid)};
	ObjectAddresses *objects = new_object_addresses();
	uint64		count;
	uint64		row;

	SPI_connect();
	count = SpiExecuteAsExtensionOwner(
		"SELECT d.classid, d.objid FROM pg_catalog.pg_depend d"
		"  LEFT JOIN pg_catalog.pg_class c"
		"    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
		"   AND c.oid OPERATOR(pg_catalog.=) d.objid"
		"  LEFT JOIN pg_catalog.pg_index i"
		"    ON i.indexrelid OPERATOR(pg_catalog.=) c.oid"
		"  LEFT JOIN pg_catalog.pg_trigger t"
		"    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass"
		"   AND t.oid OPERATOR(pg_catalog.=) d.objid"
		" WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
		"   AND d.refobjid OPERATOR(pg_catalog.=) $1"
		"   AND d.refobjsubid OPERATOR(pg_catalog.=) 0"
		"   AND d.deptype OPERATOR(pg_catalog.=) 'a'"
		"   AND (c.relkind OPERATOR(pg_catalog.=) 'r'"
		"        OR i.indrelid OPERATOR(pg_catalog.<>) $1"
		"        OR t.tgrelid OPERATOR(pg_catalog.<>) $1)",
		1, types, values, NULL, SPI_OK_SELECT);
	for (row = 0; row < count; row++)
	{
		bool		isnull;
		ObjectAddress object;

		object.classId = DatumGetObjectId(SpiGetDatum(row, 1, &isnull));
		object.objectId = DatumGetObjectId(SpiGetDatum(row, 2, &isnull));
		object.objectSubId = 0;
		add_exact_object_address(&object, objects);
	}
	SPI_finish();
	performMultipleDeletions(objects, DROP_RESTRICT,
							 PERFORM_DELETION_INTERNAL);
	free_object_addresses(objects);
}

/*
 * FlowDropInternalObjects: see flow_lifecycle.h.  The state tables are
 * found through the definition, so they go also when the target was
 * dropped by hand after a restore (which keeps no dependency on it).
 */
void
FlowDropInternalObjects(const FlowDesc *flow)
{
	StateTablesDrop(flow);
	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(flow->target_relid)))
		drop_dependent_objects(flow);
}

/* Drop <target><suffix> if it exists and is of relkind, as the caller. */
static void
drop_companion(const FlowDesc *flow, const char *suffix, char relkind,
			   const char *object_type)
{
	Oid			namespace_oid = get_rel_namespace(flow->target_relid);
	char	   *name = psprintf("%s%s", get_rel_name(flow->target_relid), suffix);
	Oid			relid = get_relname_relid(name, namespace_oid);

	if (!OidIsValid(relid) || get_rel_relkind(relid) != relkind)
		return;
	SPI_connect();
	SpiExecute(psprintf("DROP %s %s", object_type,
						QuoteQualifiedName(namespace_oid, name)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
}

/* FlowDropCompanionViews: see flow_lifecycle.h. */
void
FlowDropCompanionViews(const FlowDesc *flow)
{
	if (CdcFlowTypeKeepsTarget(flow->type))
		drop_companion(flow, "_current", RELKIND_VIEW, "VIEW");
}

/* The target and the companions that are part of the API, as the caller. */
static void
drop_target(const FlowDesc *flow)
{
	if (flow->type == FLOW_TYPE_SILVER)
		drop_companion(flow, "_quarantine", RELKIND_RELATION, "TABLE");
	FlowDropCompanionViews(flow);
	SPI_connect();
	SpiExecute(psprintf("DROP TABLE %s",
						CatalogQualifiedRelationName(flow->target_relid)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
}

/* Refuse while other flows of the pipeline read the flow's target. */
static void
refuse_if_read(const FlowDesc *flow, List *flows)
{
	StringInfoData readers;
	ListCell   *cell;
	int			count = 0;

	initStringInfo(&readers);
	foreach(cell, flows)
	{
		FlowDesc   *reader = lfirst(cell);

		if (!FlowReads(reader, flow))
			continue;
		appendStringInfo(&readers, "%s%s", count > 0 ? ", " : "",
						 reader->flow_name);
		count++;
	}
	if (count > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop flow \"%s\" because other flows read its target",
						flow->flow_name),
				 errdetail_plural("Flow %s reads it.", "Flows %s read it.",
								  count, readers.data),
				 errhint("Drop the flows that read it first: %s.",
						 readers.data)));
}

/*
 * The names of the other flows into a flow's target ("" when none), and
 * their count.
 */
static char *
other_flows_into_target(const FlowDesc *flow, int *count)
{
	StringInfoData names;
	ListCell   *cell;

	initStringInfo(&names);
	*count = 0;
	foreach(cell, CatalogGetFlowsByTarget(flow->target_relid))
	{
		FlowDesc   *other = lfirst(cell);

		if (other->flow_id == flow->flow_id)
			continue;
		appendStringInfo(&names, "%s%s", *count > 0 ? ", " : "",
						 other->flow_name);
		(*count)++;
	}
	return names.data;
}

/*
 * A target fed by several flows stays while one of them goes: its table,
 * what medallion made for it and the flows reading it stay too.  The table
 * cannot go with one of its flows, and a silver flow cannot leave append
 * flows behind (its expectations and dedup keys are the target's).
 */
static void
check_drop_shared_target(const FlowDesc *flow, bool drop_table,
						 const char *others, int count)
{
	if (drop_table)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop the target table of flow \"%s\" because other flows feed it",
						flow->flow_name),
				 errdetail_plural("Flow %s also writes to table %s.",
								  "Flows %s also write to table %s.",
								  count, others,
								  CatalogQualifiedRelationName(flow->target_relid)),
				 errhint("Drop the flow with drop_table => false, or drop the other flows first.")));
	if (flow->type == FLOW_TYPE_SILVER)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop silver flow \"%s\" while append flows feed its target",
						flow->flow_name),
				 errdetail("The target's expectations and dedup keys belong to the silver flow; the append flows apply them too."),
				 errhint("Drop the append flows first: %s.", others)));
}

/*
 * medallion.drop_flow(flow_name text, drop_table boolean DEFAULT false)
 */
Datum
medallion_drop_flow(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *flow_name = SqlTextArgument(fcinfo, 0, "flow_name");
	bool		drop_table = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	FlowDesc   *flow = FlowLookupByName(flow_name, 0, NULL);
	PipelineDesc *pipeline;
	bool		target_exists;
	char	   *others;
	int			other_count;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	StringInfoData details;

	if (flow == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("flow \"%s\" does not exist", flow_name),
				 errhint("Flows are named after their target tables, as medallion.flows lists them.")));
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);
	CatalogCheckPipelineOwner(pipeline);
	UpdateControlLockPipeline(pipeline->pipeline_id, UPDATE_STOP_DROP_FLOW);

	/* as the update that held the lock left it */
	flow = CatalogGetFlowById(flow->flow_id, false);
	others = other_flows_into_target(flow, &other_count);
	if (other_count > 0)
		check_drop_shared_target(flow, drop_table, others, other_count);
	else
		refuse_if_read(flow, CatalogGetFlows(pipeline->pipeline_id));

	target_exists = SearchSysCacheExists1(RELOID,
										  ObjectIdGetDatum(flow->target_relid));
	/* a target other flows feed keeps its table and the objects on it */
	if (other_count == 0 && target_exists && drop_table &&
		flow->type != FLOW_TYPE_MATVIEW)
	{
		StateTablesDrop(flow);
		drop_target(flow);
	}
	else if (other_count == 0)
		FlowDropInternalObjects(flow);
	else
		StateTablesDrop(flow);

	/* expectations and the ledger go with the row */
	values[0] = Int32GetDatum(flow->flow_id);
	SPI_connect();
	SpiExecuteAsExtensionOwner("DELETE FROM medallion.flow"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();

	initStringInfo(&details);
	appendStringInfo(&details, "{\"flow_type\": \"%s\", \"drop_table\": %s, "
					 "\"target_existed\": %s, \"other_flows_into_target\": %d}",
					 flow->flow_type, drop_table ? "true" : "false",
					 target_exists ? "true" : "false", other_count);
	EventLogWrite(pipeline, 0, flow->flow_name, "flow_dropped", "INFO",
				  drop_table && target_exists && flow->type != FLOW_TYPE_MATVIEW ?
				  "flow and its target table dropped" : "flow dropped",
				  details.data);
	PG_RETURN_VOID();
}
