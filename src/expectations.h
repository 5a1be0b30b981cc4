/*-------------------------------------------------------------------------
 *
 * expectations.h
 *	  Data-quality expectations of silver flows: named boolean conditions
 *	  over the flow's output columns, with CHECK-constraint semantics (only
 *	  false violates; NULL passes) and an action taken on violation.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/expectations.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_EXPECTATIONS_H
#define MEDALLION_EXPECTATIONS_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* What happens to a row that violates an expectation. */
typedef enum ExpectationAction
{
	EXPECTATION_WARN,			/* keep the row, count it */
	EXPECTATION_DROP,			/* do not write the row, count it */
	EXPECTATION_FAIL			/* abort the flow's update */
} ExpectationAction;

/* One expectation of a flow, with its counters for the current update. */
typedef struct Expectation
{
	char	   *name;
	char	   *condition;		/* as the user wrote it */
	char	   *condition_sql;	/* placed (user_sql.h) */
	ExpectationAction action;
	int64		passed_records;
	int64		failed_records;
} Expectation;

/* The expectations of one flow, in name order (the order they are checked). */
typedef struct ExpectationSet
{
	int			count;
	Expectation *items;
	bool		any_drop;		/* is any action EXPECTATION_DROP? */
} ExpectationSet;

/* What checking one row found. */
typedef struct ExpectationRowResult
{
	bool		drop;			/* a drop expectation was violated */
	int			first_fail;		/* index of a violated fail expectation, or
								 * -1 */
	int			nviolated;		/* how many expectations were violated */
} ExpectationRowResult;

/* Load a flow's expectations (as the extension owner), in name order. */
extern ExpectationSet *ExpectationsLoad(int32 flow_id);

/* Append ", <placed condition>" for each expectation, in order. */
extern void ExpectationsAppendColumns(ExpectationSet *set, StringInfo sql);

/*
 * Count one row: values[0..count-1] are the condition results in set order.
 * Fills *result; the caller decides what to do with the row.
 */
extern void ExpectationsCheckRow(ExpectationSet *set, const Datum *values,
								 const bool *isnull,
								 ExpectationRowResult *result);

/* The names of the expectations that values violate, as a text[] datum. */
extern Datum ExpectationsViolatedArray(ExpectationSet *set,
									   const Datum *values,
									   const bool *isnull);

/*
 * "(v1, v2, null)" for the first natts columns of a row, the way core
 * describes the failing row of a CHECK violation.
 */
extern char *ExpectationDescribeRow(TupleDesc tupdesc, int natts,
									const Datum *values, const bool *isnull);

/* Raise the error of a row that violated a fail expectation. */
extern void ExpectationReportFailure(Expectation *expectation,
									 const char *flow_name, Relation target,
									 const char *row_description)
			pg_attribute_noreturn();

/*
 * Append the flow_progress details member
 * "\"expectations\": [{\"name\": ..., ...}, ...]".
 */
extern void ExpectationsAppendMetrics(ExpectationSet *set, StringInfo details);

extern const char *ExpectationActionName(ExpectationAction action);

#endif							/* MEDALLION_EXPECTATIONS_H */
