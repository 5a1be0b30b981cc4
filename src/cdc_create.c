/*-------------------------------------------------------------------------
 *
 * cdc_create.c
 *	  create_auto_cdc_flow(): the target of an auto CDC flow, its view of
 *	  current versions, the source's key index, and the flow.
 *
 * Column names given as text are matched exactly, else like SQL
 * identifiers (folded to lower case unless double-quoted); the target has
 * the keys and kept columns in source order (never _row_id), primary key
 * (keys) for SCD1 and (keys, __start_at) for SCD2, and a view
 * <target>_current; sequence_by and the conditions must be deterministic
 * row-level expressions (no volatile functions, aggregates, subqueries);
 * sequence_by needs a btree ordering, and apply_as_truncates a sequence type
 * whose binary form is stable (built-in scalar types, enums).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "parser/scansup.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "catalog.h"
#include "cdc_internal.h"
#include "change_feed.h"
#include "flow.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_auto_cdc_flow);

/*
 * Resolve a column name given as text: the exact name first; else, like an
 * identifier in SQL, the name between double quotes when it is quoted, or
 * the name folded to lower case when it is not.  So 'userId' finds a column
 * created as userId (that is, userid), and '"userId"' one created as
 * "userId".
 */
static char *
cdc_resolve_column(Relation rel, const char *name, const char *argname)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnum = CdcFindAttribute(desc, name);
	size_t		len = strlen(name);

	if (attnum == InvalidAttrNumber && len >= 2 &&
		name[0] == '"' && name[len - 1] == '"')
	{
		StringInfoData unquoted;
		size_t		i;

		initStringInfo(&unquoted);
		for (i = 1; i < len - 1; i++)
		{
			appendStringInfoChar(&unquoted, name[i]);
			if (name[i] == '"' && name[i + 1] == '"')
				i++;
		}
		attnum = CdcFindAttribute(desc, unquoted.data);
	}
	else if (attnum == InvalidAttrNumber)
		attnum = CdcFindAttribute(desc,
									downcase_identifier(name, len, false, false));

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel)),
				 errdetail("%s names columns of the source table.", argname)));
	return pstrdup(NameStr(TupleDescAttr(desc, attnum - 1)->attname));
}

/*
 * A text[] argument as a list of resolved column names; NIL when the
 * argument is NULL (given tells NULL from empty).  Duplicates and NULL
 * elements are errors.
 */
static void
cdc_column_argument(FunctionCallInfo fcinfo, int argno, const char *argname,
					Relation rel, CdcColumnArgument *arg)
{
	ArrayType  *array;
	Datum	   *elements;
	bool	   *nulls;
	int			count;
	int			i;
	List	   *names = NIL;

	arg->given = !PG_ARGISNULL(argno);
	arg->names = NIL;
	if (!arg->given)
		return;
	array = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &nulls, &count);
	for (i = 0; i < count; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", argname)));
		name = cdc_resolve_column(rel, TextDatumGetCString(elements[i]),
								  argname);
		if (CdcListHas(names, name))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" appears more than once in %s",
							name, argname)));
		names = lappend(names, name);
	}
	arg->names = names;
}

/*
 * CdcTextArgument: a text argument; a required one must be neither NULL nor
 * empty.
 */
char *
CdcTextArgument(FunctionCallInfo fcinfo, int argno, const char *argname,
			 bool required)
{
	char	   *value;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", argname)));
		return NULL;
	}
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (required && value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	return value;
}

/* The access method of a relation, or InvalidOid when it is gone. */
static Oid
cdc_relation_am(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			am;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	am = ((Form_pg_class) GETSTRUCT(tuple))->relam;
	ReleaseSysCache(tuple);
	return am;
}

