/*-------------------------------------------------------------------------
 *
 * cdc_snapshot_create.c
 *	  create_auto_cdc_from_snapshot_flow(): the target of an AUTO CDC FROM
 *	  SNAPSHOT flow, its view of current rows, and the flow.
 *
 * The target is the one create_auto_cdc_flow makes (cdc_create.c builds
 * both): the keys and kept columns in source order (never _row_id),
 * primary key (keys) for SCD1 and (keys, __start_at) for SCD2, and a view
 * <target>_current.  __start_at and __end_at hold snapshot versions: of the
 * type of snapshot_version, or timestamptz (the update's start time) when
 * it is NULL.  The source is any table or view the pipeline owner can
 * read; snapshot_version must be a deterministic row-level expression over
 * it whose type has a btree ordering and a stable binary form (the last
 * version applied is kept in flow_state).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_snapshot_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"

#include "catalog.h"
#include "cdc_internal.h"
#include "cdc_snapshot.h"
#include "flow.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_auto_cdc_from_snapshot_flow);

/* Where create_auto_cdc_from_snapshot_flow's arguments are. */
static const CdcArgumentPositions snapshot_positions = {
	.keys = 3,
	.scd_type = 4,
	.default_scd_type = 1,
	.column_list = 6,
};

#define SNAPSHOT_ARG_VERSION 5
#define SNAPSHOT_ARG_REPLACE 10

/*
 * The source, as the caller names it: a table or a view (of the pipeline or
 * not), locked until the end of the transaction.
 */
static Relation
snapshot_open_source(CdcArguments *args)
{
	RangeVar   *source_rv;
	Oid			source_relid;
	char		relkind;

	source_rv = makeRangeVarFromNameList(stringToQualifiedNameList(args->source_table));
	source_relid = RangeVarGetRelid(source_rv, AccessShareLock, false);
	relkind = get_rel_relkind(source_relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table or view", args->source_table),
				 errdetail("The source of an AUTO CDC FROM SNAPSHOT flow is a table or view holding snapshots.")));
	args->spec.source_relid = source_relid;
	args->spec.source_name = CatalogQualifiedRelationName(source_relid);
	return relation_open(source_relid, AccessShareLock);
}

/*
 * Analyse snapshot_version over the source, as the applies will (in the
 * pipeline owner's context); without one, versions are timestamps.
 */
static void
snapshot_check_version(CdcArguments *args)
{
	CdcSpec    *spec = &args->spec;

	CdcPlaceExpressions(spec);
	CdcResolveSequence(spec);
	if (!spec->seq_storable)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("snapshot_version of type %s is not supported",
						format_type_be(spec->seq_type)),
				 errdetail("The last version applied is kept between updates."),
				 errhint("Use a built-in scalar type, such as a number, a date or a timestamp.")));
}

/* The definition: the arguments, and what they resolved to. */
static Jsonb *
snapshot_definition_build(const CdcArguments *args)
{
	const CdcSpec *spec = &args->spec;
	FlowDefinitionBuilder builder;

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutInt(&builder, "stored_as_scd_type", spec->scd_type);
	FlowDefinitionPutStringList(&builder, "keys", args->keys.names);
	FlowDefinitionPutString(&builder, "snapshot_version", spec->sequence_by);
	CdcDefinitionPutColumns(&builder, args);
	CdcDefinitionPutResolved(&builder, args);
	return FlowDefinitionEnd(&builder);
}

/* The comments of an SCD2 target's version columns: what versions are. */
static void
snapshot_comment_version_columns(const CdcSpec *spec, const char *target_name)
{
	static const char *const columns[] = {"__start_at", "__end_at"};
	const char *comments[2];
	char	   *version;

	if (spec->scd_type != 2)
		return;
	version = spec->sequence_by == NULL ?
		pstrdup("the start time of the update that read the snapshot") :
		psprintf("the snapshot version (%s, of type %s)", spec->sequence_by,
				 format_type_with_typemod(spec->seq_type, spec->seq_typmod));
	comments[0] = psprintf("Start of this version: %s in which the key first had these tracked values",
						   version);
	comments[1] = psprintf("End of this version: the snapshot version in which a tracked value changed or the key was gone; NULL while the version is current");
	FlowCreateColumnComments(target_name, 2, columns, comments);
}

/*
 * Read the arguments, and the columns they resolve to on the source (which
 * stays locked).
 */
static void
snapshot_read_arguments(FunctionCallInfo fcinfo, CdcArguments *args)
{
	Relation	source;

	source = snapshot_open_source(args);
	CdcReadColumnArguments(fcinfo, args, source);
	CdcChooseColumns(args, RelationGetDescr(source));
	CdcCheckKeys(args, source);
	relation_close(source, NoLock);
}

/*
 * As the pipeline owner with the pipeline's search_path, as the applies
 * run: check snapshot_version, then make the target (or, when replacing,
 * alter it in place: FlowCreateTable) with its view and comments.
 */
static void
snapshot_make_target(CdcArguments *args, FlowCreate *create,
					 const char *view_name)
{
	OwnerContext owner;
	int			nest_level;

	FlowEnterOwnerContext(create->pipeline, &owner);
	nest_level = UserSqlSettingsEnter(NULL);
	snapshot_check_version(args);
	CdcCreateTarget(create, args, view_name, FLOW_TYPE_AUTO_CDC_SNAPSHOT);
	snapshot_comment_version_columns(&args->spec, create->target_name);
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);
}

/*
 * create_auto_cdc_from_snapshot_flow(pipeline_name, target_table,
 * source_table, keys, stored_as_scd_type, snapshot_version, column_list,
 * except_column_list, track_history_column_list,
 * track_history_except_column_list, replace): the target, its view
 * <target>_current, and the flow.  replace => true replaces the snapshot
 * flow into target_table as every create_* does (flow_create.h): the
 * target altered in place, the flow and those downstream recomputed from
 * every snapshot at the next update.
 */
Datum
medallion_create_auto_cdc_from_snapshot_flow(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	CdcArguments args;
	FlowCreate	create;
	char	   *view_name;

	CdcReadArguments(fcinfo, &snapshot_positions, &args);
	args.spec.seq_argname = "snapshot_version";
	args.spec.sequence_by = CdcTextArgument(fcinfo, SNAPSHOT_ARG_VERSION,
											"snapshot_version", false);
	if (args.spec.sequence_by != NULL && args.spec.sequence_by[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("snapshot_version must not be empty"),
				 errhint("Pass NULL to version snapshots by the update's start time.")));
	FlowCreateBegin(&create, FLOW_TYPE_AUTO_CDC_SNAPSHOT, args.pipeline_name,
					args.target_table,
					FlowCreateReplaceArgument(fcinfo, SNAPSHOT_ARG_REPLACE));
	view_name = FlowCreateCompanion(&create, CDC_VIEW_SUFFIX,
									"view of current versions", NULL);
	snapshot_read_arguments(fcinfo, &args);
	snapshot_make_target(&args, &create, view_name);
	CdcCreateRegister(&create, FLOW_TYPE_AUTO_CDC_SNAPSHOT, &args,
					  snapshot_definition_build(&args));
	PG_RETURN_VOID();
}
