/*-------------------------------------------------------------------------
 *
 * jsonb_builder.h
 *	  Turning the text of one JSON record into jsonb without ever raising
 *	  an error, so that a malformed record can be rescued instead of
 *	  aborting its object.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/jsonb_builder.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_JSONB_BUILDER_H
#define MEDALLION_JSONB_BUILDER_H

#include "postgres.h"

#include "utils/jsonb.h"

/* Records nested deeper than this are rescued, not parsed. */
#define JSONB_BUILDER_MAX_DEPTH 1000

/*
 * Parse text[0..length) as one JSON object.  Returns the jsonb, or NULL
 * when the text is not valid UTF-8, not valid JSON, not an object, nested
 * deeper than JSONB_BUILDER_MAX_DEPTH, or holds a number too large to
 * convert safely.  Allocates in the current memory context.
 */
extern Jsonb *JsonbBuildFromText(const char *text, int length);

/*
 * The text as a valid UTF-8 string without NUL bytes, for _rescued_data:
 * invalid bytes become U+FFFD.  Returns text itself (NUL-terminated copy)
 * when it was valid already.
 */
extern char *JsonbBuilderSanitizeText(const char *text, int length);

#endif							/* MEDALLION_JSONB_BUILDER_H */
