/*-------------------------------------------------------------------------
 *
 * bronze_definition.c
 *	  A bronze flow's definition: create_bronze, its options and format,
 *	  and reading the stored definition back for an update.  Several bronze
 *	  flows may feed one table (another bucket, prefix, region or format),
 *	  each with its own ledger, provided no object is reachable by two.
 *
 * The options are checked twice with the same code: when the flow is
 * created (so that a misspelt or out-of-range option fails at once) and
 * when an update reads the stored definition (so that the defaults of this
 * version apply to flows created before).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze_definition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "bronze_internal.h"
#include "endpoint.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "flow_lifecycle.h"
#include "guc.h"
#include "s3_client.h"
#include "secret.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_bronze);

static const char *const known_options[] = {
	"path_glob", "max_files_per_batch", "max_bytes_per_batch",
	"include_existing_files", "modified_after", "allow_overwrites",
	"max_parallel_objects", "incremental_listing", "full_listing_interval",
	"max_record_bytes", "max_decompressed_bytes", "max_expansion_ratio",
	"max_batches_per_update", NULL
};

/* The one error for an option value of the wrong type or range. */
static void
option_type_error(const char *option, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for bronze option \"%s\"", option),
			 errdetail("The value must be %s.", expected)));
}

/*
 * A positive integer option, given as a JSON number or as a string (as
 * jsonb_build_object of a text value gives it).
 */
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

/* A boolean option, given as a JSON boolean or as text parse_bool takes. */
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

/* A string option. */
static char *
option_string(JsonbValue *value, const char *option)
{
	if (value->type != jbvString)
		option_type_error(option, "a string");
	return pnstrdup(value->val.string.val, value->val.string.len);
}

/* BronzeDecompressedBytesCap: see bronze_internal.h. */
int64
BronzeDecompressedBytesCap(void)
{
	return (int64) medallion_decompressed_bytes_cap_kb * 1024;
}

/* The value of option "modified_after": a timestamp with time zone. */
static TimestampTz
option_timestamp(JsonbValue *value, const char *option)
{
	char	   *text = option_string(value, option);

	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												   CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

/*
 * The value of option "full_listing_interval", an interval, in
 * milliseconds (a month counts 30 days).
 */
static int64
option_interval_ms(JsonbValue *value, const char *option)
{
	char	   *text = option_string(value, option);
	Interval   *interval;
	int64		milliseconds;

	interval = DatumGetIntervalP(DirectFunctionCall3(interval_in,
													 CStringGetDatum(text),
													 ObjectIdGetDatum(InvalidOid),
													 Int32GetDatum(-1)));
	milliseconds = (interval->time + (int64) interval->day * USECS_PER_DAY +
					(int64) interval->month * 30 * USECS_PER_DAY) / 1000;
	if (milliseconds <= 0)
		option_type_error(option, "a positive interval");
	return milliseconds;
}

/* A positive integer option that must not exceed maximum. */
static int64
option_bounded_integer(JsonbValue *value, const char *option, int64 maximum,
					   const char *expected)
{
	int64		result = option_positive_integer(value, option);

	if (result > maximum)
		option_type_error(option, expected);
	return result;
}

/* Reject an option this version does not know, naming the valid ones. */
static void
check_option_known(const char *key)
{
	const char *const *known;

	for (known = known_options; *known != NULL; known++)
		if (strcmp(*known, key) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized bronze option \"%s\"", key),
			 errhint("Valid options are path_glob, max_files_per_batch, max_bytes_per_batch, include_existing_files, modified_after, allow_overwrites, max_parallel_objects, incremental_listing, full_listing_interval, max_record_bytes, max_decompressed_bytes, max_expansion_ratio and max_batches_per_update.")));
}

