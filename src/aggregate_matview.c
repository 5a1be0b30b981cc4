/*-------------------------------------------------------------------------
 *
 * aggregate_matview.c
 *	  Materialized views attached to a pipeline: registered as flows by
 *	  medallion.add_materialized_view(), refreshed by updates when a table
 *	  they read changed.
 *
 * add_materialized_view registers a DBA's materialized view as a flow;
 * each update refreshes it (CONCURRENTLY when it is populated and has a
 * unique index usable for that) when a table it reads, directly or through
 * views, changed earlier in the update, and otherwise leaves it alone.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregate_matview.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "aggregates.h"
#include "catalog.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "sql_names.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_add_materialized_view);

/*
 * The relations a materialized view reads, found through the dependencies
 * of its rewrite rule, and of the rules of the views it reads, recursively.
 * Materialized views read are leaves: they change only when refreshed.
 */
static List *
matview_inputs(Oid matview_relid)
{
	List	   *queue = list_make1_oid(matview_relid);
	List	   *seen = list_make1_oid(matview_relid);
	List	   *inputs = NIL;
	Oid			types[1] = {OIDOID};
	MemoryContext caller_context = CurrentMemoryContext;

	SPI_connect();
	while (queue != NIL)
	{
		Oid			relid = linitial_oid(queue);
		Datum		values[1] = {ObjectIdGetDatum(relid)};
		uint64		n;
		uint64		row;

		queue = list_delete_first(queue);
		n = SpiExecute("SELECT DISTINCT d.refobjid, c.relkind"
					   "  FROM pg_catalog.pg_rewrite r"
					   "  JOIN pg_catalog.pg_depend d"
					   "    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
					   "   AND d.objid OPERATOR(pg_catalog.=) r.oid"
					   "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.refobjid"
					   " WHERE r.ev_class OPERATOR(pg_catalog.=) $1"
					   "   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
					   "   AND d.refobjid OPERATOR(pg_catalog.<>) $1",
					   1, types, values, NULL, SPI_OK_SELECT);
		for (row = 0; row < n; row++)
		{
			bool		isnull;
			Oid			input = DatumGetObjectId(SpiGetDatum(row, 1, &isnull));
			char		relkind = DatumGetChar(SpiGetDatum(row, 2, &isnull));

			MemoryContext spi_context;

			if (list_member_oid(seen, input))
				continue;
			/* the lists outlive SPI_finish */
			spi_context = MemoryContextSwitchTo(caller_context);
			seen = lappend_oid(seen, input);
			if (relkind == RELKIND_VIEW)
				queue = lappend_oid(queue, input);
			else if (relkind == RELKIND_RELATION ||
					 relkind == RELKIND_PARTITIONED_TABLE ||
					 relkind == RELKIND_MATVIEW ||
					 relkind == RELKIND_FOREIGN_TABLE)
				inputs = lappend_oid(inputs, input);
			MemoryContextSwitchTo(spi_context);
		}
	}
	SPI_finish();
	return inputs;
}

/*
 * Can the view be refreshed CONCURRENTLY?  That needs a valid unique index
 * on plain columns, without a predicate (as core checks).
 */
static bool
matview_has_usable_unique_index(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *cell;
	bool		found = false;

	foreach(cell, indexes)
	{
		Relation	index = index_open(lfirst_oid(cell), AccessShareLock);
		Form_pg_index form = index->rd_index;
		int			i;
		bool		plain = true;

		for (i = 0; i < form->indnkeyatts; i++)
		{
			if (form->indkey.values[i] <= 0)
				plain = false;
		}
		if (form->indisunique && form->indimmediate &&
			form->indisvalid && plain &&
			RelationGetIndexPredicate(index) == NIL)
			found = true;
		index_close(index, AccessShareLock);
		if (found)
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * Run a REFRESH MATERIALIZED VIEW statement.  REFRESH runs the view's
 * query as a restricted operation itself, but CONCURRENTLY first creates a
 * temporary table, which cannot be done in a restricted operation: so the
 * command runs as the pipeline owner without our restriction, exactly as
 * when the owner types it.
 */
static void
matview_run_refresh(const char *sql)
{
	Oid			saved_user;
	int			saved_context;

	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(saved_user,
						   saved_context & ~SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		SPI_connect();
		SpiExecute(sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_context);
	}
	PG_END_TRY();
}

/*
 * MatviewRefresh: see aggregates.h.  The view is refreshed when a table it
 * reads changed earlier in this update, or by a direct auto_cdc_apply since
 * the last update; also on a full refresh, when it has
 * never been populated, and after an update of the pipeline that failed
 * (this refresh may be what failed, and the change it missed is not in
 * this update's changed tables).
 */
void
MatviewRefresh(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	List	   *inputs;
	ListCell   *cell;
	const char *reason = NULL;
	Relation	rel;
	bool		populated;
	bool		concurrently = false;
	bool		changed_between_updates;
	int64		watermark;
	Jsonb	   *flow_state;

	rel = relation_open(flow->target_relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view",
						RelationGetRelationName(rel))));
	populated = RelationIsPopulated(rel);

	/*
	 * A direct auto_cdc_apply between updates marks the views reading its
	 * target (CatalogMarkInputChanged); the flow's row is locked first, so
	 * that a mark committed after it is read waits for this update and is
	 * not cleared unseen.
	 */
	CatalogLockFlow(flow, &watermark, &flow_state);
	changed_between_updates = flow_state != NULL &&
		DatumGetBool(DirectFunctionCall2(jsonb_exists, JsonbPGetDatum(flow_state),
										 CStringGetTextDatum(MATVIEW_INPUT_CHANGED_KEY)));
	if (changed_between_updates)
		reason = "input changed";
	inputs = matview_inputs(flow->target_relid);
	foreach(cell, inputs)
	{
		if (list_member_oid(context->changed_relids, lfirst_oid(cell)))
		{
			reason = "input changed";
			break;
		}
	}
	if (reason == NULL && context->full_refresh)
		reason = "full refresh";
	if (reason == NULL && !populated)
		reason = "not populated";
	if (reason == NULL && context->pipeline->consecutive_failures > 0)
		reason = "previous update failed";

	if (reason != NULL)
		concurrently = populated && matview_has_usable_unique_index(rel);
	/* REFRESH refuses a view this session holds open; keep the lock */
	relation_close(rel, NoLock);
	if (reason != NULL)
	{
		matview_run_refresh(psprintf("REFRESH MATERIALIZED VIEW %s%s",
									 concurrently ? "CONCURRENTLY " : "",
									 CatalogQualifiedRelationName(flow->target_relid)));
		result->changed = true;
	}
	/* only the mark is consumed: whatever else the state holds stays */
	if (changed_between_updates)
		CatalogSetFlowState(flow->flow_id,
							DatumGetJsonbP(DirectFunctionCall2(jsonb_delete,
															   JsonbPGetDatum(flow_state),
															   CStringGetTextDatum(MATVIEW_INPUT_CHANGED_KEY))));

	FlowResultDetail(result);
	appendStringInfo(&result->details, "\"refreshed\": %s",
					 reason != NULL ? "true" : "false");
	if (reason != NULL)
	{
		appendStringInfo(&result->details, ", \"concurrently\": %s, \"reason\": ",
						 concurrently ? "true" : "false");
		escape_json(&result->details, reason);
	}
}

