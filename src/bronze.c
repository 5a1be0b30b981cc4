/*-------------------------------------------------------------------------
 *
 * bronze.c
 *	  Bronze flows: create_bronze, and ingesting the new objects of an S3
 *	  prefix exactly once.
 *
 * Exactly once: an object's rows and its row in the ledger
 * (medallion.ingested_file, keyed on flow, path and ETag) commit in one
 * transaction.  A crash at any moment leaves either both or neither, and
 * the next update ingests whatever is not in the ledger.
 *
 * No transaction is open during network I/O: the listing happens outside
 * any transaction, and each object is first downloaded into an anonymous
 * spool file; only then does a short transaction read the spool file and
 * insert its records.  Memory stays bounded: the spool file is read in
 * chunks and records are inserted in batches whose memory is reset.
 *
 * A record that does not parse lands with data NULL and its text in
 * _rescued_data.  An object that cannot be read at all (corrupt gzip,
 * binary content) or that inflates beyond its limits (a decompression
 * bomb) is recorded in the ledger as failed, with an error event, and the
 * objects after it are still ingested; skip_object and retry_object let a
 * DBA clear it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "bronze.h"
#include "bronze_internal.h"
#include "bulk_insert.h"
#include "catalog.h"
#include "endpoint.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "guc.h"
#include "record_reader.h"
#include "s3_client.h"
#include "secret.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_bronze);
PG_FUNCTION_INFO_V1(medallion_skip_object);
PG_FUNCTION_INFO_V1(medallion_retry_object);

/* columns of a bronze table, in order */
#define BRONZE_COLUMN_COUNT 8

/* records inserted between two resets of the record memory */
#define RECORDS_PER_BATCH 1000

static const char *const known_options[] = {
	"path_glob", "max_files_per_batch", "max_bytes_per_batch",
	"include_existing_files", "modified_after", "allow_overwrites",
	"max_parallel_objects", "incremental_listing", "full_listing_interval",
	"max_record_bytes", "max_decompressed_bytes", "max_expansion_ratio",
	"max_batches_per_update", NULL
};

static void
option_type_error(const char *option, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for bronze option \"%s\"", option),
			 errdetail("The value must be %s.", expected)));
}

static int64
option_positive_integer(JsonbValue *value, const char *option)
{
	int64		result;

	if (value->type == jbvString)
	{
		char	   *text = pnstrdup(value->val.string.val, value->val.string.len);
		char	   *end;

		errno = 0;
		result = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0' || end == text)
			option_type_error(option, "a positive integer");
	}
	else if (value->type == jbvNumeric)
	{
		char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
															   NumericGetDatum(value->val.numeric)));
		char	   *end;

		errno = 0;
		result = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0')
			option_type_error(option, "a positive integer");
	}
	else
	{
		option_type_error(option, "a positive integer");
		result = 0;
	}
	if (result <= 0)
		option_type_error(option, "a positive integer");
	return result;
}

static bool
option_boolean(JsonbValue *value, const char *option)
{
	if (value->type == jbvBool)
		return value->val.boolean;
	if (value->type == jbvString)
	{
		bool		result;
		char	   *text = pnstrdup(value->val.string.val, value->val.string.len);

		if (parse_bool(text, &result))
			return result;
	}
	option_type_error(option, "a boolean");
	return false;
}

static char *
option_string(JsonbValue *value, const char *option)
{
	if (value->type != jbvString)
		option_type_error(option, "a string");
	return pnstrdup(value->val.string.val, value->val.string.len);
}

/*
 * The server-wide cap on max_decompressed_bytes, in bytes: checked when a
 * flow is created, and applied at ingestion, so that lowering it also
 * limits the flows created before.
 */
static int64
decompressed_bytes_cap(void)
{
	return (int64) medallion_decompressed_bytes_cap_kb * 1024;
}

/*
 * Parse and check the options object.  Unknown options are an error, so
 * that a misspelt option is not silently ignored.
 */
