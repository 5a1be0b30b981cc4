/*-------------------------------------------------------------------------
 *
 * try_cast.h
 *	  Convert text to any type, yielding NULL instead of an error when the
 *	  text is not a valid input for the type.
 *
 * This is the engine behind medallion.try_cast(text, anyelement), which the
 * silver layer uses to type raw bronze strings.  It is exposed here so that
 * other C code of medallion can convert strings the same way without going
 * through the fmgr call of the SQL function.
 *
 * PostgreSQL 15 input functions report bad input by throwing an error, so
 * the common types are parsed by non-throwing reimplementations that accept
 * exactly what the type's input function accepts; every other type goes
 * through its input function inside an internal subtransaction.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/try_cast.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_TRY_CAST_H
#define MEDALLION_TRY_CAST_H

#include "postgres.h"

#include "fmgr.h"

/* Opaque, per-target-type state: see try_cast.c. */
typedef struct TryCastState TryCastState;

/*
 * Prepare to convert strings to type "targettype" (which may be a domain).
 * The state is allocated in "mcxt" and must live as long as it is used.
 * Raises an error for types that have no usable input function (pseudo-types,
 * shell types).
 */
extern TryCastState *try_cast_state_create(Oid targettype, MemoryContext mcxt);

/*
 * Convert the NUL-terminated string "str" as "str::targettype" would, with
 * typmod -1.  Returns true and sets *result on success; returns false when the
 * input function would reject the string with a data exception (SQLSTATE
 * class 22) or a domain constraint violation.  Any other error is thrown.
 * The result is allocated in CurrentMemoryContext.
 */
extern bool try_cast_cstring(TryCastState *state, char *str, Datum *result);

/* SQL-callable: medallion.try_cast(value text, target_type anyelement) */
extern PGDLLEXPORT Datum medallion_try_cast(PG_FUNCTION_ARGS);

#endif							/* MEDALLION_TRY_CAST_H */
