/*-------------------------------------------------------------------------
 *
 * record_reader.c
 *	  Streaming the records out of one downloaded object.
 *
 * The object is read from its spool file in fixed-size chunks (and
 * inflated in chunks when it is gzip-compressed), so memory stays bounded
 * by the chunk size plus the largest record, whatever the object's size.
 * zlib allocates through palloc in the reader's memory context, so an
 * error anywhere frees it with that context.
 *
 * Formats:
 *	- newline-delimited JSON: one record per line; blank lines, CRLF line
 *	  ends and a UTF-8 byte order mark are tolerated;
 *	- a top-level JSON array (detected by a leading '['): one record per
 *	  element; several arrays one after the other are read in turn;
 *	- CSV with a header row (RFC 4180 quoting): each row becomes a JSON
 *	  object of strings named by the header; an empty unquoted field is
 *	  null; a row with a different number of fields is rescued.
 *
 * A record that does not parse is returned as rescued text; only an object
 * that cannot be read at all (corrupt gzip, binary content) raises.
 *
 * Decompression bombs: a gzip object is refused once it has inflated to
 * more than its decompressed-size limit, or to more than its expansion
 * ratio limit times the compressed bytes consumed.  Both are checked on
 * each inflated chunk before it is handed out, so no byte beyond a limit
 * ever becomes a record.  The ratio is judged only after
 * RATIO_JUDGED_AFTER bytes: a small object costs little whatever its
 * ratio, and small files of repetitive lines may legitimately exceed
 * ratios that real event data at megabyte sizes never reaches.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/record_reader.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>
#include <zlib.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "jsonb_builder.h"
#include "record_reader.h"

#define RAW_CHUNK_SIZE		(256 * 1024)
#define DECODED_CHUNK_SIZE	(1024 * 1024)

/* what an oversized record keeps of its text in _rescued_data */
#define OVERSIZE_KEPT_BYTES (1024 * 1024)

/*
 * Inflated bytes after which the expansion ratio is judged: one decoded
 * chunk.  So at most 1 MB of a bomb becomes rows (about 350,000 of the
 * smallest records, "{}", in a transaction that rolls back), while an
 * object that inflates to 1 MB or less is never refused for its ratio.
 */
#define RATIO_JUDGED_AFTER	DECODED_CHUNK_SIZE

typedef enum JsonLayout
{
	LAYOUT_UNKNOWN,
	LAYOUT_LINES,
	LAYOUT_ARRAY
} JsonLayout;

struct RecordReader
{
	int			fd;
	RecordFormat format;
	char	   *object_name;
	int64		max_record_bytes;
	int64		max_decompressed_bytes;
	int			max_expansion_ratio;
	MemoryContext context;		/* reader-lifetime allocations */

	/* input, possibly compressed */
	bool		gzip;
	z_stream	zstream;
	bool		zstream_ready;
	bool		member_ended;	/* a gzip member ended; more may follow */
	char	   *raw;
	bool		raw_eof;
	int64		compressed_bytes;	/* gzip bytes consumed by inflate */
	int64		decompressed_bytes; /* bytes inflated from them */

	/* decoded bytes */
	char	   *buffer;
	size_t		buffer_length;
	size_t		buffer_position;
	bool		decoded_eof;
	bool		started;

	/* the record being assembled across chunks */
	StringInfoData pending;
	int64		pending_total;	/* bytes of the record, even those not kept */

	/* JSON arrays */
	JsonLayout	layout;
	int			array_depth;	/* 0 outside the top-level array */

	/* CSV */
	char	  **header;
	int			header_count;
	bool		header_read;
};

/*
 * zlib's allocator: the reader's memory context, so that an error frees
 * the inflate state with it; out of memory is reported by zlib itself.
 */