static void
parse_options(Jsonb *options_jsonb, BronzeOptions *options)
{
	JsonbIterator *iterator;
	JsonbValue	value;
	JsonbIteratorToken token;
	char	   *current_key = NULL;

	memset(options, 0, sizeof(BronzeOptions));
	options->max_files_per_batch = 1000;
	options->include_existing_files = true;
	options->max_parallel_objects = 1;
	options->full_listing_interval_ms = 60 * 60 * 1000;
	options->max_record_bytes = 128 * 1024 * 1024;
	options->max_decompressed_bytes = (int64) 1024 * 1024 * 1024;
	options->max_expansion_ratio = 100;

	if (options_jsonb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options_jsonb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bronze options must be a JSON object")));

	iterator = JsonbIteratorInit(&options_jsonb->root);
	while ((token = JsonbIteratorNext(&iterator, &value, true)) != WJB_DONE)
	{
		const char *const *known;

		if (token == WJB_KEY)
		{
			current_key = pnstrdup(value.val.string.val, value.val.string.len);
			for (known = known_options; *known != NULL; known++)
				if (strcmp(*known, current_key) == 0)
					break;
			if (*known == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized bronze option \"%s\"", current_key),
						 errhint("Valid options are path_glob, max_files_per_batch, max_bytes_per_batch, include_existing_files, modified_after, allow_overwrites, max_parallel_objects, incremental_listing, full_listing_interval, max_record_bytes, max_decompressed_bytes, max_expansion_ratio and max_batches_per_update.")));
			continue;
		}
		if (token != WJB_VALUE || current_key == NULL)
			continue;

		if (strcmp(current_key, "path_glob") == 0)
			options->path_glob = option_string(&value, current_key);
		else if (strcmp(current_key, "max_files_per_batch") == 0)
			options->max_files_per_batch = option_positive_integer(&value, current_key);
		else if (strcmp(current_key, "max_bytes_per_batch") == 0)
			options->max_bytes_per_batch = option_positive_integer(&value, current_key);
		else if (strcmp(current_key, "max_batches_per_update") == 0)
			options->max_batches_per_update = option_positive_integer(&value, current_key);
		else if (strcmp(current_key, "include_existing_files") == 0)
			options->include_existing_files = option_boolean(&value, current_key);
		else if (strcmp(current_key, "allow_overwrites") == 0)
			options->allow_overwrites = option_boolean(&value, current_key);
		else if (strcmp(current_key, "incremental_listing") == 0)
			options->incremental_listing = option_boolean(&value, current_key);
		else if (strcmp(current_key, "max_parallel_objects") == 0)
		{
			int64		parallel = option_positive_integer(&value, current_key);

			if (parallel > 16)
				option_type_error(current_key, "an integer between 1 and 16");
			options->max_parallel_objects = (int) parallel;
		}
		else if (strcmp(current_key, "max_record_bytes") == 0)
		{
			options->max_record_bytes = option_positive_integer(&value, current_key);
			if (options->max_record_bytes > 200 * 1024 * 1024)
				option_type_error(current_key, "at most 209715200 (200 MB)");
		}
		else if (strcmp(current_key, "max_decompressed_bytes") == 0)
			options->max_decompressed_bytes = option_positive_integer(&value, current_key);
		else if (strcmp(current_key, "max_expansion_ratio") == 0)
		{
			int64		ratio = option_positive_integer(&value, current_key);

			if (ratio > 1000000)
				option_type_error(current_key, "an integer between 1 and 1000000");
			options->max_expansion_ratio = (int) ratio;
		}
		else if (strcmp(current_key, "modified_after") == 0)
		{
			char	   *text = option_string(&value, current_key);

			options->has_modified_after = true;
			options->modified_after =
				DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
														CStringGetDatum(text),
														ObjectIdGetDatum(InvalidOid),
														Int32GetDatum(-1)));
		}
		else if (strcmp(current_key, "full_listing_interval") == 0)
		{
			char	   *text = option_string(&value, current_key);
			Interval   *interval;

			interval = DatumGetIntervalP(DirectFunctionCall3(interval_in,
															 CStringGetDatum(text),
															 ObjectIdGetDatum(InvalidOid),
															 Int32GetDatum(-1)));
			options->full_listing_interval_ms =
				(interval->time + (int64) interval->day * USECS_PER_DAY +
				 (int64) interval->month * 30 * USECS_PER_DAY) / 1000;
			if (options->full_listing_interval_ms <= 0)
				option_type_error(current_key, "a positive interval");
		}
	}
	if (options->path_glob != NULL && options->path_glob[0] == '\0')
		option_type_error("path_glob", "a non-empty glob pattern");
}

static RecordFormat
parse_format(const char *format)
{
	if (strcmp(format, "json") == 0)
		return RECORD_FORMAT_JSON;
	if (strcmp(format, "csv") == 0)
		return RECORD_FORMAT_CSV;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid bronze format \"%s\"", format),
			 errhint("Use 'json' (newline-delimited JSON or a JSON array, optionally gzip-compressed) or 'csv' (with a header row).")));
	return RECORD_FORMAT_JSON;
}

void
BronzeLoadDefinition(FlowDesc *flow, BronzeDefinition *definition)
{
	char	   *format;

	definition->bucket = FlowDefinitionString(flow, "bucket", true);
	definition->prefix = FlowDefinitionString(flow, "prefix", false);
	definition->secret_name = FlowDefinitionString(flow, "secret_name", false);
	definition->region = FlowDefinitionString(flow, "region", false);
	definition->endpoint = FlowDefinitionString(flow, "endpoint", false);
	format = FlowDefinitionString(flow, "format", false);
	definition->format = parse_format(format ? format : "json");
	parse_options(FlowDefinitionObject(flow, "options"), &definition->options);
	if (definition->prefix == NULL)
		definition->prefix = "";
	if (definition->region == NULL)
		definition->region = "us-east-1";
}

/* ---------- create_bronze ---------- */

static char *
text_argument_or_null(FunctionCallInfo fcinfo, int argument)
{
	if (PG_ARGISNULL(argument))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argument));
}

/*
 * The arguments of create_bronze that are not the target's name, checked:
 * everything an update needs to reach the objects and read them.
 */
typedef struct BronzeArguments
{
	char	   *source_url;
	char	   *bucket;
	char	   *prefix;
	char	   *secret_name;
	char	   *region;
	char	   *endpoint;
	char	   *format;
	Jsonb	   *options_jsonb;
	BronzeOptions options;
} BronzeArguments;