/* Store one option's value, checked, in options. */
static void
parse_option(const char *key, JsonbValue *value, BronzeOptions *options)
{
	if (strcmp(key, "path_glob") == 0)
		options->path_glob = option_string(value, key);
	else if (strcmp(key, "max_files_per_batch") == 0)
		options->max_files_per_batch = option_positive_integer(value, key);
	else if (strcmp(key, "max_bytes_per_batch") == 0)
		options->max_bytes_per_batch = option_positive_integer(value, key);
	else if (strcmp(key, "max_batches_per_update") == 0)
		options->max_batches_per_update = option_positive_integer(value, key);
	else if (strcmp(key, "include_existing_files") == 0)
		options->include_existing_files = option_boolean(value, key);
	else if (strcmp(key, "allow_overwrites") == 0)
		options->allow_overwrites = option_boolean(value, key);
	else if (strcmp(key, "incremental_listing") == 0)
		options->incremental_listing = option_boolean(value, key);
	else if (strcmp(key, "max_parallel_objects") == 0)
		options->max_parallel_objects = (int)
			option_bounded_integer(value, key, 16,
								   "an integer between 1 and 16");
	else if (strcmp(key, "max_record_bytes") == 0)
		options->max_record_bytes =
			option_bounded_integer(value, key, 200 * 1024 * 1024,
								   "at most 209715200 (200 MB)");
	else if (strcmp(key, "max_decompressed_bytes") == 0)
		options->max_decompressed_bytes = option_positive_integer(value, key);
	else if (strcmp(key, "max_expansion_ratio") == 0)
		options->max_expansion_ratio = (int)
			option_bounded_integer(value, key, 1000000,
								   "an integer between 1 and 1000000");
	else if (strcmp(key, "modified_after") == 0)
	{
		options->has_modified_after = true;
		options->modified_after = option_timestamp(value, key);
	}
	else if (strcmp(key, "full_listing_interval") == 0)
		options->full_listing_interval_ms = option_interval_ms(value, key);
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
		if (token == WJB_KEY)
		{
			current_key = pnstrdup(value.val.string.val, value.val.string.len);
			check_option_known(current_key);
		}
		else if (token == WJB_VALUE && current_key != NULL)
			parse_option(current_key, &value, options);
	}
	if (options->path_glob != NULL && options->path_glob[0] == '\0')
		option_type_error("path_glob", "a non-empty glob pattern");
}

/* The record format named by create_bronze's format argument. */
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

/*
 * BronzeLoadDefinition: see bronze_internal.h.  Defaults of members that
 * older versions did not write are filled in here.
 */
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

/* A text argument of the SQL function, or NULL. */
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
	if (arguments->options.max_decompressed_bytes > BronzeDecompressedBytesCap())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for bronze option \"max_decompressed_bytes\""),
				 errdetail("The value must be at most " INT64_FORMAT " bytes (medallion.decompressed_bytes_cap).",
						   BronzeDecompressedBytesCap()),
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

/* What bronze_table_sql's columns hold, for their comments. */
static const char *const bronze_columns[] = {
	"_row_id", "data", "_rescued_data", "_file_path", "_file_name",
	"_file_size", "_file_modification_time", "_ingested_at"
};
static const char *const bronze_column_comments[] = {
	"Arrival order of the record (identity); downstream flows read by it",
	"The record; NULL when it could not be parsed",
	"The raw text of a record that could not be parsed, else NULL",
	"The S3 object the record came from, as s3://bucket/key",
	"Last path segment of the object's key",
	"Size of the object in bytes",
	"LastModified of the object",
	"Start time of the transaction that committed the object"
};

/* The stored definition: where the objects are and how to read them. */
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

/* ---------- several sources into one bronze table ---------- */

