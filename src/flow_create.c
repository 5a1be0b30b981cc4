/*-------------------------------------------------------------------------
 *
 * flow_create.c
 *	  The steps every create_* function of a flow type takes, and how
 *	  replace => true runs them on an existing flow (see flow_create.h).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "flow_create.h"
#include "flow_definition.h"
#include "flow_lifecycle.h"
#include "flow_order.h"
#include "spi_util.h"
#include "sql_names.h"
#include "update_control.h"

/*
 * The transaction (local id) in which a replace is under way: the comment
 * functions keep the comments that exist meanwhile.  Set by Begin, cleared
 * by Register; a replace that failed leaves an id no later transaction has.
 */
static LocalTransactionId replacing_lxid = InvalidLocalTransactionId;

static bool
replacing(void)
{
	return replacing_lxid != InvalidLocalTransactionId &&
		replacing_lxid == MyProc->lxid;
}

/*
 * Does replacing a flow of this type keep its target's data (and columns)?
 * A bronze table holds what was ingested: its new options apply to new
 * objects only.  Every other type is recomputed from its source.
 */
static bool
replace_keeps_data(FlowType type)
{
	return type == FLOW_TYPE_BRONZE;
}

/*
 * A flow that replace => true is about to replace must be of create's
 * pipeline and type.  A pipeline of another role is refused by its
 * ownership check before anything is said about it.  Then the pipeline's
 * update lock (a running update is waited for) and the flow's catalog row
 * (a direct apply is waited for) keep updates off the flow until the
 * replace commits; the row is read again under them.
 */
static FlowDesc *
replace_check_and_lock(FlowCreate *create, FlowDesc *flow)
{
	if (flow->pipeline_id != create->pipeline->pipeline_id)
	{
		PipelineDesc *other = CatalogGetPipelineById(flow->pipeline_id, false);

		CatalogCheckPipelineOwner(other);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flow \"%s\" belongs to pipeline \"%s\", not to pipeline \"%s\"",
						flow->flow_name, other->pipeline_name,
						create->pipeline->pipeline_name),
				 errhint("Replace it through pipeline \"%s\", or drop it with medallion.drop_flow() first.",
						 other->pipeline_name)));
	}
	if (flow->type != create->type)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot replace %s flow \"%s\" by a flow of type %s",
						flow->flow_type, flow->flow_name,
						CatalogFlowTypeName(create->type)),
				 errdetail("replace => true changes a flow's definition, not its type."),
				 errhint("Drop the flow first with medallion.drop_flow('%s', drop_table => true), then create the new one.",
						 flow->flow_name)));

	UpdateControlLockPipeline(create->pipeline->pipeline_id, UPDATE_STOP_NONE);
	flow = CatalogGetFlowById(flow->flow_id, false);
	CatalogShareLockFlow(flow);
	return flow;
}

/*
 * The flow replace => true replaces: the flow of the existing table relid
 * (its defining flow where several feed it), checked and locked.
 */
static FlowDesc *
replace_find_flow(FlowCreate *create, Oid relid)
{
	FlowDesc   *flow = CatalogGetFlowByTarget(relid, true);

	if (flow == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", create->target_name),
				 errdetail("It is not the target of a medallion flow, so replace => true has no flow to replace."),
				 errhint("Flows create their target table; choose a new name or drop the table.")));
	return replace_check_and_lock(create, flow);
}

/*
 * The definition member that names the columns a flow type keys its
 * target's indexes on (dedup index, primary key, unique index).
 */
static const char *
replace_key_member(FlowType type)
{
	switch (type)
	{
		case FLOW_TYPE_SILVER:
			return "dedup_keys";
		case FLOW_TYPE_AUTO_CDC:
		case FLOW_TYPE_AUTO_CDC_SNAPSHOT:
			return "keys";
		case FLOW_TYPE_AGGREGATE:
			return "group_columns";
		default:
			return NULL;
	}
}

/*
 * Does index (of the replaced target) key exactly the old key columns,
 * perhaps followed by __start_at (an SCD2 primary key)?  Such an index is
 * the flow type's own: the new definition makes its own again.
 */
