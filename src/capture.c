/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  Change capture of plain tables, the consumers' side: whether a table
 *	  can be captured, starting and stopping its capture, and the range of
 *	  changes each consumer flow reads at an update (see capture.h).
 *
 * A captured table gets four statement-level triggers (AFTER INSERT,
 * UPDATE, DELETE with transition tables; BEFORE TRUNCATE) whose function,
 * medallion.capture_changes() (capture_trigger.c), appends the rows each
 * statement added and removed to the table's change log.  The log is a
 * table of medallion_state created with the extension owner's rights (no
 * pipeline owner may create objects there), then owned by the pipeline
 * owner who started the capture; it depends on the captured table, so
 * dropping the table drops it.  The writer needs, and gets, no right on
 * the log: the trigger writes it as the log's owner.
 *
 * Change ids come from the log's identity sequence, in the order writers
 * insert, not the order they commit.  A consumer must never read past a
 * change that is still being written, or it would skip it for good once
 * its position moves beyond.  CaptureBegin therefore reads the sequence's
 * last value first, then waits (WaitForTableWriters, as CREATE INDEX
 * CONCURRENTLY does, but not for a VACUUM of the log) for every
 * transaction holding a lock that lets it write the log: each transaction
 * that has drawn an id holds ROW EXCLUSIVE on the log since before it drew
 * it.  After the wait every id
 * up to that value is committed or rolled back, and the consumer's next
 * statement (READ COMMITTED) sees all of them; new writers are never
 * blocked.
 *
 * Positions live in medallion.capture_consumer, one row per (table, flow),
 * updated by CaptureEnd in the consumer's transaction.  The last row of a
 * table going (CaptureRelease, or its flow deleted) drops the triggers and
 * the log (medallion.capture_consumer_gone()).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "capture.h"
#include "capture_internal.h"
#include "catalog.h"
#include "guc.h"
#include "medallion.h"
#include "version.h"
#include "spi_util.h"
#include "sql_names.h"
#include "table_writers.h"

/* Suffix of a log's name: <schema>__<table>__changes. */
#define CAPTURE_LOG_SUFFIX "__changes"

static void capture_stop(Oid relid, Oid log_relid);

static const char *const capture_events[] = {"insert", "update", "delete",
"truncate"};

Oid
CaptureRelationOwner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * As SpiExecuteAsExtensionOwner, but as any role and in a restricted
 * operation: the log's owner may have put triggers or policies on its own
 * log, which then run in the caller's session as that owner, and must not
 * change the session (SET ROLE, temporary objects, GUCs) behind it.
 */
uint64
CaptureExecuteAs(Oid role, const char *sql, int nargs, Oid *argtypes,
				 Datum *values, int expected_result)
{
	return SpiExecuteAsRole(role, SECURITY_RESTRICTED_OPERATION, sql, nargs,
							argtypes, values, NULL, expected_result);
}

/*
 * Why the relation itself (its kind, persistence, place) cannot be
 * captured, or NULL.
 */
static char *
relation_unsuitable(Form_pg_class form, Oid relid, const char *name)
{
	if (form->relkind == RELKIND_PARTITIONED_TABLE)
		return psprintf("%s is a partitioned table: its changes cannot be captured", name);
	if (form->relkind != RELKIND_RELATION)
		return psprintf("%s is not a plain table: its changes cannot be captured", name);
	if (form->relispartition || form->relhassubclass || has_superclass(relid))
		return psprintf("%s is part of a partition or inheritance tree: its changes cannot be captured", name);
	if (form->relpersistence != RELPERSISTENCE_PERMANENT)
		return psprintf("%s is temporary or unlogged: its changes cannot be captured", name);
	if (form->relam != HEAP_TABLE_AM_OID)
		return psprintf("%s does not use the heap access method: its changes cannot be captured", name);
	if (IsCatalogNamespace(form->relnamespace) ||
		IsToastNamespace(form->relnamespace) ||
		form->relnamespace == MedallionSchemaOid() ||
		form->relnamespace == get_namespace_oid(CAPTURE_LOG_SCHEMA, false))
		return psprintf("%s belongs to a system or medallion catalog: its changes cannot be captured", name);
	if (form->relrowsecurity)
		return psprintf("%s has row-level security enabled: its changes cannot be captured", name);
	return NULL;
}