/* Check the arguments as the caller: endpoint, secret, options, encoding. */
static void
bronze_check_arguments(BronzeArguments *arguments)
{
	if (arguments->source_url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source_url must not be null")));
	S3ParseUrl(arguments->source_url, &arguments->bucket, &arguments->prefix);
	if (arguments->region == NULL || arguments->region[0] == '\0')
		arguments->region = "us-east-1";
	if (arguments->format == NULL)
		arguments->format = "json";
	(void) parse_format(arguments->format);
	parse_options(arguments->options_jsonb, &arguments->options);
	if (arguments->options.max_decompressed_bytes > decompressed_bytes_cap())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for bronze option \"max_decompressed_bytes\""),
				 errdetail("The value must be at most " INT64_FORMAT " bytes (medallion.decompressed_bytes_cap).",
						   decompressed_bytes_cap()),
				 errhint("A superuser can raise medallion.decompressed_bytes_cap.")));
	if (arguments->endpoint != NULL)
		EndpointCheckAllowed(arguments->endpoint, GetUserId());
	if (arguments->secret_name != NULL)
		SecretCheckUsable(arguments->secret_name, GetUserId());
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("bronze flows require a database with UTF8 encoding"),
				 errdetail("The database encoding is %s.",
						   GetDatabaseEncodingName())));
}

/* The bronze table: the record, rescued data and the object's metadata. */
static char *
bronze_table_sql(const char *target_name)
{
	return psprintf("CREATE TABLE %s ("
					"_row_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
					"data jsonb, "
					"_rescued_data text, "
					"_file_path text NOT NULL, "
					"_file_name text NOT NULL, "
					"_file_size bigint NOT NULL, "
					"_file_modification_time timestamptz, "
					"_ingested_at timestamptz NOT NULL DEFAULT pg_catalog.now())",
					target_name);
}

static Jsonb *
bronze_definition_build(const BronzeArguments *arguments)
{
	FlowDefinitionBuilder builder;

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutString(&builder, "bucket", arguments->bucket);
	FlowDefinitionPutString(&builder, "prefix", arguments->prefix);
	FlowDefinitionPutString(&builder, "region", arguments->region);
	FlowDefinitionPutString(&builder, "format", arguments->format);
	if (arguments->secret_name != NULL)
		FlowDefinitionPutString(&builder, "secret_name", arguments->secret_name);
	if (arguments->endpoint != NULL)
		FlowDefinitionPutString(&builder, "endpoint", arguments->endpoint);
	FlowDefinitionPutJson(&builder, "options",
						  arguments->options_jsonb ?
						  JsonbToCString(NULL, &arguments->options_jsonb->root,
										 VARSIZE(arguments->options_jsonb)) :
						  "{}");
	return FlowDefinitionEnd(&builder);
}

/*
 * create_bronze(pipeline_name, target_table, source_url, secret_name,
 * region, endpoint, format, options): the bronze table, owned by the caller,
 * and the flow that fills it.
 */
Datum
medallion_create_bronze(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = text_argument_or_null(fcinfo, 0);
	char	   *target_table = text_argument_or_null(fcinfo, 1);
	BronzeArguments arguments;
	FlowCreate	create;

	memset(&arguments, 0, sizeof(arguments));
	arguments.source_url = text_argument_or_null(fcinfo, 2);
	arguments.secret_name = text_argument_or_null(fcinfo, 3);
	arguments.region = text_argument_or_null(fcinfo, 4);
	arguments.endpoint = text_argument_or_null(fcinfo, 5);
	arguments.format = text_argument_or_null(fcinfo, 6);
	arguments.options_jsonb = PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7);
	if (target_table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target_table must not be null")));

	FlowCreateBegin(&create, pipeline_name, target_table);
	bronze_check_arguments(&arguments);
	FlowCreateTable(&create, bronze_table_sql(create.target_name));
	FlowCreateComment(create.target_name,
					  psprintf("medallion bronze table of pipeline %s, fed from %s",
							   create.pipeline->pipeline_name,
							   arguments.source_url));
	FlowCreateRegister(&create, FLOW_TYPE_BRONZE, InvalidOid,
					   arguments.source_url,
					   bronze_definition_build(&arguments));
	PG_RETURN_VOID();
}

/* ---------- ledger maintenance by the DBA ---------- */

/*
 * The flows of a pipeline that the path could belong to: bronze flows
 * whose bucket matches.  Returns the ledger rows changed.
 */
static int64
change_ledger(FunctionCallInfo fcinfo, bool skip)
{
	char	   *pipeline_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	PipelineDesc *pipeline = CatalogGetPipeline(pipeline_name, false);
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	int64		changed;

	CatalogCheckPipelineOwner(pipeline);
	if (strncmp(path, "s3://", 5) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid object path \"%s\"", path),
				 errhint("Use the path as shown in medallion.ingested_files, such as s3://bucket/key.")));

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = CStringGetTextDatum(path);
	SPI_connect();
	if (skip)
	{
		/* failed rows become skipped; an unknown path gets a skip marker */
		changed = (int64) SpiExecuteAsExtensionOwner(
													 "WITH flows AS ("
													 " SELECT flow_id FROM medallion.flow"
													 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
													 " AND flow_type OPERATOR(pg_catalog.=) 'bronze'"
													 " AND pg_catalog.starts_with($2, source)),"
													 " updated AS ("
													 " UPDATE medallion.ingested_file i SET status = 'skipped',"
													 " error = COALESCE(error, 'skipped by skip_object')"
													 " FROM flows WHERE i.flow_id OPERATOR(pg_catalog.=) flows.flow_id"
													 " AND i.path OPERATOR(pg_catalog.=) $2"
													 " AND i.status OPERATOR(pg_catalog.<>) 'ingested'"
													 " RETURNING i.flow_id),"
													 " inserted AS ("
													 " INSERT INTO medallion.ingested_file (flow_id, path, etag, size, status, error)"
													 " SELECT flow_id, $2, '*', 0, 'skipped', 'skipped by skip_object'"
													 " FROM flows WHERE NOT EXISTS (SELECT FROM medallion.ingested_file i"
													 " WHERE i.flow_id OPERATOR(pg_catalog.=) flows.flow_id"
													 " AND i.path OPERATOR(pg_catalog.=) $2)"
													 " RETURNING flow_id)"
													 " SELECT (SELECT pg_catalog.count(*) FROM updated)"
													 " OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM inserted)",
													 2, types, values, NULL, SPI_OK_SELECT);
		changed = SpiGetInt64(0, 1, NULL);
	}
	else
	{
		changed = (int64) SpiExecuteAsExtensionOwner(
													 "DELETE FROM medallion.ingested_file i"
													 " USING medallion.flow f"
													 " WHERE f.flow_id OPERATOR(pg_catalog.=) i.flow_id"
													 " AND f.pipeline_id OPERATOR(pg_catalog.=) $1"
													 " AND i.path OPERATOR(pg_catalog.=) $2"
													 " AND i.status OPERATOR(pg_catalog.<>) 'ingested'",
													 2, types, values, NULL, SPI_OK_DELETE);
	}
	SPI_finish();
	EventLogWrite(pipeline, 0, NULL, "user_action", "INFO",
				  psprintf("%s %s", skip ? "skip_object" : "retry_object", path),
				  NULL);
	return changed;
}