static bool
replace_is_key_index(Oid relid, Oid index_oid, List *keys)
{
	Relation	index = index_open(index_oid, AccessShareLock);
	int			nkeyatts = index->rd_index->indnkeyatts;
	bool		match = (nkeyatts == list_length(keys) ||
						 nkeyatts == list_length(keys) + 1);
	int			i;

	for (i = 0; match && i < nkeyatts; i++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[i];
		const char *expected = i < list_length(keys) ?
			list_nth(keys, i) : "__start_at";

		match = attnum > 0 &&
			strcmp(get_attname(relid, attnum, false), expected) == 0;
	}
	index_close(index, AccessShareLock);
	return match;
}

/* Drop the replaced target's indexes (or constraints) on its old keys. */
static void
replace_drop_key_indexes(FlowCreate *create)
{
	const char *member = replace_key_member(create->type);
	List	   *keys;
	Relation	rel;
	List	   *indexes;
	ListCell   *cell;

	if (member == NULL)
		return;
	keys = FlowDefinitionStringList(create->replaced, member, false);
	if (keys == NIL)
		return;
	rel = relation_open(create->target_relid, AccessExclusiveLock);
	indexes = RelationGetIndexList(rel);
	relation_close(rel, NoLock);
	foreach(cell, indexes)
	{
		Oid			index_oid = lfirst_oid(cell);
		Oid			constraint_oid;

		if (!replace_is_key_index(create->target_relid, index_oid, keys))
			continue;
		constraint_oid = get_index_constraint(index_oid);
		if (OidIsValid(constraint_oid))
			FlowCreateExecute(psprintf("ALTER TABLE %s DROP CONSTRAINT %s",
									   create->target_name,
									   quote_identifier(get_constraint_name(constraint_oid))));
		else
			FlowCreateExecute(psprintf("DROP INDEX %s",
									   CatalogQualifiedRelationName(index_oid)));
	}
}

/*
 * Make the replaced flow's target ready for its new definition: drop what
 * the flow type makes anew (companion views, internal objects, indexes on
 * the old keys), and empty it, as the full refresh that follows would.
 */
static void
replace_clear_target(FlowCreate *create)
{
	FlowDropCompanionViews(create->replaced);
	FlowDropInternalObjects(create->replaced);
	replace_drop_key_indexes(create);
	FlowCreateExecute(psprintf("TRUNCATE %s", create->target_name));
}

/*
 * The pipeline is looked up and its ownership checked before the target's
 * name is resolved, so that a role that may not manage the pipeline learns
 * nothing about the schemas named in the call.
 */
void
FlowCreateBegin(FlowCreate *create, FlowType type, const char *pipeline_name,
				const char *target_table, bool replace)
{
	Oid			relid;

	memset(create, 0, sizeof(FlowCreate));
	create->type = type;
	replacing_lxid = InvalidLocalTransactionId;
	create->pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(create->pipeline);

	if (!replace)
		ResolveNewTableName(target_table, &create->namespace_oid,
							&create->relation_name);
	else
		ResolveTableName(target_table, &create->namespace_oid,
						 &create->relation_name);
	create->target_name = QuoteQualifiedName(create->namespace_oid,
											 create->relation_name);
	relid = get_relname_relid(create->relation_name, create->namespace_oid);
	if (!replace || !OidIsValid(relid))
		return;

	create->replaced = replace_find_flow(create, relid);
	create->target_relid = relid;
	replacing_lxid = MyProc->lxid;
	if (!replace_keeps_data(type))
		replace_clear_target(create);
}

/*
 * A named flow into a shared target is found by its name, not its
 * target's: the target's name answers with its defining flow.  A flow of
 * that name into another table, or of another type, is not the flow the
 * caller means to replace, so both are refused before anything is locked.
 * Nothing is dropped or emptied here: an append flow's target keeps its
 * rows until the update that recomputes it (see replace_mark), and a
 * bronze flow keeps its data.
 */
bool
FlowCreateBeginNamed(FlowCreate *create, FlowType type, const char *flow_name)
{
	FlowDesc   *flow = FlowLookupByName(flow_name, 0, NULL);

	create->type = type;
	create->flow_name = pstrdup(flow_name);
	replacing_lxid = InvalidLocalTransactionId;
	if (flow == NULL)
		return false;
	if (flow->pipeline_id == create->pipeline->pipeline_id &&
		flow->type != type)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("flow \"%s\" is of type %s, not %s",
						flow->flow_name, flow->flow_type,
						CatalogFlowTypeName(type)),
				 errdetail("replace => true changes a flow's definition, not its type."),
				 errhint("Give the new flow a name of its own, or drop flow \"%s\" with medallion.drop_flow first.",
						 flow->flow_name)));
	if (flow->pipeline_id == create->pipeline->pipeline_id &&
		flow->target_relid != create->target_relid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flow \"%s\" writes to table %s, not to %s",
						flow->flow_name,
						CatalogQualifiedRelationName(flow->target_relid),
						create->target_name),
				 errdetail("replace => true changes a flow's definition, not its target."),
				 errhint("Drop the flow with medallion.drop_flow('%s') and add it again into %s.",
						 flow->flow_name, create->target_name)));
	create->replaced = replace_check_and_lock(create, flow);
	replacing_lxid = MyProc->lxid;
	return true;
}

