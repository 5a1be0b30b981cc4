/*-------------------------------------------------------------------------
 *
 * capture_trigger.c
 *	  Change capture of plain tables, the writers' side: the trigger
 *	  function medallion.capture_changes() that appends each statement's
 *	  changes to the table's change log.
 *
 * A writer pays one set-based INSERT ... SELECT from the statement's
 * transition tables into the log per statement (none when the statement
 * changed no row), with a plan prepared once per backend and table.  It
 * runs as the log's owner (SetUserIdAndSecContext, in a restricted
 * operation, search_path pinned): the writer needs no right on the log and
 * gets none, so it can neither read the log nor write into it anything but
 * the rows its statement really changed.  The statement's text is fixed
 * and reads only the transition tables (and, for TRUNCATE, the table
 * itself, which the log's owner may read: CaptureAvailable checked).
 *
 * The log keeps the columns the table had when capture began.  Should the
 * table's columns change later, the writer goes on writing the columns
 * that still match by name and type (the others stay NULL): a writer never
 * fails because of capture; the flows reading the table detect the change.
 *
 * The log is bounded (medallion.change_log_max_rows): a writer whose
 * statement may have taken the changes not yet read by every view past the
 * limit looks at the views' positions and, when it is over, empties the log
 * (CaptureLimitLog, capture.c).  The look costs a subtraction per statement
 * (the last id the statement drew, against the lowest position last seen);
 * positions are read again only when that could be over.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/capture_trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "capture_internal.h"
#include "catalog.h"
#include "guc.h"
#include "medallion.h"
#include "version.h"
#include "spi_util.h"

/* What a statement did, as the plans of a cache entry are indexed. */
typedef enum CaptureEvent
{
	CAPTURE_INSERT,
	CAPTURE_UPDATE,
	CAPTURE_DELETE,
	CAPTURE_TRUNCATE
} CaptureEvent;

#define CAPTURE_EVENT_COUNT (CAPTURE_TRUNCATE + 1)

/*
 * Per backend and captured table: its log, the log's owner, and the plan
 * of each event's INSERT, prepared on first use.  An entry is rebuilt
 * after any invalidation of the table or its log (ALTER TABLE, OWNER TO,
 * DROP TRIGGER at the end of capture).
 */
typedef struct CaptureCacheEntry
{
	Oid			relid;			/* hash key */
	bool		valid;
	Oid			log_relid;
	Oid			log_owner;
	Oid			log_sequence;	/* of the log's change ids */
	int64		consumed_floor; /* lowest consumer position last seen */
	char	   *columns;		/* "a, b, c": the log's columns still in the table */
	SPIPlanPtr	plans[CAPTURE_EVENT_COUNT];
} CaptureCacheEntry;

static HTAB *capture_cache = NULL;

/* Relcache invalidation: forget entries of the relation (or all). */
static void
capture_cache_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CaptureCacheEntry *entry;

	hash_seq_init(&status, capture_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (!OidIsValid(relid) || entry->relid == relid ||
			entry->log_relid == relid)
			entry->valid = false;
}

/*
 * The log's columns (after the change id and sign) that the table still
 * has with the same type, as a quoted list.
 */
static char *
matching_columns(Oid relid, Oid log_relid)
{
	Relation	log = table_open(log_relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(log);
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *name = NameStr(attr->attname);
		AttrNumber	attnum;

		if (attr->attisdropped || strcmp(name, CAPTURE_CHANGE_ID_COLUMN) == 0 ||
			strcmp(name, CAPTURE_SIGN_COLUMN) == 0)
			continue;
		attnum = get_attnum(relid, name);
		if (attnum == InvalidAttrNumber ||
			get_atttype(relid, attnum) != attr->atttypid)
			continue;
		appendStringInfo(&list, ", %s", quote_identifier(name));
	}
	table_close(log, AccessShareLock);
	return MemoryContextStrdup(CacheMemoryContext, list.data);
}

