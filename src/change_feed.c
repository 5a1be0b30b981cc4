/*-------------------------------------------------------------------------
 *
 * change_feed.c
 *	  The change feed of an auto CDC target: what its CDC flow removed from
 *	  and added to it, for the aggregate flows that read it.
 *
 * An aggregate flow that maintains its groups by deltas (aggregate_delta.c)
 * needs, for every update, the rows its source lost and gained.  For an
 * append-only source those are the new rows; an auto CDC target also
 * closes, replaces and deletes rows.  Its CDC flow knows exactly which rows
 * it changes, so while an aggregate flow reads the target, each apply also
 * appends them to its change feed, medallion_state.<schema>__<target>__change_feed
 * (a state table, see state_table.h):
 *
 *	 _row_id			identity, the order of the feed
 *	 __medallion_sign	-1: the row was removed; 1: the row was added;
 *						0: the whole target was derived again (readers
 *						recompute everything)
 *	 <the target's columns>
 *
 * A deleted or replaced row is removed; a current SCD2 version closed in
 * place is removed as it was (__end_at NULL) and added as it is now; an
 * inserted row is added.  Readers read the feed by _row_id like any
 * append-only source, so an update costs what its changes cost instead of
 * one key lookup in the target per changed key.
 *
 * Readers read their range of the feed by its _row_id index, so what the
 * feed still holds of what they consumed costs them nothing.  Once it has
 * grown to 8 MB, an apply first removes the rows at or below the lowest
 * watermark of the flows that read it (a TRUNCATE when they have read
 * everything, the usual case, or a DELETE when another session holds a
 * lock on the feed: a VACUUM, pg_dump); it writes nothing when no flow
 * reads it.  Not at 1 MB: emptying the feed gives it a new file, which
 * makes every kept plan reading it (a continuous worker's materialized
 * views, statement_cache.c) plan again, twice (in the emptying transaction
 * and in the next, which reads the invalidation back): 3 to 15 ms per
 * view, every six updates of the 1M-order benchmark's thousand changes.
 * A feed is recorded in the CDC flow's definition ("change_feed", and
 * among its state tables), depends on the target (dropping the target
 * drops it), and is created by the first aggregate or materialized view
 * that reads the target (or by the CDC flow made again over a target one
 * reads).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/change_feed.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "bulk_insert.h"
#include "change_feed.h"
#include "flow.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "guc.h"
#include "spi_util.h"
#include "sql_names.h"
#include "state_table.h"

#define CHANGE_FEED_SUFFIX		"__change_feed"

/* What the feed's own columns hold, for their comments. */
static const char *const feed_columns[] = {"_row_id", CHANGE_FEED_SIGN_COLUMN};
static const char *const feed_column_comments[] = {
	"Order of the change in the feed; each reader remembers the last it consumed",
	"-1: the row was removed from the target as it is in the other columns; 1: it was added; 0: the target was derived again"
};

/* Consumed rows are removed once the feed has this many blocks (8 MB). */
#define CHANGE_FEED_TRIM_BLOCKS	1024
/* Unread rows are counted against the limit past this many blocks (1 MB). */
#define CHANGE_FEED_LIMIT_BLOCKS	128
#define CHANGE_FEED_KEY			"change_feed"

struct ChangeFeed
{
	Oid			relid;
	char	   *name;			/* qualified, quoted */
	int			target_natts;	/* attributes of the target, dropped too */
	int		   *feed_column;	/* per target attribute: feed column, or -1 */
	int			feed_natts;
	char	   *columns;		/* the target's columns, quoted */
	char	   *removed_current;	/* same, __end_at as NULL */
	BulkInserter *inserter;		/* opened at the first added row */
	Datum	   *values;
	bool	   *nulls;
};

/*
 * ChangeFeedEnsure: see change_feed.h.
 */