static void *
reader_zalloc(void *opaque, unsigned int items, unsigned int size)
{
	RecordReader *reader = opaque;

	return MemoryContextAllocExtended(reader->context, (Size) items * size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/* zlib's deallocator, for reader_zalloc's memory. */
static void
reader_zfree(void *opaque, void *address)
{
	if (address != NULL)
		pfree(address);
}

/*
 * The one error for an object that cannot be read at all; the caller
 * records the object as failed (ERRCODE_DATA_CORRUPTED).
 */
static void
report_corrupt(RecordReader *reader, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("could not read object \"%s\"", reader->object_name),
			 errdetail("%s", detail),
			 errhint("The object is recorded as failed in medallion.ingested_files; fix it in S3 and call medallion.retry_object(), or skip it with medallion.skip_object().")));
}

/*
 * Refuse a gzip object that has inflated beyond its limits.  Called with
 * the totals including the chunk just inflated, before that chunk is
 * handed out.
 */
static void
check_expansion(RecordReader *reader)
{
	if (reader->decompressed_bytes > reader->max_decompressed_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("object \"%s\" exceeds the decompressed size limit of " INT64_FORMAT " bytes",
						reader->object_name, reader->max_decompressed_bytes),
				 errdetail("Reading stopped when " INT64_FORMAT " bytes of gzip data had inflated to " INT64_FORMAT " bytes.",
						   reader->compressed_bytes, reader->decompressed_bytes),
				 errhint("The object is recorded as failed in medallion.ingested_files. If it is genuine, raise the bronze option \"max_decompressed_bytes\" (at most medallion.decompressed_bytes_cap) and call medallion.retry_object().")));

	if (reader->decompressed_bytes > RATIO_JUDGED_AFTER &&
		(double) reader->decompressed_bytes >
		(double) reader->max_expansion_ratio * Max(reader->compressed_bytes, 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("object \"%s\" exceeds the expansion ratio limit of %d",
						reader->object_name, reader->max_expansion_ratio),
				 errdetail("Reading stopped when " INT64_FORMAT " bytes of gzip data had inflated to " INT64_FORMAT " bytes, a ratio of %.0f.",
						   reader->compressed_bytes, reader->decompressed_bytes,
						   (double) reader->decompressed_bytes /
						   Max(reader->compressed_bytes, 1)),
				 errhint("The object is recorded as failed in medallion.ingested_files. If it is genuine, raise the bronze option \"max_expansion_ratio\" and call medallion.retry_object().")));
}

RecordReader *
RecordReaderOpen(int fd, RecordFormat format, const char *object_name,
				 int64 max_record_bytes, int64 max_decompressed_bytes,
				 int max_expansion_ratio)
{
	RecordReader *reader = palloc0(sizeof(RecordReader));
	unsigned char magic[2];
	ssize_t		magic_length;

	reader->fd = fd;
	reader->format = format;
	reader->object_name = pstrdup(object_name);
	reader->max_record_bytes = max_record_bytes;
	reader->max_decompressed_bytes = max_decompressed_bytes;
	reader->max_expansion_ratio = max_expansion_ratio;
	reader->context = CurrentMemoryContext;
	reader->raw = palloc(RAW_CHUNK_SIZE);
	reader->buffer = palloc(DECODED_CHUNK_SIZE);
	initStringInfo(&reader->pending);

	magic_length = pread(fd, magic, sizeof(magic), 0);
	if (magic_length < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read downloaded object \"%s\": %m",
						object_name)));
	if (lseek(fd, 0, SEEK_SET) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in downloaded object \"%s\": %m",
						object_name)));
	if (magic_length == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
	{
		reader->gzip = true;
		reader->zstream.zalloc = reader_zalloc;
		reader->zstream.zfree = reader_zfree;
		reader->zstream.opaque = reader;
		if (inflateInit2(&reader->zstream, 15 + 16) != Z_OK)
			report_corrupt(reader, "The gzip decompressor could not start.");
		reader->zstream_ready = true;
	}
	return reader;
}

void
RecordReaderClose(RecordReader *reader)
{
	if (reader->zstream_ready)
		inflateEnd(&reader->zstream);
	reader->zstream_ready = false;
}