/* Is there a valid, plain btree index on the source leading with the keys? */
static bool
cdc_source_has_key_index(Relation rel, List *key_attnums)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *cell;
	bool		found = false;

	foreach(cell, indexes)
	{
		Oid			index_oid = lfirst_oid(cell);
		HeapTuple	tuple;
		Form_pg_index index;
		int			nkeys = list_length(key_attnums);
		int			i;
		bool		match;

		tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index_oid));
		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		match = index->indisvalid && index->indnkeyatts >= nkeys &&
			heap_attisnull(tuple, Anum_pg_index_indpred, NULL) &&
			cdc_relation_am(index_oid) == BTREE_AM_OID;
		for (i = 0; match && i < nkeys; i++)
			match = list_member_int(key_attnums, index->indkey.values[i]);
		ReleaseSysCache(tuple);
		if (match)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * CdcReadArguments: the arguments both create functions share, read and
 * checked for how they combine, before anything is looked up.
 */
void
CdcReadArguments(FunctionCallInfo fcinfo, const CdcArgumentPositions *at,
				 CdcArguments *args)
{
	CdcSpec    *spec = &args->spec;
	int			lists = at->column_list;

	memset(args, 0, sizeof(CdcArguments));
	args->at = at;
	args->pipeline_name = CdcTextArgument(fcinfo, 0, "pipeline_name", true);
	args->target_table = CdcTextArgument(fcinfo, 1, "target_table", true);
	args->source_table = CdcTextArgument(fcinfo, 2, "source_table", true);
	if (PG_ARGISNULL(at->keys))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keys must not be null")));
	spec->scd_type = PG_ARGISNULL(at->scd_type) ? at->default_scd_type :
		PG_GETARG_INT32(at->scd_type);
	if (spec->scd_type != 1 && spec->scd_type != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stored_as_scd_type: %d", spec->scd_type),
				 errhint("Use 1 (keep the latest row per key) or 2 (keep history).")));
	if (spec->scd_type == 1 &&
		!(PG_ARGISNULL(lists + 2) && PG_ARGISNULL(lists + 3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track_history_column_list and track_history_except_column_list apply to SCD type 2 only")));
	if (!PG_ARGISNULL(lists) && !PG_ARGISNULL(lists + 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column_list and except_column_list cannot both be given")));
	if (!PG_ARGISNULL(lists + 2) && !PG_ARGISNULL(lists + 3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track_history_column_list and track_history_except_column_list cannot both be given")));
}

/* Where create_auto_cdc_flow's arguments are. */
static const CdcArgumentPositions cdc_positions = {
	.keys = 3,
	.scd_type = 5,
	.default_scd_type = 2,
	.column_list = 8,
};

/*
 * The arguments of create_auto_cdc_flow only: sequence_by, the conditions
 * and ignore_null_updates.
 */
static void
cdc_read_arguments(FunctionCallInfo fcinfo, CdcArguments *args)
{
	CdcSpec    *spec = &args->spec;

	CdcReadArguments(fcinfo, &cdc_positions, args);
	spec->sequence_by = CdcTextArgument(fcinfo, 4, "sequence_by", true);
	spec->deletes = CdcTextArgument(fcinfo, 6, "apply_as_deletes", false);
	spec->truncates = CdcTextArgument(fcinfo, 7, "apply_as_truncates", false);
	args->ignore_null_updates = PG_ARGISNULL(12) ? false : PG_GETARG_BOOL(12);
	if (spec->scd_type == 2 && spec->truncates != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("apply_as_truncates is not supported for SCD type 2"),
				 errdetail("A truncate cannot be spliced into history."),
				 errhint("Use stored_as_scd_type => 1, or leave apply_as_truncates out.")));
}

/*
 * The source, as the caller names it: a pipeline table (with _row_id),
 * opened and locked until the end of the transaction.
 */
static Relation
cdc_open_source(CdcArguments *args)
{
	RangeVar   *source_rv;
	Oid			source_relid;

	source_rv = makeRangeVarFromNameList(stringToQualifiedNameList(args->source_table));
	source_relid = RangeVarGetRelid(source_rv, AccessShareLock, false);
	if (get_rel_relkind(source_relid) != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", args->source_table),
				 errdetail("The source of an auto CDC flow is a pipeline table.")));
	(void) FlowRowIdSequence(source_relid);
	args->spec.source_relid = source_relid;
	args->spec.source_name = CatalogQualifiedRelationName(source_relid);
	return relation_open(source_relid, AccessShareLock);
}

/*
 * CdcReadColumnArguments: the column arguments, resolved on the source, and
 * the checks of the keys: at least one, never _row_id, never left out.
 */
void
CdcReadColumnArguments(FunctionCallInfo fcinfo, CdcArguments *args,
					   Relation rel)
{
	const CdcArgumentPositions *at = args->at;
	ListCell   *cell;

	cdc_column_argument(fcinfo, at->keys, "keys", rel, &args->keys);
	cdc_column_argument(fcinfo, at->column_list, "column_list", rel,
						&args->column_list);
	cdc_column_argument(fcinfo, at->column_list + 1, "except_column_list", rel,
						&args->except_list);
	cdc_column_argument(fcinfo, at->column_list + 2,
						"track_history_column_list", rel, &args->track_list);
	cdc_column_argument(fcinfo, at->column_list + 3,
						"track_history_except_column_list", rel,
						&args->track_except_list);
	args->spec.keys = args->keys.names;
	if (args->keys.names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keys must name at least one column")));
	foreach(cell, args->keys.names)
	{
		char	   *key = (char *) lfirst(cell);

		if (strcmp(key, "_row_id") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"_row_id\" cannot be a key"),
					 errdetail("_row_id is the source's arrival order, unique per event.")));
		if (CdcListHas(args->except_list.names, key))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot be left out by except_column_list",
							key)));
		args->key_attnums = lappend_int(args->key_attnums,
										CdcFindAttribute(RelationGetDescr(rel),
														 key));
	}
	if (CdcListHas(args->column_list.names, "_row_id"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"_row_id\" of the source cannot be kept"),
				 errdetail("The target has no _row_id; the source's arrival order is never copied.")));
}

