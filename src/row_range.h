/*-------------------------------------------------------------------------
 *
 * row_range.h
 *	  The condition "a row id in (after, up_to]" that reads a delta: the
 *	  rows a source gained since an update last read it (see row_range.c).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/row_range.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_ROW_RANGE_H
#define MEDALLION_ROW_RANGE_H

#include "postgres.h"

/*
 * SQL text of the condition that column (a bigint row id, already quoted)
 * lies in (after, up_to] (SQL text of bigints: numbers or parameters): a
 * call of medallion.row_id_in_range, which the planner estimates at
 * up_to - after rows and turns into an index range.
 */
extern char *RowRangeConditionSql(const char *column, const char *after,
								  const char *up_to);

#endif							/* MEDALLION_ROW_RANGE_H */