/* Why owner may not capture relid, or NULL. */
static char *
owner_unsuitable(Oid relid, Oid owner, const char *name)
{
	const char *role = GetUserNameFromId(owner, false);

	if (!pg_class_ownercheck(relid, owner) &&
		pg_class_aclcheck(relid, owner, ACL_TRIGGER) != ACLCHECK_OK)
		return psprintf("role \"%s\" may not create triggers on %s: its changes cannot be captured",
						role, name);
	if (pg_class_aclcheck(relid, owner, ACL_SELECT) != ACLCHECK_OK ||
		pg_namespace_aclcheck(get_rel_namespace(relid), owner,
							  ACL_USAGE) != ACLCHECK_OK)
		return psprintf("role \"%s\" may not read %s: its changes cannot be captured",
						role, name);
	return NULL;
}

/* Why the table's columns or its flows rule capture out, or NULL. */
static char *
columns_unsuitable(Oid relid, const char *name)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	uint64		flows;

	if (get_attnum(relid, CAPTURE_CHANGE_ID_COLUMN) != InvalidAttrNumber ||
		get_attnum(relid, CAPTURE_SIGN_COLUMN) != InvalidAttrNumber)
		return psprintf("%s has a column named \"%s\" or \"%s\", which change capture uses: its changes cannot be captured",
						name, CAPTURE_CHANGE_ID_COLUMN, CAPTURE_SIGN_COLUMN);
	values[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	flows = SpiExecuteAsExtensionOwner("SELECT 1 FROM medallion.flow"
									   " WHERE target_table::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
									   1, types, values, NULL, SPI_OK_SELECT);
	SPI_finish();
	if (flows > 0)
		return psprintf("%s is the target of a flow: it is read as a pipeline table, not captured",
						name);
	return NULL;
}

bool
CaptureAvailable(Oid relid, Oid owner, char **reason)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	char	   *name;
	char	   *why;

	if (!HeapTupleIsValid(tuple))
	{
		why = psprintf("relation with OID %u does not exist", relid);
		if (reason != NULL)
			*reason = why;
		return false;
	}
	name = CatalogQualifiedRelationName(relid);
	why = relation_unsuitable((Form_pg_class) GETSTRUCT(tuple), relid, name);
	ReleaseSysCache(tuple);
	if (why == NULL)
		why = owner_unsuitable(relid, owner, name);
	if (why == NULL)
		why = columns_unsuitable(relid, name);
	if (reason != NULL)
		*reason = why;
	return why == NULL;
}

/*
 * The name of a new log in medallion_state: <schema>__<table>__changes,
 * or, when that is too long or taken, a prefix of it with the table's OID.
 */
static char *
log_name(Oid relid)
{
	Oid			namespace_oid = get_namespace_oid(CAPTURE_LOG_SCHEMA, false);
	char	   *name = psprintf("%s__%s%s",
								get_namespace_name(get_rel_namespace(relid)),
								get_rel_name(relid), CAPTURE_LOG_SUFFIX);

	if (strlen(name) < NAMEDATALEN &&
		!OidIsValid(get_relname_relid(name, namespace_oid)))
		return name;
	name = psprintf("%.40s__%u%s", get_rel_name(relid), relid,
					CAPTURE_LOG_SUFFIX);
	if (OidIsValid(get_relname_relid(name, namespace_oid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s.%s\" already exists", CAPTURE_LOG_SCHEMA,
						name),
				 errhint("Drop it: medallion names the change log of %s so.",
						 CatalogQualifiedRelationName(relid))));
	return name;
}

/*
 * CREATE TABLE of a log: the change id and sign, then the captured table's
 * columns (generated ones as plain columns: the log keeps their values).
 */
