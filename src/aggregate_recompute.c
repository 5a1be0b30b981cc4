/*-------------------------------------------------------------------------
 *
 * aggregate_recompute.c
 *	  Rewriting the groups of an aggregate flow's target: all of them (a full
 *	  recompute), or those its changes touched, computed again from the
 *	  source or, under delta maintenance, from their per-group state.
 *
 * The touched groups' values are passed as arrays, one per group column,
 * and each group is recomputed by a LATERAL subquery that reads the source
 * by an index on the group expressions (created with the flow, partial on
 * the filter for append-only sources).
 * Groups with NULL values are handled apart, one statement per pattern of
 * NULL columns, with "IS NULL" instead of "=", so that every lookup stays
 * indexable and NULL groups are matched as GROUP BY matches them.  The rows
 * deleted and inserted are compared (as text) to tell whether the target
 * changed, so that an update that recomputes groups to the same values does
 * not count as a change (nor refresh views or notify listeners).  Under
 * delta maintenance the rows of the groups whose state changed are written
 * the same way, computed from their state rather than from the source.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregate_recompute.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "aggregates_internal.h"
#include "change_feed.h"
#include "spi_util.h"
#include "sql_names.h"

/* Is the attribute of a row in a tuptable NULL? */
#define agg_attisnull(tuptable, row, attnum) \
	heap_attisnull((tuptable)->vals[(row)], (attnum), (tuptable)->tupdesc)

/* Touched groups of one pattern of NULL group columns. */
typedef struct AggPattern
{
	uint32		nullmask;		/* bit i: group column i is NULL */
	List	   *rows;			/* row numbers in the touched tuptable */
} AggPattern;

/* "(<e1>\n) AS group_1, ...": the group expressions as state columns */
static char *
agg_group_exprs_aliased_sql(AggSpec *spec)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&buf, "%s%s AS group_%d", i > 0 ? ", " : "",
						 spec->groups[i].sql, i + 1);
	return buf.data;
}

/*
 * The CTEs that add the change rows of CTE __medallion_c (group_<n>,
 * argument_<n>, key_1 for auto_cdc sources, __medallion_sign) to the state
 * of their groups, and yield, as __medallion_u, the groups whose state
 * changed (a group whose rows changed in nothing the items read is left
 * alone).
 */
static char *
agg_delta_apply_sql(AggSpec *spec)
{
	char	   *groups = AggStateGroupColumnsSql(spec->ngroups, NULL);
	StringInfoData ctes;
	StringInfoData deltas;
	int			i;

	/*
	 * count(DISTINCT x): the net change of each (group, value) goes to the
	 * values table, whose upsert says which values appeared or went.
	 */
	initStringInfo(&ctes);
	initStringInfo(&deltas);
	appendStringInfo(&deltas,
					 "  SELECT %s, %s\n"
					 "    FROM __medallion_c AS c\n"
					 "   GROUP BY %s",
					 AggStateGroupColumnsSql(spec->ngroups, "c"),
					 AggregateDeltaChangeSums(spec->delta),
					 AggPositions(spec->ngroups));
	for (i = 0; i < spec->naggs; i++)
	{
		const char *argument;

		if (spec->values_tables[i] == NULL)
			continue;
		argument = psprintf("c.argument_%d",
							spec->delta->items[i].argument + 1);
		appendStringInfo(&ctes,
						 ",\n__medallion_v%d AS (\n"
						 " INSERT INTO %s AS v (%s, value, refs, last_delta)\n"
						 " SELECT %s, %s, pg_catalog.sum(c.__medallion_sign), pg_catalog.sum(c.__medallion_sign)\n"
						 "   FROM __medallion_c AS c\n"
						 "  WHERE %s IS NOT NULL\n"
						 "  GROUP BY %s\n"
						 " HAVING pg_catalog.sum(c.__medallion_sign) OPERATOR(pg_catalog.<>) 0\n"
						 " ON CONFLICT (%s, value) DO UPDATE\n"
						 "   SET refs = v.refs OPERATOR(pg_catalog.+) excluded.refs,\n"
						 "       last_delta = excluded.last_delta\n"
						 " RETURNING %s, %s AS change)",
						 i + 1, spec->values_tables[i], groups,
						 AggStateGroupColumnsSql(spec->ngroups, "c"),
						 argument, argument, AggPositions(spec->ngroups + 1),
						 groups, AggStateGroupColumnsSql(spec->ngroups, "v"),
						 AggregateDeltaDistinctChange("v"));
		appendStringInfo(&deltas,
						 "\n  UNION ALL\n"
						 "  SELECT %s, %s FROM __medallion_v%d AS v",
						 AggStateGroupColumnsSql(spec->ngroups, "v"),
						 AggregateDeltaDistinctSums(spec->delta, i, "v.change"),
						 i + 1);
	}

	return psprintf("%s,\n__medallion_dd AS (\n"
					" SELECT %s, %s\n"
					"   FROM (\n%s) AS x\n"
					"  GROUP BY %s),\n"
					"__medallion_u AS (\n"
					" INSERT INTO %s AS __medallion_s (%s, %s)\n"
					" SELECT * FROM __medallion_dd AS d WHERE %s\n"
					" ON CONFLICT (%s) DO UPDATE SET %s\n"
					" RETURNING %s)",
					ctes.data,
					AggStateGroupColumnsSql(spec->ngroups, "x"),
					AggregateDeltaResum(spec->delta, "x"),
					deltas.data,
					AggPositions(spec->ngroups),
					spec->groups_table, groups,
					AggregateDeltaStateColumns(spec->delta, NULL),
					AggregateDeltaChangesState(spec->delta, "d"),
					groups,
					AggregateDeltaUpsertSet(spec->delta, "__medallion_s"),
					AggStateGroupColumnsSql(spec->ngroups, "__medallion_s"));
}

