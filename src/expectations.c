/*-------------------------------------------------------------------------
 *
 * expectations.c
 *	  Data-quality expectations of silver flows.
 *
 * An expectation is a named boolean SQL expression over a silver flow's
 * output columns, stored in medallion.expectation.  It has CHECK-constraint
 * semantics: a row violates it only when the expression is false; NULL
 * passes.  On violation, "warn" keeps the row, "drop" does not write it
 * (and quarantines it when the flow has a quarantine table), and "fail"
 * aborts the flow's update, which writes nothing of the batch.
 *
 * The conditions are evaluated by the silver flow's own query: each one
 * becomes an extra output column of the query that feeds the flow (see
 * silver.c), in the placed form of user_sql.h, so that the executor
 * evaluates them together with the user's query, and this file only counts
 * the results.  A condition is checked to be one SQL expression
 * (UserSqlExpression) when it is added and each time it is loaded.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/expectations.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "expectations.h"
#include "spi_util.h"
#include "sql_names.h"
#include "update_control.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_add_expectation);
PG_FUNCTION_INFO_V1(medallion_drop_expectation);

/* Longest value shown per column when describing a failing row (as core). */
#define EXPECTATION_MAX_FIELD_LEN 64

/* The argument, as user_sql.c names it in messages. */
#define EXPECTATION_CONDITION "expectation condition"

static FlowDesc *expectation_get_silver_flow(const char *target_table,
											 Oid *target_relid);
static void expectation_validate_condition(FlowDesc *flow, Oid target_relid,
										   PipelineDesc *pipeline,
										   const char *condition);
static ExpectationAction expectation_parse_action(const char *action);

/*
 * Expectations of a flow
 */

const char *
ExpectationActionName(ExpectationAction action)
{
	switch (action)
	{
		case EXPECTATION_WARN:
			return "warn";
		case EXPECTATION_DROP:
			return "drop";
		case EXPECTATION_FAIL:
			return "fail";
	}
	return "warn";				/* keep compiler quiet */
}

/* The action named by add_expectation's on_violation argument. */
static ExpectationAction
expectation_parse_action(const char *action)
{
	if (strcmp(action, "warn") == 0)
		return EXPECTATION_WARN;
	if (strcmp(action, "drop") == 0)
		return EXPECTATION_DROP;
	if (strcmp(action, "fail") == 0)
		return EXPECTATION_FAIL;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for on_violation: \"%s\"", action),
			 errhint("Valid values are \"warn\", \"drop\" and \"fail\".")));
	return EXPECTATION_WARN;	/* keep compiler quiet */
}

/*
 * Load the expectations of a flow, in name order ("C" collation), which is
 * the order they are checked and reported in, as core checks a table's
 * CHECK constraints in name order.  The catalog is read as the extension
 * owner because this runs in the pipeline owner's restricted context.
 * Conditions are checked again (cheaply) before they are used, so that a
 * catalog row that was edited by hand cannot splice SQL into the flow's
 * query.
 */
ExpectationSet *
ExpectationsLoad(int32 flow_id)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	ExpectationSet *set;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	uint64		nrows;
	uint64		i;

	values[0] = Int32GetDatum(flow_id);

	SPI_connect();
	nrows = SpiExecuteAsExtensionOwner("SELECT expectation_name, condition, on_violation"
									   " FROM medallion.expectation"
									   " WHERE flow_id OPERATOR(pg_catalog.=) $1"
									   " ORDER BY expectation_name COLLATE pg_catalog.\"C\"",
									   1, argtypes, values, NULL, SPI_OK_SELECT);

	set = MemoryContextAllocZero(caller_cxt, sizeof(ExpectationSet));
	set->count = (int) nrows;
	set->items = MemoryContextAllocZero(caller_cxt,
										sizeof(Expectation) * Max(nrows, 1));
	for (i = 0; i < nrows; i++)
	{
		Expectation *e = &set->items[i];
		char	   *name = SpiGetText(i, 1);
		char	   *condition = SpiGetText(i, 2);
		char	   *action = SpiGetText(i, 3);

		if (name == NULL || condition == NULL || action == NULL)
			elog(ERROR, "invalid row in medallion.expectation for flow %d",
				 flow_id);
		e->name = MemoryContextStrdup(caller_cxt, name);
		e->condition = MemoryContextStrdup(caller_cxt, condition);
		e->action = expectation_parse_action(action);
		if (e->action == EXPECTATION_DROP)
			set->any_drop = true;
	}

	SPI_finish();

	for (i = 0; i < nrows; i++)
		set->items[i].condition_sql =
			UserSqlExpression(set->items[i].condition,
							  EXPECTATION_CONDITION);

	return set;
}