/* Read raw bytes from the spool file; returns 0 at its end. */
static ssize_t
read_raw(RecordReader *reader, char *destination, size_t size)
{
	ssize_t		length;

	CHECK_FOR_INTERRUPTS();
	length = read(reader->fd, destination, size);
	if (length < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read downloaded object \"%s\": %m",
						reader->object_name)));
	return length;
}

/* Inflate the next chunk of decoded bytes; returns 0 at the end. */
static size_t
inflate_chunk(RecordReader *reader)
{
	z_stream   *stream = &reader->zstream;

	for (;;)
	{
		int			status;
		size_t		produced;
		uInt		available_before;

		if (stream->avail_in == 0 && !reader->raw_eof)
		{
			ssize_t		length = read_raw(reader, reader->raw, RAW_CHUNK_SIZE);

			if (length == 0)
				reader->raw_eof = true;
			stream->next_in = (Bytef *) reader->raw;
			stream->avail_in = (uInt) length;
		}

		if (reader->member_ended)
		{
			if (stream->avail_in == 0 && reader->raw_eof)
				return 0;
			if (stream->avail_in == 0)
				continue;
			/* another gzip member follows */
			if (inflateReset(stream) != Z_OK)
				report_corrupt(reader, "The gzip decompressor could not restart.");
			reader->member_ended = false;
		}

		stream->next_out = (Bytef *) reader->buffer;
		stream->avail_out = DECODED_CHUNK_SIZE;
		available_before = stream->avail_in;
		status = inflate(stream, Z_NO_FLUSH);
		produced = DECODED_CHUNK_SIZE - stream->avail_out;
		reader->compressed_bytes += available_before - stream->avail_in;
		reader->decompressed_bytes += produced;

		if (status == Z_STREAM_END)
			reader->member_ended = true;
		else if (status == Z_BUF_ERROR || (status == Z_OK && produced == 0))
		{
			if (reader->raw_eof && stream->avail_in == 0 && produced == 0)
				report_corrupt(reader, "The gzip data is truncated.");
		}
		else if (status != Z_OK)
			report_corrupt(reader,
						   psprintf("The gzip data is corrupt: %s.",
									stream->msg ? stream->msg : "unknown error"));
		if (produced > 0)
		{
			check_expansion(reader);
			return produced;
		}
	}
}

/*
 * Make sure undecoded bytes are available in buffer; returns false at the
 * end of the object.
 */
static bool
fill_buffer(RecordReader *reader)
{
	size_t		length;

	if (reader->buffer_position < reader->buffer_length)
		return true;
	if (reader->decoded_eof)
		return false;

	if (reader->gzip)
		length = inflate_chunk(reader);
	else
		length = (size_t) read_raw(reader, reader->buffer, DECODED_CHUNK_SIZE);

	reader->buffer_length = length;
	reader->buffer_position = 0;
	if (length == 0)
	{
		reader->decoded_eof = true;
		return false;
	}

	if (!reader->started)
	{
		reader->started = true;
		if (memchr(reader->buffer, '\0', length) != NULL)
			report_corrupt(reader, "The object is not text: it contains NUL bytes.");
		/* a UTF-8 byte order mark */
		if (length >= 3 && memcmp(reader->buffer, "\xEF\xBB\xBF", 3) == 0)
			reader->buffer_position = 3;
	}
	return reader->buffer_position < reader->buffer_length;
}

/* Add bytes to the pending record, keeping at most max_record_bytes. */
static void
pending_append(RecordReader *reader, const char *bytes, size_t length)
{
	int64		room = reader->max_record_bytes - reader->pending.len;

	reader->pending_total += length;
	if (room > 0)
		appendBinaryStringInfo(&reader->pending, bytes,
							   (int) Min((int64) length, room));
}

/* Forget the raw text of the record being read. */
static void
pending_reset(RecordReader *reader)
{
	resetStringInfo(&reader->pending);
	reader->pending_total = 0;
}

