/*-------------------------------------------------------------------------
 *
 * matview_create.c
 *	  medallion.create_materialized_view(): a gold table kept equal to a
 *	  query over tables of the pipeline and plain tables.
 *
 * The query is analysed as the pipeline owner with the pipeline's
 * search_path (matview_analyze.c), which decides the flow's maintenance:
 * "incremental" (signed deltas at each update) or "full" (recomputed at
 * each update) with the reason.  refresh_policy 'full' always recomputes;
 * 'incremental_strict' refuses a query that cannot be kept by deltas;
 * 'auto' and 'incremental' fall back to full ('incremental' writes a
 * warning event at each fallback).  The target has the query's columns and
 * no internal ones: BI reads it as it is.  Every table the query reads is
 * recorded in the definition ("inputs", "sources"), so that the update
 * order, drop_flow and pipeline_graph see them all; the change feed of each
 * auto CDC target it reads by deltas is created here.
 *
 * replace => true on an existing view replaces its query and policy through
 * the steps every flow type shares (flow_create.h): the target keeps its
 * OID, grants and comments (its columns are altered in place when they
 * change), and the view and every flow downstream of it are marked for
 * recompute at the next update.
 *
 * The plain tables a view maintained by deltas reads are captured for it
 * (capture.h) once it is registered; replacing or dropping the view
 * releases them (drop_flow through the catalog's ON DELETE CASCADE).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"

#include "capture.h"
#include "change_feed.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "flow_order.h"
#include "matview_internal.h"
#include "sql_names.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_materialized_view);

/* The arguments and what analysing the query decided. */
typedef struct MvCreate
{
	FlowCreate	create;
	char	   *query;
	char	   *policy;
	bool		replace;
	MatviewAnalysis analysis;
	const char *maintenance;
	char	   *reason;
} MvCreate;

static void
mv_create_error_callback(void *arg)
{
	errcontext("checking the query of materialized view \"%s\"",
			   (const char *) arg);
}

/* The refresh_policy argument, checked. */
static char *
mv_policy_argument(FunctionCallInfo fcinfo)
{
	char	   *policy = PG_ARGISNULL(3) ? pstrdup(MATVIEW_POLICY_AUTO) :
		text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (strcmp(policy, MATVIEW_POLICY_AUTO) != 0 &&
		strcmp(policy, MATVIEW_POLICY_INCREMENTAL) != 0 &&
		strcmp(policy, MATVIEW_POLICY_STRICT) != 0 &&
		strcmp(policy, MATVIEW_POLICY_FULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid refresh_policy \"%s\"", policy),
				 errhint("Use 'auto', 'incremental', 'incremental_strict' or 'full'.")));
	return policy;
}

/*
 * Analyse the query as the pipeline owner (whose rights every update
 * uses), and choose the maintenance.
 */
static void
mv_create_analyze(MvCreate *state)
{
	OwnerContext owner;
	int			nest_level;
	ErrorContextCallback errcallback;

	errcallback.callback = mv_create_error_callback;
	errcallback.arg = state->create.target_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	FlowEnterOwnerContext(state->create.pipeline, &owner);
	nest_level = UserSqlSettingsEnter(NULL);
	MatviewAnalyze(state->create.pipeline, state->query, false, &state->analysis);
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);
	error_context_stack = errcallback.previous;

	state->maintenance = MATVIEW_MAINTENANCE_INCREMENTAL;
	state->reason = NULL;
	if (strcmp(state->policy, MATVIEW_POLICY_FULL) == 0)
	{
		state->maintenance = MATVIEW_MAINTENANCE_FULL;
		state->reason = pstrdup("refresh_policy 'full'");
	}
	else if (!state->analysis.incremental)
	{
		if (strcmp(state->policy, MATVIEW_POLICY_STRICT) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("materialized view %s cannot be maintained incrementally: %s",
							state->create.target_name, state->analysis.reason),
					 errhint("Change the query, or use refresh_policy 'auto' to recompute it in full at each update.")));
		state->maintenance = MATVIEW_MAINTENANCE_FULL;
		state->reason = state->analysis.reason;
	}
}

