/*-------------------------------------------------------------------------
 *
 * append_flow.c
 *	  Append flows (add_append_flow): several flows writing one target.
 *
 * An append flow's query reads one table of the pipeline incrementally, as
 * a silver query does (silver_query.c finds and splices its source), and
 * its rows are appended to an existing silver or bronze target of the
 * pipeline.  Columns are matched by name: each update wraps the query as
 *
 *	 SELECT CAST(q.a AS <type of a>) AS a, <default of b> AS b, ...
 *	   FROM (<query>) AS q
 *
 * with one column per live column of the target after _row_id, in the
 * target's order (a target column the query lacks gets its default, or
 * NULL), and hands it to the silver apply (silver.c), so that the rows of
 * every flow into a silver target go through that target's expectations,
 * quarantine and dedup keys.  The target's _row_id comes from its one
 * identity sequence whichever flow writes, so flows downstream read all
 * writers' rows by one watermark (see flow.h for why none is skipped).
 *
 * once => true: a backfill.  The flow applies its source in the update it
 * first finds rows in (all passes of that update, so a backfill fed by a
 * bronze flow over several batches is complete), records that update in
 * its flow_state, and does nothing afterwards; a full refresh, or a
 * selective refresh naming the flow, clears flow_state and so runs it
 * again.
 *
 * replace => true: the flow's row gets the new query and once flag, and its
 * whole target is marked for recompute (FlowCreateBeginNamed and
 * FlowCreateRegister, flow_create.c): the target's rows do not record the
 * flow that wrote them, so every flow into it runs again from the start.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/append_flow.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "append_flow.h"
#include "catalog.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "flow_lifecycle.h"
#include "flow_order.h"
#include "silver_internal.h"
#include "sql_names.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_add_append_flow);

/* The alias of the user's query inside the wrapper. */
#define APPEND_QUERY_ALIAS "__medallion_append"

/* An append flow's definition (medallion.flow.definition). */
typedef struct AppendDefinition
{
	char	   *query;
	List	   *columns;		/* the query's output columns, by name */
	bool		once;
} AppendDefinition;

static void
append_definition_load(const FlowDesc *flow, AppendDefinition *def)
{
	def->query = FlowDefinitionString(flow, "query", true);
	def->columns = FlowDefinitionStringList(flow, "columns", true);
	def->once = FlowDefinitionBool(flow, "once", false);
}

/* Is name one of the query's columns? */
static bool
append_has_column(List *columns, const char *name)
{
	ListCell   *cell;

	foreach(cell, columns)
	{
		if (strcmp(lfirst(cell), name) == 0)
			return true;
	}
	return false;
}

/*
 * The value a target column the query lacks gets: its default expression
 * (deparsed under the search_path the query runs with), else NULL; cast to
 * the column's type either way.
 */
static char *
append_missing_value(Relation target, Form_pg_attribute attr)
{
	Node	   *default_expr = build_column_default(target, attr->attnum);
	const char *type = format_type_extended(attr->atttypid, attr->atttypmod,
											FORMAT_TYPE_TYPEMOD_GIVEN |
											FORMAT_TYPE_FORCE_QUALIFY);

	if (default_expr == NULL)
		return psprintf("CAST(NULL AS %s)", type);
	return psprintf("CAST((%s) AS %s)",
					deparse_expression(default_expr, NIL, false, false),
					type);
}

/*
 * The wrapper of the file header, built from the target's columns as they
 * are now.  A column of the query that the target no longer has is an
 * error: its values would be lost.
 */
static char *
append_wrapper_query(const FlowDesc *flow, const AppendDefinition *def)
{
	Relation	target = table_open(flow->target_relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(target);
	StringInfoData sql;
	ListCell   *cell;
	int			written = 0;
	int			i;

	foreach(cell, def->columns)
	{
		AttrNumber	attnum = get_attnum(flow->target_relid, lfirst(cell));

		if (attnum <= 1)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of the query of append flow \"%s\" is not a column of table %s",
							(char *) lfirst(cell), flow->flow_name,
							CatalogQualifiedRelationName(flow->target_relid)),
					 errhint("Add the column to the table again, or drop the flow and create it with a query that fits the table.")));
	}

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 1; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *name = NameStr(attr->attname);

		if (attr->attisdropped)
			continue;
		if (written++ > 0)
			appendStringInfoString(&sql, ", ");
		if (append_has_column(def->columns, name))
			appendStringInfo(&sql, "CAST(%s.%s AS %s)", APPEND_QUERY_ALIAS,
							 UserSqlColumnName(name),
							 format_type_extended(attr->atttypid,
												  attr->atttypmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY));
		else
			appendStringInfoString(&sql, append_missing_value(target, attr));
		appendStringInfo(&sql, " AS %s", UserSqlColumnName(name));
	}
	appendStringInfo(&sql, "\nFROM %s AS %s", UserSqlPlaceQuery(def->query),
					 APPEND_QUERY_ALIAS);
	table_close(target, NoLock);
	return sql.data;
}