static char *
log_definition(Relation relation, const char *qualified_log)
{
	TupleDesc	desc = RelationGetDescr(relation);
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (" CAPTURE_CHANGE_ID_COLUMN
					 " pg_catalog.int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
					 CAPTURE_SIGN_COLUMN " pg_catalog.int2 NOT NULL",
					 qualified_log);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped)
			continue;
		appendStringInfoString(&sql, ", ");
		SqlAppendColumnDefinition(&sql, NameStr(attr->attname), attr->atttypid,
								  attr->atttypmod, attr->attcollation);
	}
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* The four CREATE TRIGGER statements of a captured table. */
static List *
trigger_definitions(const char *qualified_table)
{
	List	   *statements = NIL;
	int			i;

	for (i = 0; i < lengthof(capture_events); i++)
	{
		const char *event = capture_events[i];
		const char *referencing = "";

		if (strcmp(event, "insert") == 0)
			referencing = " REFERENCING NEW TABLE AS " CAPTURE_NEW_TABLE;
		else if (strcmp(event, "update") == 0)
			referencing = " REFERENCING OLD TABLE AS " CAPTURE_OLD_TABLE
				" NEW TABLE AS " CAPTURE_NEW_TABLE;
		else if (strcmp(event, "delete") == 0)
			referencing = " REFERENCING OLD TABLE AS " CAPTURE_OLD_TABLE;
		statements = lappend(statements,
							 psprintf("CREATE TRIGGER " CAPTURE_TRIGGER_PREFIX "%s"
									  " %s %s ON %s%s FOR EACH STATEMENT"
									  " EXECUTE FUNCTION medallion.capture_changes()",
									  event,
									  strcmp(event, "truncate") == 0 ? "BEFORE" : "AFTER",
									  event, qualified_table, referencing));
		/* changes applied by logical replication are changes too */
		statements = lappend(statements,
							 psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER "
									  CAPTURE_TRIGGER_PREFIX "%s",
									  qualified_table, event));
	}
	return statements;
}

/*
 * Create the log and the triggers of relid, owned by owner, and register
 * it; returns the log's OID.  The caller is connected to SPI.
 */