/* Do two endpoints name the same store?  NULL is AWS S3. */
static bool
bronze_same_endpoint(const char *a, const char *b)
{
	size_t		la;
	size_t		lb;

	if (a == NULL || b == NULL)
		return a == b;
	la = strlen(a);
	lb = strlen(b);
	while (la > 0 && a[la - 1] == '/')
		la--;
	while (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && pg_strncasecmp(a, b, la) == 0;
}

/*
 * The literal ending of a path_glob (what follows its last wildcard), or
 * NULL when there is none or the glob has escapes (not analysed).
 */
static const char *
glob_literal_suffix(const char *glob)
{
	const char *suffix = glob;
	const char *p;

	if (glob == NULL || strchr(glob, '\\') != NULL)
		return NULL;
	for (p = glob; *p != '\0'; p++)
		if (strchr("*?[]", *p) != NULL)
			suffix = p + 1;
	return *suffix != '\0' ? suffix : NULL;
}

/*
 * Can no key match both globs?  path_glob is matched against the key after
 * the prefix or against the file name, both of which end as the key ends:
 * when the literal endings of two globs differ so that neither ends the
 * other, no key ends with both.  Anything else is not proven disjoint.
 */
static bool
bronze_globs_disjoint(const char *a, const char *b)
{
	const char *sa = glob_literal_suffix(a);
	const char *sb = glob_literal_suffix(b);
	size_t		la;
	size_t		lb;

	if (sa == NULL || sb == NULL)
		return false;
	la = strlen(sa);
	lb = strlen(sb);
	if (la >= lb)
		return strcmp(sa + la - lb, sb) != 0;
	return strcmp(sb + lb - la, sa) != 0;
}

/*
 * Refuse a new source of a bronze table (or the new source of a replaced
 * flow of it, replaced, which is not compared with itself) that can reach
 * an object another flow of the table reaches: each flow keeps its own ledger, so the object
 * would be ingested twice.  Two sources overlap when they are in the same
 * bucket of the same endpoint and one prefix starts the other, unless
 * their path_glob options are provably disjoint.
 */
static void
bronze_check_overlap(Oid target_relid, const BronzeArguments *arguments,
					 const FlowDesc *replaced)
{
	ListCell   *cell;

	foreach(cell, CatalogGetFlowsByTarget(target_relid))
	{
		FlowDesc   *flow = lfirst(cell);
		BronzeDefinition other;
		size_t		shorter;

		if (flow->type != FLOW_TYPE_BRONZE ||
			(replaced != NULL && flow->flow_id == replaced->flow_id))
			continue;
		BronzeLoadDefinition(flow, &other);
		shorter = Min(strlen(other.prefix), strlen(arguments->prefix));
		if (!bronze_same_endpoint(other.endpoint, arguments->endpoint) ||
			strcmp(other.bucket, arguments->bucket) != 0 ||
			strncmp(other.prefix, arguments->prefix, shorter) != 0 ||
			bronze_globs_disjoint(other.options.path_glob,
								  arguments->options.path_glob))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source %s overlaps the source of flow \"%s\" into table %s",
						arguments->source_url, flow->flow_name,
						CatalogQualifiedRelationName(target_relid)),
				 errdetail("Objects under s3://%s/%s are reachable by both flows; each flow keeps its own ledger, so they would be ingested twice.",
						   arguments->bucket,
						   strlen(other.prefix) >= strlen(arguments->prefix) ?
						   other.prefix : arguments->prefix),
				 errhint("Give the flows disjoint prefixes, or path_glob options with different literal endings such as \"*.json\" and \"*.csv\".")));
	}
}

/*
 * Is target_table an existing bronze table of the pipeline?  Then create
 * is filled in for it (the pipeline, checked first as FlowCreateBegin
 * does, and the table) and create_bronze adds a source to it.
 */
static bool
bronze_existing_target(FlowCreate *create, const char *pipeline_name,
					   const char *target_table)
{
	RangeVar   *rv;
	Oid			relid;
	FlowDesc   *flow;

	memset(create, 0, sizeof(FlowCreate));
	create->pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(create->pipeline);

	/* where CREATE TABLE would put it, as FlowCreateBegin resolves it */
	rv = makeRangeVarFromNameList(stringToQualifiedNameList(target_table));
	relid = get_relname_relid(rv->relname, RangeVarGetCreationNamespace(rv));
	flow = OidIsValid(relid) ? CatalogGetFlowByTarget(relid, true) : NULL;
	if (flow == NULL || flow->type != FLOW_TYPE_BRONZE ||
		flow->pipeline_id != create->pipeline->pipeline_id)
		return false;
	create->target_relid = relid;
	create->namespace_oid = get_rel_namespace(relid);
	create->relation_name = get_rel_name(relid);
	create->target_name = CatalogQualifiedRelationName(relid);
	return true;
}

