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
 * flows with their companions (quarantine tables, change feeds, state
 * tables, views of current versions) and the S3 secrets that only its
 * bronze flows use.  The statements run as the extension owner with the
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

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "pipeline_owner.h"
#include "spi_util.h"

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
 * The relations of the pipeline that its owner owns: each flow's target
 * and the companions medallion names after it (CompanionRelationName) in
 * its schema.  Each gets ALTER ... OWNER TO, which moves its indexes,
 * sequences and privileges with it.
 */
static void
move_relations(const PipelineDesc *pipeline, Oid new_owner)
{
	Oid			types[2] = {INT4OID, OIDOID};
	Datum		values[2];
	List	   *statements = NIL;
	const char *role = quote_identifier(GetUserNameFromId(new_owner, false));
	uint64		row;
	ListCell   *cell;

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = ObjectIdGetDatum(pipeline->owner);
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT DISTINCT CASE c.relkind WHEN 'v' THEN 'VIEW'"
							   "        WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,"
							   "       pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
							   "       OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)"
							   "  FROM medallion.flow f"
							   "  JOIN pg_catalog.pg_class t"
							   "    ON t.oid OPERATOR(pg_catalog.=) f.target_table::pg_catalog.oid"
							   "  JOIN pg_catalog.pg_class c"
							   "    ON c.relnamespace OPERATOR(pg_catalog.=) t.relnamespace"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
							   " WHERE f.pipeline_id OPERATOR(pg_catalog.=) $1"
							   "   AND c.relowner OPERATOR(pg_catalog.=) $2"
							   "   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m}'::pg_catalog.\"char\"[])"
							   "   AND (c.oid OPERATOR(pg_catalog.=) t.oid"
							   "        OR c.relname::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY["
							   "             t.relname OPERATOR(pg_catalog.||) '_quarantine',"
							   "             t.relname OPERATOR(pg_catalog.||) '_current',"
							   "             t.relname OPERATOR(pg_catalog.||) '__change_feed',"
							   "             t.relname OPERATOR(pg_catalog.||) '__changes',"
							   "             t.relname OPERATOR(pg_catalog.||) '__groups'])"
							   "        OR (pg_catalog.left(c.relname, pg_catalog.length(t.relname))"
							   "              OPERATOR(pg_catalog.=) t.relname::pg_catalog.text"
							   "            AND pg_catalog.substr(c.relname, pg_catalog.length(t.relname)"
							   "              OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.~) '^__values_[0-9]+$'))",
							   2, types, values, NULL, SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
		statements = lappend(statements,
							 psprintf("ALTER %s %s OWNER TO %s",
									  SpiGetText(row, 1), SpiGetText(row, 2),
									  role));
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
}