/*
 * Values whose rows all went stay in a values table with refs 0 until the
 * end of the update that emptied them.
 */
void
AggDeltaForgetValues(AggSpec *spec)
{
	int			i;

	for (i = 0; i < spec->naggs; i++)
	{
		if (spec->values_tables[i] != NULL)
			SpiExecute(psprintf("DELETE FROM %s WHERE refs OPERATOR(pg_catalog.=) 0",
								spec->values_tables[i]),
					   0, NULL, NULL, NULL, SPI_OK_DELETE);
	}
}

/*
 * A target row from a groups table row (alias): its group columns, then
 * each item's value, named like the target's columns.  values_match is how
 * a values table row (alias __medallion_v) matches the group.
 */
static char *
agg_delta_final_list_sql(AggSpec *spec, const char *alias,
						 const char *values_match)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&buf, "%s%s.group_%d AS %s", i > 0 ? ", " : "", alias,
						 i + 1, quote_identifier(spec->groups[i].name));
	for (i = 0; i < spec->naggs; i++)
	{
		char	   *value = AggregateDeltaFinalValue(spec->delta, i, alias);

		/* min or max: the least or greatest value a row still holds */
		if (value == NULL)
			value = psprintf("(SELECT __medallion_v.value FROM %s AS __medallion_v\n"
							 "  WHERE %s AND __medallion_v.refs OPERATOR(pg_catalog.>) 0\n"
							 "  ORDER BY __medallion_v.value%s LIMIT 1)",
							 spec->values_tables[i], values_match,
							 spec->delta->items[i].kind == AGG_DELTA_MAX_VALUES ?
							 " DESC" : "");
		appendStringInfo(&buf, ", %s AS %s", value,
						 quote_identifier(spec->aggs[i].name));
	}
	return buf.data;
}

/*
 * The source's rows that pass the filter as alias c: group_<n> and
 * argument_<n>, each expression computed once per row (OFFSET 0 keeps the
 * planner from substituting them back into every aggregate that reads
 * them).
 */
static char *
agg_source_arguments_sql(AggSpec *spec)
{
	return psprintf("(SELECT %s%s\n"
					"   FROM %s\n"
					"  WHERE %s\n"
					" OFFSET 0) AS c",
					agg_group_exprs_aliased_sql(spec),
					AggDeltaArgumentListSql(spec), spec->source_name,
					AggWhereSql(spec));
}

/*
 * Delta maintenance, full recompute: the values of each count(DISTINCT x),
 * min and max item that keeps them, and the per-group state, from the
 * whole source, with one GROUP BY each.
 */