char *
ChangeFeedEnsure(FlowDesc *cdc_flow, Oid target_relid)
{
	char	   *existing = FlowDefinitionString(cdc_flow, CHANGE_FEED_KEY, false);
	Oid			namespace_oid = get_rel_namespace(target_relid);
	char	   *relname;
	char	   *name;
	Relation	target;
	TupleDesc	desc;
	StringInfoData sql;
	Oid			relid;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	int			i;

	if (existing != NULL && OidIsValid(RelidFromQualifiedName(existing, true)))
		return CatalogQualifiedRelationName(RelidFromQualifiedName(existing, true));

	name = StateTableName(namespace_oid, get_rel_name(target_relid),
						  CHANGE_FEED_SUFFIX, "change feed", &relname);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TABLE %s (\n"
					 "  _row_id pg_catalog.int8 GENERATED ALWAYS AS IDENTITY,\n"
					 "  " CHANGE_FEED_SIGN_COLUMN " pg_catalog.int2 NOT NULL",
					 name);
	target = relation_open(target_relid, AccessShareLock);
	desc = RelationGetDescr(target);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped)
			continue;
		appendStringInfoString(&sql, ",\n  ");
		SqlAppendColumnDefinition(&sql, NameStr(attr->attname), attr->atttypid,
								  attr->atttypmod, attr->attcollation);
	}
	relation_close(target, NoLock);
	appendStringInfoString(&sql, "\n)");
	relid = StateTableCreate(relname, sql.data,
							 CatalogGetPipelineById(cdc_flow->pipeline_id,
													false)->owner,
							 target_relid);
	ChangeFeedCreateIndexes(name, true, true);

	SPI_connect();
	SpiExecute(psprintf("COMMENT ON TABLE %s IS %s", name,
						quote_literal_cstr(psprintf("Change feed of %s, written by auto CDC flow \"%s\" for the aggregate flows that read it: rows removed (%s -1) and added (1); 0 means the target was derived again",
													CatalogQualifiedRelationName(target_relid),
													cdc_flow->flow_name,
													CHANGE_FEED_SIGN_COLUMN))),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	FlowCreateColumnComments(name, lengthof(feed_columns), feed_columns,
							 feed_column_comments);

	values[0] = Int32GetDatum(cdc_flow->flow_id);
	name = CatalogQualifiedRelationName(relid);
	values[1] = CStringGetTextDatum(name);
	SpiExecuteAsExtensionOwner("UPDATE medallion.flow"
							   " SET definition = definition OPERATOR(pg_catalog.||)"
							   " pg_catalog.jsonb_build_object('" CHANGE_FEED_KEY "', $2,"
							   "   " STATE_TABLES_WITH_SQL("$2") ")"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   2, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
	/* name lived in SPI's memory, which SPI_finish freed */
	return CatalogQualifiedRelationName(relid);
}

/*
 * Has the part of the feed that some reader has not consumed yet grown past
 * medallion.change_feed_max_rows?  A reader that keeps failing (or a
 * pipeline whose aggregate is broken) would otherwise make its CDC flow
 * append to the feed forever.  Row ids come from the feed's identity
 * sequence, so the count costs no scan; it may count a few rows of aborted
 * transactions, never fewer than there are.  When it is over, a WARNING
 * event says so.
 */
static bool
change_feed_over_limit(FlowDesc *cdc_flow, Oid feed_relid, const char *name,
					   int64 consumed)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	int64		last;

	if (medallion_change_feed_max_rows <= 0)
		return false;
	values[0] = ObjectIdGetDatum(FlowRowIdSequence(feed_relid));
	SpiExecute("SELECT pg_catalog.pg_sequence_last_value($1::pg_catalog.regclass)",
			   1, types, values, NULL, SPI_OK_SELECT);
	last = SpiGetInt64(0, 1, &isnull);
	if (isnull || last - consumed <= medallion_change_feed_max_rows)
		return false;

	EventLogWrite(CatalogGetPipelineById(cdc_flow->pipeline_id, false), 0,
				  cdc_flow->flow_name, "change_feed_reset", "WARNING",
				  psprintf("change feed %s held " INT64_FORMAT " rows not yet read by every aggregate, more than medallion.change_feed_max_rows (%d): it was emptied, and its readers recompute from the target",
						   name, last - consumed, medallion_change_feed_max_rows),
				  NULL);
	return true;
}

