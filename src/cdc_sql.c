/*-------------------------------------------------------------------------
 *
 * cdc_sql.c
 *	  The text of the statements an auto CDC flow runs: the target, its
 *	  view and the source's key index when it is created; the events query
 *	  and the statements that replace and close rows when it applies.
 *
 * User expressions come placed (user_sql.h) and column names quoted; the
 * events query names its columns __k1.., __c1.., __seq, __del, so that user
 * column names never meet ours.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"

#include "cdc_internal.h"
#include "user_sql.h"

/* CdcAppendNumbered: "__k1, __k2, ..." */
void
CdcAppendNumbered(StringInfo buf, const char *prefix, int count)
{
	int			i;

	for (i = 1; i <= count; i++)
		appendStringInfo(buf, "%s%s%d", i > 1 ? ", " : "", prefix, i);
}

/* "<qual>"a", <qual>"b", ..." */
void
CdcAppendNames(StringInfo buf, List *names, const char *qual)
{
	ListCell   *cell;

	foreach(cell, names)
		appendStringInfo(buf, "%s%s%s",
						 foreach_current_index(cell) > 0 ? ", " : "",
						 qual ? qual : "",
						 UserSqlColumnName((char *) lfirst(cell)));
}

/* CdcAppendNamesAsNumbered: ", "a" AS __k1, "b" AS __k2, ..." */
void
CdcAppendNamesAsNumbered(StringInfo buf, List *names, const char *prefix)
{
	ListCell   *cell;

	foreach(cell, names)
		appendStringInfo(buf, ", %s AS %s%d",
						 UserSqlColumnName((char *) lfirst(cell)), prefix,
						 foreach_current_index(cell) + 1);
}

/* "c"1" = <alias>.__k1 AND ..." */
static void
append_key_match(StringInfo buf, CdcSpec *spec)
{
	ListCell   *cell;

	foreach(cell, spec->keys)
		appendStringInfo(buf, "%s%s = %s.__k%d",
						 foreach_current_index(cell) > 0 ? " AND " : "",
						 UserSqlColumnName((char *) lfirst(cell)),
						 spec->keys_alias, foreach_current_index(cell) + 1);
}

/* A parameter of the sequence type, with the collation of sequence_by. */
static char *
cdc_seq_param(CdcSpec *spec, int paramno)
{
	if (OidIsValid(spec->seq_collation) &&
		spec->seq_collation != DEFAULT_COLLATION_OID)
		return psprintf("($%d COLLATE %s)", paramno,
						generate_collation_name(spec->seq_collation));
	return psprintf("$%d", paramno);
}

/* "NOT COALESCE(<truncates>, false)", or "true" */
static char *
cdc_not_truncate(CdcSpec *spec)
{
	if (spec->truncates == NULL)
		return "true";
	return psprintf("NOT COALESCE(%s, false)", spec->truncates_sql);
}

/*
 * "SELECT _row_id AS __rid, "k" AS __k1, ..., "c" AS __c1, ..., (seq) AS
 * __seq, (is delete) AS __del FROM source": the events, with internal
 * names only, so that user column names never meet ours.  User expressions
 * are evaluated here, where only the source is in scope.
 */
static void
append_source_events(StringInfo buf, CdcSpec *spec)
{
	appendStringInfoString(buf, "SELECT _row_id AS __rid");
	CdcAppendNamesAsNumbered(buf, spec->keys, "__k");
	CdcAppendNamesAsNumbered(buf, spec->columns, "__c");
	appendStringInfo(buf, ", %s AS __seq, ", spec->seq_sql);
	if (spec->deletes != NULL)
		appendStringInfo(buf, "COALESCE(%s, false) AS __del", spec->deletes_sql);
	else
		appendStringInfoString(buf, "false AS __del");
	appendStringInfo(buf, " FROM %s", spec->source_name);
}

/*
 * When the flow has truncates: the batch's size, and its highest truncate
 * if it has one (a truncate with a NULL sequence first, to be reported).
 */
char *
CdcTruncateCheckSql(CdcSpec *spec)
{
	return psprintf("SELECT __tr, __seq, __rid, __n FROM ("
					"SELECT %s AS __seq, _row_id AS __rid,"
					" COALESCE(%s, false) AS __tr, count(*) OVER () AS __n"
					" FROM %s WHERE _row_id > $1 AND _row_id <= $2 OFFSET 0) __t"
					" ORDER BY __tr DESC, __seq DESC NULLS FIRST LIMIT 1",
					spec->seq_sql, spec->truncates_sql, spec->source_name);
}