Datum
medallion_skip_object(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PG_RETURN_INT64(change_ledger(fcinfo, true));
}

Datum
medallion_retry_object(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PG_RETURN_INT64(change_ledger(fcinfo, false));
}

void
BronzeReset(FlowDesc *flow)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(flow->flow_id)};

	SPI_connect();
	SpiExecuteAsExtensionOwner("DELETE FROM medallion.ingested_file"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();
}

/* ---------- listing ---------- */

typedef struct ListingState
{
	BronzeDefinition *definition;
	List	   *objects;		/* of Candidate */
	char	   *max_key;
	/* how to list, decided from the flow's state */
	bool		first_run;
	bool		full_listing;
	char	   *start_after;
	char	   *last_full_listing;
	TimestampTz now;
} ListingState;

static const char *
file_name_of(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash ? slash + 1 : key;
}

static bool
collect_object(const S3Object *object, void *arg)
{
	ListingState *state = arg;
	BronzeOptions *options = &state->definition->options;
	const char *relative = object->key + strlen(state->definition->prefix);
	Candidate  *candidate;

	if (state->max_key == NULL || strcmp(object->key, state->max_key) > 0)
		state->max_key = pstrdup(object->key);

	/* "directory" markers */
	if (object->key[0] != '\0' && object->key[strlen(object->key) - 1] == '/')
		return true;
	if (options->path_glob != NULL &&
		fnmatch(options->path_glob, relative, 0) != 0 &&
		fnmatch(options->path_glob, file_name_of(object->key), 0) != 0)
		return true;
	if (options->has_modified_after &&
		object->last_modified <= options->modified_after)
		return true;

	candidate = palloc0(sizeof(Candidate));
	candidate->object.key = pstrdup(object->key);
	candidate->object.etag = pstrdup(object->etag ? object->etag : "");
	candidate->object.size = object->size;
	candidate->object.last_modified = object->last_modified;
	candidate->path = psprintf("s3://%s/%s", state->definition->bucket,
							   object->key);
	state->objects = lappend(state->objects, candidate);
	return true;
}

/*
 * Drop from the candidates every object the ledger already has: any
 * version of the path, or with allow_overwrites only the same ETag (a
 * skip marker, ETag "*", stands for every version).  One query, whatever
 * the number of candidates; runs in the caller's transaction.
 */
static List *
remove_known_objects(FlowDesc *flow, BronzeDefinition *definition,
					 List *candidates)
{
	Datum	   *paths;
	Datum	   *etags;
	ListCell   *cell;
	int			index = 0;
	Oid			types[4] = {INT4OID, TEXTARRAYOID, TEXTARRAYOID, BOOLOID};
	Datum		values[4];
	List	   *result = NIL;
	uint64		row;
	int		   *new_positions;
	uint64		new_count;

	if (candidates == NIL)
		return NIL;

	paths = palloc(sizeof(Datum) * list_length(candidates));
	etags = palloc(sizeof(Datum) * list_length(candidates));
	foreach(cell, candidates)
	{
		Candidate  *candidate = lfirst(cell);

		paths[index] = CStringGetTextDatum(candidate->path);
		etags[index] = CStringGetTextDatum(candidate->object.etag);
		index++;
	}
	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = PointerGetDatum(construct_array(paths, index, TEXTOID, -1,
												false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(etags, index, TEXTOID, -1,
												false, TYPALIGN_INT));
	values[3] = BoolGetDatum(definition->options.allow_overwrites);

	/* allocated before SPI_connect: it must outlive SPI_finish */
	new_positions = palloc(sizeof(int) * (list_length(candidates) + 1));
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT c.position::pg_catalog.int4"
							   " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) WITH ORDINALITY"
							   " AS c(path, etag, position)"
							   " WHERE NOT EXISTS (SELECT FROM medallion.ingested_file i"
							   " WHERE i.flow_id OPERATOR(pg_catalog.=) $1"
							   " AND i.path OPERATOR(pg_catalog.=) c.path"
							   " AND (NOT $4 OR i.etag OPERATOR(pg_catalog.=) c.etag"
							   " OR i.etag OPERATOR(pg_catalog.=) '*'))"
							   " ORDER BY c.position",
							   4, types, values, NULL, SPI_OK_SELECT);
	new_count = SPI_processed;
	for (row = 0; row < new_count; row++)
		new_positions[row] = (int) SpiGetInt64(row, 1, NULL);
	SPI_finish();

	for (row = 0; row < new_count; row++)
		result = lappend(result, list_nth(candidates, new_positions[row] - 1));
	return result;
}