static void
agg_rebuild_delta_state(AggSpec *spec)
{
	int			i;

	for (i = 0; i < spec->naggs; i++)
	{
		const char *argument;

		if (spec->values_tables[i] == NULL)
			continue;
		argument = spec->delta->argument_sql[spec->delta->items[i].argument];
		SpiEmptyTable(RelidFromQualifiedName(spec->values_tables[i], false));
		SpiExecute(psprintf("INSERT INTO %s (%s, value, refs, last_delta)\n"
							"SELECT %s, %s, pg_catalog.count(*), 0\n"
							"  FROM %s\n"
							" WHERE %s AND %s IS NOT NULL\n"
							" GROUP BY %s",
							spec->values_tables[i],
							AggStateGroupColumnsSql(spec->ngroups, NULL),
							AggGroupExprsSql(spec), argument,
							spec->source_name, AggWhereSql(spec),
							argument, AggPositions(spec->ngroups + 1)),
				   0, NULL, NULL, NULL, SPI_OK_INSERT);
	}

	SpiEmptyTable(RelidFromQualifiedName(spec->groups_table, false));
	SpiExecute(psprintf("INSERT INTO %s (%s, %s)\n"
						"SELECT %s, %s\n"
						"  FROM %s\n"
						" GROUP BY %s",
						spec->groups_table,
						AggStateGroupColumnsSql(spec->ngroups, NULL),
						AggregateDeltaStateColumns(spec->delta, NULL),
						AggStateGroupColumnsSql(spec->ngroups, "c"),
						AggregateDeltaSourceSums(spec->delta),
						agg_source_arguments_sql(spec),
						AggPositions(spec->ngroups)),
			   0, NULL, NULL, NULL, SPI_OK_INSERT);
}

/*
 * Can the target be written from the per-group state alone: delta
 * maintenance, and every item's value kept in the groups table (min and
 * max kept as values are read from the values tables instead)?
 */
static bool
agg_target_from_state(AggSpec *spec)
{
	int			i;

	if (spec->delta == NULL)
		return false;
	for (i = 0; i < spec->naggs; i++)
	{
		if (AggregateDeltaFinalValue(spec->delta, i, "s") == NULL)
			return false;
	}
	return true;
}

/*
 * The rows of the whole target, with their number of source rows: the
 * user's query over the source, or, when the state was just rebuilt from
 * the source and holds every value, the state's groups (one pass over the
 * source for both, as a hand-written GROUP BY would take).
 */
static char *
agg_full_rows_sql(AggSpec *spec, bool from_state)
{
	if (from_state)
		return psprintf(" SELECT %s, __medallion_s.row_count AS __medallion_n\n"
						"   FROM %s AS __medallion_s\n"
						"  WHERE __medallion_s.row_count OPERATOR(pg_catalog.>) 0",
						agg_delta_final_list_sql(spec, "__medallion_s", NULL),
						spec->groups_table);
	return psprintf(" SELECT %s, pg_catalog.count(*) AS __medallion_n\n"
					"   FROM %s\n"
					"  WHERE %s\n"
					"  GROUP BY %s",
					AggSelectListSql(spec), spec->source_name,
					AggWhereSql(spec), AggPositions(spec->ngroups));
}

/*
 * Full recompute: delete every row of the target and aggregate the whole
 * source (under delta maintenance, into the per-group state and the values
 * tables first, the target then from the state).  The pending changes of
 * an aggregate source are then applied already.
 */
void
AggRecomputeFull(AggSpec *spec, AggProgress *state, AggRun *run)
{
	StringInfoData sql;
	bool		isnull;

	run->groups_deleted = (int64) SpiExecute(psprintf("DELETE FROM %s",
													  spec->target_name),
											 0, NULL, NULL, NULL,
											 SPI_OK_DELETE);
	if (spec->delta != NULL)
		agg_rebuild_delta_state(spec);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_r AS (\n%s),\n"
					 "__medallion_i AS (\n"
					 " INSERT INTO %s (%s)\n"
					 " SELECT %s FROM __medallion_r RETURNING 1)\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM __medallion_i),\n"
					 "       (SELECT pg_catalog.sum(__medallion_n) FROM __medallion_r)::pg_catalog.int8",
					 agg_full_rows_sql(spec, agg_target_from_state(spec)),
					 spec->target_name, AggTargetColumnsSql(spec, NULL),
					 AggTargetColumnsSql(spec, NULL));
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_SELECT);
	run->groups_inserted = SpiGetInt64(0, 1, NULL);
	run->source_rows = SpiGetInt64(0, 2, &isnull);
	run->groups_recomputed = run->groups_inserted;
	run->changed = run->groups_deleted > 0 || run->groups_inserted > 0;
	state->groups = run->groups_inserted;
	state->rows = run->source_rows;

	if (spec->kind == AGG_SOURCE_AGGREGATE)
		SpiExecute(psprintf("DELETE FROM %s", spec->state_table), 0, NULL,
				   NULL, NULL, SPI_OK_DELETE);
}