/*
 * CdcChooseColumns: the columns the target keeps (the keys, and the columns
 * column_list or except_column_list choose, in source order) and, for SCD2,
 * the tracked ones: every kept non-key column, or as the track_history
 * lists say.
 */
void
CdcChooseColumns(CdcArguments *args, TupleDesc desc)
{
	bool		track_given = args->track_list.given;
	List	   *track = track_given ? args->track_list.names :
		args->track_except_list.names;
	ListCell   *cell;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		char	   *name = NameStr(attr->attname);
		bool		is_key = CdcListHas(args->keys.names, name);

		if (attr->attisdropped || strcmp(name, "_row_id") == 0)
			continue;
		if (!is_key &&
			(args->column_list.given ? !CdcListHas(args->column_list.names, name) :
			 CdcListHas(args->except_list.names, name)))
			continue;
		if (args->spec.scd_type == 2 &&
			(strcmp(name, "__start_at") == 0 || strcmp(name, "__end_at") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("source column \"%s\" conflicts with the SCD type 2 column of the same name",
							name),
					 errhint("Leave it out with except_column_list, or rename it upstream.")));
		args->target_columns = lappend(args->target_columns, pstrdup(name));
		if (!is_key)
			args->columns = lappend(args->columns, pstrdup(name));
	}

	foreach(cell, track)
	{
		char	   *name = (char *) lfirst(cell);

		if (!CdcListHas(args->columns, name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" in %s is not a kept non-key column",
							name, track_given ? "track_history_column_list" :
							"track_history_except_column_list"),
					 errdetail("History is tracked on the columns the target keeps, other than the keys.")));
	}
	if (args->spec.scd_type != 2)
		return;
	foreach(cell, args->columns)
	{
		char	   *name = (char *) lfirst(cell);

		if (track_given ? CdcListHas(track, name) : !CdcListHas(track, name))
			args->tracked = lappend(args->tracked, name);
	}
}

/*
 * CdcCheckKeys: keys are sorted and matched with "=", so their types need a
 * btree ordering; note whether the source has an index on them already.
 */
