/*-------------------------------------------------------------------------
 *
 * capture_internal.h
 *	  Names shared by the two halves of change capture: capture.c (the
 *	  consumers' API, which creates the triggers) and capture_trigger.c
 *	  (the trigger that writers run).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/capture_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CAPTURE_INTERNAL_H
#define MEDALLION_CAPTURE_INTERNAL_H

#include "postgres.h"

#include "capture.h"

/* The transition tables of the capture triggers, as the trigger reads them. */
#define CAPTURE_NEW_TABLE "__capture_new"
#define CAPTURE_OLD_TABLE "__capture_old"

/* The triggers on a captured table (one per event: transition tables). */
#define CAPTURE_TRIGGER_PREFIX "medallion_capture_"

/* The schema of the logs. */
#define CAPTURE_LOG_SCHEMA "medallion_state"

/*
 * Run one fixed statement (no user SQL) as role, with search_path pinned
 * and in a restricted operation: used to write and prune a log as its
 * owner, whoever the caller is.  The caller is connected to SPI.
 */
extern uint64 CaptureExecuteAs(Oid role, const char *sql, int nargs,
							   Oid *argtypes, Datum *values,
							   int expected_result);

/* Owner of a relation (InvalidOid if it does not exist). */
extern Oid	CaptureRelationOwner(Oid relid);

/*
 * Called by a writer of relid whose statement drew change ids up to
 * last_id in log_relid: when the changes some consumer has not read exceed
 * medallion.change_log_max_rows, empty the log and move the lagging
 * consumers past it (they recompute).  Returns the lowest consumer position
 * seen, which the writer may keep to skip the next checks.
 */
extern int64 CaptureLimitLog(Oid relid, Oid log_relid, int64 last_id);

#endif							/* MEDALLION_CAPTURE_INTERNAL_H */