static Oid
capture_start(Oid relid, Oid owner)
{
	Oid			namespace_oid = get_namespace_oid(CAPTURE_LOG_SCHEMA, false);
	char	   *name = log_name(relid);
	char	   *qualified_log = QuoteQualifiedName(namespace_oid, name);
	char	   *qualified_table = CatalogQualifiedRelationName(relid);
	Relation	relation = table_open(relid, AccessShareLock);
	Oid			log_relid;
	ObjectAddress dependent;
	ObjectAddress referenced;
	Oid			types[3] = {OIDOID, TEXTOID, OIDOID};
	Datum		values[3];
	ListCell   *cell;

	SpiExecuteAsExtensionOwner(log_definition(relation, qualified_log), 0,
							   NULL, NULL, NULL, SPI_OK_UTILITY);
	table_close(relation, AccessShareLock);
	SpiExecuteAsExtensionOwner(psprintf("REVOKE ALL ON %s FROM PUBLIC", qualified_log),
							   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SpiExecuteAsExtensionOwner(psprintf("ALTER TABLE %s OWNER TO %s", qualified_log,
										quote_identifier(GetUserNameFromId(owner, false))),
							   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SpiExecuteAsExtensionOwner(psprintf("COMMENT ON TABLE %s IS %s", qualified_log,
										quote_literal_cstr(psprintf("Changes of %s captured by medallion for the flows that read it: +1 a row added, -1 a row removed, in __change_id order", qualified_table))),
							   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	CommandCounterIncrement();
	log_relid = get_relname_relid(name, namespace_oid);
	ObjectAddressSet(dependent, RelationRelationId, log_relid);
	ObjectAddressSet(referenced, RelationRelationId, relid);
	recordDependencyOn(&dependent, &referenced, DEPENDENCY_AUTO);

	foreach(cell, trigger_definitions(qualified_table))
		SpiExecuteAsExtensionOwner(lfirst(cell), 0, NULL, NULL, NULL,
								   SPI_OK_UTILITY);

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(qualified_table);
	values[2] = ObjectIdGetDatum(log_relid);
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.captured_table (relid, table_name, log_table)"
							   " VALUES ($1, $2, $3)",
							   3, types, values, NULL, SPI_OK_INSERT);
	return log_relid;
}

/*
 * The log of relid, its registered name (if table_name is not NULL), and
 * whether flow_id reads relid (with its position); InvalidOid when relid is
 * not captured.  One small statement: an update runs it for every plain
 * table its views read.  The caller is connected to SPI.
 */
static Oid
capture_lookup(Oid relid, int32 flow_id, char **table_name,
			   bool *has_consumer, int64 *position)
{
	Oid			types[2] = {OIDOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	Oid			log_relid;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(flow_id);
	if (SpiExecuteAsExtensionOwner("SELECT c.log_table::pg_catalog.oid, c.table_name, k.position"
								   "  FROM medallion.captured_table c"
								   "  LEFT JOIN medallion.capture_consumer k"
								   "    ON k.relid OPERATOR(pg_catalog.=) c.relid"
								   "   AND k.flow_id OPERATOR(pg_catalog.=) $2"
								   " WHERE c.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
								   2, types, values, NULL, SPI_OK_SELECT) == 0)
		return InvalidOid;
	log_relid = DatumGetObjectId(SpiGetDatum(0, 1, &isnull));
	if (table_name != NULL)
		*table_name = SpiGetText(0, 2);
	*position = SpiGetInt64(0, 3, &isnull);
	*has_consumer = !isnull;
	return log_relid;
}

/*
 * The last change id drawn from the log's sequence (0 if none): a change
 * with a larger id is made after this call.  The caller is connected to
 * SPI.
 */
static int64
log_high_water(Oid log_relid)
{
	Oid			sequence = getIdentitySequence(log_relid, 1, false);
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	int64		value;

	values[0] = ObjectIdGetDatum(sequence);
	SpiExecuteAsExtensionOwner("SELECT pg_catalog.pg_sequence_last_value($1::pg_catalog.regclass)",
							   1, types, values, NULL, SPI_OK_SELECT);
	value = SpiGetInt64(0, 1, &isnull);
	return isnull ? 0 : value;
}

/*
 * Drop the registration of relid when its log is gone (the table was
 * dropped, and its OID taken by a new table): capture starts afresh.
 */
static void
forget_stale_capture(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(relid);
	SpiExecuteAsExtensionOwner("DELETE FROM medallion.captured_table"
							   " WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_DELETE);
}

/*
 * Let a pipeline owner read a log it does not own: the owner of a second
 * pipeline reading the table, or a pipeline's new owner (alter_pipeline).
 * The caller is connected to SPI.
 */
static void
ensure_reader(Oid log_relid, Oid owner)
{
	if (!OidIsValid(owner) ||
		pg_class_aclcheck(log_relid, owner, ACL_SELECT) == ACLCHECK_OK)
		return;
	SpiExecuteAsExtensionOwner(psprintf("GRANT SELECT ON %s TO %s",
										CatalogQualifiedRelationName(log_relid),
										quote_identifier(GetUserNameFromId(owner, false))),
							   0, NULL, NULL, NULL, SPI_OK_UTILITY);
}

void
CaptureEnsure(Oid relid, Oid owner, int32 flow_id)
{
	char	   *reason;
	Oid			log_relid;
	bool		has_consumer;
	int64		position;
	Oid			types[3] = {OIDOID, INT4OID, INT8OID};
	Datum		values[3];

	if (!CaptureAvailable(relid, owner, &reason))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s", reason)));

	/* wait out the table's writers; new ones wait for this transaction */
	CaptureHoldWriters(relid);
	SPI_connect();
	log_relid = capture_lookup(relid, flow_id, NULL, &has_consumer, &position);
	if (OidIsValid(log_relid) && !OidIsValid(CaptureRelationOwner(log_relid)))
	{
		forget_stale_capture(relid);
		log_relid = InvalidOid;
	}
	if (!OidIsValid(log_relid))
		log_relid = capture_start(relid, owner);
	ensure_reader(log_relid, owner);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(flow_id);
	values[2] = Int64GetDatum(log_high_water(log_relid));
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.capture_consumer (relid, flow_id, position)"
							   " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
							   3, types, values, NULL, SPI_OK_INSERT);
	SPI_finish();
}

static void not_captured(Oid relid, int32 flow_id) pg_attribute_noreturn();

/* The error of a flow asking for changes of a table it does not capture. */
static void
not_captured(Oid relid, int32 flow_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("changes of table %s are not captured for flow %d",
					CatalogQualifiedRelationName(relid), flow_id)));
}

/*
 * CaptureHoldWriters: see capture.h.  A plain LockRelationOid(SHARE) queues
 * behind the writers in flight, and every writer arriving meanwhile queues
 * behind it: one long transaction writing the table (a batch editing a
 * lookup table) stopped all of the table's writers for as long as it ran,
 * while a view reading the table waited to update.  So the lock is taken
 * only when it is free; until then WaitForTableWriters waits for the
 * transactions that may be writing the table, without a request of its
 * own.  It does not wait for a VACUUM of the table, whose lock conflicts
 * too: when only such a lock stands in the way (or writers keep arriving)
 * for CAPTURE_HOLD_ATTEMPTS rounds, the request queues as before (the
 * deadlock check then cancels autovacuum's work after deadlock_timeout).
 */
#define CAPTURE_HOLD_ATTEMPTS 100

void
CaptureHoldWriters(Oid relid)
{
	int			attempt;

	for (attempt = 1; attempt < CAPTURE_HOLD_ATTEMPTS; attempt++)
	{
		if (ConditionalLockRelationOid(relid, ShareLock))
			return;
		WaitForTableWriters(relid);
	}
	LockRelationOid(relid, ShareLock);
}

CaptureRange
CaptureBegin(Oid relid, int32 flow_id, Oid flow_owner)
{
	CaptureRange range;
	char	   *table_name = NULL;
	bool		has_consumer;
	int64		position;
	Oid			log_relid;

	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("captured changes can only be read at isolation level READ COMMITTED")));
	SPI_connect();
	log_relid = capture_lookup(relid, flow_id, &table_name, &has_consumer,
							   &position);
	if (!OidIsValid(log_relid) || !has_consumer)
		not_captured(relid, flow_id);
	if (OidIsValid(CaptureRelationOwner(relid)) &&
		!OidIsValid(CaptureRelationOwner(log_relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the change log of table %s, which flow \"%s\" reads, was dropped",
						table_name, CatalogGetFlowById(flow_id, false)->flow_name),
				 errhint("Drop the flow and create it again.")));
	if (!OidIsValid(CaptureRelationOwner(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s, which flow \"%s\" reads, was dropped",
						table_name, CatalogGetFlowById(flow_id, false)->flow_name),
				 errdetail("Its change log was dropped with it."),
				 errhint("Drop the flow, or create the table again and then the flow.")));
	ensure_reader(log_relid, flow_owner);
	range.from_id = position;
	range.to_id = log_high_water(log_relid);
	SPI_finish();
	range.log_table = CatalogQualifiedRelationName(log_relid);
	range.log_relid = log_relid;

	/* every id up to to_id drawn by a transaction still writing: wait */
	WaitForTableWriters(log_relid);
	return range;
}