void
CdcCheckKeys(CdcArguments *args, Relation rel)
{
	ListCell   *cell;

	foreach(cell, args->keys.names)
	{
		Oid			type = get_atttype(args->spec.source_relid,
									   list_nth_int(args->key_attnums,
													foreach_current_index(cell)));
		TypeCacheEntry *typentry = lookup_type_cache(getBaseType(type),
													 TYPECACHE_CMP_PROC);

		if (!OidIsValid(typentry->cmp_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("key column \"%s\" of type %s has no btree ordering",
							(char *) lfirst(cell), format_type_be(type)),
					 errdetail("Keys are indexed and matched with \"=\".")));
	}
	args->has_key_index = cdc_source_has_key_index(rel, args->key_attnums);
}

/*
 * Analyse sequence_by and the conditions over the source, as the applies
 * will (in the pipeline owner's context).
 */
static void
cdc_check_expressions(CdcArguments *args)
{
	CdcSpec    *spec = &args->spec;

	CdcPlaceExpressions(spec);
	CdcResolveSequence(spec);
	if (spec->deletes != NULL)
		CdcCheckCondition("apply_as_deletes", spec->deletes_sql,
						  spec->source_name);
	if (spec->truncates == NULL)
		return;
	CdcCheckCondition("apply_as_truncates", spec->truncates_sql,
					  spec->source_name);
	if (!spec->seq_storable)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("apply_as_truncates is not supported with sequence_by of type %s",
						format_type_be(spec->seq_type)),
				 errhint("Sequence by a built-in scalar type, such as a number or a timestamp.")));
}

/* A column list member: the names, or null when the list was not given. */
static void
cdc_put_column_argument(FlowDefinitionBuilder *builder, const char *member,
						const CdcColumnArgument *arg)
{
	if (arg->given)
		FlowDefinitionPutStringList(builder, member, arg->names);
	else
		FlowDefinitionPutNull(builder, member);
}

/*
 * CdcDefinitionPutColumns: the definition members of the column arguments
 * and what they resolved to.
 */
void
CdcDefinitionPutColumns(FlowDefinitionBuilder *builder,
						const CdcArguments *args)
{
	cdc_put_column_argument(builder, "column_list", &args->column_list);
	cdc_put_column_argument(builder, "except_column_list",
							&args->except_list);
	cdc_put_column_argument(builder, "track_history_column_list",
							&args->track_list);
	cdc_put_column_argument(builder, "track_history_except_column_list",
							&args->track_except_list);
}

/* CdcDefinitionPutResolved: the kept and tracked columns. */
void
CdcDefinitionPutResolved(FlowDefinitionBuilder *builder,
						 const CdcArguments *args)
{
	FlowDefinitionPutStringList(builder, "columns", args->columns);
	if (args->spec.scd_type == 2)
		FlowDefinitionPutStringList(builder, "tracked_columns", args->tracked);
	else
		FlowDefinitionPutNull(builder, "tracked_columns");
}

/* The definition: the arguments, and what they resolved to. */
static Jsonb *
cdc_definition_build(const CdcArguments *args)
{
	const CdcSpec *spec = &args->spec;
	FlowDefinitionBuilder builder;

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutInt(&builder, "stored_as_scd_type", spec->scd_type);
	FlowDefinitionPutStringList(&builder, "keys", args->keys.names);
	FlowDefinitionPutString(&builder, "sequence_by", spec->sequence_by);
	FlowDefinitionPutString(&builder, "apply_as_deletes", spec->deletes);
	FlowDefinitionPutString(&builder, "apply_as_truncates", spec->truncates);
	CdcDefinitionPutColumns(&builder, args);
	FlowDefinitionPutBool(&builder, "ignore_null_updates",
						  args->ignore_null_updates);
	CdcDefinitionPutResolved(&builder, args);
	return FlowDefinitionEnd(&builder);
}

/*
 * The comments of an SCD2 target's version columns, so that a BI tool shows
 * what they mean: their type is the type of sequence_by.
 */
