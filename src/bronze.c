/*-------------------------------------------------------------------------
 *
 * bronze.c
 *	  A bronze flow's run: listing the new objects of an S3 prefix, taking
 *	  them batch by batch, and the ledger that makes ingestion exactly once.
 *
 * Exactly once: an object's rows and its row in the ledger
 * (medallion.ingested_file, keyed on flow, path and ETag) commit in one
 * transaction (bronze_object.c).  A crash at any moment leaves either both
 * or neither, and the next update ingests whatever is not in the ledger.
 *
 * No transaction is open during network I/O: the listing happens outside
 * any transaction, and so does each object's download.
 *
 * A record that does not parse lands with data NULL and its text in
 * _rescued_data.  An object that cannot be read at all is recorded in the
 * ledger as failed and the objects after it are still ingested;
 * skip_object and retry_object let a DBA clear it.
 *
 * The family: bronze_definition.c (create_bronze, options, the stored
 * definition), bronze_object.c (one object), bronze_parallel.c (a batch in
 * several processes) and this file, which uses the three others.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fnmatch.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bronze.h"
#include "bronze_internal.h"
#include "catalog.h"
#include "endpoint.h"
#include "flow_definition.h"
#include "s3_client.h"
#include "secret.h"
#include "spi_util.h"
#include "version.h"

/* processes that take the objects of a backlog (bronze_run_bulk_parallelism) */
#define BRONZE_BULK_PARALLEL_OBJECTS 4

PG_FUNCTION_INFO_V1(medallion_skip_object);
PG_FUNCTION_INFO_V1(medallion_retry_object);

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
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3];
	int64		changed;

	CatalogCheckPipelineOwner(pipeline);
	if (strncmp(path, "s3://", 5) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid object path \"%s\"", path),
				 errhint("Use the path as shown in medallion.ingested_files, such as s3://bucket/key.")));

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = CStringGetTextDatum(path);
	values[2] = CStringGetTextDatum(CatalogFlowTypeName(FLOW_TYPE_BRONZE));
	SPI_connect();
	if (skip)
	{
		/* failed rows become skipped; an unknown path gets a skip marker */
		changed = (int64) SpiExecuteAsExtensionOwner(
													 "WITH flows AS ("
													 " SELECT flow_id FROM medallion.flow"
													 " WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
													 " AND flow_type OPERATOR(pg_catalog.=) $3"
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
													 3, types, values, NULL, SPI_OK_SELECT);
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

/* skip_object(pipeline_name, path): see change_ledger. */
Datum
medallion_skip_object(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PG_RETURN_INT64(change_ledger(fcinfo, true));
}

/* retry_object(pipeline_name, path): see change_ledger. */
Datum
medallion_retry_object(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PG_RETURN_INT64(change_ledger(fcinfo, false));
}

/* BronzeReset: see bronze.h. */
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

/* What one listing collects, and how it lists. */
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

/*
 * The S3 listing callback: keep the objects that match the flow's prefix,
 * path_glob and modified_after, and remember the greatest key seen.
 */
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
		fnmatch(options->path_glob, BronzeFileName(object->key), 0) != 0)
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

/* Replace the flow's state (medallion.flow.flow_state) by the JSON text. */
static void
set_flow_state(FlowDesc *flow, const char *json)
{
	CatalogSetFlowState(flow->flow_id,
						DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														   CStringGetDatum(json))));
}

/*
 * The first listing of a flow: with include_existing_files = false, what
 * exists at the first update is recorded as skipped and only later objects
 * are ingested (NIL is returned); either way the flow is marked
 * initialized.  Runs in the caller's transaction.
 */
static List *
record_first_listing(FlowDesc *flow, BronzeDefinition *definition,
					 List *candidates)
{
	ListCell   *cell;

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
	set_flow_state(flow, "{\"initialized\": \"true\"}");
	return candidates;
}

/*
 * incremental_listing: remember where the listing ended (its greatest key)
 * and when the last full listing was, when either changed.  Runs in the
 * caller's transaction.
 */