/* The target's column definitions: the query's output columns. */
static char *
mv_column_definitions(MatviewAnalysis *analysis, const char *separator)
{
	StringInfoData sql;
	ListCell   *cell;

	initStringInfo(&sql);
	foreach(cell, analysis->query->targetList)
	{
		TargetEntry *tle = lfirst(cell);
		Oid			type = exprType((Node *) tle->expr);

		if (tle->resjunk)
			continue;
		if (sql.len > 0)
			appendStringInfoString(&sql, separator);
		SqlAppendColumnDefinition(&sql, tle->resname,
								  type == UNKNOWNOID ? TEXTOID : type,
								  exprTypmod((Node *) tle->expr),
								  exprCollation((Node *) tle->expr));
	}
	return sql.data;
}

/* Create the change feeds of the auto CDC targets read by deltas. */
static void
mv_create_change_feeds(MvCreate *state, StringInfo feeds)
{
	ListCell   *cell;

	foreach(cell, state->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		if (source->kind != MATVIEW_SOURCE_CHANGE_FEED ||
			strcmp(state->maintenance, MATVIEW_MAINTENANCE_INCREMENTAL) != 0)
			continue;
		if (feeds->len > 1)
			appendStringInfoString(feeds, ", ");
		escape_json(feeds, ChangeFeedEnsure(source->cdc_flow, source->relid));
	}
}

/* The definition: arguments, maintenance, and every table read. */
static Jsonb *
mv_create_definition(MvCreate *state, char **source_text)
{
	FlowDefinitionBuilder builder;
	StringInfoData sources;
	StringInfoData feeds;
	List	   *inputs = NIL;
	bool		plain = false;
	ListCell   *cell;

	initStringInfo(&sources);
	initStringInfo(&feeds);
	appendStringInfoChar(&sources, '[');
	appendStringInfoChar(&feeds, '[');
	mv_create_change_feeds(state, &feeds);
	foreach(cell, state->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		inputs = lappend(inputs, source->name);
		plain |= source->kind == MATVIEW_SOURCE_PLAIN;
		appendStringInfo(&sources, "%s{\"table\": ", sources.len > 1 ? ", " : "");
		escape_json(&sources, source->name);
		appendStringInfoString(&sources, ", \"kind\": ");
		escape_json(&sources, MatviewSourceKindName(source->kind));
		appendStringInfoChar(&sources, '}');
		*source_text = *source_text == NULL ? source->name :
			psprintf("%s, %s", *source_text, source->name);
	}
	appendStringInfoChar(&sources, ']');
	appendStringInfoChar(&feeds, ']');

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutString(&builder, "query", state->query);
	FlowDefinitionPutString(&builder, "refresh_policy", state->policy);
	FlowDefinitionPutString(&builder, "maintenance", state->maintenance);
	FlowDefinitionPutString(&builder, "maintenance_reason", state->reason);
	FlowDefinitionPutStringList(&builder, "inputs", inputs);
	FlowDefinitionPutJson(&builder, "sources", sources.data);
	FlowDefinitionPutJson(&builder, "change_feeds", feeds.data);
	FlowDefinitionPutBool(&builder, "reads_plain_tables", plain);
	return FlowDefinitionEnd(&builder);
}

/* Does the table have exactly these columns, in this order? */
static bool
mv_columns_equal(Oid relid, const char *definitions)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData existing;
	int			i;

	initStringInfo(&existing);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped)
			continue;
		if (existing.len > 0)
			appendStringInfoString(&existing, ",\n  ");
		SqlAppendColumnDefinition(&existing, NameStr(attr->attname),
								  attr->atttypid, attr->atttypmod,
								  attr->attcollation);
	}
	relation_close(rel, NoLock);
	return strcmp(existing.data, definitions) == 0;
}

/* MatviewTargetMatches: see matview_internal.h. */
bool
MatviewTargetMatches(MatviewAnalysis *analysis, Oid relid)
{
	return mv_columns_equal(relid, mv_column_definitions(analysis, ",\n  "));
}

/*
 * A replaced view's table altered in place (FlowCreateTable) keeps its
 * columns' order, new ones last; the view's rows are read and matched in
 * its query's column order, so when that differs the columns are dropped
 * and added again in the query's order (the table is empty: Begin emptied
 * it).
 */