/*
 * The caller must own the view, and the pipeline's owner must be able to
 * refresh it: updates run as the pipeline's owner.
 */
static void
matview_check_owners(PipelineDesc *pipeline, Oid matview_relid)
{
	HeapTuple	tuple;
	Oid			relowner;

	if (!pg_class_ownercheck(matview_relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_MATVIEW,
					   get_rel_name(matview_relid));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(matview_relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", matview_relid);
	relowner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	if (!has_privs_of_role(pipeline->owner, relowner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the owner of pipeline \"%s\" cannot refresh materialized view %s",
						pipeline->pipeline_name,
						CatalogQualifiedRelationName(matview_relid)),
				 errdetail("Updates run as the pipeline's owner, and only the owner of a materialized view can refresh it."),
				 errhint("Make the pipeline's owner the owner of the materialized view.")));
}

/*
 * The pipeline tables the view reads (qualified names): an update runs it
 * after the flows of these tables, and it must read at least one.
 */
static List *
matview_pipeline_inputs(PipelineDesc *pipeline, Oid matview_relid)
{
	List	   *flows = CatalogGetFlows(pipeline->pipeline_id);
	List	   *pipeline_inputs = NIL;
	ListCell   *cell;

	foreach(cell, matview_inputs(matview_relid))
	{
		ListCell   *fcell;

		foreach(fcell, flows)
		{
			if (((FlowDesc *) lfirst(fcell))->target_relid == lfirst_oid(cell))
			{
				pipeline_inputs = lappend(pipeline_inputs,
										  CatalogQualifiedRelationName(lfirst_oid(cell)));
				break;
			}
		}
	}
	if (pipeline_inputs == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("materialized view %s reads no table of pipeline \"%s\"",
						CatalogQualifiedRelationName(matview_relid),
						pipeline->pipeline_name),
				 errdetail("It is refreshed when a pipeline table it reads changes."),
				 errhint("Create the flows it reads first, then attach it.")));
	return pipeline_inputs;
}

/*
 * medallion.add_materialized_view(pipeline_name text, matview regclass)
 *
 * Registers the caller's materialized view as a flow of type "matview".
 * Its inputs (the pipeline tables it reads, at least one) are recorded in
 * its definition, so that updates run it after the flows that fill them.
 */
Datum
medallion_add_materialized_view(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	Oid			matview_relid;
	PipelineDesc *pipeline;
	FlowDefinitionBuilder definition;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matview must not be null")));
	matview_relid = PG_GETARG_OID(1);

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(matview_relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", matview_relid)));
	if (get_rel_relkind(matview_relid) != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view",
						CatalogQualifiedRelationName(matview_relid)),
				 errhint("Attach a materialized view; aggregate tables are made with medallion.create_aggregate().")));
	matview_check_owners(pipeline, matview_relid);
	if (CatalogGetFlowByTarget(matview_relid, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("materialized view %s is already attached to a pipeline",
						CatalogQualifiedRelationName(matview_relid))));

	FlowDefinitionBegin(&definition);
	FlowDefinitionPutStringList(&definition, "inputs",
								matview_pipeline_inputs(pipeline, matview_relid));
	(void) CatalogCreateFlow(pipeline, FLOW_TYPE_MATVIEW, matview_relid,
							 InvalidOid, NULL, FlowDefinitionEnd(&definition));
	PG_RETURN_VOID();
}