/*
 * " AND _row_id <= $2 AND <not a truncate> [AND <seq> > $4]": the events
 * that count up to the batch's end, after the highest truncate when it is
 * known.
 */
static void
append_events_up_to_high(StringInfo buf, CdcSpec *spec, bool truncate_known)
{
	appendStringInfo(buf, " AND _row_id <= $2 AND %s", cdc_not_truncate(spec));
	if (truncate_known)
		appendStringInfo(buf, " AND %s > %s", spec->seq_sql,
						 cdc_seq_param(spec, 4));
}

/*
 * CDC_MODE_FULL: the new events with a NULL key or sequence, then every
 * event up to $2, after the highest truncate ($4) when it is known.
 */
static void
cdc_full_events(StringInfo sql, CdcSpec *spec, const char *seq_type,
				bool truncate_known)
{
	ListCell   *cell;

	/* invalid new events: a NULL key or sequence */
	appendStringInfo(sql, "SELECT %d AS __kind,"
					 " NULL::pg_catalog.tid AS __ctid, __i.*,"
					 " NULL::%s AS __from FROM (",
					 CDC_KIND_INVALID, seq_type);
	append_source_events(sql, spec);
	appendStringInfo(sql, " WHERE _row_id > $1 AND _row_id <= $2 AND %s"
					 " AND (%s IS NULL",
					 cdc_not_truncate(spec), spec->seq_sql);
	foreach(cell, spec->keys)
		appendStringInfo(sql, " OR %s IS NULL",
						 UserSqlColumnName((char *) lfirst(cell)));
	appendStringInfoString(sql, ") OFFSET 0) __i UNION ALL ");

	/* every event, after the highest truncate */
	appendStringInfo(sql, "SELECT %d, NULL::pg_catalog.tid, __a.*,"
					 " NULL::%s FROM (", CDC_KIND_EVENT, seq_type);
	append_source_events(sql, spec);
	appendStringInfoString(sql, " WHERE true");
	append_events_up_to_high(sql, spec, truncate_known);
	appendStringInfoString(sql, " OFFSET 0) __a");
}

/*
 * __bk: the keys of the batch; whether they are fast; where their new
 * events start (__from, SCD2); an event of theirs with a NULL sequence
 * (__bad), or any (__any).
 */
static void
cdc_batch_keys_cte(StringInfo sql, CdcSpec *spec, CdcMode mode,
				   const char *keys, const char *seq_type)
{
	appendStringInfo(sql, "WITH __bk AS MATERIALIZED (SELECT %s, ", keys);
	if (mode == CDC_MODE_BY_MAX)
		appendStringInfo(sql, "NOT bool_or(__seq <= %s)",
						 cdc_seq_param(spec, 3));
	else
		appendStringInfoString(sql, "false");
	appendStringInfoString(sql, " AS __fast, ");
	if (spec->seq_has_min && spec->scd_type == 2)
		appendStringInfoString(sql, "min(__seq)");
	else
		appendStringInfo(sql, "NULL::%s", seq_type);
	appendStringInfoString(sql, " AS __from, min(__rid) AS __any,"
						   " min(__rid) FILTER (WHERE __seq IS NULL) AS __bad"
						   " FROM (SELECT _row_id AS __rid");
	CdcAppendNamesAsNumbered(sql, spec->keys, "__k");
	appendStringInfo(sql, ", %s AS __seq FROM %s"
					 " WHERE _row_id > $1 AND _row_id <= $2 AND %s"
					 " OFFSET 0) __b GROUP BY %s) ",
					 spec->seq_sql, spec->source_name,
					 cdc_not_truncate(spec), keys);
}

/* Keys of the batch with a NULL key or an event with a NULL sequence. */
static void
cdc_invalid_batch_keys(StringInfo sql, CdcSpec *spec, const char *keys,
					   const char *seq_type)
{
	ListCell   *cell;

	appendStringInfo(sql, "SELECT %d AS __kind,"
					 " NULL::pg_catalog.tid AS __ctid,"
					 " COALESCE(__bad, __any) AS __rid, %s",
					 CDC_KIND_INVALID, keys);
	foreach(cell, spec->columns)
	{
		Oid			type = get_atttype(spec->source_relid,
									   get_attnum(spec->source_relid,
												  (char *) lfirst(cell)));

		appendStringInfo(sql, ", NULL::%s", format_type_be_qualified(type));
	}
	appendStringInfo(sql, ", NULL::%s AS __seq, false AS __del,"
					 " __from FROM __bk WHERE __bad IS NOT NULL",
					 seq_type);
	foreach(cell, spec->keys)
		appendStringInfo(sql, " OR __k%d IS NULL",
						 foreach_current_index(cell) + 1);
}