void
ChangeFeedCreateIndexes(const char *name, bool row_id, bool reset_markers)
{
	if (row_id)
		StateTableCreateIndex(psprintf("CREATE INDEX ON %s (_row_id)", name));
	if (reset_markers)
		StateTableCreateIndex(psprintf("CREATE INDEX ON %s (_row_id) WHERE "
									   CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.=) 0",
									   name));
}

/*
 * Empty the feed (without waiting for a VACUUM of it or a pg_dump) and
 * leave the reset marker: readers start over.
 */
static void
change_feed_truncate_with_reset(const char *name)
{
	SpiEmptyTable(RelidFromQualifiedName(name, false));
	SpiExecute(psprintf("INSERT INTO %s (" CHANGE_FEED_SIGN_COLUMN ") VALUES (0)",
						name),
			   0, NULL, NULL, NULL, SPI_OK_INSERT);
}

/*
 * Remove what every reader of the feed has consumed.  Trimming costs about
 * the same whatever it removes (a TRUNCATE when everything was consumed),
 * so it waits until the feed has grown to CHANGE_FEED_TRIM_BLOCKS (see the
 * file's header).  A feed past 1 MB holding more unread rows than
 * medallion.change_feed_max_rows is emptied instead, and its lagging
 * readers recompute from the target.  consumed is the lowest watermark of
 * the readers, or -1 when none has read anything.
 */
static void
change_feed_trim(FlowDesc *cdc_flow, Oid relid, const char *name,
				 int64 readers, int64 consumed)
{
	Relation	feed_rel;
	BlockNumber blocks;
	int64		last;
	bool		empty;

	feed_rel = relation_open(relid, AccessShareLock);
	blocks = RelationGetNumberOfBlocks(feed_rel);
	relation_close(feed_rel, NoLock);
	if (readers > 0 && blocks >= CHANGE_FEED_LIMIT_BLOCKS &&
		change_feed_over_limit(cdc_flow, relid, name, Max(consumed, 0)))
	{
		change_feed_truncate_with_reset(name);
		return;
	}
	if (blocks < CHANGE_FEED_TRIM_BLOCKS && !(readers == 0 && blocks > 0))
		return;

	SpiExecute(psprintf("SELECT pg_catalog.max(_row_id) FROM %s", name),
			   0, NULL, NULL, NULL, SPI_OK_SELECT);
	last = SpiGetInt64(0, 1, &empty);
	if (empty)
		return;
	if (readers == 0 || consumed >= last)
	{
		/*
		 * Not a plain TRUNCATE: a VACUUM of the feed, by autovacuum
		 * (cancelled only after deadlock_timeout) or by hand, or a pg_dump,
		 * would hold up the apply.
		 */
		SpiEmptyTable(relid);
		return;
	}
	if (consumed > 0)
	{
		Oid			trim_types[1] = {INT8OID};
		Datum		trim_values[1] = {Int64GetDatum(consumed)};

		SpiExecute(psprintf("DELETE FROM %s WHERE _row_id OPERATOR(pg_catalog.<=) $1",
							name),
				   1, trim_types, trim_values, NULL, SPI_OK_DELETE);
	}
}

/*
 * A feed being written: the target's columns as the feed names them, and
 * the same with __end_at NULL (a closed version as it was when current).
 */
