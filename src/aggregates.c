/*-------------------------------------------------------------------------
 *
 * aggregates.c
 *	  Gold aggregate flows and attached materialized views.
 *
 * Not written yet: no SQL function creates flows of type "aggregate" or
 * "matview" so far, so the update never calls these functions; they raise
 * a clear error if a flow of such a type ever reaches them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "aggregates.h"

void
AggregateApply(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("aggregate flows are not supported by this version of medallion")));
}

void
AggregateReset(FlowDesc *flow)
{
}

void
MatviewRefresh(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("materialized view flows are not supported by this version of medallion")));
}