void
ExpectationsAppendColumns(ExpectationSet *set, StringInfo sql)
{
	int			i;

	for (i = 0; i < set->count; i++)
		appendStringInfo(sql, ",\n  %s", set->items[i].condition_sql);
}

/*
 * Count one row.  Only false violates (CHECK semantics); a NULL result
 * counts as passed.  A row that violates several expectations is counted
 * for each of them.
 */
void
ExpectationsCheckRow(ExpectationSet *set, const Datum *values,
					 const bool *isnull, ExpectationRowResult *result)
{
	int			i;

	result->drop = false;
	result->first_fail = -1;
	result->nviolated = 0;

	for (i = 0; i < set->count; i++)
	{
		Expectation *e = &set->items[i];

		if (isnull[i] || DatumGetBool(values[i]))
		{
			e->passed_records++;
			continue;
		}

		e->failed_records++;
		result->nviolated++;
		if (e->action == EXPECTATION_DROP)
			result->drop = true;
		else if (e->action == EXPECTATION_FAIL && result->first_fail < 0)
			result->first_fail = i;
	}
}

Datum
ExpectationsViolatedArray(ExpectationSet *set, const Datum *values,
						  const bool *isnull)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(set->count, 1));
	int			n = 0;
	int			i;

	for (i = 0; i < set->count; i++)
	{
		if (!isnull[i] && !DatumGetBool(values[i]))
			names[n++] = CStringGetTextDatum(set->items[i].name);
	}
	return PointerGetDatum(construct_array_builtin(names, n, TEXTOID));
}

/*
 * Describe a row as core's ExecBuildSlotValueDescription does for a CHECK
 * violation: "(v1, v2, null)", each value cut to 64 bytes.
 */
char *
ExpectationDescribeRow(TupleDesc tupdesc, int natts, const Datum *values,
					   const bool *isnull)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (i = 0; i < natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		Oid			output_func;
		bool		is_varlena;
		char	   *val;
		int			vallen;

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (isnull[i])
		{
			appendStringInfoString(&buf, "null");
			continue;
		}
		getTypeOutputInfo(attr->atttypid, &output_func, &is_varlena);
		val = OidOutputFunctionCall(output_func, values[i]);
		vallen = strlen(val);
		if (vallen <= EXPECTATION_MAX_FIELD_LEN)
			appendStringInfoString(&buf, val);
		else
		{
			vallen = pg_mbcliplen(val, vallen, EXPECTATION_MAX_FIELD_LEN);
			appendBinaryStringInfo(&buf, val, vallen);
			appendStringInfoString(&buf, "...");
		}
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * The error of a fail expectation, worded like core's check-constraint
 * violation, with the constraint name and table attached for clients.
 */
void
ExpectationReportFailure(Expectation *expectation, const char *flow_name,
						 Relation target, const char *row_description)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("row violates expectation \"%s\" of flow \"%s\"",
					expectation->name, flow_name),
			 errdetail("Failing row contains %s.", row_description),
			 errhint("Nothing of this batch was written. Fix the source rows, or remove the expectation with medallion.drop_expectation(), and run the pipeline again."),
			 target ? errtableconstraint(target, expectation->name) : 0));
	pg_unreachable();
}