static void
remember_listing_end(FlowDesc *flow, ListingState *listing)
{
	StringInfoData state;
	char	   *last_key;

	if (!listing->full_listing &&
		(listing->max_key == NULL ||
		 (listing->start_after != NULL &&
		  strcmp(listing->max_key, listing->start_after) == 0)))
		return;
	last_key = listing->max_key ? listing->max_key : listing->start_after;
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
	set_flow_state(flow, state.data);
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
	BronzeRetryLog retry_log;

	/* list, with no transaction open */
	retry_log.retries = &result->retries;
	retry_log.context = flow_context;
	S3SetRetryCallback(BronzeRetryToEventLog, &retry_log);
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
		candidates = record_first_listing(flow, definition, candidates);
	if (definition->options.incremental_listing)
		remember_listing_end(flow, listing);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(flow_context);
	return candidates;
}

/* What one batch of a bronze flow works with, from phase to phase. */
typedef struct BronzeRun
{
	FlowContext *context;
	FlowDesc   *flow;
	FlowResult *result;
	BronzeDefinition definition;
	S3Location	location;
	S3Credentials *credentials;
	ListingState listing;		/* objects is NIL after the first batch */
	List	   *candidates;		/* the update's listing, new objects only */
	List	   *batch;			/* this batch's objects */
	BronzeObjectStats stats;
	MemoryContext flow_context; /* outlives the batch */
} BronzeRun;

/* Read the flow's definition into the run; nothing else is done yet. */
static void
bronze_run_init(BronzeRun *run, FlowContext *context, FlowDesc *flow,
				FlowResult *result)
{
	memset(run, 0, sizeof(BronzeRun));
	run->context = context;
	run->flow = flow;
	run->result = result;
	run->flow_context = CurrentMemoryContext;
	BronzeLoadDefinition(flow, &run->definition);
	run->location.endpoint = run->definition.endpoint;
	run->location.region = run->definition.region;
	run->location.bucket = run->definition.bucket;
	run->listing.definition = &run->definition;
	run->listing.now = GetCurrentTimestamp();
	run->listing.full_listing = true;
}

/*
 * In a short transaction: check the target and the endpoint, load the
 * credentials as the owner, and decide from the flow's state how to list
 * (the first listing ever, or with incremental_listing, from the last key
 * unless a full listing is due).
 */
static void
bronze_run_prepare(BronzeRun *run)
{
	FlowDesc   *flow = run->flow;
	BronzeOptions *options = &run->definition.options;
	ListingState *listing = &run->listing;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(run->flow_context);
	FlowCheckTargetExists(flow);
	if (run->definition.endpoint != NULL)
		EndpointCheckAllowed(run->definition.endpoint,
							 run->context->pipeline->owner);
	run->credentials = SecretLoad(run->definition.secret_name,
								  run->context->pipeline->owner);
	listing->first_run = FlowStateString(flow, "initialized") == NULL;
	listing->last_full_listing = FlowStateString(flow, "last_full_listing");
	if (options->incremental_listing && !listing->first_run &&
		listing->last_full_listing != NULL)
	{
		TimestampTz last = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																   CStringGetDatum(listing->last_full_listing),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1)));

		if (!TimestampDifferenceExceeds(last, listing->now,
										(int) Min(options->full_listing_interval_ms,
												  INT_MAX)))
		{
			listing->full_listing = false;
			listing->start_after = FlowStateString(flow, "last_key");
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(run->flow_context);
}

/*
 * The first batch of an update lists; later ones take the rest of that
 * listing, so that objects arriving during the update wait for the next
 * one (Trigger.AvailableNow).  The listing is kept in the FlowDesc.
 */
static void
bronze_run_list(BronzeRun *run)
{
	FlowDesc   *flow = run->flow;

	if (flow->batches == 0)
	{
		List	   *candidates;

		candidates = list_new_objects(flow, &run->definition, &run->location,
									  run->credentials, &run->listing,
									  run->result);
		flow->available_objects = copy_candidates(candidates,
												  GetMemoryChunkContext(flow));
		flow->objects_taken = 0;
	}
	else
		run->listing.full_listing = false;
	run->candidates = flow->available_objects;
}

/* The next batch: the lower limit wins; the bytes limit is soft. */
static void
bronze_run_choose_batch(BronzeRun *run)
{
	BronzeOptions *options = &run->definition.options;
	int64		batch_bytes = 0;
	ListCell   *cell;

	for_each_from(cell, run->candidates, run->flow->objects_taken)
	{
		Candidate  *candidate = lfirst(cell);

		if (list_length(run->batch) >= options->max_files_per_batch ||
			(options->max_bytes_per_batch > 0 && run->batch != NIL &&
			 batch_bytes >= options->max_bytes_per_batch))
		{
			run->result->backlog = true;
			break;
		}
		run->batch = lappend(run->batch, candidate);
		batch_bytes += candidate->object.size;
	}
}