static ChangeFeed *
change_feed_open(Oid relid, const char *name, Oid target_relid)
{
	ChangeFeed *feed = palloc0(sizeof(ChangeFeed));
	Relation	target;
	TupleDesc	desc;
	StringInfoData columns;
	StringInfoData removed_current;
	int			i;

	feed->relid = relid;
	feed->name = pstrdup(name);
	initStringInfo(&columns);
	initStringInfo(&removed_current);
	target = relation_open(target_relid, AccessShareLock);
	desc = RelationGetDescr(target);
	feed->target_natts = desc->natts;
	feed->feed_column = palloc(sizeof(int) * Max(desc->natts, 1));
	feed->feed_natts = 2;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *column = quote_identifier(NameStr(attr->attname));

		if (attr->attisdropped)
		{
			feed->feed_column[i] = -1;
			continue;
		}
		feed->feed_column[i] = feed->feed_natts++;
		appendStringInfo(&columns, ", %s", column);
		if (strcmp(NameStr(attr->attname), "__end_at") == 0)
			appendStringInfo(&removed_current, ", NULL::%s",
							 format_type_extended(attr->atttypid, attr->atttypmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY));
		else
			appendStringInfo(&removed_current, ", %s", column);
	}
	relation_close(target, NoLock);
	feed->columns = columns.data;
	feed->removed_current = removed_current.data;
	feed->values = palloc0(sizeof(Datum) * feed->feed_natts);
	feed->nulls = palloc0(sizeof(bool) * feed->feed_natts);
	return feed;
}

/*
 * ChangeFeedBegin: see change_feed.h.  The caller is connected to SPI and
 * runs as the pipeline owner.  An apply that derives the target again
 * empties the feed anyway (ChangeFeedReset), so it trims nothing first.
 */
ChangeFeed *
ChangeFeedBegin(FlowDesc *cdc_flow, Oid target_relid, bool deriving_again)
{
	char	   *name = FlowDefinitionString(cdc_flow, CHANGE_FEED_KEY, false);
	Oid			relid;
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	int64		readers;
	int64		consumed;
	bool		isnull;

	if (name == NULL)
		return NULL;
	relid = RelidFromQualifiedName(name, true);
	if (!OidIsValid(relid))
		return NULL;
	name = CatalogQualifiedRelationName(relid);

	/*
	 * The readers, and what every one of them has consumed: aggregate flows
	 * (their watermark) and materialized views (their position of the feed,
	 * matview_apply.c).
	 */
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(CatalogFlowTypeName(FLOW_TYPE_AGGREGATE));
	values[2] = CStringGetTextDatum(CatalogFlowTypeName(FLOW_TYPE_MATERIALIZED_VIEW));
	SpiExecuteAsExtensionOwner("SELECT pg_catalog.count(*), pg_catalog.min(r.consumed) FROM ("
							   "SELECT watermark AS consumed FROM medallion.flow"
							   " WHERE flow_type OPERATOR(pg_catalog.=) $2"
							   "   AND (definition OPERATOR(pg_catalog.->>) '" CHANGE_FEED_KEY "')"
							   "       OPERATOR(pg_catalog.=) $1"
							   " UNION ALL "
							   "SELECT COALESCE((flow_state OPERATOR(pg_catalog.->) 'positions'"
							   "       OPERATOR(pg_catalog.->>) $1)::pg_catalog.int8, 0)"
							   "  FROM medallion.flow"
							   " WHERE flow_type OPERATOR(pg_catalog.=) $3"
							   "   AND (definition OPERATOR(pg_catalog.->) 'change_feeds')"
							   "       OPERATOR(pg_catalog.?) $1) r",
							   3, types, values, NULL, SPI_OK_SELECT);
	readers = SpiGetInt64(0, 1, NULL);
	consumed = SpiGetInt64(0, 2, &isnull);
	if (!deriving_again)
		change_feed_trim(cdc_flow, relid, name, readers, isnull ? -1 : consumed);
	if (readers == 0)
		return NULL;
	return change_feed_open(relid, name, target_relid);
}

/*
 * ChangeFeedCaptureSql: see change_feed.h.
 */
