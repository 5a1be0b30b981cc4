/*-------------------------------------------------------------------------
 *
 * flow_row_count.c
 *	  medallion.flow_row_count: the exact number of rows of a flow's target,
 *	  for pipeline_report.
 *
 * The statistics' estimate (reltuples, live tuples) doubles after a full
 * refresh until autovacuum catches up, so the report counts.  It counts as
 * the pipeline's owner, in the owner's security context, as a flow step
 * reads: whoever asks for the report (a superuser, a member of the owner)
 * never runs the owner's code (row security policies, say) with their own
 * rights.  Only members of the owner get a number.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_row_count.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "flow.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_flow_row_count);

/*
 * flow_row_count(pipeline_name, target_table): NULL when the table is not
 * a flow target of that pipeline, is gone, or the caller is no member of
 * the pipeline's owner.
 */
Datum
medallion_flow_row_count(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PipelineDesc *pipeline;
	FlowDesc   *flow;
	Oid			relid = PG_GETARG_OID(1);
	OwnerContext owner;
	int64		count;

	pipeline = CatalogGetPipeline(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);
	if (pipeline == NULL || !has_privs_of_role(GetUserId(), pipeline->owner))
		PG_RETURN_NULL();
	flow = CatalogGetFlowByTarget(relid, true);
	if (flow == NULL || flow->pipeline_id != pipeline->pipeline_id ||
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		PG_RETURN_NULL();

	FlowEnterOwnerContext(pipeline, &owner);
	SPI_connect();
	SpiExecute(psprintf("SELECT pg_catalog.count(*) FROM %s",
						CatalogQualifiedRelationName(relid)),
			   0, NULL, NULL, NULL, SPI_OK_SELECT);
	count = SpiGetInt64(0, 1, NULL);
	SPI_finish();
	FlowLeaveOwnerContext(&owner);
	PG_RETURN_INT64(count);
}