/*
 * Fill entry for relid from medallion.captured_table.  A table that is no
 * longer captured, or whose log was dropped by hand, gets an entry without
 * a log: its writers write on, and the flows reading it fail clearly
 * (CaptureBegin).
 */
static void
capture_cache_fill(CaptureCacheEntry *entry, Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	int			i;

	for (i = 0; i < CAPTURE_EVENT_COUNT; i++)
		if (entry->plans[i] != NULL)
		{
			SPI_freeplan(entry->plans[i]);
			entry->plans[i] = NULL;
		}
	if (entry->columns != NULL)
		pfree(entry->columns);
	entry->columns = NULL;
	entry->log_relid = InvalidOid;
	entry->log_owner = InvalidOid;

	values[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	if (SpiExecuteAsExtensionOwner("SELECT log_table::pg_catalog.oid FROM medallion.captured_table"
								   " WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
								   1, types, values, NULL, SPI_OK_SELECT) == 1)
		entry->log_relid = DatumGetObjectId(SpiGetDatum(0, 1, &isnull));
	SPI_finish();
	entry->log_owner = CaptureRelationOwner(entry->log_relid);
	entry->log_sequence = InvalidOid;
	entry->consumed_floor = 0;
	if (OidIsValid(entry->log_owner))
	{
		entry->columns = matching_columns(relid, entry->log_relid);
		entry->log_sequence = getIdentitySequence(entry->log_relid, 1, false);
	}
	entry->valid = true;
}

static CaptureCacheEntry *
capture_cache_get(Oid relid)
{
	CaptureCacheEntry *entry;
	bool		found;

	if (capture_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		capture_cache = hash_create("medallion capture cache", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(capture_cache_invalidate, (Datum) 0);
	}
	entry = hash_search(capture_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset(entry, 0, sizeof(CaptureCacheEntry));
		entry->relid = relid;
	}
	if (!entry->valid)
		capture_cache_fill(entry, relid);
	return entry;
}

/* The INSERT that logs event on the entry's table. */
static char *
event_statement(CaptureCacheEntry *entry, CaptureEvent event)
{
	const char *log = CatalogQualifiedRelationName(entry->log_relid);
	const char *columns = entry->columns;

	switch (event)
	{
		case CAPTURE_INSERT:
			return psprintf("INSERT INTO %s (" CAPTURE_SIGN_COLUMN "%s)"
							" SELECT 1%s FROM " CAPTURE_NEW_TABLE,
							log, columns, columns);
		case CAPTURE_UPDATE:
			return psprintf("INSERT INTO %s (" CAPTURE_SIGN_COLUMN "%s)"
							" SELECT -1%s FROM " CAPTURE_OLD_TABLE
							" UNION ALL SELECT 1%s FROM " CAPTURE_NEW_TABLE,
							log, columns, columns, columns);
		case CAPTURE_DELETE:
			return psprintf("INSERT INTO %s (" CAPTURE_SIGN_COLUMN "%s)"
							" SELECT -1%s FROM " CAPTURE_OLD_TABLE,
							log, columns, columns);
		case CAPTURE_TRUNCATE:
			return psprintf("INSERT INTO %s (" CAPTURE_SIGN_COLUMN "%s)"
							" SELECT -1%s FROM ONLY %s",
							log, columns, columns,
							CatalogQualifiedRelationName(entry->relid));
	}
	pg_unreachable();
}

/*
 * What the trigger was fired for; anything but the triggers CaptureEnsure
 * creates is refused.  *rows is false when the statement changed no row.
 */
static CaptureEvent
trigger_event(FunctionCallInfo fcinfo, bool *rows)
{
	TriggerData *data = (TriggerData *) fcinfo->context;
	TriggerEvent event;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_FOR_STATEMENT(data->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.capture_changes() must be called as a statement-level trigger")));
	event = data->tg_event;
	*rows = true;
	if (TRIGGER_FIRED_BY_TRUNCATE(event) && TRIGGER_FIRED_BEFORE(event))
		return CAPTURE_TRUNCATE;
	if (TRIGGER_FIRED_AFTER(event))
	{
		if (TRIGGER_FIRED_BY_INSERT(event) && data->tg_newtable != NULL)
		{
			*rows = tuplestore_tuple_count(data->tg_newtable) > 0;
			return CAPTURE_INSERT;
		}
		if (TRIGGER_FIRED_BY_UPDATE(event) && data->tg_newtable != NULL &&
			data->tg_oldtable != NULL)
		{
			*rows = tuplestore_tuple_count(data->tg_newtable) > 0;
			return CAPTURE_UPDATE;
		}
		if (TRIGGER_FIRED_BY_DELETE(event) && data->tg_oldtable != NULL)
		{
			*rows = tuplestore_tuple_count(data->tg_oldtable) > 0;
			return CAPTURE_DELETE;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("medallion.capture_changes() must be fired as medallion creates it"),
			 errdetail("AFTER INSERT, UPDATE or DELETE with transition tables, or BEFORE TRUNCATE.")));
	pg_unreachable();
}

/*
 * Run the entry's INSERT for event as the log's owner.  Returns the last
 * change id it drew (0 if it wrote no row).
 */
static int64
write_changes(CaptureCacheEntry *entry, TriggerData *data, CaptureEvent event)
{
	Oid			saved_user;
	int			saved_context;
	int			guc_nest_level;
	volatile int64 last_id = 0;

	SPI_connect();
	if (SPI_register_trigger_data(data) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	if (entry->plans[event] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(event_statement(entry, event), 0, NULL);

		if (plan == NULL)
			elog(ERROR, "could not prepare the change capture of %s: %s",
				 CatalogQualifiedRelationName(entry->relid),
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		entry->plans[event] = plan;
	}
	GetUserIdAndSecContext(&saved_user, &saved_context);
	guc_nest_level = PinSafeSearchPath();
	SetUserIdAndSecContext(entry->log_owner, saved_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_execute_plan(entry->plans[event], NULL, NULL, false, 0) !=
			SPI_OK_INSERT)
			elog(ERROR, "could not write the change log of %s",
				 CatalogQualifiedRelationName(entry->relid));
		if (SPI_processed > 0)
			last_id = DatumGetInt64(DirectFunctionCall1(currval_oid,
														ObjectIdGetDatum(entry->log_sequence)));
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_context);
		AtEOXact_GUC(false, guc_nest_level);
	}
	PG_END_TRY();
	SPI_finish();
	return last_id;
}

/*
 * The log's size limit (medallion.change_log_max_rows), checked for the
 * cost of a subtraction: the consumers' lowest position is read again only
 * when the ids drawn since the last reading could be over the limit.
 */
static void
limit_log(CaptureCacheEntry *entry, int64 last_id)
{
	if (medallion_change_log_max_rows <= 0 || last_id == 0 ||
		last_id - entry->consumed_floor <= medallion_change_log_max_rows)
		return;
	entry->consumed_floor = CaptureLimitLog(entry->relid, entry->log_relid,
											last_id);
}

PG_FUNCTION_INFO_V1(medallion_capture_changes);

/*
 * medallion.capture_changes(): the trigger of captured tables.
 */
Datum
medallion_capture_changes(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	bool		rows;
	CaptureEvent event = trigger_event(fcinfo, &rows);
	TriggerData *data = (TriggerData *) fcinfo->context;
	CaptureCacheEntry *entry;

	if (!rows)
		return PointerGetDatum(NULL);
	entry = capture_cache_get(RelationGetRelid(data->tg_relation));
	if (OidIsValid(entry->log_owner))
		limit_log(entry, write_changes(entry, data, event));
	return PointerGetDatum(NULL);
}