/* Is the text only whitespace (a blank line between records)? */
static bool
is_blank(const char *text, size_t length)
{
	size_t		position;

	for (position = 0; position < length; position++)
		if (text[position] != ' ' && text[position] != '\t' &&
			text[position] != '\r' && text[position] != '\n')
			return false;
	return true;
}

/*
 * Turn the text of one JSON record into a Record: parsed, or rescued.
 * total_length is the record's full size, which exceeds length when only
 * part of it was kept.
 */
static void
make_json_record(const char *text, size_t length, int64 total_length,
				 int64 max_record_bytes, Record *record)
{
	record->data = NULL;
	record->rescued = NULL;

	if (total_length > max_record_bytes)
	{
		char	   *kept = JsonbBuilderSanitizeText(text,
												   (int) Min(length, OVERSIZE_KEPT_BYTES));

		record->rescued = psprintf("%s... [record of " INT64_FORMAT
								   " bytes truncated: larger than the "
								   INT64_FORMAT "-byte limit]",
								   kept, total_length, max_record_bytes);
		return;
	}
	record->data = JsonbBuildFromText(text, (int) length);
	if (record->data == NULL)
		record->rescued = JsonbBuilderSanitizeText(text, (int) length);
}

/* The next line of a newline-delimited JSON object. */
static bool
next_json_line(RecordReader *reader, Record *record)
{
	for (;;)
	{
		const char *start;
		const char *newline;
		size_t		available;

		if (!fill_buffer(reader))
		{
			if (reader->pending_total > 0 &&
				!is_blank(reader->pending.data, reader->pending.len))
			{
				make_json_record(reader->pending.data, reader->pending.len,
								 reader->pending_total,
								 reader->max_record_bytes, record);
				pending_reset(reader);
				return true;
			}
			pending_reset(reader);
			return false;
		}

		start = reader->buffer + reader->buffer_position;
		available = reader->buffer_length - reader->buffer_position;
		newline = memchr(start, '\n', available);
		if (newline == NULL)
		{
			pending_append(reader, start, available);
			reader->buffer_position = reader->buffer_length;
			continue;
		}

		reader->buffer_position += (newline - start) + 1;
		if (reader->pending_total == 0)
		{
			size_t		length = newline - start;

			/* the whole line is in the buffer: no copy */
			if (length > 0 && start[length - 1] == '\r')
				length--;
			if (is_blank(start, length))
				continue;
			make_json_record(start, length, length,
							 reader->max_record_bytes, record);
			return true;
		}

		pending_append(reader, start, newline - start);
		if (reader->pending.len > 0 &&
			reader->pending.data[reader->pending.len - 1] == '\r')
			reader->pending.data[--reader->pending.len] = '\0';
		if (is_blank(reader->pending.data, reader->pending.len))
		{
			pending_reset(reader);
			continue;
		}
		make_json_record(reader->pending.data, reader->pending.len,
						 reader->pending_total, reader->max_record_bytes,
						 record);
		pending_reset(reader);
		return true;
	}
}

/*
 * The next element of a top-level JSON array.  A scanner that knows
 * strings and nesting cuts the elements out; each is then parsed on its
 * own, so that one bad element is rescued and the others are kept.
 */