/*
 * Rows of the target: the current rows of fast keys, the rows of slow
 * keys.  For SCD2, of a fast key its current version; of a slow key, the
 * versions that end at or after its first new event (the others cannot
 * change), or all of them when that is not known.
 */
static void
cdc_target_rows(StringInfo sql, CdcSpec *spec, const char *seq_type)
{
	const char *alias = spec->keys_alias;

	appendStringInfo(sql,
					 "SELECT CASE WHEN %s.__fast THEN %d ELSE %d END,"
					 " __x.* FROM __bk %s CROSS JOIN LATERAL ("
					 "SELECT ctid, 0::pg_catalog.int8",
					 alias, CDC_KIND_CURRENT, CDC_KIND_REPLACED, alias);
	CdcAppendNamesAsNumbered(sql, spec->keys, "__k");
	CdcAppendNamesAsNumbered(sql, spec->columns, "__c");
	if (spec->scd_type == 2)
		appendStringInfoString(sql, ", __start_at");
	else
		appendStringInfo(sql, ", NULL::%s", seq_type);
	appendStringInfo(sql, ", false, %s.__from FROM %s WHERE ",
					 alias, spec->target_name);
	append_key_match(sql, spec);
	if (spec->scd_type == 2)
		appendStringInfo(sql,
						 " AND (__end_at IS NULL OR NOT %s.__fast AND"
						 " (%s.__from IS NULL OR __end_at >= %s.__from))",
						 alias, alias, alias);
	appendStringInfoString(sql, " OFFSET 0) __x");
}

/* The new events of fast keys. */
static void
cdc_fast_key_events(StringInfo sql, CdcSpec *spec, const char *keys,
					const char *seq_type)
{
	appendStringInfo(sql, "SELECT %d, NULL::pg_catalog.tid, __s.*,"
					 " NULL::%s FROM (", CDC_KIND_EVENT, seq_type);
	append_source_events(sql, spec);
	appendStringInfo(sql, " WHERE _row_id > $1 AND _row_id <= $2 AND %s"
					 " AND (", cdc_not_truncate(spec));
	CdcAppendNames(sql, spec->keys, NULL);
	appendStringInfo(sql, ") IN (SELECT %s FROM __bk WHERE __fast)"
					 " OFFSET 0) __s", keys);
}

/*
 * All events of slow keys up to $2, read through the source's key index,
 * after the highest truncate ($4) when it is known.
 */
static void
cdc_slow_key_events(StringInfo sql, CdcSpec *spec, bool truncate_known)
{
	const char *alias = spec->keys_alias;

	appendStringInfo(sql, "SELECT %d, NULL::pg_catalog.tid, __y.*,"
					 " %s.__from FROM __bk %s CROSS JOIN LATERAL (",
					 CDC_KIND_EVENT, alias, alias);
	append_source_events(sql, spec);
	appendStringInfoString(sql, " WHERE ");
	append_key_match(sql, spec);
	append_events_up_to_high(sql, spec, truncate_known);
	appendStringInfo(sql, " OFFSET 0) __y WHERE NOT %s.__fast", alias);
}

/*
 * The query that feeds an apply (parameters: $1 low, $2 high (int8), $3
 * the highest sequence applied before, $4 the highest truncate, both of the
 * sequence type and NULL when unknown).  It returns, sorted by key, then
 * sequence, deletes first, latest arrival first:
 *	 - the events of the batch with a NULL key or sequence (the walk stops
 *	   at the first one, and the apply fails)
 *	 - for keys whose new events are all later than anything applied before
 *	   ("fast"): their current row or version, as the history the new events
 *	   build on, and their new events
 *	 - for the other keys ("slow"): their rows in the target that may change
 *	   (to be replaced), and all their events in the source, read through
 *	   the source's key index
 * Target rows come with their ctid.  In CDC_MODE_FULL (the first apply, or
 * a truncate in the batch of an SCD1 flow) it returns every event, after
 * the highest truncate if any.
 *
 * The touched keys (__bk) are looked up one by one (LATERAL ... OFFSET 0)
 * so that the cost stays proportional to the keys of the batch whatever
 * the planner thinks of the sizes involved.
 */