/* ---------- ingesting one object ---------- */

/* close a spool file when its memory context goes away, even on error */
static void
close_spool_file(void *arg)
{
	int		   *fd = arg;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * An anonymous file under the data directory's temporary directory: it is
 * unlinked at once, so nothing is left behind even after a crash.
 */
static int
open_spool_file(void)
{
	char		path[MAXPGPATH];
	int		   *fd = palloc(sizeof(int));
	MemoryContextCallback *callback = palloc(sizeof(MemoryContextCallback));

	(void) MakePGDirectory("base/" PG_TEMP_FILES_DIR);
	snprintf(path, sizeof(path), "base/%s/%smedallion.%d.XXXXXX",
			 PG_TEMP_FILES_DIR, PG_TEMP_FILE_PREFIX, MyProcPid);
	*fd = mkstemp(path);
	if (*fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create temporary file \"%s\": %m", path)));
	unlink(path);
	callback->func = close_spool_file;
	callback->arg = fd;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, callback);
	return *fd;
}

/*
 * Insert the records of the downloaded object and its ledger row, in the
 * current transaction.  Returns the counts through the arguments.
 */
static void
ingest_spooled_object(FlowContext *context, FlowDesc *flow,
					  BronzeDefinition *definition, Candidate *candidate,
					  int fd, MemoryContext object_context,
					  int64 *row_count, int64 *rescued_count)
{
	BulkInserter *inserter;
	RecordReader *reader;
	MemoryContext batch_context;
	MemoryContext old_context;
	OwnerContext owner;
	Datum		values[BRONZE_COLUMN_COUNT];
	bool		nulls[BRONZE_COLUMN_COUNT];
	Record		record;
	int			in_batch = 0;
	Oid			types[8] = {INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
	INT8OID, INT8OID, TEXTOID};
	Datum		ledger_values[8];
	char		ledger_nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	*row_count = 0;
	*rescued_count = 0;

	FlowEnterOwnerContext(context->pipeline, &owner);
	old_context = MemoryContextSwitchTo(object_context);
	inserter = BulkInsertBegin(flow->target_relid, true);
	if (RelationGetDescr(BulkInsertRelation(inserter))->natts != BRONZE_COLUMN_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("bronze table \"%s\" does not have the columns of a bronze table",
						flow->flow_name),
				 errhint("Do not alter bronze tables; recreate the flow instead.")));
	reader = RecordReaderOpen(fd, definition->format, candidate->path,
							  definition->options.max_record_bytes,
							  Min(definition->options.max_decompressed_bytes,
								  decompressed_bytes_cap()),
							  definition->options.max_expansion_ratio);
	batch_context = AllocSetContextCreate(object_context, "medallion records",
										  ALLOCSET_DEFAULT_SIZES);

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(0);
	values[3] = CStringGetTextDatum(candidate->path);
	values[4] = CStringGetTextDatum(file_name_of(candidate->object.key));
	values[5] = Int64GetDatum(candidate->object.size);
	values[6] = TimestampTzGetDatum(candidate->object.last_modified);
	nulls[6] = candidate->object.last_modified == 0;
	values[7] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	MemoryContextSwitchTo(batch_context);
	while (RecordReaderNext(reader, &record))
	{
		if (record.data != NULL)
		{
			values[1] = JsonbPGetDatum(record.data);
			nulls[1] = false;
			nulls[2] = true;
		}
		else
		{
			nulls[1] = true;
			values[2] = CStringGetTextDatum(record.rescued);
			nulls[2] = false;
			(*rescued_count)++;
		}
		BulkInsertRow(inserter, values, nulls);
		(*row_count)++;
		if (++in_batch >= RECORDS_PER_BATCH)
		{
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(batch_context);
			in_batch = 0;
		}
	}
	MemoryContextSwitchTo(object_context);
	RecordReaderClose(reader);
	BulkInsertEnd(inserter);
	MemoryContextDelete(batch_context);
	MemoryContextSwitchTo(old_context);
	FlowLeaveOwnerContext(&owner);

	ledger_values[0] = Int32GetDatum(flow->flow_id);
	ledger_values[1] = CStringGetTextDatum(candidate->path);
	ledger_values[2] = CStringGetTextDatum(candidate->object.etag);
	ledger_values[3] = Int64GetDatum(candidate->object.size);
	ledger_values[4] = TimestampTzGetDatum(candidate->object.last_modified);
	if (candidate->object.last_modified == 0)
		ledger_nulls[4] = 'n';
	ledger_values[5] = Int64GetDatum(*row_count);
	ledger_values[6] = Int64GetDatum(*rescued_count);
	ledger_nulls[7] = 'n';
	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.ingested_file"
							   " (flow_id, path, etag, size, last_modified,"
							   " row_count, rescued_count, error)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
							   8, types, ledger_values, ledger_nulls,
							   SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Record an object that could not be read as failed, so that it does not
 * block the objects after it, with an error event.
 */