static void
mv_replace_column_order(MvCreate *state)
{
	Relation	rel;
	TupleDesc	desc;
	StringInfoData sql;
	int			i;

	if (state->create.replaced == NULL ||
		MatviewTargetMatches(&state->analysis, state->create.target_relid))
		return;
	rel = relation_open(state->create.target_relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	initStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ", state->create.target_name);
	for (i = 0; i < desc->natts; i++)
	{
		if (!TupleDescAttr(desc, i)->attisdropped)
			appendStringInfo(&sql, "DROP COLUMN %s, ",
							 quote_identifier(NameStr(TupleDescAttr(desc, i)->attname)));
	}
	relation_close(rel, AccessShareLock);
	appendStringInfo(&sql, "ADD COLUMN %s",
					 mv_column_definitions(&state->analysis, ", ADD COLUMN "));
	FlowCreateExecute(sql.data);
	CommandCounterIncrement();
}

/*
 * A replaced view may not read a table that is downstream of it (it would
 * close a cycle of flows): every table its new query reads is checked.
 */
static void
mv_refuse_cycle(MvCreate *state)
{
	FlowDesc   *flow = state->create.replaced;
	List	   *downstream;
	ListCell   *cell;

	if (flow == NULL)
		return;
	downstream = FlowOrderDownstream(CatalogGetFlows(flow->pipeline_id),
									 list_make1_int(flow->flow_id));
	foreach(cell, state->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);
		ListCell   *dcell;

		foreach(dcell, downstream)
		{
			if (((FlowDesc *) lfirst(dcell))->target_relid == source->relid)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
						 errmsg("materialized view %s cannot read %s, which is downstream of it",
								state->create.target_name, source->name),
						 errhint("A flow reads tables upstream of it; the pipeline's flows must not form a cycle.")));
		}
	}
}

/*
 * Capture the plain tables a view maintained by deltas reads, for its flow
 * (after it is registered, before its first computation: CaptureEnsure
 * gives it the position "everything committed so far" and holds the
 * tables' writers off until the transaction ends).  A replaced view first
 * stops capturing every table it read (the last reader of a table takes
 * its triggers and log with it); a log that lacks columns the table has
 * now is made again (its other readers recompute); the view is recomputed
 * anyway.
 */
static void
mv_create_capture(MvCreate *state, int32 flow_id)
{
	bool		incremental = strcmp(state->maintenance,
									 MATVIEW_MAINTENANCE_INCREMENTAL) == 0;
	List	   *captured = NIL;
	ListCell   *cell;

	foreach(cell, state->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		if (incremental && source->kind == MATVIEW_SOURCE_PLAIN)
			captured = lappend_oid(captured, source->relid);
	}
	foreach(cell, CaptureTablesOfFlow(flow_id))
		CaptureRelease(lfirst_oid(cell), flow_id);
	foreach(cell, captured)
	{
		CaptureRefreshColumns(lfirst_oid(cell), state->create.pipeline->owner);
		CaptureEnsure(lfirst_oid(cell), state->create.pipeline->owner, flow_id);
	}
}

/*
 * medallion.create_materialized_view(pipeline_name text, target_table text,
 *		query text, refresh_policy text DEFAULT 'auto',
 *		replace boolean DEFAULT false)
 */
Datum
medallion_create_materialized_view(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	char	   *target_table = SqlTextArgument(fcinfo, 1, "target_table");
	MvCreate	state;
	char	   *source_text = NULL;
	Jsonb	   *definition;
	int32		flow_id;

	memset(&state, 0, sizeof(MvCreate));
	state.query = SqlTextArgument(fcinfo, 2, "query");
	state.policy = mv_policy_argument(fcinfo);
	state.replace = FlowCreateReplaceArgument(fcinfo, 4);

	FlowCreateBegin(&state.create, FLOW_TYPE_MATERIALIZED_VIEW, pipeline_name,
					target_table, state.replace);
	mv_create_analyze(&state);
	FlowCreateTable(&state.create,
					psprintf("CREATE TABLE %s (\n  %s\n)", state.create.target_name,
							 mv_column_definitions(&state.analysis, ",\n  ")));
	mv_replace_column_order(&state);
	mv_refuse_cycle(&state);
	definition = mv_create_definition(&state, &source_text);
	flow_id = FlowCreateRegister(&state.create, FLOW_TYPE_MATERIALIZED_VIEW,
								 InvalidOid, source_text ? source_text : "",
								 definition);
	mv_create_capture(&state, flow_id);
	PG_RETURN_VOID();
}