void
ExpectationsAppendMetrics(ExpectationSet *set, StringInfo details)
{
	int			i;

	appendStringInfoString(details, "\"expectations\": [");
	for (i = 0; i < set->count; i++)
	{
		Expectation *e = &set->items[i];

		if (i > 0)
			appendStringInfoString(details, ", ");
		appendStringInfoString(details, "{\"name\": ");
		escape_json(details, e->name);
		appendStringInfo(details,
						 ", \"on_violation\": \"%s\", \"passed_records\": " INT64_FORMAT
						 ", \"failed_records\": " INT64_FORMAT "}",
						 ExpectationActionName(e->action),
						 e->passed_records, e->failed_records);
	}
	appendStringInfoChar(details, ']');
}

/*
 * SQL-callable functions
 */
/*
 * The silver flow whose target is target_table (a table name as written in
 * SQL, resolved with the caller's search_path).
 */
static FlowDesc *
expectation_get_silver_flow(const char *target_table, Oid *target_relid)
{
	RangeVar   *rv;
	FlowDesc   *flow;

	rv = makeRangeVarFromNameList(stringToQualifiedNameList(target_table));
	*target_relid = RangeVarGetRelid(rv, NoLock, false);

	flow = CatalogGetFlowByTarget(*target_relid, true);
	if (flow == NULL || flow->type != FLOW_TYPE_SILVER)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table \"%s\" is not the target of a silver flow",
						target_table),
				 errhint("Expectations can be added to tables created by medallion.create_silver().")));
	return flow;
}

/*
 * Check a condition against the target's columns, as the caller and under
 * the pipeline's search_path: it must be one expression (see
 * user_sql.h), its names must resolve against the
 * flow's output columns (the target's columns but _row_id, which the flow
 * assigns only when it writes), and it must be boolean.  Like CHECK
 * constraints, it may not use subqueries, aggregates, window functions or
 * set-returning functions.
 */
static void
expectation_validate_condition(FlowDesc *flow, Oid target_relid,
							   PipelineDesc *pipeline, const char *condition)
{
	Relation	rel;
	TupleDesc	tupdesc;
	StringInfoData sql;
	int			nest_level;
	bool		first = true;
	int			i;
	List	   *raw;
	Query	   *query;
	TupleDesc	result_desc;
	TargetEntry *tle;
	Oid			result_type;

	nest_level = UserSqlSettingsEnter(pipeline->search_path);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s FROM (SELECT ",
					 UserSqlExpression(condition, EXPECTATION_CONDITION));
	rel = relation_open(target_relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (attr->attisdropped || strcmp(NameStr(attr->attname), "_row_id") == 0)
			continue;
		if (!first)
			appendStringInfoString(&sql, ", ");
		appendStringInfoString(&sql, quote_identifier(NameStr(attr->attname)));
		first = false;
	}
	if (first)
		appendStringInfoString(&sql, "NULL");
	appendStringInfo(&sql, " FROM ONLY %s) AS %s LIMIT 0",
					 QuoteQualifiedName(RelationGetNamespace(rel),
										RelationGetRelationName(rel)),
					 quote_identifier(RelationGetRelationName(rel)));
	relation_close(rel, AccessShareLock);

	raw = UserSqlRawParse(sql.data);
	query = UserSqlAnalyzeQuery(linitial_node(RawStmt, raw), sql.data, 0,
								NULL, NULL, &result_desc);

	if (query->hasSubLinks)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot use subquery in expectation condition")));
	if (query->hasAggs)
		ereport(ERROR,
				(errcode(ERRCODE_GROUPING_ERROR),
				 errmsg("aggregate functions are not allowed in expectation conditions")));
	if (query->hasWindowFuncs)
		ereport(ERROR,
				(errcode(ERRCODE_WINDOWING_ERROR),
				 errmsg("window functions are not allowed in expectation conditions")));
	if (query->hasTargetSRFs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-returning functions are not allowed in expectation conditions")));

	tle = linitial_node(TargetEntry, query->targetList);
	result_type = exprType((Node *) tle->expr);
	if (result_type != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("expectation condition must be type %s, not type %s",
						"boolean", format_type_be(result_type))));

	UserSqlSettingsLeave(nest_level);
}