static void
record_failed_object(FlowContext *context, FlowDesc *flow,
					 Candidate *candidate, const char *status,
					 ErrorData *error)
{
	Oid			types[6] = {INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
	TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	StringInfoData details;

	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(candidate->path);
	values[2] = CStringGetTextDatum(candidate->object.etag);
	values[3] = Int64GetDatum(candidate->object.size);
	values[4] = TimestampTzGetDatum(candidate->object.last_modified);
	if (candidate->object.last_modified == 0)
		nulls[4] = 'n';
	values[5] = CStringGetTextDatum(error->detail ?
									psprintf("%s: %s", error->message, error->detail) :
									error->message);

	initStringInfo(&details);
	appendStringInfoString(&details, "{\"path\": ");
	escape_json(&details, candidate->path);
	appendStringInfo(&details, ", \"sqlstate\": \"%s\"",
					 unpack_sql_state(error->sqlerrcode));
	if (error->detail)
	{
		appendStringInfoString(&details, ", \"detail\": ");
		escape_json(&details, error->detail);
	}
	appendStringInfoChar(&details, '}');

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.ingested_file"
							   " (flow_id, path, etag, size, last_modified, status, error)"
							   " VALUES ($1, $2, $3, $4, $5, 'failed', $6)"
							   " ON CONFLICT (flow_id, path, etag) DO UPDATE"
							   " SET status = 'failed', error = EXCLUDED.error",
							   6, types, values, nulls, SPI_OK_INSERT);
	SPI_finish();
	EventLogWrite(context->pipeline, context->update_id, flow->flow_name,
				  "error", "WARNING",
				  psprintf("object %s recorded as %s: %s", candidate->path,
						   status, error->message),
				  details.data);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Errors of an object's content, as opposed to errors of the flow.  A
 * limit exceeded while reading an object (a decompression bomb) is the
 * object's: retrying it would only exceed the limit again.
 */
static bool
error_is_about_object(ErrorData *error)
{
	return error->sqlerrcode == ERRCODE_DATA_CORRUPTED ||
		error->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
		ERRCODE_TO_CATEGORY(error->sqlerrcode) == ERRCODE_DATA_EXCEPTION;
}

/* ---------- the flow ---------- */

/*
 * Where retry_to_event_log collects retries.  The S3 client calls it in
 * whatever memory context is current: a listing page's context (deleted
 * when the listing ends) or the object context (reset after each object).
 * So the list is extended in the given context, one that outlives the
 * flow's objects: the caller writes the retries as events at the end.
 */
typedef struct RetryLog
{
	List	  **retries;
	MemoryContext context;
} RetryLog;

static void
retry_to_event_log(const char *operation, int attempt, long delay_ms,
				   const char *reason, void *arg)
{
	RetryLog   *log = arg;
	MemoryContext old_context = MemoryContextSwitchTo(log->context);

	*log->retries = lappend(*log->retries,
							psprintf("%s: attempt %d failed (%s); retrying in %ld ms",
									 operation, attempt, reason, delay_ms));
	MemoryContextSwitchTo(old_context);
	ereport(LOG,
			(errmsg("retrying S3 request: %s, attempt %d failed (%s); next attempt in %ld ms",
					operation, attempt, reason, delay_ms)));
}

/*
 * Remember what this update left for later (the objects of the listing
 * beyond the first "taken", or beyond the batch limits and the
 * max_batches_per_update cap), and how far the update is (objects done of
 * the listing's total), for the backlog, lag and progress columns of
 * medallion.pipelines.  Written only when there is a backlog or there was
 * one, so that idle updates write nothing.
 */
static void
record_backlog(FlowDesc *flow, List *candidates, int taken)
{
	int64		objects = list_length(candidates) - taken;
	int64		bytes = 0;
	TimestampTz oldest = 0;
	char	   *previous = FlowStateString(flow, "backlog_objects");
	ListCell   *cell;

	if (objects == 0 && flow->batches == 1 &&
		(previous == NULL || strcmp(previous, "0") == 0))
		return;
	for_each_from(cell, candidates, taken)
	{
		Candidate  *candidate = lfirst(cell);

		bytes += candidate->object.size;
		if (candidate->object.last_modified != 0 &&
			(oldest == 0 || candidate->object.last_modified < oldest))
			oldest = candidate->object.last_modified;
	}
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	CatalogMergeFlowState(flow->flow_id,
						  psprintf("{\"backlog_objects\": \"" INT64_FORMAT "\", "
								   "\"backlog_bytes\": \"" INT64_FORMAT "\", "
								   "\"backlog_oldest\": %s, "
								   "\"update_objects_done\": \"%d\", "
								   "\"update_objects_total\": \"%d\"}",
								   objects, bytes,
								   oldest != 0 ?
								   psprintf("\"%s\"", timestamptz_to_str(oldest)) :
								   "null",
								   taken, list_length(candidates)));
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * BronzeIngestCandidate: see bronze_internal.h.  The object is downloaded
 * with no transaction open; only then does a short transaction insert its
 * records and its ledger row.
 */
void
BronzeIngestCandidate(FlowContext *context, FlowDesc *flow,
					  BronzeDefinition *definition, S3Location *location,
					  S3Credentials *credentials, Candidate *candidate,
					  MemoryContext object_context, BronzeObjectStats *stats,
					  List **retries)
{
	MemoryContext caller_context = CurrentMemoryContext;
	int			fd;
	int64		row_count = 0;
	int64		rescued_count = 0;
	volatile bool downloaded = false;
	RetryLog	retry_log;

	MemoryContextSwitchTo(object_context);
	fd = open_spool_file();
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("medallion: downloading %s",
									candidate->path));
	retry_log.retries = retries;
	retry_log.context = caller_context;
	S3SetRetryCallback(retry_to_event_log, &retry_log);
	PG_TRY();
	{
		(void) S3GetObjectToFile(location, credentials,
								 candidate->object.key,
								 candidate->object.etag, fd);
		downloaded = true;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller_context);
		error = CopyErrorData();
		if (error->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
		{
			S3SetRetryCallback(NULL, NULL);
			PG_RE_THROW();
		}
		/* replaced since it was listed: the next listing sees it */
		FlushErrorState();
		*retries = lappend(*retries,
						   psprintf("%s changed after it was listed; it will be ingested by the next update",
									candidate->path));
		stats->backlog = true;
	}
	PG_END_TRY();
	S3SetRetryCallback(NULL, NULL);

	if (downloaded)
	{
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("medallion: ingesting %s",
										candidate->path));
		PG_TRY();
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			ingest_spooled_object(context, flow, definition, candidate,
								  fd, object_context, &row_count,
								  &rescued_count);
			PopActiveSnapshot();
			CommitTransactionCommand();
			stats->objects_ingested++;
			stats->rows += row_count;
			stats->changed = true;
		}
		PG_CATCH();
		{
			ErrorData  *error;

			MemoryContextSwitchTo(caller_context);
			error = CopyErrorData();
			if (!error_is_about_object(error))
				PG_RE_THROW();
			FlushErrorState();
			AbortCurrentTransaction();
			record_failed_object(context, flow, candidate, "failed", error);
			stats->objects_failed++;
			stats->changed = true;
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(caller_context);
}

/* A deep copy of a list of candidates, in memory context "context". */
static List *
copy_candidates(List *candidates, MemoryContext context)
{
	MemoryContext old_context = MemoryContextSwitchTo(context);
	List	   *copy = NIL;
	ListCell   *cell;

	foreach(cell, candidates)
	{
		Candidate  *candidate = lfirst(cell);
		Candidate  *duplicate = palloc(sizeof(Candidate));

		duplicate->object = candidate->object;
		duplicate->object.key = pstrdup(candidate->object.key);
		duplicate->object.etag = pstrdup(candidate->object.etag);
		duplicate->path = pstrdup(candidate->path);
		copy = lappend(copy, duplicate);
	}
	MemoryContextSwitchTo(old_context);
	return copy;
}

/*
 * List the bucket and keep the objects the ledger does not have (the
 * candidates, in key order); on the first update of the flow, apply
 * include_existing_files; with incremental_listing, remember where the
 * listing ended.  Called outside a transaction, by the first batch of an
 * update only: later batches take the rest of this listing.
 */
static List *
list_new_objects(FlowDesc *flow, BronzeDefinition *definition,
				 S3Location *location, S3Credentials *credentials,
				 ListingState *listing, FlowResult *result)
{
	MemoryContext flow_context = CurrentMemoryContext;
	List	   *candidates;
	ListCell   *cell;
	RetryLog	retry_log;

	/* list, with no transaction open */
	retry_log.retries = &result->retries;
	retry_log.context = flow_context;
	S3SetRetryCallback(retry_to_event_log, &retry_log);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("medallion: listing s3://%s/%s",
									definition->bucket, definition->prefix));
	PG_TRY();
	{
		S3ListObjects(location, credentials, definition->prefix, listing->start_after,
					  collect_object, listing);
	}
	PG_FINALLY();
	{
		S3SetRetryCallback(NULL, NULL);
	}
	PG_END_TRY();

	/* keep only what the ledger does not have */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(flow_context);
	candidates = remove_known_objects(flow, definition, listing->objects);

	if (listing->first_run)
	{
		StringInfoData state;

		/*
		 * include_existing_files = false: what exists at the first update
		 * is recorded as skipped, and only later objects are ingested.
		 */
		if (!definition->options.include_existing_files)
		{
			foreach(cell, candidates)
			{
				Candidate  *candidate = lfirst(cell);
				Oid			types[5] = {INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID};
				Datum		values[5];

				values[0] = Int32GetDatum(flow->flow_id);
				values[1] = CStringGetTextDatum(candidate->path);
				values[2] = CStringGetTextDatum(candidate->object.etag);
				values[3] = Int64GetDatum(candidate->object.size);
				values[4] = TimestampTzGetDatum(candidate->object.last_modified);
				SPI_connect();
				SpiExecuteAsExtensionOwner("INSERT INTO medallion.ingested_file"
										   " (flow_id, path, etag, size, last_modified, status, error)"
										   " VALUES ($1, $2, $3, $4, $5, 'skipped',"
										   " 'existed before the first update (include_existing_files = false)')",
										   5, types, values, NULL, SPI_OK_INSERT);
				SPI_finish();
			}
			candidates = NIL;
		}
		initStringInfo(&state);
		appendStringInfoString(&state, "{\"initialized\": \"true\"}");
		CatalogSetFlowState(flow->flow_id,
							DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															   CStringGetDatum(state.data))));
	}
	/* incremental listing: remember where the listing ended */
	if (definition->options.incremental_listing &&
		(listing->full_listing || (listing->max_key != NULL &&
						  (listing->start_after == NULL ||
						   strcmp(listing->max_key, listing->start_after) != 0))))
	{
		StringInfoData state;
		char	   *last_key = listing->max_key ? listing->max_key : listing->start_after;

		initStringInfo(&state);
		appendStringInfoString(&state, "{\"initialized\": \"true\"");
		if (last_key != NULL)
		{
			appendStringInfoString(&state, ", \"last_key\": ");
			escape_json(&state, last_key);
		}
		appendStringInfoString(&state, ", \"last_full_listing\": ");
		escape_json(&state, listing->full_listing ? timestamptz_to_str(listing->now) :
					(listing->last_full_listing ? listing->last_full_listing :
					 timestamptz_to_str(listing->now)));
		appendStringInfoChar(&state, '}');
		CatalogSetFlowState(flow->flow_id,
							DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															   CStringGetDatum(state.data))));
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(flow_context);
	return candidates;
}