static bool
next_json_array_element(RecordReader *reader, Record *record)
{
	int			depth = 0;		/* nesting inside the current element */
	bool		in_string = false;
	bool		escaped = false;
	bool		in_element = false;

	for (;;)
	{
		char		character;

		if (!fill_buffer(reader))
		{
			if (in_element || (reader->pending_total > 0 &&
							   !is_blank(reader->pending.data,
										 reader->pending.len)))
			{
				/* a truncated element (or trailing text) is rescued */
				make_json_record(reader->pending.data, reader->pending.len,
								 reader->pending_total,
								 reader->max_record_bytes, record);
				if (record->data != NULL && in_element)
				{
					/* complete in itself, but the array was not closed */
					record->data = NULL;
					record->rescued = JsonbBuilderSanitizeText(reader->pending.data,
															   reader->pending.len);
				}
				pending_reset(reader);
				return true;
			}
			pending_reset(reader);
			return false;
		}
		character = reader->buffer[reader->buffer_position++];

		if (reader->array_depth == 0)
		{
			/* outside any array: expect '[' of the next array */
			if (character == '[')
				reader->array_depth = 1;
			else if (character == '\n')
			{
				if (reader->pending_total > 0 &&
					!is_blank(reader->pending.data, reader->pending.len))
				{
					make_json_record(reader->pending.data, reader->pending.len,
									 reader->pending_total,
									 reader->max_record_bytes, record);
					pending_reset(reader);
					return true;
				}
				pending_reset(reader);
			}
			else if (!(character == ' ' || character == '\t' || character == '\r') ||
					 reader->pending_total > 0)
				pending_append(reader, &character, 1);
			continue;
		}

		if (!in_element)
		{
			if (character == ' ' || character == '\t' || character == '\r' ||
				character == '\n' || character == ',')
				continue;
			if (character == ']')
			{
				reader->array_depth = 0;
				continue;
			}
			in_element = true;
		}

		if (in_string)
		{
			if (escaped)
				escaped = false;
			else if (character == '\\')
				escaped = true;
			else if (character == '"')
				in_string = false;
			pending_append(reader, &character, 1);
			continue;
		}

		if (depth == 0 && (character == ',' || character == ']'))
		{
			if (character == ']')
				reader->array_depth = 0;
			make_json_record(reader->pending.data, reader->pending.len,
							 reader->pending_total, reader->max_record_bytes,
							 record);
			pending_reset(reader);
			return true;
		}

		if (character == '"')
			in_string = true;
		else if (character == '{' || character == '[')
			depth++;
		else if ((character == '}' || character == ']') && depth > 0)
			depth--;
		pending_append(reader, &character, 1);
	}
}

/* A field of a CSV row. */
typedef struct CsvField
{
	int			start;			/* offset into the decoded field text */
	int			length;
	bool		quoted;
} CsvField;

/*
 * Read one CSV row into fields (offsets into row text).  Returns false at
 * the end of the object.  The row's raw text is left in reader->pending.
 */

static bool
next_csv_row(RecordReader *reader, StringInfo field_text, CsvField **fields,
			 int *field_count)
{
	int			capacity = 16;
	bool		in_quotes = false;
	bool		quote_pending = false;	/* saw '"' inside quotes */
	bool		field_quoted = false;
	int			field_start = 0;
	bool		any = false;

	resetStringInfo(field_text);
	pending_reset(reader);
	*fields = palloc(sizeof(CsvField) * capacity);
	*field_count = 0;

	for (;;)
	{
		char		character;
		bool		end_of_row = false;

		if (!fill_buffer(reader))
		{
			if (!any)
				return false;
			end_of_row = true;
			character = '\n';
		}
		else
		{
			character = reader->buffer[reader->buffer_position++];
			any = true;
			if (character != '\n')
				pending_append(reader, &character, 1);
		}

		if (in_quotes && !end_of_row)
		{
			if (quote_pending)
			{
				quote_pending = false;
				if (character == '"')
				{
					appendStringInfoChar(field_text, '"');
					continue;
				}
				in_quotes = false;
				/* fall through: the character after the closing quote */
			}
			else if (character == '"')
			{
				quote_pending = true;
				continue;
			}
			else
			{
				appendStringInfoChar(field_text, character);
				continue;
			}
		}

		if (character == ',' || character == '\n' || end_of_row)
		{
			int			length = field_text->len - field_start;

			/* an unquoted field's CR before LF is the line end, not data */
			if (character == '\n' && !field_quoted && length > 0 &&
				field_text->data[field_text->len - 1] == '\r')
				length--;
			if (*field_count >= capacity)
			{
				capacity *= 2;
				*fields = repalloc(*fields, sizeof(CsvField) * capacity);
			}
			(*fields)[*field_count].start = field_start;
			(*fields)[*field_count].length = length;
			(*fields)[*field_count].quoted = field_quoted;
			(*field_count)++;
			field_start = field_text->len;
			field_quoted = false;
			if (character == '\n' || end_of_row)
			{
				/* a blank line is no row */
				if (*field_count == 1 && length == 0 && !(*fields)[0].quoted)
				{
					*field_count = 0;
					field_start = 0;
					resetStringInfo(field_text);
					pending_reset(reader);
					if (end_of_row)
						return false;
					continue;
				}
				return true;
			}
			continue;
		}

		if (character == '"' && field_text->len == field_start && !field_quoted)
		{
			in_quotes = true;
			field_quoted = true;
			continue;
		}
		appendStringInfoChar(field_text, character);
	}
}