/*
 * Another source into an existing bronze table: a flow of its own, with an
 * explicit name, a ledger of its own and no object in common with the
 * other flows of the table.  With replace, the flow of that name, when the
 * table has one, gets the new source instead (FlowCreateBeginNamed): its
 * ledger and rows stay, the new options apply to new objects only.
 */
static void
bronze_add_source(FlowCreate *create, const char *flow_name,
				  BronzeArguments *arguments, bool replace)
{
	if (flow_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s already has a bronze flow", create->target_name),
				 errdetail("A table fed by several bronze sources needs a name for each further flow; the first keeps the table's name."),
				 errhint("Pass flow_name => '<name>' to add this source as another flow into %s.",
						 create->target_name)));
	create->flow_name = FlowNameForTarget(flow_name, create->namespace_oid,
										  create->target_relid);
	if (replace)
		FlowCreateBeginNamed(create, FLOW_TYPE_BRONZE, create->flow_name);
	bronze_check_arguments(arguments);
	bronze_check_overlap(create->target_relid, arguments, create->replaced);
	FlowCreateRegister(create, FLOW_TYPE_BRONZE, InvalidOid,
					   arguments->source_url,
					   bronze_definition_build(arguments));
}

/*
 * create_bronze(pipeline_name, target_table, source_url, secret_name,
 * region, endpoint, format, options, flow_name, replace): the bronze table,
 * owned by the caller, and the flow that fills it; or, into an existing
 * bronze table of the pipeline, another source (bronze_add_source).
 */
Datum
medallion_create_bronze(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = text_argument_or_null(fcinfo, 0);
	char	   *target_table = text_argument_or_null(fcinfo, 1);
	char	   *flow_name = text_argument_or_null(fcinfo, 8);
	BronzeArguments arguments;
	FlowCreate	create;
	bool		replace;

	memset(&arguments, 0, sizeof(arguments));
	arguments.source_url = text_argument_or_null(fcinfo, 2);
	arguments.secret_name = text_argument_or_null(fcinfo, 3);
	arguments.region = text_argument_or_null(fcinfo, 4);
	arguments.endpoint = text_argument_or_null(fcinfo, 5);
	arguments.format = text_argument_or_null(fcinfo, 6);
	arguments.options_jsonb = PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7);
	replace = FlowCreateReplaceArgument(fcinfo, 9);
	if (target_table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target_table must not be null")));

	/* a further source, or with replace a named one (bronze_add_source) */
	if ((!replace || flow_name != NULL) &&
		bronze_existing_target(&create, pipeline_name, target_table))
	{
		bronze_add_source(&create, flow_name, &arguments, replace);
		PG_RETURN_VOID();
	}
	FlowCreateBegin(&create, FLOW_TYPE_BRONZE, pipeline_name, target_table,
					replace);
	create.flow_name = FlowNameForTarget(flow_name, create.namespace_oid,
										 InvalidOid);
	bronze_check_arguments(&arguments);
	if (create.replaced != NULL)
		bronze_check_overlap(create.target_relid, &arguments, create.replaced);
	FlowCreateTable(&create, bronze_table_sql(create.target_name));
	FlowCreateColumnComments(create.target_name, lengthof(bronze_columns),
							 bronze_columns, bronze_column_comments);
	FlowCreateRegister(&create, FLOW_TYPE_BRONZE, InvalidOid,
					   arguments.source_url,
					   bronze_definition_build(&arguments));
	PG_RETURN_VOID();
}