/*
 * Wait for a running update of the flow's pipeline, and keep the next one
 * off until this transaction ends, before touching the flow's table (the
 * order replace => true follows, flow_create.c).  An update's apply of the
 * flow locks the flow's catalog row first and may then take ACCESS
 * EXCLUSIVE locks on the table's indexes (the first apply into an empty
 * table builds them once at its end, bulk_insert.h); validating the
 * condition plans a query over the table, which holds ACCESS SHARE on them,
 * and the expectation's row references the flow's, whose foreign key check
 * waits for that row lock: taken in the other order, the two deadlocked
 * (once, in the README's tutorial, beside the continuous worker).
 */
static void
expectation_wait_for_update(FlowDesc *flow)
{
	UpdateControlLockPipeline(flow->pipeline_id, UPDATE_STOP_NONE);
	CatalogShareLockFlow(flow);
}

/*
 * medallion.add_expectation(target_table text, expectation_name text,
 *							 condition text, on_violation text DEFAULT 'warn')
 *
 * Adds a named expectation to a silver flow; it applies from the flow's
 * next update.  Only the pipeline's owner may do this.
 */
Datum
medallion_add_expectation(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *target_table = SqlTextArgument(fcinfo, 0, "target_table");
	char	   *name = SqlTextArgument(fcinfo, 1, "expectation_name");
	char	   *condition = SqlTextArgument(fcinfo, 2, "condition");
	char	   *action_text = SqlTextArgument(fcinfo, 3, "on_violation");
	ExpectationAction action;
	Oid			target_relid;
	FlowDesc   *flow;
	PipelineDesc *pipeline;
	Oid			argtypes[4] = {INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	uint64		nrows;

	action = expectation_parse_action(action_text);
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expectation name must not be empty")));
	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("expectation name \"%s\" is too long", name),
				 errdetail("An expectation name may have at most %d bytes.",
						   NAMEDATALEN - 1)));

	flow = expectation_get_silver_flow(target_table, &target_relid);
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);
	CatalogCheckPipelineOwner(pipeline);
	expectation_wait_for_update(flow);

	expectation_validate_condition(flow, target_relid, pipeline, condition);

	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(condition);
	values[3] = CStringGetTextDatum(ExpectationActionName(action));

	SPI_connect();
	nrows = SpiExecuteAsExtensionOwner("SELECT 1 FROM medallion.expectation"
									   " WHERE flow_id OPERATOR(pg_catalog.=) $1"
									   " AND expectation_name OPERATOR(pg_catalog.=) $2",
									   2, argtypes, values, NULL, SPI_OK_SELECT);
	if (nrows > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("expectation \"%s\" of flow \"%s\" already exists",
						name, flow->flow_name),
				 errhint("Use medallion.drop_expectation() first to replace it.")));

	SpiExecuteAsExtensionOwner("INSERT INTO medallion.expectation"
							   " (flow_id, expectation_name, condition, on_violation, created_at)"
							   " VALUES ($1, $2, $3, $4, pg_catalog.now())",
							   4, argtypes, values, NULL, SPI_OK_INSERT);
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * medallion.drop_expectation(target_table text, expectation_name text)
 *
 * Removes an expectation, e.g. one that keeps failing the flow.  Its
 * metrics stay in the event log.
 */
Datum
medallion_drop_expectation(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *target_table = SqlTextArgument(fcinfo, 0, "target_table");
	char	   *name = SqlTextArgument(fcinfo, 1, "expectation_name");
	Oid			target_relid;
	FlowDesc   *flow;
	PipelineDesc *pipeline;
	Oid			argtypes[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	uint64		nrows;

	flow = expectation_get_silver_flow(target_table, &target_relid);
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);
	CatalogCheckPipelineOwner(pipeline);

	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(name);

	SPI_connect();
	nrows = SpiExecuteAsExtensionOwner("DELETE FROM medallion.expectation"
									   " WHERE flow_id OPERATOR(pg_catalog.=) $1"
									   " AND expectation_name OPERATOR(pg_catalog.=) $2",
									   2, argtypes, values, NULL, SPI_OK_DELETE);
	SPI_finish();

	if (nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("expectation \"%s\" of flow \"%s\" does not exist",
						name, flow->flow_name)));

	PG_RETURN_VOID();
}