/*
 * Has this once flow run in an earlier update?  Its progress is read as it
 * is now (locked by FlowApplyIncremental), not as the update read it at
 * its start, since an earlier pass of this update may have changed it.
 */
static bool
append_once_done(FlowContext *context, FlowDesc *flow)
{
	int64		watermark;
	Jsonb	   *flow_state;
	char	   *ran_in;

	CatalogLockFlow(flow, &watermark, &flow_state);
	flow->flow_state = flow_state;
	ran_in = FlowStateString(flow, "once_update_id");
	return ran_in != NULL &&
		strcmp(ran_in, psprintf(INT64_FORMAT, context->update_id)) != 0;
}

/* AppendApply: see append_flow.h. */
void
AppendApply(FlowContext *context, FlowDesc *flow, int64 low, int64 high,
			FlowResult *result)
{
	AppendDefinition def;

	append_definition_load(flow, &def);
	if (def.once && append_once_done(context, flow))
	{
		appendStringInfoString(&result->details,
							   "\"once\": \"skipped: ran in an earlier update\"");
		return;
	}
	SilverApplyInto(flow, append_wrapper_query(flow, &def), low, high,
					result);
	if (def.once)
		CatalogMergeFlowState(flow->flow_id,
							  psprintf("{\"once_update_id\": \"" INT64_FORMAT "\"}",
									   context->update_id));
}

/* ---------- add_append_flow ---------- */

/* The arguments of add_append_flow. */
typedef struct AppendArguments
{
	char	   *pipeline_name;
	char	   *flow_name;
	char	   *target_table;
	char	   *query;
	bool		once;
	bool		replace;
} AppendArguments;

/* The arguments, checked. */
static void
append_read_arguments(FunctionCallInfo fcinfo, AppendArguments *args)
{
	args->pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("flow_name must not be null"),
				 errdetail("An append flow writes to a table that another flow already feeds and is named after."),
				 errhint("Give the append flow a name of its own, such as '<table>_backfill'.")));
	args->flow_name = SqlTextArgument(fcinfo, 1, "flow_name");
	args->target_table = SqlTextArgument(fcinfo, 2, "target_table");
	args->query = SqlTextArgument(fcinfo, 3, "query");
	args->once = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	args->replace = FlowCreateReplaceArgument(fcinfo, 5);
}

/*
 * The target: an existing table of the pipeline whose defining flow is a
 * bronze or silver flow.
 */
static Oid
append_resolve_target(PipelineDesc *pipeline, const char *target_table)
{
	Oid			relid = RelidFromQualifiedName(target_table, false);
	FlowDesc   *target_flow = CatalogGetFlowByTarget(relid, true);

	if (target_flow == NULL ||
		target_flow->pipeline_id != pipeline->pipeline_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s is not a table of pipeline \"%s\"",
						CatalogQualifiedRelationName(relid),
						pipeline->pipeline_name),
				 errhint("An append flow writes to a bronze or silver table that a flow of the same pipeline created.")));
	if (target_flow->type != FLOW_TYPE_BRONZE &&
		target_flow->type != FLOW_TYPE_SILVER)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("append flows cannot write to the %s table %s",
						target_flow->flow_type,
						CatalogQualifiedRelationName(relid)),
				 errhint("An append flow writes to a bronze or silver table.")));
	return relid;
}

/* The source must not be the target, nor be computed from it. */
static void
append_check_source(PipelineDesc *pipeline, Oid target_relid, Oid source)
{
	if (source == target_relid ||
		FlowOrderFeeds(CatalogGetFlows(pipeline->pipeline_id),
					   target_relid, source))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("append flow into %s cannot read %s",
						CatalogQualifiedRelationName(target_relid),
						CatalogQualifiedRelationName(source)),
				 errdetail("Table %s is computed from the target, so the flow would feed its own input.",
						   CatalogQualifiedRelationName(source))));
}