/*
 * The lowest position of relid's consumers: every change up to it has been
 * read by all of them (*isnull when none reads relid).  The caller is
 * connected to SPI.
 */
static int64
consumers_floor(Oid relid, bool *isnull)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	SpiExecuteAsExtensionOwner("SELECT pg_catalog.min(position) FROM medallion.capture_consumer"
							   " WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_SELECT);
	return SpiGetInt64(0, 1, isnull);
}

void
CaptureEnd(Oid relid, int32 flow_id, int64 to_id)
{
	Oid			types[3] = {OIDOID, INT4OID, INT8OID};
	Datum		values[3];
	Oid			log_relid;
	bool		isnull;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(flow_id);
	values[2] = Int64GetDatum(to_id);
	SPI_connect();
	if (SpiExecuteAsExtensionOwner("UPDATE medallion.capture_consumer k SET position = $3"
								   "  FROM medallion.captured_table c"
								   " WHERE k.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
								   "   AND k.flow_id OPERATOR(pg_catalog.=) $2"
								   "   AND c.relid OPERATOR(pg_catalog.=) k.relid"
								   " RETURNING c.log_table::pg_catalog.oid",
								   3, types, values, NULL, SPI_OK_UPDATE_RETURNING) != 1)
		not_captured(relid, flow_id);
	log_relid = DatumGetObjectId(SpiGetDatum(0, 1, &isnull));

	/*
	 * Prune what every consumer has read.  One consumer prunes at a time;
	 * one that finds another pruning leaves it to the next update.
	 */
	if (OidIsValid(CaptureRelationOwner(log_relid)) &&
		ConditionalLockRelationOid(log_relid, ShareUpdateExclusiveLock))
	{
		values[0] = Int64GetDatum(consumers_floor(relid, &isnull));
		CaptureExecuteAs(CaptureRelationOwner(log_relid),
						 psprintf("DELETE FROM %s WHERE " CAPTURE_CHANGE_ID_COLUMN
								  " OPERATOR(pg_catalog.<=) $1",
								  CatalogQualifiedRelationName(log_relid)),
						 1, &types[2], values, SPI_OK_DELETE);
	}
	SPI_finish();
}

/*
 * Say in each pipeline reading relid, and in the server log, that a writer
 * emptied the table's change log holding unread changes.  The pipelines
 * are read first: writing an event runs statements of its own.
 */
