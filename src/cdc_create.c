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
#include "flow.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_auto_cdc_flow);

#define CDC_VIEW_SUFFIX "_current"

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
 * argument is NULL (*given tells NULL from empty).  Duplicates and NULL
 * elements are errors.
 */
static List *
cdc_column_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
					 Relation rel, bool *given)
{
	ArrayType  *array;
	Datum	   *elements;
	bool	   *nulls;
	int			count;
	int			i;
	List	   *names = NIL;

	*given = !PG_ARGISNULL(argno);
	if (!*given)
		return NIL;
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
	return names;
}


static char *
cdc_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
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

/* The definition stored in medallion.flow, as JSON text. */
/* A list member, null when the list was not given. */
static void
append_json_list(StringInfo json, const char *key, List *names, bool given)
{
	if (given)
		JsonAppendTextList(json, key, names);
	else
		JsonAppendText(json, key, NULL);
}

Datum
medallion_create_auto_cdc_flow(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = cdc_text_arg(fcinfo, 0, "pipeline_name", true);
	char	   *target_table = cdc_text_arg(fcinfo, 1, "target_table", true);
	char	   *source_table = cdc_text_arg(fcinfo, 2, "source_table", true);
	char	   *sequence_by = cdc_text_arg(fcinfo, 4, "sequence_by", true);
	int			scd_type;
	char	   *deletes = cdc_text_arg(fcinfo, 6, "apply_as_deletes", false);
	char	   *truncates = cdc_text_arg(fcinfo, 7, "apply_as_truncates", false);
	bool		ignore_null_updates = PG_ARGISNULL(12) ? false : PG_GETARG_BOOL(12);
	PipelineDesc *pipeline;
	RangeVar   *source_rv;
	Oid			source_relid;
	char	   *source_name;
	Oid			target_namespace;
	char	   *target_relname;
	char	   *target_name;
	char	   *view_name;
	Oid			target_relid;
	Relation	rel;
	TupleDesc	desc;
	List	   *keys;
	List	   *column_list;
	List	   *except_list;
	List	   *track_list;
	List	   *track_except_list;
	bool		keys_given;
	bool		column_list_given;
	bool		except_given;
	bool		track_given;
	bool		track_except_given;
	List	   *key_attnums = NIL;
	bool		has_key_index;
	List	   *target_columns = NIL;	/* keys and kept, in source order */
	List	   *columns = NIL;	/* kept non-key columns */
	List	   *tracked = NIL;
	CdcSpec		spec;
	OwnerContext owner;
	int			nest_level;
	StringInfoData sql;
	StringInfoData json;
	ListCell   *cell;
	int			i;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keys must not be null")));
	scd_type = PG_ARGISNULL(5) ? 2 : PG_GETARG_INT32(5);
	if (scd_type != 1 && scd_type != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stored_as_scd_type: %d", scd_type),
				 errhint("Use 1 (keep the latest row per key) or 2 (keep history).")));
	if (scd_type == 2 && truncates != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("apply_as_truncates is not supported for SCD type 2"),
				 errdetail("A truncate cannot be spliced into history."),
				 errhint("Use stored_as_scd_type => 1, or leave apply_as_truncates out.")));
	if (scd_type == 1 && !(PG_ARGISNULL(10) && PG_ARGISNULL(11)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track_history_column_list and track_history_except_column_list apply to SCD type 2 only")));
	if (!PG_ARGISNULL(8) && !PG_ARGISNULL(9))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column_list and except_column_list cannot both be given")));
	if (!PG_ARGISNULL(10) && !PG_ARGISNULL(11))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track_history_column_list and track_history_except_column_list cannot both be given")));

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	/* the source, as the caller names it */
	source_rv = makeRangeVarFromNameList(stringToQualifiedNameList(source_table));
	source_relid = RangeVarGetRelid(source_rv, AccessShareLock, false);
	if (get_rel_relkind(source_relid) != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", source_table),
				 errdetail("The source of an auto CDC flow is a pipeline table.")));
	(void) FlowRowIdSequence(source_relid);
	source_name = CatalogQualifiedRelationName(source_relid);

	/* the target and its view */
	ResolveNewTableName(target_table, &target_namespace, &target_relname);
	view_name = CompanionRelationName(target_namespace, target_relname,
									  CDC_VIEW_SUFFIX, "view of current versions");
	target_name = QuoteQualifiedName(target_namespace, target_relname);

	/* columns */
	rel = relation_open(source_relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	keys = cdc_column_array_arg(fcinfo, 3, "keys", rel, &keys_given);
	column_list = cdc_column_array_arg(fcinfo, 8, "column_list", rel,
									   &column_list_given);
	except_list = cdc_column_array_arg(fcinfo, 9, "except_column_list", rel,
									   &except_given);
	track_list = cdc_column_array_arg(fcinfo, 10, "track_history_column_list",
									  rel, &track_given);
	track_except_list = cdc_column_array_arg(fcinfo, 11,
											 "track_history_except_column_list",
											 rel, &track_except_given);
	if (keys == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keys must name at least one column")));
	foreach(cell, keys)
	{
		char	   *key = (char *) lfirst(cell);

		if (strcmp(key, "_row_id") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"_row_id\" cannot be a key"),
					 errdetail("_row_id is the source's arrival order, unique per event.")));
		if (CdcListHas(except_list, key))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot be left out by except_column_list",
							key)));
		key_attnums = lappend_int(key_attnums,
								  CdcFindAttribute(desc, key));
	}
	if (CdcListHas(column_list, "_row_id"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"_row_id\" of the source cannot be kept"),
				 errdetail("The target has no _row_id; the source's arrival order is never copied.")));

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		char	   *name = NameStr(attr->attname);
		bool		is_key = CdcListHas(keys, name);

		if (attr->attisdropped || strcmp(name, "_row_id") == 0)
			continue;
		if (!is_key &&
			(column_list_given ? !CdcListHas(column_list, name) :
			 CdcListHas(except_list, name)))
			continue;
		if (scd_type == 2 &&
			(strcmp(name, "__start_at") == 0 || strcmp(name, "__end_at") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("source column \"%s\" conflicts with the SCD type 2 column of the same name",
							name),
					 errhint("Leave it out with except_column_list, or rename it upstream.")));
		target_columns = lappend(target_columns, pstrdup(name));
		if (!is_key)
			columns = lappend(columns, pstrdup(name));
	}

	/* tracked columns: kept non-key columns only */
	foreach(cell, track_given ? track_list : track_except_list)
	{
		char	   *name = (char *) lfirst(cell);

		if (!CdcListHas(columns, name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" in %s is not a kept non-key column",
							name, track_given ? "track_history_column_list" :
							"track_history_except_column_list"),
					 errdetail("History is tracked on the columns the target keeps, other than the keys.")));
	}
	if (scd_type == 2)
	{
		foreach(cell, columns)
		{
			char	   *name = (char *) lfirst(cell);

			if (track_given ? CdcListHas(track_list, name) :
				!CdcListHas(track_except_list, name))
				tracked = lappend(tracked, name);
		}
	}

	foreach(cell, keys)
	{
		Oid			type = get_atttype(source_relid,
									   CdcFindAttribute(desc, (char *) lfirst(cell)));
		TypeCacheEntry *typentry = lookup_type_cache(getBaseType(type),
													 TYPECACHE_CMP_PROC);

		if (!OidIsValid(typentry->cmp_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("key column \"%s\" of type %s has no btree ordering",
							(char *) lfirst(cell), format_type_be(type)),
					 errdetail("Keys are indexed and matched with \"=\".")));
	}
	has_key_index = cdc_source_has_key_index(rel, key_attnums);
	/* keep the lock, but no reference: CREATE INDEX checks for those */
	relation_close(rel, NoLock);

	/*
	 * Validate the expressions, and create the target, its view and the
	 * source's key index, as the pipeline owner with the pipeline's
	 * search_path: as the applies will run.
	 */
	memset(&spec, 0, sizeof(spec));
	spec.source_relid = source_relid;
	spec.source_name = source_name;
	spec.sequence_by = sequence_by;
	spec.deletes = deletes;
	spec.truncates = truncates;

	FlowEnterOwnerContext(pipeline, &owner);
	nest_level = UserSqlSettingsEnter(NULL);
	CdcPlaceExpressions(&spec);
	CdcResolveSequence(&spec);
	if (deletes != NULL)
		CdcCheckCondition("apply_as_deletes", spec.deletes_sql,
							source_name);
	if (truncates != NULL)
	{
		CdcCheckCondition("apply_as_truncates", spec.truncates_sql,
							source_name);
		if (!spec.seq_storable)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("apply_as_truncates is not supported with sequence_by of type %s",
							format_type_be(spec.seq_type)),
					 errhint("Sequence by a built-in scalar type, such as a number or a timestamp.")));
	}
	SPI_connect();
	initStringInfo(&sql);
	/*
	 * SCD2 targets leave room in their pages, so that closing a version
	 * (setting __end_at, which no index covers) is a HOT update.
	 */
	appendStringInfo(&sql, "CREATE TABLE %s%s AS SELECT ", target_name,
					 scd_type == 2 ? " WITH (fillfactor = 90)" : "");
	CdcAppendNames(&sql, target_columns, NULL);
	if (scd_type == 2)
		appendStringInfo(&sql, ", %s AS __start_at, %s AS __end_at",
						 spec.seq_sql, spec.seq_sql);
	appendStringInfo(&sql, " FROM %s WITH NO DATA", source_name);
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ADD PRIMARY KEY (", target_name);
	CdcAppendNames(&sql, keys, NULL);
	appendStringInfoString(&sql, scd_type == 2 ? ", __start_at)" : ")");
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "CREATE VIEW %s AS SELECT ",
					 QuoteQualifiedName(target_namespace, view_name));
	CdcAppendNames(&sql, target_columns, NULL);
	if (scd_type == 2)
		appendStringInfo(&sql, ", __start_at FROM %s WHERE __end_at IS NULL",
						 target_name);
	else
		appendStringInfo(&sql, " FROM %s", target_name);
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	if (!has_key_index)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX ON %s (", source_name);
		CdcAppendNames(&sql, keys, NULL);
		appendStringInfoChar(&sql, ')');
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);

	target_relid = get_relname_relid(target_relname, target_namespace);
	if (!OidIsValid(target_relid))
		elog(ERROR, "could not find the new table %s", target_name);

	/* the definition: the arguments, and what they resolved to */
	initStringInfo(&json);
	appendStringInfoString(&json, "{\"stored_as_scd_type\": ");
	appendStringInfo(&json, "%d", scd_type);
	append_json_list(&json, "keys", keys, true);
	JsonAppendText(&json, "sequence_by", sequence_by);
	JsonAppendText(&json, "apply_as_deletes", deletes);
	JsonAppendText(&json, "apply_as_truncates", truncates);
	append_json_list(&json, "column_list", column_list, column_list_given);
	append_json_list(&json, "except_column_list", except_list, except_given);
	append_json_list(&json, "track_history_column_list", track_list,
					 track_given);
	append_json_list(&json, "track_history_except_column_list",
					 track_except_list, track_except_given);
	appendStringInfo(&json, ", \"ignore_null_updates\": %s",
					 ignore_null_updates ? "true" : "false");
	append_json_list(&json, "columns", columns, true);
	append_json_list(&json, "tracked_columns", tracked, scd_type == 2);
	appendStringInfoChar(&json, '}');

	CatalogCreateFlow(pipeline, FLOW_TYPE_AUTO_CDC, target_relid, source_relid,
					  source_name,
					  DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														 CStringGetDatum(json.data))));
	PG_RETURN_VOID();
}