static void
cdc_comment_version_columns(const CdcSpec *spec, const char *target_name)
{
	static const char *const columns[] = {"__start_at", "__end_at"};
	const char *comments[2];
	char	   *type = format_type_with_typemod(spec->seq_type,
												spec->seq_typmod);

	if (spec->scd_type != 2)
		return;
	comments[0] = psprintf("Start of this version: the sequence_by value (%s, of type %s) of the change that opened it",
						   spec->sequence_by, type);
	comments[1] = psprintf("End of this version: the sequence_by value (of type %s) of the change that closed it; NULL while the version is current",
						   type);
	FlowCreateColumnComments(target_name, 2, columns, comments);
}

/*
 * CdcCreateTarget: the target with its primary key, and the view of its
 * current rows, commented; as the caller (the pipeline owner, with the
 * pipeline's settings).
 */
void
CdcCreateTarget(FlowCreate *create, const CdcArguments *args,
				const char *view_name, FlowType type)
{
	FlowCreateTable(create, CdcTargetTableSql(&args->spec, create->target_name,
											  args->target_columns));
	FlowCreateExecute(CdcPrimaryKeySql(&args->spec, create->target_name));
	FlowCreateExecute(CdcCurrentViewSql(&args->spec, view_name,
										create->target_name,
										args->target_columns));
	FlowCreateExecute(psprintf("COMMENT ON VIEW %s IS %s", view_name,
							   quote_literal_cstr(psprintf("Current rows of medallion %s table %s, one per key",
														   CatalogFlowTypeName(type),
														   create->target_name))));
}

/*
 * CdcCreateRegister: register the flow (FlowCreateRegister); a replaced
 * flow that other flows read through its change feed keeps one, made anew
 * for the new columns.
 */
void
CdcCreateRegister(FlowCreate *create, FlowType type, const CdcArguments *args,
				  Jsonb *definition)
{
	int32		flow_id;

	flow_id = FlowCreateRegister(create, type, args->spec.source_relid,
								 args->spec.source_name, definition);
	if (create->replaced != NULL &&
		FlowDefinitionHas(create->replaced, "change_feed"))
		(void) ChangeFeedEnsure(CatalogGetFlowById(flow_id, false), create->target_relid);
}

/*
 * create_auto_cdc_flow(pipeline_name, target_table, source_table, keys,
 * sequence_by, stored_as_scd_type, apply_as_deletes, apply_as_truncates,
 * column_list, except_column_list, track_history_column_list,
 * track_history_except_column_list, ignore_null_updates): the target, its
 * view <target>_current, an index on the source's keys when it has none,
 * and the flow.  The expressions are checked and the relations created as
 * the pipeline owner with the pipeline's search_path, as the applies run.
 */
Datum
medallion_create_auto_cdc_flow(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	CdcArguments args;
	FlowCreate	create;
	char	   *view_name;
	Relation	source;
	OwnerContext owner;
	int			nest_level;

	cdc_read_arguments(fcinfo, &args);
	FlowCreateBegin(&create, FLOW_TYPE_AUTO_CDC, args.pipeline_name,
					args.target_table, FlowCreateReplaceArgument(fcinfo, 13));
	source = cdc_open_source(&args);
	view_name = FlowCreateCompanion(&create, CDC_VIEW_SUFFIX,
									"view of current versions", NULL);
	CdcReadColumnArguments(fcinfo, &args, source);
	CdcChooseColumns(&args, RelationGetDescr(source));
	CdcCheckKeys(&args, source);
	/* keep the lock, but no reference: CREATE INDEX checks for those */
	relation_close(source, NoLock);

	FlowEnterOwnerContext(create.pipeline, &owner);
	nest_level = UserSqlSettingsEnter(NULL);
	cdc_check_expressions(&args);
	CdcCreateTarget(&create, &args, view_name, FLOW_TYPE_AUTO_CDC);
	if (!args.has_key_index)
		FlowCreateExecute(CdcSourceIndexSql(&args.spec));
	cdc_comment_version_columns(&args.spec, create.target_name);
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);

	CdcCreateRegister(&create, FLOW_TYPE_AUTO_CDC, &args,
					  cdc_definition_build(&args));
	PG_RETURN_VOID();
}