/* One column of the query: named, not _row_id, in the target, castable. */
static void
append_check_column(Relation target, TupleDesc query_desc, int i)
{
	Form_pg_attribute qattr = TupleDescAttr(query_desc, i);
	const char *name = NameStr(qattr->attname);
	const char *table = CatalogQualifiedRelationName(RelationGetRelid(target));
	AttrNumber	attnum = get_attnum(RelationGetRelid(target), name);
	Oid			target_type;
	int			j;

	if (strcmp(name, "?column?") == 0 || strcmp(name, "_row_id") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
				 errmsg("column %d of the query of an append flow must be named after a column of table %s",
						i + 1, table),
				 errhint("Name every output column with AS; _row_id is given by the target.")));
	for (j = 0; j < i; j++)
		if (strcmp(NameStr(TupleDescAttr(query_desc, j)->attname), name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column name \"%s\" appears more than once in the query of an append flow",
							name)));
	if (attnum <= 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of the query is not a column of table %s",
						name, table),
				 errhint("An append flow matches the query's columns to the target's by name: rename the column with AS, or leave it out.")));
	target_type = get_atttype(RelationGetRelid(target), attnum);
	if (!can_coerce_type(1, &qattr->atttypid, &target_type,
						 COERCION_ASSIGNMENT))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of the query has type %s, but column \"%s\" of table %s has type %s",
						name, format_type_be(qattr->atttypid), name, table,
						format_type_be(target_type)),
				 errhint("Cast the column in the query.")));
}

/*
 * Check the query's columns against the target's and return their names:
 * every query column is a target column, and every target column the
 * query lacks may be left to its default or NULL.
 */
static List *
append_check_columns(Oid target_relid, TupleDesc query_desc)
{
	Relation	target = table_open(target_relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(target);
	List	   *columns = NIL;
	int			i;

	for (i = 0; i < query_desc->natts; i++)
	{
		append_check_column(target, query_desc, i);
		columns = lappend(columns,
						  pstrdup(NameStr(TupleDescAttr(query_desc, i)->attname)));
	}
	for (i = 1; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (!attr->attisdropped && attr->attnotnull && !attr->atthasdef &&
			!append_has_column(columns, NameStr(attr->attname)))
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("the query of an append flow must return column \"%s\" of table %s",
							NameStr(attr->attname),
							CatalogQualifiedRelationName(target_relid)),
					 errdetail("The column is NOT NULL and has no default.")));
	}
	table_close(target, NoLock);
	return columns;
}

static Jsonb *
append_definition_build(const AppendArguments *args, List *columns)
{
	FlowDefinitionBuilder builder;

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutString(&builder, "query", args->query);
	FlowDefinitionPutStringList(&builder, "columns", columns);
	FlowDefinitionPutBool(&builder, "once", args->once);
	return FlowDefinitionEnd(&builder);
}

/*
 * With replace => true, the append flow of that name, when there is one,
 * is replaced (FlowCreateBeginNamed: locked, same pipeline, type and
 * target); create is filled in for FlowCreateRegister.  Without it, or
 * when no flow has the name, the flow is new.
 */
static bool
append_begin_replace(FlowCreate *create, PipelineDesc *pipeline,
					 Oid target_relid, const char *flow_name, bool replace)
{
	memset(create, 0, sizeof(FlowCreate));
	if (!replace)
		return false;
	create->pipeline = pipeline;
	create->target_relid = target_relid;
	create->namespace_oid = get_rel_namespace(target_relid);
	create->relation_name = get_rel_name(target_relid);
	create->target_name = CatalogQualifiedRelationName(target_relid);
	return FlowCreateBeginNamed(create, FLOW_TYPE_APPEND, flow_name);
}

/*
 * medallion.add_append_flow(pipeline_name text, flow_name text,
 *     target_table text, query text, once boolean DEFAULT false,
 *     replace boolean DEFAULT false)
 *
 * Checks the query as the caller under the pipeline's search_path (as
 * create_silver does) and its columns against the target's, then
 * registers the flow; the target is not changed.  Replacing an append flow
 * updates its row and marks its whole target for recompute at the next
 * update (see replace_mark in flow_create.c): the rows do not record which
 * flow wrote them.
 */
Datum
medallion_add_append_flow(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	AppendArguments args;
	PipelineDesc *pipeline;
	Oid			target_relid;
	char	   *flow_name;
	SilverQueryCheck check;
	FlowCreate	create;
	Jsonb	   *definition;

	append_read_arguments(fcinfo, &args);
	pipeline = CatalogGetPipeline(args.pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);
	target_relid = append_resolve_target(pipeline, args.target_table);
	flow_name = FlowNameForTarget(args.flow_name,
								  get_rel_namespace(target_relid),
								  target_relid);
	append_begin_replace(&create, pipeline, target_relid, flow_name,
						 args.replace);
	SilverCheckQuery(pipeline, psprintf("append flow \"%s\"", flow_name),
					 get_rel_name(target_relid), args.query, &check);
	append_check_source(pipeline, target_relid, check.source);
	definition = append_definition_build(&args,
										 append_check_columns(target_relid,
															  check.desc));
	if (create.replaced != NULL)
		FlowCreateRegister(&create, FLOW_TYPE_APPEND, check.source,
						   check.source_name, definition);
	else
		CatalogCreateNamedFlow(pipeline, FLOW_TYPE_APPEND, flow_name,
							   target_relid, check.source, check.source_name,
							   definition);
	PG_RETURN_VOID();
}