/*
 * BronzeRunFlow: see bronze.h.  One call runs one batch; the update calls
 * it again while BronzeHasObjectsLeft says the listing of the update's
 * first batch is not exhausted.
 */
void
BronzeRunFlow(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	BronzeDefinition definition;
	S3Location	location;
	S3Credentials *credentials;
	ListingState listing;
	List	   *candidates;
	ListCell   *cell;
	bool		first_run;
	bool		full_listing = true;
	char	   *start_after = NULL;
	List	   *batch = NIL;
	int64		batch_bytes = 0;
	BronzeObjectStats stats;
	MemoryContext flow_context = CurrentMemoryContext;
	MemoryContext object_context;
	TimestampTz now = GetCurrentTimestamp();
	char	   *last_full_listing;

	BronzeLoadDefinition(flow, &definition);
	location.endpoint = definition.endpoint;
	location.region = definition.region;
	location.bucket = definition.bucket;

	/* what the listing needs: credentials, checks, progress */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(flow_context);
	FlowCheckTargetExists(flow);
	if (definition.endpoint != NULL)
		EndpointCheckAllowed(definition.endpoint, context->pipeline->owner);
	credentials = SecretLoad(definition.secret_name, context->pipeline->owner);
	first_run = FlowStateString(flow, "initialized") == NULL;
	last_full_listing = FlowStateString(flow, "last_full_listing");
	if (definition.options.incremental_listing && !first_run &&
		last_full_listing != NULL)
	{
		TimestampTz last = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																   CStringGetDatum(last_full_listing),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1)));

		if (!TimestampDifferenceExceeds(last, now,
										(int) Min(definition.options.full_listing_interval_ms,
												  INT_MAX)))
		{
			full_listing = false;
			start_after = FlowStateString(flow, "last_key");
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(flow_context);

	/*
	 * The first batch of an update lists; later ones take the rest of that
	 * listing, so that objects arriving during the update wait for the next
	 * one (Trigger.AvailableNow).
	 */
	memset(&listing, 0, sizeof(listing));
	if (flow->batches == 0)
	{
		listing.definition = &definition;
		listing.first_run = first_run;
		listing.full_listing = full_listing;
		listing.start_after = start_after;
		listing.last_full_listing = last_full_listing;
		listing.now = now;
		candidates = list_new_objects(flow, &definition, &location,
									  credentials, &listing, result);
		flow->available_objects = copy_candidates(candidates,
												  GetMemoryChunkContext(flow));
		flow->objects_taken = 0;
	}
	else
		full_listing = false;
	candidates = flow->available_objects;

	/* batch limits: the lower one wins; the bytes limit is soft */
	for_each_from(cell, candidates, flow->objects_taken)
	{
		Candidate  *candidate = lfirst(cell);

		if (list_length(batch) >= definition.options.max_files_per_batch ||
			(definition.options.max_bytes_per_batch > 0 && batch != NIL &&
			 batch_bytes >= definition.options.max_bytes_per_batch))
		{
			result->backlog = true;
			break;
		}
		batch = lappend(batch, candidate);
		batch_bytes += candidate->object.size;
	}

	memset(&stats, 0, sizeof(stats));
	if (definition.options.max_parallel_objects > 1 && list_length(batch) > 1)
		BronzeIngestInParallel(context, flow, &definition, &location,
							   credentials, batch, &stats, &result->retries);
	else
	{
		object_context = AllocSetContextCreate(flow_context, "medallion object",
											   ALLOCSET_DEFAULT_SIZES);
		foreach(cell, batch)
		{
			BronzeIngestCandidate(context, flow, &definition, &location,
								  credentials, lfirst(cell), object_context,
								  &stats, &result->retries);
			MemoryContextSwitchTo(flow_context);
			MemoryContextReset(object_context);
		}
		MemoryContextDelete(object_context);
	}
	MemoryContextSwitchTo(flow_context);
	flow->batches++;
	flow->objects_taken += list_length(batch);
	record_backlog(flow, candidates, flow->objects_taken);
	/* the opt-in cap: the rest of the listing waits for the next update */
	if (definition.options.max_batches_per_update > 0 &&
		flow->batches >= definition.options.max_batches_per_update)
		flow->available_objects = list_truncate(flow->available_objects,
												flow->objects_taken);
	result->rows_read = stats.rows;
	result->rows_written = stats.rows;
	result->changed = stats.changed;
	if (stats.backlog)
		result->backlog = true;

	appendStringInfo(&result->details,
					 "\"objects_listed\": %d, \"objects_new\": %d, "
					 "\"objects_ingested\": %d, \"objects_failed\": %d, "
					 "\"full_listing\": %s, \"backlog\": %s, "
					 "\"batch\": %d, \"objects_done\": %d",
					 list_length(listing.objects), list_length(candidates),
					 stats.objects_ingested, stats.objects_failed,
					 full_listing ? "true" : "false",
					 result->backlog ? "true" : "false",
					 flow->batches, flow->objects_taken);
}

/* BronzeHasObjectsLeft: see bronze.h. */
bool
BronzeHasObjectsLeft(const FlowDesc *flow)
{
	return flow->objects_taken < list_length(flow->available_objects);
}