static void
log_reset_events(Oid relid, int64 unread)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	char	   *message;
	int32	   *pipeline_ids;
	uint64		pipelines;
	uint64		row;
	bool		isnull;

	message = psprintf("the change log of table %s held " INT64_FORMAT " changes not yet read by every view, more than medallion.change_log_max_rows (%d): a writer emptied it, and the views that had not read it recompute from the table",
					   CatalogQualifiedRelationName(relid), unread,
					   medallion_change_log_max_rows);
	pipelines = SpiExecuteAsExtensionOwner("SELECT DISTINCT f.pipeline_id FROM medallion.capture_consumer c"
										   "  JOIN medallion.flow f USING (flow_id)"
										   " WHERE c.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
										   1, types, values, NULL, SPI_OK_SELECT);
	pipeline_ids = palloc(sizeof(int32) * (pipelines + 1));
	for (row = 0; row < pipelines; row++)
		pipeline_ids[row] = DatumGetInt32(SpiGetDatum(row, 1, &isnull));
	for (row = 0; row < pipelines; row++)
		EventLogWrite(CatalogGetPipelineById(pipeline_ids[row], false), 0,
					  NULL, "change_log_reset", "WARNING", message, NULL);
	ereport(LOG, (errmsg("%s", message)));
}

/*
 * CaptureLimitLog: see capture_internal.h.  A view whose pipeline is stopped
 * or keeps failing reads nothing, and every statement of the table's
 * writers would otherwise grow its log for good.  The log's ids come from
 * its identity sequence, so the count costs no scan.  Only a writer that
 * gets ACCESS EXCLUSIVE on the log at once empties it (no other writer and
 * no reader is in the middle of it then, so every id drawn so far is
 * committed or rolled back); otherwise a later statement tries again.  The
 * lagging consumers' positions jump to the log's high water: a view whose
 * own position then differs recomputes from the table at its next update
 * (matview_apply.c), and a consumer already there loses nothing.
 */