/*
 * Is <target><suffix> a companion table of the replaced flow that Begin
 * kept (to be altered in place, or dropped)?  Only a silver flow's
 * quarantine table is, when its definition had one: a table of that name
 * that the flow did not make is never taken for its own.
 */
static bool
replace_kept_companion(FlowCreate *create, const char *suffix)
{
	return create->replaced != NULL && create->type == FLOW_TYPE_SILVER &&
		strcmp(suffix, "_quarantine") == 0 &&
		FlowDefinitionBool(create->replaced, "quarantine", false) &&
		OidIsValid(get_relname_relid(psprintf("%s%s", create->relation_name,
											  suffix),
									 create->namespace_oid));
}

bool
FlowCreateReplaceArgument(FunctionCallInfo fcinfo, int argno)
{
	return !PG_ARGISNULL(argno) && PG_GETARG_BOOL(argno);
}

char *
FlowCreateCompanion(FlowCreate *create, const char *suffix, const char *what,
					char **relation_name)
{
	char	   *name = psprintf("%s%s", create->relation_name, suffix);

	/* the replaced flow's own (FlowCreateCompanionTable alters it) */
	if (!replace_kept_companion(create, suffix))
		name = CompanionRelationName(create->namespace_oid,
									 create->relation_name, suffix, what);
	if (relation_name != NULL)
		*relation_name = name;
	return QuoteQualifiedName(create->namespace_oid, name);
}

