/*-------------------------------------------------------------------------
 *
 * capture_sql.c
 *	  SQL-callable functions of change capture: capture_pending() for the
 *	  medallion.captured_tables view, and the internal _capture_* functions
 *	  through which the tests drive the C API of capture.h (EXECUTE revoked
 *	  from PUBLIC: flows call the C API, nobody calls these in production).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/capture_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "capture.h"
#include "capture_internal.h"
#include "catalog.h"
#include "medallion.h"
#include "version.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(medallion_capture_pending);

/*
 * medallion.capture_pending(relid): log rows above the lowest position of
 * the flows reading relid, counted as the log's owner; NULL for a caller
 * who owns neither the table nor its log, or when relid is not captured.
 */
Datum
medallion_capture_pending(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	Oid			relid = PG_GETARG_OID(0);
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	Oid			log_relid;
	Oid			log_owner;
	int64		pending;

	values[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	if (SpiExecuteAsExtensionOwner("SELECT c.log_table::pg_catalog.oid,"
								   "       (SELECT pg_catalog.min(k.position) FROM medallion.capture_consumer k"
								   "         WHERE k.relid OPERATOR(pg_catalog.=) c.relid)"
								   "  FROM medallion.captured_table c"
								   " WHERE c.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
								   1, types, values, NULL, SPI_OK_SELECT) != 1)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	log_relid = DatumGetObjectId(SpiGetDatum(0, 1, &isnull));
	values[0] = SpiGetDatum(0, 2, &isnull);
	log_owner = CaptureRelationOwner(log_relid);
	if (isnull || !OidIsValid(log_owner) ||
		!(has_privs_of_role(GetUserId(), log_owner) ||
		  has_privs_of_role(GetUserId(), CaptureRelationOwner(relid))))
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	types[0] = INT8OID;
	CaptureExecuteAs(log_owner,
					 psprintf("SELECT pg_catalog.count(*) FROM %s WHERE "
							  CAPTURE_CHANGE_ID_COLUMN " OPERATOR(pg_catalog.>) $1",
							  CatalogQualifiedRelationName(log_relid)),
					 1, types, values, SPI_OK_SELECT);
	pending = SpiGetInt64(0, 1, &isnull);
	SPI_finish();
	PG_RETURN_INT64(pending);
}

/*
 * The owner of the pipeline of flow_id: the owner of its captures.  A flow
 * that does not exist is an error, or InvalidOid if missing_ok.
 */
static Oid
flow_owner(int32 flow_id, bool missing_ok)
{
	FlowDesc   *flow = CatalogGetFlowById(flow_id, missing_ok);

	return flow == NULL ? InvalidOid :
		CatalogGetPipelineById(flow->pipeline_id, false)->owner;
}

PG_FUNCTION_INFO_V1(medallion_capture_available);

/* medallion._capture_available(relid, owner): NULL, or why not. */
Datum
medallion_capture_available(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *reason;

	if (CaptureAvailable(PG_GETARG_OID(0), PG_GETARG_OID(1), &reason))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(reason));
}

PG_FUNCTION_INFO_V1(medallion_capture_ensure);

/* medallion._capture_ensure(relid, flow_id). */
Datum
medallion_capture_ensure(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	int32		flow_id = PG_GETARG_INT32(1);

	CaptureEnsure(PG_GETARG_OID(0), flow_owner(flow_id, false), flow_id);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(medallion_capture_begin);

/* medallion._capture_begin(relid, flow_id): (log_table, from_id, to_id). */
Datum
medallion_capture_begin(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	int32		flow_id = PG_GETARG_INT32(1);
	/* a flow that does not exist reads nothing: CaptureBegin says so */
	CaptureRange range = CaptureBegin(PG_GETARG_OID(0), flow_id,
									  flow_owner(flow_id, true));
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = CStringGetTextDatum(range.log_table);
	values[1] = Int64GetDatum(range.from_id);
	values[2] = Int64GetDatum(range.to_id);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  values, nulls)));
}

PG_FUNCTION_INFO_V1(medallion_capture_end);

/* medallion._capture_end(relid, flow_id, to_id). */
Datum
medallion_capture_end(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();

	CaptureEnd(PG_GETARG_OID(0), PG_GETARG_INT32(1), PG_GETARG_INT64(2));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(medallion_capture_release);

/* medallion._capture_release(relid, flow_id). */
Datum
medallion_capture_release(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();

	CaptureRelease(PG_GETARG_OID(0), PG_GETARG_INT32(1));
	PG_RETURN_VOID();
}