/* Do two text[] datums (either may be NULL) hold the same elements? */
static bool
agg_text_arrays_equal(Datum a, bool a_null, Datum b, bool b_null)
{
	Datum	   *a_elems;
	Datum	   *b_elems;
	bool	   *a_nulls;
	bool	   *b_nulls;
	int			a_n = 0;
	int			b_n = 0;
	int			i;

	if (!a_null)
		deconstruct_array_builtin(DatumGetArrayTypeP(a), TEXTOID, &a_elems,
								  &a_nulls, &a_n);
	if (!b_null)
		deconstruct_array_builtin(DatumGetArrayTypeP(b), TEXTOID, &b_elems,
								  &b_nulls, &b_n);
	if (a_n != b_n)
		return false;
	for (i = 0; i < a_n; i++)
	{
		text	   *x;
		text	   *y;

		if (a_nulls[i] != b_nulls[i])
			return false;
		if (a_nulls[i])
			continue;
		x = DatumGetTextPP(a_elems[i]);
		y = DatumGetTextPP(b_elems[i]);
		if (VARSIZE_ANY_EXHDR(x) != VARSIZE_ANY_EXHDR(y) ||
			memcmp(VARDATA_ANY(x), VARDATA_ANY(y), VARSIZE_ANY_EXHDR(x)) != 0)
			return false;
	}
	return true;
}

/* Number of elements of a text[] datum, 0 for NULL. */
static int64
agg_array_length(Datum a, bool isnull)
{
	ArrayType  *array;

	if (isnull)
		return 0;
	array = DatumGetArrayTypeP(a);
	return ARR_NDIM(array) == 0 ? 0 : ArrayGetNItems(ARR_NDIM(array),
													  ARR_DIMS(array));
}

/*
 * How a target row, a source row, a per-group state row and a values table
 * row match a group of one NULL pattern (__medallion_g: the touched groups).
 */
typedef struct AggGroupMatch
{
	StringInfoData target;		/* alias __medallion_t */
	StringInfoData source;		/* the placed group expressions */
	StringInfoData state;		/* alias __medallion_s */
	StringInfoData values;		/* alias __medallion_v */
} AggGroupMatch;

/*
 * The touched groups of one NULL pattern as rows of __medallion_g: unnest
 * of the arrays $1 ... $nparams, one per non-NULL group column, or one row
 * when every group column is NULL.
 */
static char *
agg_groups_from_sql(AggSpec *spec, uint32 nullmask, int nparams)
{
	StringInfoData from;
	int			param = 0;
	int			i;

	initStringInfo(&from);
	if (nparams == 0)
	{
		appendStringInfoString(&from,
							   "(VALUES (1)) AS __medallion_g(__medallion_g0)");
		return from.data;
	}
	appendStringInfoString(&from, "ROWS FROM (");
	for (i = 1; i <= nparams; i++)
		appendStringInfo(&from, "%spg_catalog.unnest($%d)",
						 i > 1 ? ", " : "", i);
	appendStringInfoString(&from, ") AS __medallion_g(");
	for (i = 0; i < spec->ngroups; i++)
	{
		if (nullmask & ((uint32) 1 << i))
			continue;
		appendStringInfo(&from, "%s__medallion_g%d", param > 0 ? ", " : "",
						 i + 1);
		param++;
	}
	appendStringInfoChar(&from, ')');
	return from.data;
}

/*
 * The match conditions of one NULL pattern: "IS NULL" for the NULL group
 * columns, the type's equality (and the column's collation) for the others,
 * so that every lookup stays indexable.
 */