int64
CaptureLimitLog(Oid relid, Oid log_relid, int64 last_id)
{
	Oid			types[2] = {OIDOID, INT8OID};
	Datum		values[2];
	bool		isnull;
	int64		floor;
	int64		high_water;

	values[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	floor = consumers_floor(relid, &isnull);
	if (isnull || last_id - floor <= medallion_change_log_max_rows ||
		!ConditionalLockRelationOid(log_relid, AccessExclusiveLock))
	{
		SPI_finish();
		return isnull ? last_id : floor;
	}

	high_water = log_high_water(log_relid);
	CaptureExecuteAs(CaptureRelationOwner(log_relid),
					 psprintf("TRUNCATE %s", CatalogQualifiedRelationName(log_relid)),
					 0, NULL, NULL, SPI_OK_UTILITY);
	values[1] = Int64GetDatum(high_water);
	SpiExecuteAsExtensionOwner("UPDATE medallion.capture_consumer SET position = $2"
							   " WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
							   "   AND position OPERATOR(pg_catalog.<) $2",
							   2, types, values, NULL, SPI_OK_UPDATE);
	log_reset_events(relid, high_water - floor);
	SPI_finish();
	return high_water;
}

void
CaptureRelease(Oid relid, int32 flow_id)
{
	Oid			types[2] = {OIDOID, INT4OID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(flow_id);
	SPI_connect();
	SpiExecuteAsExtensionOwner("DELETE FROM medallion.capture_consumer"
							   " WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
							   "   AND flow_id OPERATOR(pg_catalog.=) $2",
							   2, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();
}

/* Does the log have every column of the table, by name and type? */
static bool
log_has_columns(Oid relid, Oid log_relid)
{
	Relation	relation = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(relation);
	bool		match = true;
	int			i;

	for (i = 0; match && i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		AttrNumber	attnum;

		if (attr->attisdropped)
			continue;
		attnum = get_attnum(log_relid, NameStr(attr->attname));
		match = attnum != InvalidAttrNumber &&
			get_atttype(log_relid, attnum) == attr->atttypid;
	}
	table_close(relation, AccessShareLock);
	return match;
}

void
CaptureRefreshColumns(Oid relid, Oid owner)
{
	Oid			types[3] = {OIDOID, INT4OID, INT8OID};
	Datum		values[3];
	bool		has_consumer;
	int64		position;
	Oid			log_relid;
	List	   *consumers = NIL;
	uint64		count;
	uint64		row;
	ListCell   *cell;

	CaptureHoldWriters(relid);
	SPI_connect();
	log_relid = capture_lookup(relid, 0, NULL, &has_consumer, &position);
	if (!OidIsValid(log_relid) || !OidIsValid(CaptureRelationOwner(log_relid)) ||
		log_has_columns(relid, log_relid))
	{
		SPI_finish();
		return;
	}
	values[0] = ObjectIdGetDatum(relid);
	count = SpiExecuteAsExtensionOwner("SELECT flow_id FROM medallion.capture_consumer"
									   " WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
									   1, types, values, NULL, SPI_OK_SELECT);
	for (row = 0; row < count; row++)
	{
		bool		isnull;

		consumers = lappend_int(consumers,
								DatumGetInt32(SpiGetDatum(row, 1, &isnull)));
	}
	capture_stop(relid, log_relid);
	(void) capture_start(relid, owner);
	values[2] = Int64GetDatum(CAPTURE_POSITION_RESTARTED);
	foreach(cell, consumers)
	{
		values[1] = Int32GetDatum(lfirst_int(cell));
		SpiExecuteAsExtensionOwner("INSERT INTO medallion.capture_consumer (relid, flow_id, position)"
								   " VALUES ($1, $2, $3)",
								   3, types, values, NULL, SPI_OK_INSERT);
	}
	SPI_finish();
}

List *
CaptureTablesOfFlow(int32 flow_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	MemoryContext caller_context = CurrentMemoryContext;
	List	   *relids = NIL;
	uint64		count;
	uint64		row;

	values[0] = Int32GetDatum(flow_id);
	SPI_connect();
	count = SpiExecuteAsExtensionOwner("SELECT relid::pg_catalog.oid FROM medallion.capture_consumer"
									   " WHERE flow_id OPERATOR(pg_catalog.=) $1 ORDER BY 1",
									   1, types, values, NULL, SPI_OK_SELECT);
	for (row = 0; row < count; row++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SpiGetDatum(row, 1, &isnull));
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		relids = lappend_oid(relids, relid);
		MemoryContextSwitchTo(spi_context);
	}
	SPI_finish();
	return relids;
}

/*
 * Drop the triggers and the log of relid, and its registration.  The
 * triggers go only if the table and its log still exist (a table dropped
 * takes its log with it, and its OID may since be a new table's).  The
 * caller is connected to SPI.
 */
static void
capture_stop(Oid relid, Oid log_relid)
{
	int			i;

	if (OidIsValid(CaptureRelationOwner(log_relid)) &&
		OidIsValid(CaptureRelationOwner(relid)))
	{
		char	   *table = CatalogQualifiedRelationName(relid);

		for (i = 0; i < lengthof(capture_events); i++)
			SpiExecuteAsExtensionOwner(psprintf("DROP TRIGGER IF EXISTS "
												CAPTURE_TRIGGER_PREFIX "%s ON %s",
												capture_events[i], table),
									   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	if (OidIsValid(CaptureRelationOwner(log_relid)))
		SpiExecuteAsExtensionOwner(psprintf("DROP TABLE %s",
											CatalogQualifiedRelationName(log_relid)),
								   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	forget_stale_capture(relid);
}

PG_FUNCTION_INFO_V1(medallion_capture_consumer_gone);

/*
 * medallion.capture_consumer_gone(): after a consumer row is deleted
 * (CaptureRelease, or its flow or pipeline dropped), the table's last
 * consumer takes its triggers and log with it.
 */
Datum
medallion_capture_consumer_gone(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	TriggerData *trigger_data = (TriggerData *) fcinfo->context;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.capture_consumer_gone() must be called as a trigger")));
	values[0] = heap_getattr(trigger_data->tg_trigtuple, 1,
							 RelationGetDescr(trigger_data->tg_relation),
							 &isnull);
	SPI_connect();
	if (SpiExecuteAsExtensionOwner("SELECT c.log_table::pg_catalog.oid FROM medallion.captured_table c"
								   " WHERE c.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
								   "   AND NOT EXISTS (SELECT FROM medallion.capture_consumer k"
								   "                    WHERE k.relid OPERATOR(pg_catalog.=) c.relid)",
								   1, types, values, NULL, SPI_OK_SELECT) == 1)
		capture_stop(DatumGetObjectId(values[0]),
					 DatumGetObjectId(SpiGetDatum(0, 1, &isnull)));
	SPI_finish();
	return PointerGetDatum(NULL);
}
