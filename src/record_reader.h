/*-------------------------------------------------------------------------
 *
 * record_reader.h
 *	  Reading the records of one downloaded object: newline-delimited JSON,
 *	  a top-level JSON array, or CSV with a header row, optionally
 *	  gzip-compressed, streamed from a file in bounded memory.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/record_reader.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_RECORD_READER_H
#define MEDALLION_RECORD_READER_H

#include "postgres.h"

#include "utils/jsonb.h"

typedef enum RecordFormat
{
	RECORD_FORMAT_JSON,
	RECORD_FORMAT_CSV
} RecordFormat;

typedef struct RecordReader RecordReader;

/* One record: either data (parsed) or rescued (the raw text), never both. */
typedef struct Record
{
	Jsonb	   *data;
	char	   *rescued;
} Record;

/*
 * Start reading the object downloaded into fd (read from offset 0).
 * object_name is used in error messages.  gzip is detected from the
 * content.  max_record_bytes bounds the memory one record may take.
 * A gzip object may inflate to at most max_decompressed_bytes, and to at
 * most max_expansion_ratio times the compressed bytes read (judged once
 * a few megabytes have been inflated); beyond either, reading raises
 * ERRCODE_PROGRAM_LIMIT_EXCEEDED before the offending bytes are returned.
 */
extern RecordReader *RecordReaderOpen(int fd, RecordFormat format,
									  const char *object_name,
									  int64 max_record_bytes,
									  int64 max_decompressed_bytes,
									  int max_expansion_ratio);

/*
 * The next record, allocated in the current memory context (reset it
 * between records or batches).  Returns false at the end of the object.
 * Raises ERRCODE_DATA_CORRUPTED for an object that cannot be read at all
 * (corrupt or truncated gzip, binary content), and
 * ERRCODE_PROGRAM_LIMIT_EXCEEDED for a gzip object beyond its limits.
 */
extern bool RecordReaderNext(RecordReader *reader, Record *record);

extern void RecordReaderClose(RecordReader *reader);

#endif							/* MEDALLION_RECORD_READER_H */
