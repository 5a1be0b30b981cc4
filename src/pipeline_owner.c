/*-------------------------------------------------------------------------
 *
 * pipeline_owner.c
 *	  Handing a pipeline to another role: alter_pipeline(owner => ...).
 *
 * REASSIGN OWNED moves tables but not medallion's catalog rows, so a
 * pipeline keeps running as its old owner.  alter_pipeline(owner => role)
 * moves everything the pipeline owns at once, under the rules of ALTER
 * TABLE ... OWNER TO: the caller can manage the pipeline (its owner, a
 * member of the owner, or a superuser) and is a member of the new role
 * (superusers aside).  What moves: the pipeline's row, the tables of its
 * flows with their companions (quarantine tables and views of current
 * versions beside them, the state tables their definitions record in
 * medallion_state) and the S3 secrets that only its bronze flows use.  The statements run as the extension owner with the
 * search_path pinned, and name every relation and role quoted and
 * schema-qualified.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline_owner.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "cdc.h"
#include "flow_definition.h"
#include "lingering_update.h"
#include "pipeline_owner.h"
#include "spi_util.h"
#include "state_table.h"

/*
 * A secret's owner is the only role (with superusers) that may use it, so
 * the secrets of the pipeline's bronze flows move with the pipeline.  A
 * secret that another pipeline uses as well would then fail that pipeline:
 * the handover is refused instead.
 */
static void
move_secrets(const PipelineDesc *pipeline, Oid new_owner)
{
	Oid			types[3] = {INT4OID, OIDOID, OIDOID};
	Datum		values[3];

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = ObjectIdGetDatum(pipeline->owner);
	values[2] = ObjectIdGetDatum(new_owner);
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT s.secret_name, p.pipeline_name"
							   "  FROM medallion.flow f"
							   "  JOIN medallion.secret s ON s.secret_name"
							   "       OPERATOR(pg_catalog.=) (f.definition OPERATOR(pg_catalog.->>) 'secret_name')"
							   "  JOIN medallion.flow f2 ON (f2.definition OPERATOR(pg_catalog.->>) 'secret_name')"
							   "       OPERATOR(pg_catalog.=) s.secret_name"
							   "  JOIN medallion.pipeline p ON p.pipeline_id OPERATOR(pg_catalog.=) f2.pipeline_id"
							   " WHERE f.pipeline_id OPERATOR(pg_catalog.=) $1"
							   "   AND f2.pipeline_id OPERATOR(pg_catalog.<>) $1"
							   "   AND s.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $2"
							   " LIMIT 1",
							   2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("secret \"%s\" of pipeline \"%s\" is also used by pipeline \"%s\"",
						SpiGetText(0, 1), pipeline->pipeline_name,
						SpiGetText(0, 2)),
				 errdetail("A secret is usable only by its owner, and it moves with the pipeline to the new owner."),
				 errhint("Hand over both pipelines, or drop the other pipeline first.")));
	SpiExecuteAsExtensionOwner("UPDATE medallion.secret s"
							   "   SET owner = $3::pg_catalog.regrole"
							   "  FROM medallion.flow f"
							   " WHERE f.pipeline_id OPERATOR(pg_catalog.=) $1"
							   "   AND s.secret_name OPERATOR(pg_catalog.=)"
							   "       (f.definition OPERATOR(pg_catalog.->>) 'secret_name')"
							   "   AND s.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $2",
							   3, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * A companion that is part of the API, <target><suffix> beside the target,
 * when the flow's type makes one and it is of the expected kind: a silver
 * flow's quarantine table (when it has one), an auto CDC flow's view of
 * current versions.  Else InvalidOid.
 */
static Oid
api_companion(const FlowDesc *flow)
{
	const char *suffix;
	char		relkind;
	Oid			relid;

	if (flow->type == FLOW_TYPE_SILVER &&
		FlowDefinitionBool(flow, "quarantine", false))
	{
		suffix = "_quarantine";
		relkind = RELKIND_RELATION;
	}
	else if (CdcFlowTypeKeepsTarget(flow->type))
	{
		suffix = "_current";
		relkind = RELKIND_VIEW;
	}
	else
		return InvalidOid;
	relid = get_relname_relid(psprintf("%s%s", get_rel_name(flow->target_relid),
									   suffix),
							  get_rel_namespace(flow->target_relid));
	return OidIsValid(relid) && get_rel_relkind(relid) == relkind ?
		relid : InvalidOid;
}

/*
 * The relations medallion made for the pipeline's flows: each existing
 * target, its companions of the API, and the state tables its definition
 * records (state_table.h).  Nothing is found by a name pattern alone.
 */
static List *
pipeline_relations(const PipelineDesc *pipeline)
{
	List	   *relids = NIL;
	ListCell   *cell;

	foreach(cell, CatalogGetFlows(pipeline->pipeline_id))
	{
		FlowDesc   *flow = lfirst(cell);

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(flow->target_relid)))
			continue;
		relids = list_append_unique_oid(relids, flow->target_relid);
		if (OidIsValid(api_companion(flow)))
			relids = list_append_unique_oid(relids, api_companion(flow));
		relids = list_concat_unique_oid(relids, StateTablesOfFlow(flow));
	}
	return relids;
}

/*
 * Each relation of the pipeline that its owner owns gets ALTER ... OWNER
 * TO, which moves its indexes, sequences and privileges with it.
 */
static void
move_relations(const PipelineDesc *pipeline, Oid new_owner)
{
	const char *role = quote_identifier(GetUserNameFromId(new_owner, false));
	List	   *statements = NIL;
	ListCell   *cell;

	foreach(cell, pipeline_relations(pipeline))
	{
		Oid			relid = lfirst_oid(cell);
		char		relkind = get_rel_relkind(relid);
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		Oid			relowner;

		if (!HeapTupleIsValid(tuple))
			continue;
		relowner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
		if (relowner != pipeline->owner)
			continue;
		statements = lappend(statements,
							 psprintf("ALTER %s %s OWNER TO %s",
									  relkind == RELKIND_VIEW ? "VIEW" :
									  relkind == RELKIND_MATVIEW ?
									  "MATERIALIZED VIEW" : "TABLE",
									  CatalogQualifiedRelationName(relid),
									  role));
	}
	SPI_connect();
	foreach(cell, statements)
		SpiExecuteAsExtensionOwner(lfirst(cell), 0, NULL, NULL, NULL,
								   SPI_OK_UTILITY);
	SPI_finish();
}

void
PipelineChangeOwner(const PipelineDesc *pipeline, Oid new_owner)
{
	Oid			types[2] = {INT4OID, OIDOID};
	Datum		values[2];

	/* as ALTER TABLE ... OWNER TO: only to a role the caller can become */
	if (!superuser() && !is_member_of_role(GetUserId(), new_owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be member of role \"%s\"",
						GetUserNameFromId(new_owner, false)),
				 errdetail("Only members of the new owner can hand pipeline \"%s\" to it.",
						   pipeline->pipeline_name)));
	if (new_owner == pipeline->owner)
		return;

	move_secrets(pipeline, new_owner);
	move_relations(pipeline, new_owner);
	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = ObjectIdGetDatum(new_owner);
	SPI_connect();
	SpiExecuteAsExtensionOwner("UPDATE medallion.pipeline"
							   "   SET owner = $2::pg_catalog.regrole"
							   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
							   2, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();

	/* its idle run_pipeline worker is the old owner's: of no more use */
	(void) LingeringUpdateEvictIdle(MyDatabaseId, pipeline->pipeline_id);
}