static void
agg_group_match(AggSpec *spec, uint32 nullmask, AggGroupMatch *match)
{
	int			i;

	initStringInfo(&match->target);
	initStringInfo(&match->source);
	initStringInfo(&match->state);
	initStringInfo(&match->values);
	for (i = 0; i < spec->ngroups; i++)
	{
		const char *column = quote_identifier(spec->groups[i].name);
		const char *and = i > 0 ? " AND " : "";

		if (nullmask & ((uint32) 1 << i))
		{
			appendStringInfo(&match->target, "%s__medallion_t.%s IS NULL",
							 and, column);
			appendStringInfo(&match->source, "%s%s IS NULL",
							 and, spec->groups[i].sql);
			appendStringInfo(&match->state, "%s__medallion_s.group_%d IS NULL",
							 and, i + 1);
			appendStringInfo(&match->values, "%s__medallion_v.group_%d IS NULL",
							 and, i + 1);
			continue;
		}
		appendStringInfo(&match->target,
						 "%s__medallion_t.%s %s __medallion_g.__medallion_g%d%s",
						 and, column, spec->group_eq[i], i + 1,
						 spec->group_collate[i]);
		appendStringInfo(&match->source,
						 "%s%s %s __medallion_g.__medallion_g%d%s",
						 and, spec->groups[i].sql, spec->group_eq[i], i + 1,
						 spec->group_collate[i]);
		appendStringInfo(&match->state,
						 "%s__medallion_s.group_%d %s __medallion_g.__medallion_g%d%s",
						 and, i + 1, spec->group_eq[i], i + 1,
						 spec->group_collate[i]);
		appendStringInfo(&match->values,
						 "%s__medallion_v.group_%d %s __medallion_g.__medallion_g%d%s",
						 and, i + 1, spec->group_eq[i], i + 1,
						 spec->group_collate[i]);
	}
}

/*
 * Delete the target rows of the groups (and, under delta maintenance, the
 * state of the groups now empty); returns the deleted rows as a sorted
 * text[] (*isnull when none).
 */
static Datum
agg_delete_groups(AggSpec *spec, const char *from, AggGroupMatch *match,
				  int nparams, Oid *types, Datum *values, bool *isnull)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_d AS (\n"
					 " DELETE FROM %s AS __medallion_t USING %s\n"
					 "  WHERE %s\n"
					 " RETURNING __medallion_t::pg_catalog.text AS __medallion_row)",
					 spec->target_name, from, match->target.data);
	if (spec->delta != NULL)
		appendStringInfo(&sql,
						 ",\n__medallion_e AS (\n"
						 " DELETE FROM %s AS __medallion_s USING %s\n"
						 "  WHERE %s AND __medallion_s.row_count OPERATOR(pg_catalog.=) 0)",
						 spec->groups_table, from, match->state.data);
	appendStringInfoString(&sql,
						   "\nSELECT pg_catalog.array_agg(__medallion_row ORDER BY __medallion_row COLLATE pg_catalog.\"C\")\n"
						   "  FROM __medallion_d");
	SpiExecute(sql.data, nparams, types, values, NULL, SPI_OK_SELECT);
	return SpiGetDatum(0, 1, isnull);
}

/*
 * Aggregate each group again and insert its row (none for a group now
 * empty), reading the source by the index on the group expressions.  The
 * user's expressions sit in a subquery whose only FROM item is the source,
 * so their names resolve as at creation.  Under delta maintenance, the
 * group's row is read from its state.  Returns the inserted rows as a
 * sorted text[] (*isnull when none); adds the source rows read to run.
 */