/*
 * The next CSV record: the first row is the header (its names become the
 * keys, "_c<n>" for an empty one); each later row becomes an object of text
 * values, an empty unquoted field being null.  A row with the wrong number
 * of fields or invalid text is rescued.  Returns false at the end.
 */
static bool
next_csv_record(RecordReader *reader, Record *record)
{
	StringInfoData field_text;
	CsvField   *fields;
	int			field_count;
	int			index;

	initStringInfo(&field_text);
	record->data = NULL;
	record->rescued = NULL;

	if (!reader->header_read)
	{
		MemoryContext old;

		if (!next_csv_row(reader, &field_text, &fields, &field_count))
			return false;
		old = MemoryContextSwitchTo(reader->context);
		reader->header = palloc(sizeof(char *) * field_count);
		reader->header_count = field_count;
		for (index = 0; index < field_count; index++)
		{
			char	   *name = JsonbBuilderSanitizeText(field_text.data + fields[index].start,
														fields[index].length);

			if (name[0] == '\0')
				name = psprintf("_c%d", index);
			reader->header[index] = name;
		}
		MemoryContextSwitchTo(old);
		reader->header_read = true;
	}

	if (!next_csv_row(reader, &field_text, &fields, &field_count))
		return false;

	if (field_count != reader->header_count ||
		!pg_verify_mbstr(PG_UTF8, field_text.data, field_text.len, true) ||
		memchr(field_text.data, '\0', field_text.len) != NULL)
	{
		record->rescued = JsonbBuilderSanitizeText(reader->pending.data,
												   reader->pending.len);
		return true;
	}

	{
		JsonbParseState *state = NULL;
		JsonbValue *result;

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		for (index = 0; index < field_count; index++)
		{
			JsonbValue	key;
			JsonbValue	value;

			key.type = jbvString;
			key.val.string.val = reader->header[index];
			key.val.string.len = strlen(reader->header[index]);
			pushJsonbValue(&state, WJB_KEY, &key);
			if (fields[index].length == 0 && !fields[index].quoted)
				value.type = jbvNull;
			else
			{
				value.type = jbvString;
				value.val.string.val = field_text.data + fields[index].start;
				value.val.string.len = fields[index].length;
			}
			pushJsonbValue(&state, WJB_VALUE, &value);
		}
		result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		record->data = JsonbValueToJsonb(result);
	}
	return true;
}

bool
RecordReaderNext(RecordReader *reader, Record *record)
{
	record->data = NULL;
	record->rescued = NULL;

	if (reader->format == RECORD_FORMAT_CSV)
		return next_csv_record(reader, record);

	if (reader->layout == LAYOUT_UNKNOWN)
	{
		/* the first non-blank byte tells lines from an array */
		reader->layout = LAYOUT_LINES;
		while (fill_buffer(reader))
		{
			char		character = reader->buffer[reader->buffer_position];

			if (character == ' ' || character == '\t' || character == '\r' ||
				character == '\n')
			{
				reader->buffer_position++;
				continue;
			}
			if (character == '[')
				reader->layout = LAYOUT_ARRAY;
			break;
		}
	}
	if (reader->layout == LAYOUT_ARRAY)
		return next_json_array_element(reader, record);
	return next_json_line(reader, record);
}