void
FlowCreateExecute(const char *sql)
{
	SPI_connect();
	SpiExecute(sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
}

/*
 * The forms of the comments medallion derives from a flow's definition (a
 * silver column's expression, an aggregate's items, the target's source):
 * rewritten on replace, since the definition they describe changed.
 */
static const char *const derived_comment_prefixes[] = {
	"From the query: ", "Group: ", "Aggregate: ", "medallion ",
	"Aggregate of medallion pipeline ",
};

/* Is comment one that medallion derived from the flow's old definition? */
static bool
comment_is_derived(const char *comment)
{
	int			i;

	for (i = 0; i < lengthof(derived_comment_prefixes); i++)
		if (strncmp(comment, derived_comment_prefixes[i],
					strlen(derived_comment_prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * While replacing, is there a comment on the relation (or its column, when
 * column is not NULL) that is not medallion's own derived one?  It is kept:
 * a DBA's words win over medallion's.
 */
static bool
replace_keeps_comment(const char *relation_name, const char *column)
{
	Oid			relid;
	AttrNumber	attnum = 0;
	char	   *comment;

	if (!replacing())
		return false;
	relid = RelidFromQualifiedName(relation_name, true);
	if (!OidIsValid(relid))
		return false;
	if (column != NULL)
	{
		attnum = get_attnum(relid, column);
		if (attnum == InvalidAttrNumber)
			return false;
	}
	comment = GetComment(relid, RelationRelationId, attnum);
	return comment != NULL && !comment_is_derived(comment);
}

void
FlowCreateComment(const char *relation_name, const char *comment)
{
	if (replace_keeps_comment(relation_name, NULL))
		return;
	FlowCreateExecute(psprintf("COMMENT ON TABLE %s IS %s", relation_name,
							   quote_literal_cstr(comment)));
}

void
FlowCreateColumnComments(const char *relation_name, int ncolumns,
						 const char *const *columns,
						 const char *const *comments)
{
	int			i;

	for (i = 0; i < ncolumns; i++)
	{
		if (replace_keeps_comment(relation_name, columns[i]))
			continue;
		FlowCreateExecute(psprintf("COMMENT ON COLUMN %s.%s IS %s",
								   relation_name,
								   quote_identifier(columns[i]),
								   quote_literal_cstr(comments[i])));
	}
}

/*
 * The columns create_sql ("CREATE TABLE <relation_name> ...") makes: the
 * statement is run under a scratch name beside the table, read, and
 * dropped, so that every flow type's own DDL (CREATE TABLE AS included)
 * says what its target looks like, with PostgreSQL resolving the types.
 */
static TupleDesc
replace_wanted_columns(Oid relid, const char *relation_name,
					   const char *create_sql)
{
	char	   *prefix = psprintf("CREATE TABLE %s", relation_name);
	Oid			namespace_oid = get_rel_namespace(relid);
	char	   *scratch;
	char	   *scratch_name;
	Relation	rel;
	TupleDesc	desc;

	if (strncmp(create_sql, prefix, strlen(prefix)) != 0)
		elog(ERROR, "unexpected CREATE statement for %s", relation_name);
	scratch = ChooseRelationName(get_rel_name(relid), NULL, "replace",
								 namespace_oid, false);
	scratch_name = QuoteQualifiedName(namespace_oid, scratch);
	FlowCreateExecute(psprintf("CREATE TABLE %s%s", scratch_name,
							   create_sql + strlen(prefix)));
	CommandCounterIncrement();
	rel = relation_open(get_relname_relid(scratch, namespace_oid),
						AccessShareLock);
	desc = CreateTupleDescCopyConstr(RelationGetDescr(rel));
	relation_close(rel, AccessShareLock);
	FlowCreateExecute(psprintf("DROP TABLE %s", scratch_name));
	return desc;
}

/* The live column of desc named name, or NULL. */
static Form_pg_attribute
replace_find_column(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (!attr->attisdropped && strcmp(NameStr(attr->attname), name) == 0)
			return attr;
	}
	return NULL;
}

/*
 * Refuse to drop or retype column attr of relid when a view (or rule) of
 * another relation depends on it: ALTER TABLE would refuse too, but with a
 * hint to use CASCADE, which would drop the DBA's view.
 */
static void
replace_refuse_dependents(FlowCreate *create, Oid relid,
						  const char *relation_name, Form_pg_attribute attr,
						  Form_pg_attribute wanted)
{
	Oid			types[2] = {OIDOID, INT4OID};
	Datum		values[2];
	char	   *view = NULL;
	MemoryContext caller_context = CurrentMemoryContext;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(attr->attnum);
	SPI_connect();
	SpiExecute("SELECT r.ev_class::pg_catalog.regclass::pg_catalog.text"
			   "  FROM pg_catalog.pg_depend d"
			   "  JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid"
			   " WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
			   "   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
			   "   AND d.refobjid OPERATOR(pg_catalog.=) $1"
			   "   AND d.refobjsubid OPERATOR(pg_catalog.=) $2"
			   "   AND r.ev_class OPERATOR(pg_catalog.<>) $1"
			   " ORDER BY 1 LIMIT 1",
			   2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		view = MemoryContextStrdup(caller_context, SpiGetText(0, 1));
	SPI_finish();
	if (view == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("cannot replace flow \"%s\": view %s depends on column \"%s\" of %s",
					create->replaced->flow_name, view,
					NameStr(attr->attname), relation_name),
			 wanted == NULL ?
			 errdetail("The new definition has no column \"%s\".",
					   NameStr(attr->attname)) :
			 errdetail("The new definition changes the type of column \"%s\" from %s to %s.",
					   NameStr(attr->attname),
					   format_type_with_typemod(attr->atttypid, attr->atttypmod),
					   format_type_with_typemod(wanted->atttypid, wanted->atttypmod)),
			 errhint("Drop the view and create it again after the replace, or keep the column as it is in the new definition.")));
}

/* " type [COLLATE c]" of a column, schema-qualified. */
static char *
replace_column_type(Form_pg_attribute attr)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, " %s",
					 format_type_extended(attr->atttypid, attr->atttypmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN |
										  FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(attr->attcollation) &&
		attr->attcollation != get_typcollation(attr->atttypid))
		appendStringInfoString(&sql, SqlCollateClause(attr->attcollation));
	return sql.data;
}

/* Change one kept column to what wanted says, where it differs. */
static void
replace_alter_column(FlowCreate *create, Oid relid, const char *relation_name,
					 Form_pg_attribute have, Form_pg_attribute wanted)
{
	const char *column = quote_identifier(NameStr(have->attname));

	if (have->atttypid != wanted->atttypid ||
		have->atttypmod != wanted->atttypmod ||
		have->attcollation != wanted->attcollation)
	{
		replace_refuse_dependents(create, relid, relation_name, have, wanted);
		FlowCreateExecute(psprintf("ALTER TABLE %s ALTER COLUMN %s TYPE%s USING NULL",
								   relation_name, column,
								   replace_column_type(wanted)));
	}
	if (have->attnotnull != wanted->attnotnull)
		FlowCreateExecute(psprintf("ALTER TABLE %s ALTER COLUMN %s %s NOT NULL",
								   relation_name, column,
								   wanted->attnotnull ? "SET" : "DROP"));
}

void
FlowCreateAlterColumns(FlowCreate *create, Oid relid,
					   const char *relation_name, const char *create_sql)
{
	TupleDesc	wanted = replace_wanted_columns(relid, relation_name,
												create_sql);
	Relation	rel = relation_open(relid, AccessExclusiveLock);
	TupleDesc	have = CreateTupleDescCopyConstr(RelationGetDescr(rel));
	int			i;

	relation_close(rel, NoLock);
	for (i = 0; i < have->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(have, i);

		if (attr->attisdropped ||
			replace_find_column(wanted, NameStr(attr->attname)) != NULL)
			continue;
		replace_refuse_dependents(create, relid, relation_name, attr, NULL);
		FlowCreateExecute(psprintf("ALTER TABLE %s DROP COLUMN %s",
								   relation_name,
								   quote_identifier(NameStr(attr->attname))));
	}
	for (i = 0; i < wanted->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(wanted, i);
		Form_pg_attribute existing = replace_find_column(have,
														 NameStr(attr->attname));

		if (attr->attisdropped)
			continue;
		if (existing != NULL)
			replace_alter_column(create, relid, relation_name, existing, attr);
		else
			FlowCreateExecute(psprintf("ALTER TABLE %s ADD COLUMN %s%s%s",
									   relation_name,
									   quote_identifier(NameStr(attr->attname)),
									   replace_column_type(attr),
									   attr->attnotnull ? " NOT NULL" : ""));
	}
	CommandCounterIncrement();
}

/*
 * The new table is found by name in the schema Begin resolved, after a
 * command counter increment makes the CREATE visible.  A replaced target
 * is altered instead (its columns are fixed for a flow that keeps its
 * data).
 */
void
FlowCreateTable(FlowCreate *create, const char *create_sql)
{
	if (create->replaced != NULL)
	{
		if (!replace_keeps_data(create->type))
			FlowCreateAlterColumns(create, create->target_relid,
								   create->target_name, create_sql);
		return;
	}
	FlowCreateExecute(create_sql);
	CommandCounterIncrement();
	create->target_relid = get_relname_relid(create->relation_name,
											 create->namespace_oid);
	if (!OidIsValid(create->target_relid))
		elog(ERROR, "could not find the new table %s", create->target_name);
}

void
FlowCreateCompanionTable(FlowCreate *create, const char *relation_name,
						 const char *create_sql)
{
	Oid			relid = InvalidOid;

	/* FlowCreateCompanion named an existing table only if it is the flow's */
	if (create->replaced != NULL)
		relid = RelidFromQualifiedName(relation_name, true);
	if (!OidIsValid(relid))
	{
		FlowCreateExecute(create_sql);
		return;
	}
	FlowCreateExecute(psprintf("TRUNCATE %s", relation_name));
	FlowCreateAlterColumns(create, relid, relation_name, create_sql);
}

void
FlowCreateDropCompanion(FlowCreate *create, const char *suffix)
{
	if (!replace_kept_companion(create, suffix))
		return;
	FlowCreateExecute(psprintf("DROP TABLE %s",
							   QuoteQualifiedName(create->namespace_oid,
												  psprintf("%s%s",
														   create->relation_name,
														   suffix))));
}

/*
 * Mark the flows flow_ids of a pipeline and every flow downstream of them
 * for recompute; their names as a JSON array.
 */
static char *
mark_for_recompute(int32 pipeline_id, List *flow_ids)
{
	List	   *flows = CatalogGetFlows(pipeline_id);
	List	   *ids = NIL;
	StringInfoData names;
	ListCell   *cell;

	initStringInfo(&names);
	appendStringInfoChar(&names, '[');
	foreach(cell, FlowOrderDownstream(flows, flow_ids))
	{
		FlowDesc   *marked = lfirst(cell);

		ids = lappend_int(ids, marked->flow_id);
		if (names.len > 1)
			appendStringInfoString(&names, ", ");
		escape_json(&names, marked->flow_name);
	}
	appendStringInfoChar(&names, ']');
	CatalogSetRefreshPending(ids, true);
	return names.data;
}

char *
FlowCreateMarkForRecompute(const FlowDesc *flow)
{
	return mark_for_recompute(flow->pipeline_id,
							  list_make1_int(flow->flow_id));
}

/*
 * What a replace recomputes.  An append flow's rows in its target cannot
 * be told from the other flows' (the rows do not record their flow), so
 * replacing it recomputes its whole target: every flow into the target
 * (its defining flow, the other append flows, once flows included) and
 * those downstream, as refresh_tables naming the target does.  Any other
 * flow: itself and those downstream (FlowOrderDownstream adds the append
 * flows into a refreshed target).
 */
static char *
replace_mark(const FlowDesc *flow)
{
	List	   *ids = NIL;
	ListCell   *cell;

	if (flow->type != FLOW_TYPE_APPEND)
		return FlowCreateMarkForRecompute(flow);
	foreach(cell, CatalogGetFlowsByTarget(flow->target_relid))
		ids = lappend_int(ids, ((FlowDesc *) lfirst(cell))->flow_id);
	return mark_for_recompute(flow->pipeline_id, ids);
}

/*
 * A replaced flow may read a table of the pipeline that is downstream of
 * it only by making a cycle: refuse.  source_relid, or for flows that
 * record their source table later (aggregates), the table source names.
 */
static void
replace_refuse_cycle(FlowCreate *create, Oid source_relid, const char *source)
{
	List	   *flows = CatalogGetFlows(create->pipeline->pipeline_id);
	ListCell   *cell;

	/* a materialized view's source lists its tables: it checks each itself */
	if (!OidIsValid(source_relid) && source != NULL &&
		!replace_keeps_data(create->type) &&
		create->type != FLOW_TYPE_MATERIALIZED_VIEW)
		source_relid = RelidFromQualifiedName(source, true);
	if (!OidIsValid(source_relid))
		return;
	foreach(cell, FlowOrderDownstream(flows,
									  list_make1_int(create->replaced->flow_id)))
	{
		FlowDesc   *downstream = lfirst(cell);

		if (downstream->target_relid == source_relid)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("flow \"%s\" cannot read %s, which is downstream of it",
							create->replaced->flow_name,
							CatalogQualifiedRelationName(source_relid)),
					 errhint("A flow reads tables upstream of it; the pipeline's flows must not form a cycle.")));
	}
}

/*
 * Register a replaced flow: its row updated, the flow and those downstream
 * marked for recompute (not a flow that keeps its data), and an event.
 */
static int32
replace_register(FlowCreate *create, Oid source_relid, const char *source,
				 Jsonb *definition)
{
	FlowDesc   *flow = create->replaced;
	bool		keeps_data = replace_keeps_data(create->type);
	char	   *recompute = "[]";

	replace_refuse_cycle(create, source_relid, source);
	CatalogReplaceFlow(create->pipeline, flow, source_relid, source,
					   definition);
	if (!keeps_data)
		recompute = replace_mark(flow);
	EventLogWrite(create->pipeline, 0, flow->flow_name, "flow_replaced", "INFO",
				  keeps_data ?
				  "flow replaced; its new definition applies to new objects" :
				  flow->type == FLOW_TYPE_APPEND ?
				  "flow replaced; its target, every flow into it and the flows downstream are recomputed at the next update" :
				  "flow replaced; it and the flows downstream are recomputed at the next update",
				  psprintf("{\"flow_type\": \"%s\", \"recompute\": %s}",
						   flow->flow_type, recompute));
	replacing_lxid = InvalidLocalTransactionId;
	return flow->flow_id;
}

int32
FlowCreateRegister(FlowCreate *create, FlowType type, Oid source_relid,
				   const char *source, Jsonb *definition)
{
	Assert(OidIsValid(create->target_relid));
	CommandCounterIncrement();
	if (GetComment(create->target_relid, RelationRelationId, 0) == NULL)
		FlowCreateComment(create->target_name,
						  psprintf("medallion %s table of pipeline %s, flow %s, fed from %s",
								   CatalogFlowTypeName(type),
								   create->pipeline->pipeline_name,
								   create->flow_name != NULL ?
								   create->flow_name : create->target_name,
								   source));
	if (create->replaced != NULL)
		return replace_register(create, source_relid, source, definition);
	return CatalogCreateNamedFlow(create->pipeline, type, create->flow_name,
								  create->target_relid, source_relid, source,
								  definition);
}