char *
CdcEventsSql(CdcSpec *spec, CdcMode mode, bool truncate_known)
{
	StringInfoData sql;
	StringInfoData keys;
	char	   *seq_type = format_type_extended(spec->seq_type,
												spec->seq_typmod,
												FORMAT_TYPE_TYPEMOD_GIVEN |
												FORMAT_TYPE_FORCE_QUALIFY);

	initStringInfo(&keys);
	CdcAppendNumbered(&keys, "__k", list_length(spec->keys));
	initStringInfo(&sql);
	if (mode == CDC_MODE_FULL)
	{
		appendStringInfoString(&sql, "SELECT * FROM (");
		cdc_full_events(&sql, spec, seq_type, truncate_known);
	}
	else
	{
		cdc_batch_keys_cte(&sql, spec, mode, keys.data, seq_type);
		appendStringInfoString(&sql, "SELECT * FROM (");
		cdc_invalid_batch_keys(&sql, spec, keys.data, seq_type);
		appendStringInfoString(&sql, " UNION ALL ");
		cdc_target_rows(&sql, spec, seq_type);
		appendStringInfoString(&sql, " UNION ALL ");
		cdc_fast_key_events(&sql, spec, keys.data, seq_type);
		appendStringInfoString(&sql, " UNION ALL ");
		cdc_slow_key_events(&sql, spec, truncate_known);
	}
	appendStringInfo(&sql, ") __e ORDER BY %s, __seq%s, __del DESC, __rid DESC",
					 keys.data, spec->scd_type == 1 ? " NULLS FIRST" : "");
	return sql.data;
}

/*
 * The target, empty, with the columns and types the source gives: the
 * keys and kept columns and, for SCD2, __start_at and __end_at of the type
 * of sequence_by.  SCD2 targets leave room in their pages, so that closing
 * a version (setting __end_at, which no index covers) is a HOT update.
 */
char *
CdcTargetTableSql(const CdcSpec *spec, const char *target_name,
				  List *target_columns)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s%s AS SELECT ", target_name,
					 spec->scd_type == 2 ? " WITH (fillfactor = 90)" : "");
	CdcAppendNames(&sql, target_columns, NULL);
	if (spec->scd_type == 2)
		appendStringInfo(&sql, ", %s AS __start_at, %s AS __end_at",
						 spec->seq_sql, spec->seq_sql);
	appendStringInfo(&sql, " FROM %s WITH NO DATA", spec->source_name);
	return sql.data;
}

/* The target's primary key: the keys, and __start_at for SCD2. */
char *
CdcPrimaryKeySql(const CdcSpec *spec, const char *target_name)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ADD PRIMARY KEY (", target_name);
	CdcAppendNames(&sql, spec->keys, NULL);
	appendStringInfoString(&sql, spec->scd_type == 2 ? ", __start_at)" : ")");
	return sql.data;
}

/* The view <target>_current: every row (SCD1), or the current versions. */
char *
CdcCurrentViewSql(const CdcSpec *spec, const char *view_name,
				  const char *target_name, List *target_columns)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE VIEW %s AS SELECT ", view_name);
	CdcAppendNames(&sql, target_columns, NULL);
	if (spec->scd_type == 2)
		appendStringInfo(&sql, ", __start_at FROM %s WHERE __end_at IS NULL",
						 target_name);
	else
		appendStringInfo(&sql, " FROM %s", target_name);
	return sql.data;
}

/* The index on the source's keys that slow keys are read through. */
char *
CdcSourceIndexSql(const CdcSpec *spec)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE INDEX ON %s (", spec->source_name);
	CdcAppendNames(&sql, spec->keys, NULL);
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* Delete target rows by ctid ($1, a tid[]): the rows derived again. */
char *
CdcDeleteReplacedSql(CdcSpec *spec)
{
	return psprintf("DELETE FROM %s WHERE ctid"
					" OPERATOR(pg_catalog.=) ANY ($1)",
					spec->target_name);
}

/*
 * Close current versions in place: the version at ctid $1[i] ends at
 * $2[i].  The target is aliased __medallion_t (ChangeFeedCaptureSql).
 */
char *
CdcCloseVersionsSql(CdcSpec *spec)
{
	return psprintf("UPDATE %s AS __medallion_t SET __end_at = __u.__end"
					" FROM ROWS FROM (pg_catalog.unnest($1),"
					" pg_catalog.unnest($2))"
					" AS __u(__tid, __end)"
					" WHERE __medallion_t.ctid OPERATOR(pg_catalog.=) __u.__tid",
					spec->target_name);
}