char *
ChangeFeedCaptureSql(ChangeFeed *feed, const char *dml, bool closing)
{
	if (!closing)
		return psprintf("WITH __medallion_r AS (%s RETURNING *)\n"
						"INSERT INTO %s (" CHANGE_FEED_SIGN_COLUMN "%s)\n"
						"SELECT -1%s FROM __medallion_r",
						dml, feed->name, feed->columns, feed->columns);
	return psprintf("WITH __medallion_r AS (%s RETURNING __medallion_t.*)\n"
					"INSERT INTO %s (" CHANGE_FEED_SIGN_COLUMN "%s)\n"
					"SELECT -1%s FROM __medallion_r\n"
					"UNION ALL\n"
					"SELECT 1%s FROM __medallion_r",
					dml, feed->name, feed->columns, feed->removed_current,
					feed->columns);
}

/* ChangeFeedName: see change_feed.h. */
const char *
ChangeFeedName(ChangeFeed *feed)
{
	return feed->name;
}

/*
 * ChangeFeedAddRow: see change_feed.h.
 */
void
ChangeFeedAddRow(ChangeFeed *feed, Datum *values, bool *nulls)
{
	int			i;

	if (feed->inserter == NULL)
		feed->inserter = BulkInsertBegin(feed->relid, true);
	feed->values[0] = Int64GetDatum(0);	/* the sequence gives it */
	feed->nulls[0] = false;
	feed->values[1] = Int16GetDatum(1);
	feed->nulls[1] = false;
	for (i = 0; i < feed->target_natts; i++)
	{
		if (feed->feed_column[i] < 0)
			continue;
		feed->values[feed->feed_column[i]] = values[i];
		feed->nulls[feed->feed_column[i]] = nulls[i];
	}
	BulkInsertRow(feed->inserter, feed->values, feed->nulls);
}

/*
 * ChangeFeedReset: see change_feed.h.  What the feed held is of no use
 * any more: readers that see the marker recompute from the target.
 */
void
ChangeFeedReset(ChangeFeed *feed)
{
	change_feed_truncate_with_reset(feed->name);
}

/*
 * ChangeFeedEnd: see change_feed.h.
 */
void
ChangeFeedEnd(ChangeFeed *feed)
{
	if (feed->inserter != NULL)
		BulkInsertEnd(feed->inserter);
	feed->inserter = NULL;
}

/* Fewest rows of a delta for which a feed's column statistics matter. */
#define FEED_STATISTICS_MIN_ROWS	1000

/*
 * ChangeFeedEnsureStatistics: see change_feed.h.  A feed vacuumed when it
 * held its reset marker alone is counted at a row per page, and the range
 * estimate of row_range.c is capped by that count: 40 customer changes
 * taken for one row, whose old state the planner then read again for each
 * of 500 order changes.  A feed never analysed has no statistics of its
 * columns: "__end_at IS NULL" is taken for 0.5% of the rows, a 1,500-row
 * SCD2 delta for 10.  Autovacuum corrects both within a minute or two; the
 * reads in between would be planned blind.  Rare: the counts then cover
 * the delta until the feed's rows per page change tenfold.  ANALYZE reads
 * at most 30,000 rows (with the default statistics target).
 */
void
ChangeFeedEnsureStatistics(Oid feed_relid, int64 delta_rows)
{
	Relation	feed = relation_open(feed_relid, AccessShareLock);
	float4		tuples = feed->rd_rel->reltuples;
	BlockNumber counted_pages = feed->rd_rel->relpages;
	BlockNumber pages = RelationGetNumberOfBlocks(feed);

	relation_close(feed, AccessShareLock);
	if (tuples < 0 ? delta_rows < FEED_STATISTICS_MIN_ROWS :
		counted_pages == 0 || tuples / counted_pages * pages >= delta_rows)
		return;

	/*
	 * A VACUUM or ANALYZE of the feed under way (autovacuum's, which a
	 * waiting ANALYZE cancels only after deadlock_timeout, or one by hand)
	 * would hold up the update: this read is planned with the counts it
	 * has, and the next reader tries again.
	 */
	if (!ConditionalLockRelationOid(feed_relid, ShareUpdateExclusiveLock))
		return;
	SpiExecute(psprintf("ANALYZE %s", CatalogQualifiedRelationName(feed_relid)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
}