/*
 * A full refresh, or an update whose listing holds more than one batch,
 * ingests a whole backlog: its objects are taken by at least
 * BRONZE_BULK_PARALLEL_OBJECTS processes (max_parallel_objects, when
 * higher, wins), so that the latency of S3 does not add up object after
 * object.  Each object is still committed on its own, exactly once.
 */
static void
bronze_run_bulk_parallelism(BronzeRun *run)
{
	BronzeOptions *options = &run->definition.options;

	if (!run->context->full_refresh && run->flow->batches == 0 &&
		!run->result->backlog)
		return;
	options->max_parallel_objects = Max(options->max_parallel_objects,
										BRONZE_BULK_PARALLEL_OBJECTS);
}

/*
 * Ingest the batch, in parallel when the flow allows it and there is more
 * than one object; otherwise here, object by object, with the object's
 * memory reset after each.
 */
static void
bronze_run_ingest(BronzeRun *run)
{
	MemoryContext object_context;
	ListCell   *cell;

	bronze_run_bulk_parallelism(run);
	if (run->definition.options.max_parallel_objects > 1 &&
		list_length(run->batch) > 1)
	{
		BronzeIngestInParallel(run->context, run->flow, &run->definition,
							   &run->location, run->credentials, run->batch,
							   &run->stats, &run->result->retries);
		MemoryContextSwitchTo(run->flow_context);
		return;
	}
	object_context = AllocSetContextCreate(run->flow_context,
										   "medallion object",
										   ALLOCSET_DEFAULT_SIZES);
	foreach(cell, run->batch)
	{
		BronzeIngestCandidate(run->context, run->flow, &run->definition,
							  &run->location, run->credentials, lfirst(cell),
							  object_context, &run->stats,
							  &run->result->retries);
		MemoryContextSwitchTo(run->flow_context);
		MemoryContextReset(object_context);
	}
	MemoryContextDelete(object_context);
	MemoryContextSwitchTo(run->flow_context);
}

/*
 * Count the batch as taken, record the backlog, apply the opt-in
 * max_batches_per_update cap (the rest of the listing waits for the next
 * update), and report the batch in the flow's result.
 */
static void
bronze_run_finish(BronzeRun *run)
{
	FlowDesc   *flow = run->flow;
	FlowResult *result = run->result;

	flow->batches++;
	flow->objects_taken += list_length(run->batch);
	record_backlog(flow, run->candidates, flow->objects_taken);
	if (run->definition.options.max_batches_per_update > 0 &&
		flow->batches >= run->definition.options.max_batches_per_update)
		flow->available_objects = list_truncate(flow->available_objects,
												flow->objects_taken);
	result->rows_read = run->stats.rows;
	result->rows_written = run->stats.rows;
	result->changed = run->stats.changed;
	if (run->stats.backlog)
		result->backlog = true;

	appendStringInfo(&result->details,
					 "\"objects_listed\": %d, \"objects_new\": %d, "
					 "\"objects_ingested\": %d, \"objects_failed\": %d, "
					 "\"full_listing\": %s, \"backlog\": %s, "
					 "\"batch\": %d, \"objects_done\": %d",
					 list_length(run->listing.objects),
					 list_length(run->candidates),
					 run->stats.objects_ingested, run->stats.objects_failed,
					 run->listing.full_listing ? "true" : "false",
					 result->backlog ? "true" : "false",
					 flow->batches, flow->objects_taken);
}

/*
 * BronzeRunFlow: see bronze.h.  One call runs one batch; the update calls
 * it again while BronzeHasObjectsLeft says the listing of the update's
 * first batch is not exhausted.
 */
void
BronzeRunFlow(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	BronzeRun	run;

	bronze_run_init(&run, context, flow, result);
	bronze_run_prepare(&run);
	bronze_run_list(&run);
	bronze_run_choose_batch(&run);
	bronze_run_ingest(&run);
	bronze_run_finish(&run);
}

/* BronzeHasObjectsLeft: see bronze.h. */
bool
BronzeHasObjectsLeft(const FlowDesc *flow)
{
	return flow->objects_taken < list_length(flow->available_objects);
}