static Datum
agg_insert_groups(AggSpec *spec, const char *from, AggGroupMatch *match,
				  int nparams, Oid *types, Datum *values, bool *isnull,
				  AggRun *run)
{
	StringInfoData sql;
	Datum		inserted;
	bool		rows_null;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_r AS (\n"
					 " SELECT __medallion_x.*\n"
					 "   FROM %s\n"
					 "  CROSS JOIN LATERAL (\n",
					 from);
	if (spec->delta == NULL)
		appendStringInfo(&sql,
						 "   SELECT %s, pg_catalog.count(*) AS __medallion_n\n"
						 "     FROM %s\n"
						 "    WHERE %s\n"
						 "      AND %s\n"
						 "    GROUP BY %s) AS __medallion_x),\n",
						 AggSelectListSql(spec), spec->source_name,
						 AggWhereSql(spec), match->source.data,
						 AggPositions(spec->ngroups));
	else
		appendStringInfo(&sql,
						 "   SELECT %s, 0::pg_catalog.int8 AS __medallion_n\n"
						 "     FROM %s AS __medallion_s\n"
						 "    WHERE %s\n"
						 "      AND __medallion_s.row_count OPERATOR(pg_catalog.>) 0) AS __medallion_x),\n",
						 agg_delta_final_list_sql(spec, "__medallion_s",
												  match->values.data),
						 spec->groups_table, match->state.data);
	appendStringInfo(&sql,
					 "__medallion_i AS (\n"
					 " INSERT INTO %s AS __medallion_t (%s)\n"
					 " SELECT %s FROM __medallion_r\n"
					 " RETURNING __medallion_t::pg_catalog.text AS __medallion_row)\n"
					 "SELECT (SELECT pg_catalog.array_agg(__medallion_row ORDER BY __medallion_row COLLATE pg_catalog.\"C\")\n"
					 "          FROM __medallion_i),\n"
					 "       (SELECT pg_catalog.sum(__medallion_n) FROM __medallion_r)::pg_catalog.int8",
					 spec->target_name,
					 AggTargetColumnsSql(spec, NULL),
					 AggTargetColumnsSql(spec, NULL));
	SpiExecute(sql.data, nparams, types, values, NULL, SPI_OK_SELECT);
	inserted = SpiGetDatum(0, 1, isnull);
	run->source_rows += SpiGetInt64(0, 2, &rows_null);
	return inserted;
}

/*
 * Recompute the groups of one NULL pattern: delete their target rows, then
 * insert their rows computed again (none for a group now empty): from the
 * source, or under delta maintenance from their state (whose rows of groups
 * now empty are deleted too).  values holds one array per non-NULL group
 * column.  The target changed unless the rows deleted and inserted are the
 * same.
 */
static void
agg_recompute_pattern(AggSpec *spec, uint32 nullmask, int nparams,
					  Oid *types, Datum *values, AggRun *run)
{
	char	   *from = agg_groups_from_sql(spec, nullmask, nparams);
	AggGroupMatch match;
	Datum		deleted;
	bool		deleted_null;
	Datum		inserted;
	bool		inserted_null;

	agg_group_match(spec, nullmask, &match);
	deleted = agg_delete_groups(spec, from, &match, nparams, types, values,
								&deleted_null);
	inserted = agg_insert_groups(spec, from, &match, nparams, types, values,
								 &inserted_null, run);
	run->groups_deleted += agg_array_length(deleted, deleted_null);
	run->groups_inserted += agg_array_length(inserted, inserted_null);
	if (!agg_text_arrays_equal(deleted, deleted_null, inserted, inserted_null))
		run->changed = true;
}

/*
 * The touched groups, the rows of the tuptable touched, sorted by their
 * pattern of NULL group columns.
 */
static List *
agg_group_patterns(AggSpec *spec, SPITupleTable *touched, uint64 ntouched)
{
	List	   *patterns = NIL;
	ListCell   *cell;
	uint64		row;
	int			i;

	for (row = 0; row < ntouched; row++)
	{
		uint32		mask = 0;
		AggPattern *pattern = NULL;

		for (i = 0; i < spec->ngroups; i++)
		{
			if (agg_attisnull(touched, row, i + 1))
				mask |= (uint32) 1 << i;
		}
		foreach(cell, patterns)
		{
			if (((AggPattern *) lfirst(cell))->nullmask == mask)
			{
				pattern = lfirst(cell);
				break;
			}
		}
		if (pattern == NULL)
		{
			pattern = palloc0(sizeof(AggPattern));
			pattern->nullmask = mask;
			patterns = lappend(patterns, pattern);
		}
		pattern->rows = lappend_int(pattern->rows, (int) row);
	}
	return patterns;
}

/*
 * The values of one group column (attnum in touched) over the rows of a
 * pattern, as an array parameter of type *array_type.
 */
