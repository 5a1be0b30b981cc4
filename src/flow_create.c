/*-------------------------------------------------------------------------
 *
 * flow_create.c
 *	  The steps every create_* function of a flow type takes (see
 *	  flow_create.h).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/comment.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "flow_create.h"
#include "spi_util.h"
#include "sql_names.h"

/*
 * The pipeline is looked up and its ownership checked before the target's
 * name is resolved, so that a role that may not manage the pipeline learns
 * nothing about the schemas named in the call.
 */
void
FlowCreateBegin(FlowCreate *create, const char *pipeline_name,
				const char *target_table)
{
	memset(create, 0, sizeof(FlowCreate));
	create->pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(create->pipeline);

	ResolveNewTableName(target_table, &create->namespace_oid,
						&create->relation_name);
	create->target_name = QuoteQualifiedName(create->namespace_oid,
											 create->relation_name);
}

/*
 * Replacing a flow's definition is not built yet: refuse it plainly rather
 * than create a second flow or ignore the request.
 */
bool
FlowCreateReplaceArgument(FunctionCallInfo fcinfo, int argno)
{
	bool		replace = !PG_ARGISNULL(argno) && PG_GETARG_BOOL(argno);

	if (replace)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("replace => true is not supported yet"),
				 errhint("Drop the flow with medallion.drop_flow and create it again.")));
	return replace;
}

char *
FlowCreateCompanion(FlowCreate *create, const char *suffix, const char *what,
					char **relation_name)
{
	char	   *name = CompanionRelationName(create->namespace_oid,
											 create->relation_name,
											 suffix, what);

	if (relation_name != NULL)
		*relation_name = name;
	return QuoteQualifiedName(create->namespace_oid, name);
}

void
FlowCreateExecute(const char *sql)
{
	SPI_connect();
	SpiExecute(sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
}

void
FlowCreateComment(const char *relation_name, const char *comment)
{
	FlowCreateExecute(psprintf("COMMENT ON TABLE %s IS %s", relation_name,
							   quote_literal_cstr(comment)));
}

void
FlowCreateColumnComments(const char *relation_name, int ncolumns,
						 const char *const *columns,
						 const char *const *comments)
{
	int			i;

	for (i = 0; i < ncolumns; i++)
		FlowCreateExecute(psprintf("COMMENT ON COLUMN %s.%s IS %s",
								   relation_name,
								   quote_identifier(columns[i]),
								   quote_literal_cstr(comments[i])));
}

/*
 * The new table is found by name in the schema Begin resolved, after a
 * command counter increment makes the CREATE visible.
 */
void
FlowCreateTable(FlowCreate *create, const char *create_sql)
{
	FlowCreateExecute(create_sql);
	CommandCounterIncrement();
	create->target_relid = get_relname_relid(create->relation_name,
											 create->namespace_oid);
	if (!OidIsValid(create->target_relid))
		elog(ERROR, "could not find the new table %s", create->target_name);
}

int32
FlowCreateRegister(FlowCreate *create, FlowType type, Oid source_relid,
				   const char *source, Jsonb *definition)
{
	Assert(OidIsValid(create->target_relid));
	CommandCounterIncrement();
	if (GetComment(create->target_relid, RelationRelationId, 0) == NULL)
		FlowCreateComment(create->target_name,
						  psprintf("medallion %s table of pipeline %s, flow %s, fed from %s",
								   CatalogFlowTypeName(type),
								   create->pipeline->pipeline_name,
								   create->flow_name != NULL ?
								   create->flow_name : create->target_name,
								   source));
	return CatalogCreateNamedFlow(create->pipeline, type, create->flow_name,
								  create->target_relid, source_relid, source,
								  definition);
}