static Datum
agg_group_column_array(SPITupleTable *touched, int attnum, List *rows,
					   Oid *array_type)
{
	Oid			elemtype = SPI_gettypeid(touched->tupdesc, attnum);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems = palloc(sizeof(Datum) * list_length(rows));
	ListCell   *cell;
	int			dims[1] = {list_length(rows)};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	foreach(cell, rows)
	{
		bool		isnull;

		elems[foreach_current_index(cell)] =
			SPI_getbinval(touched->vals[lfirst_int(cell)], touched->tupdesc,
						  attnum, &isnull);
	}
	*array_type = get_array_type(elemtype);
	if (!OidIsValid(*array_type))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("could not find array type for data type %s",
						format_type_be(elemtype))));
	return PointerGetDatum(construct_md_array(elems, NULL, 1, dims, lbs,
											  elemtype, typlen, typbyval,
											  typalign));
}

/*
 * Recompute the touched groups, the rows of the tuptable touched (group
 * columns first, in order), pattern by pattern of NULL columns.
 */
void
AggRecomputeGroups(AggSpec *spec, SPITupleTable *touched, uint64 ntouched,
				   AggProgress *state, AggRun *run)
{
	ListCell   *cell;

	foreach(cell, agg_group_patterns(spec, touched, ntouched))
	{
		AggPattern *pattern = lfirst(cell);
		Oid			types[AGG_MAX_GROUPS];
		Datum		values[AGG_MAX_GROUPS];
		int			nparams = 0;
		int			i;

		for (i = 0; i < spec->ngroups; i++)
		{
			if (pattern->nullmask & ((uint32) 1 << i))
				continue;
			values[nparams] = agg_group_column_array(touched, i + 1,
													 pattern->rows,
													 &types[nparams]);
			nparams++;
		}
		agg_recompute_pattern(spec, pattern->nullmask, nparams, types, values,
							  run);
		run->groups_recomputed += list_length(pattern->rows);
	}
	state->groups += run->groups_inserted - run->groups_deleted;
	if (state->groups < 0)
		state->groups = 0;
}

/*
 * Delta maintenance: add the changes in (low, high] to the state of their
 * groups; they are the new rows of an append-only source, or the rows of
 * the change feed of an auto_cdc source (read under the source's name, so
 * that the user's expressions resolve as over the source).  Returns the
 * groups whose state changed, in SPI_tuptable, the number of changes that
 * pass the filter in *rows, and their sum of signs in *net_rows.
 */
uint64
AggDeltaChanges(AggSpec *spec, int64 low, int64 high, int64 *rows,
				  int64 *net_rows)
{
	StringInfoData sql;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	bool		feed = spec->kind == AGG_SOURCE_CDC;
	uint64		n;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_c AS (\n"
					 " SELECT %s%s, %s AS __medallion_sign\n"
					 "   FROM %s%s%s\n"
					 "  WHERE _row_id OPERATOR(pg_catalog.>) $1\n"
					 "    AND _row_id OPERATOR(pg_catalog.<=) $2\n"
					 "    AND %s%s)%s\n"
					 "SELECT %s, (SELECT pg_catalog.count(*) FROM __medallion_c),\n"
					 "       (SELECT pg_catalog.sum(__medallion_sign) FROM __medallion_c)::pg_catalog.int8\n"
					 "  FROM __medallion_u",
					 agg_group_exprs_aliased_sql(spec),
					 AggDeltaArgumentListSql(spec),
					 feed ? CHANGE_FEED_SIGN_COLUMN : "1",
					 feed ? spec->feed_table : spec->source_name,
					 feed ? " AS " : "", feed ? spec->source_ref : "",
					 AggWhereSql(spec),
					 feed ? " AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.<>) 0" : "",
					 agg_delta_apply_sql(spec),
					 AggStateGroupColumnsSql(spec->ngroups, NULL));
	n = SpiExecute(sql.data, 2, types, values, NULL, SPI_OK_SELECT);
	*rows = n > 0 ? SpiGetInt64(0, spec->ngroups + 1, NULL) : 0;
	*net_rows = n > 0 ? SpiGetInt64(0, spec->ngroups + 2, NULL) : 0;
	return n;
}
