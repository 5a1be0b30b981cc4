/*-------------------------------------------------------------------------
 *
 * cdc_spec.c
 *	  What an auto CDC flow is: its spec, read from its stored definition,
 *	  with sequence_by and the conditions analysed against the source.
 *
 * The expressions are checked the same way when the flow is created and
 * at every apply (the source may have changed since): one SQL expression
 * each (user_sql.c), deterministic, row-local, of a usable type.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_spec.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "catalog.h"
#include "cdc_internal.h"
#include "flow.h"
#include "flow_definition.h"
#include "user_sql.h"

/* For error positions inside the SQL built around user expressions. */
typedef struct CdcParseContext
{
	const char *argname;
	const char *query;
} CdcParseContext;

/*
 * Errors in an analysed expression point into the statement built around
 * it, and name the argument it came from.
 */
static void
cdc_parse_error_callback(void *arg)
{
	CdcParseContext *ctx = (CdcParseContext *) arg;
	int			position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(ctx->query);
	}
	errcontext("auto CDC flow argument %s", ctx->argname);
}

/*
 * Analyse an expression (placed by user_sql.c) over the source table and
 * return it.  The
 * expression must be deterministic and row-local: no aggregates, window
 * functions, set-returning functions, subqueries or volatile functions,
 * so that a recompute from the source gives the same result as the
 * incremental applies did.
 */
static Node *
cdc_analyze_expression(const char *argname, const char *placed,
					   const char *source_name)
{
	char	   *sql = psprintf("SELECT %s FROM %s", placed, source_name);
	ErrorContextCallback callback;
	CdcParseContext ctx;
	List	   *raw;
	Query	   *query;
	Node	   *expr;

	ctx.argname = argname;
	ctx.query = sql;
	callback.callback = cdc_parse_error_callback;
	callback.arg = &ctx;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	query = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql,
									  NULL, 0, NULL);
	error_context_stack = callback.previous;

	if (query->hasAggs || query->hasWindowFuncs || query->hasTargetSRFs ||
		query->hasSubLinks)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must not contain aggregates, window functions, set-returning functions or subqueries",
						argname),
				 errdetail("It is evaluated on each source row on its own.")));
	expr = (Node *) linitial_node(TargetEntry, query->targetList)->expr;
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must not call volatile functions", argname),
				 errdetail("A recompute from the source must give the same result.")));
	return expr;
}

/* Analyse a placed condition (apply_as_deletes, apply_as_truncates). */
void
CdcCheckCondition(const char *argname, const char *placed,
					const char *source_name)
{
	Node	   *expr = cdc_analyze_expression(argname, placed, source_name);

	if (exprType(expr) != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be a boolean expression, not type %s",
						argname, format_type_be(exprType(expr))),
				 errhint("Write a condition such as $$operation = 'DELETE'$$.")));
}

/*
 * Can sequence values of this type be kept in flow_state?  They are kept
 * in their binary send format, which must not embed OIDs of user objects
 * (a dump and restore would change them): base types whose element type,
 * if any, is built in, and enums.
 */
static bool
cdc_type_storable(Oid basetype)
{
	HeapTuple	tuple;
	Form_pg_type form;
	bool		storable;

	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(basetype));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for type %u", basetype);
	form = (Form_pg_type) GETSTRUCT(tuple);
	storable = (form->typtype == TYPTYPE_BASE ||
				form->typtype == TYPTYPE_ENUM) &&
		OidIsValid(form->typsend) && OidIsValid(form->typreceive) &&
		(!OidIsValid(form->typelem) || form->typelem < FirstNormalObjectId);
	ReleaseSysCache(tuple);
	return storable;
}

/* Does pg_catalog.min() take this type (to find where late events start)? */
static bool
cdc_type_has_min(Oid type)
{
	Oid			funcid;
	Oid			rettype;
	bool		retset;
	int			nvargs;
	Oid			vatype;
	Oid		   *true_typeids;

	return func_get_detail(list_make2(makeString("pg_catalog"),
									  makeString("min")),
						   NIL, NIL, 1, &type, false, false, false,
						   &funcid, &rettype, &retset, &nvargs, &vatype,
						   &true_typeids, NULL) == FUNCDETAIL_AGGREGATE;
}

/*
 * Analyse sequence_by and fill in its type.  It must have a btree
 * ordering: events are sorted and compared by it.
 */
void
CdcResolveSequence(CdcSpec *spec)
{
	const char *argname = spec->seq_argname ? spec->seq_argname : "sequence_by";
	Node	   *expr = cdc_analyze_expression(argname, spec->seq_sql,
											  spec->source_name);
	TypeCacheEntry *typentry;

	spec->seq_type = exprType(expr);
	spec->seq_typmod = exprTypmod(expr);
	spec->seq_collation = exprCollation(expr);
	spec->seq_basetype = getBaseType(spec->seq_type);
	if (get_typtype(spec->seq_type) == TYPTYPE_PSEUDO)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s cannot be of type %s",
						argname, format_type_be(spec->seq_type)),
				 errhint("__start_at and __end_at take the type of sequence_by; to sequence by several values, cast a ROW() to a composite type.")));
	typentry = lookup_type_cache(spec->seq_basetype, TYPECACHE_CMP_PROC);
	if (!OidIsValid(typentry->cmp_proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s of type %s has no btree ordering",
						argname, format_type_be(spec->seq_type)),
				 errhint("Sequence by a column or expression of a sortable type, such as a number or a timestamp.")));
	spec->seq_storable = cdc_type_storable(spec->seq_basetype);
	spec->seq_has_min = cdc_type_has_min(spec->seq_type);
}

/*
 * The placed forms of the flow's expressions (user_sql.h), checked again
 * wherever they come from: the arguments or the stored definition.
 */
void
CdcPlaceExpressions(CdcSpec *spec)
{
	if (spec->sequence_by == NULL)
		spec->seq_sql = pstrdup(CDC_SNAPSHOT_TIME_SQL);
	else
		spec->seq_sql = UserSqlExpression(spec->sequence_by,
										  spec->seq_argname ? spec->seq_argname :
										  "sequence_by");
	if (spec->deletes != NULL)
		spec->deletes_sql = UserSqlExpression(spec->deletes,
											  "apply_as_deletes");
	if (spec->truncates != NULL)
		spec->truncates_sql = UserSqlExpression(spec->truncates,
												"apply_as_truncates");
}

/* An alias for the touched-keys relation that no user relation has. */
static char *
cdc_keys_alias(Oid source_relid, Oid target_relid)
{
	char	   *source = get_rel_name(source_relid);
	char	   *target = get_rel_name(target_relid);
	int			n = 0;

	for (;;)
	{
		char	   *alias = n == 0 ? pstrdup("__cdc_keys") :
			psprintf("__cdc_keys_%d", n);

		if ((source == NULL || strcmp(alias, source) != 0) &&
			(target == NULL || strcmp(alias, target) != 0))
			return alias;
		n++;
	}
}

/* ---- column names ---------------------------------------------------- */

bool
CdcListHas(List *names, const char *name)
{
	ListCell   *cell;

	foreach(cell, names)
	{
		if (strcmp((char *) lfirst(cell), name) == 0)
			return true;
	}
	return false;
}

AttrNumber
CdcFindAttribute(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (!attr->attisdropped && strcmp(NameStr(attr->attname), name) == 0)
			return attr->attnum;
	}
	return InvalidAttrNumber;
}

/* ---- definition ------------------------------------------------------ */

/* CdcFlowTypeKeepsTarget: see cdc.h. */
bool
CdcFlowTypeKeepsTarget(FlowType type)
{
	return type == FLOW_TYPE_AUTO_CDC || type == FLOW_TYPE_AUTO_CDC_SNAPSHOT;
}

/* CdcFlowScdType: see cdc.h.  A definition without one is SCD type 2. */
int
CdcFlowScdType(const FlowDesc *flow)
{
	int64		scd_type = FlowDefinitionInt(flow, "stored_as_scd_type", 2);

	if (scd_type != 1 && scd_type != 2)
		FlowDefinitionCorrupted(flow->flow_name, "stored_as_scd_type");
	return (int) scd_type;
}

/* CdcFlowKeys: see cdc.h.  A flow has at least one key. */
List *
CdcFlowKeys(const FlowDesc *flow)
{
	List	   *keys = FlowDefinitionStringList(flow, "keys", true);

	if (keys == NIL)
		FlowDefinitionCorrupted(flow->flow_name, "keys");
	return keys;
}

/*
 * Build the spec of a flow from its definition.  Must run in the pipeline
 * owner's context, where the expressions are analysed as at creation.
 */
CdcSpec *
CdcLoadSpec(FlowDesc *flow)
{
	CdcSpec    *spec = palloc0(sizeof(CdcSpec));
	List	   *tracked;
	ListCell   *cell;
	int			ncols;

	spec->flow_name = flow->flow_name;
	spec->source_relid = flow->source_relid;
	spec->target_relid = flow->target_relid;
	FlowCheckSourceExists(flow, spec->source_relid);
	spec->source_name = CatalogQualifiedRelationName(spec->source_relid);
	spec->target_name = CatalogQualifiedRelationName(spec->target_relid);

	spec->scd_type = CdcFlowScdType(flow);
	spec->ignore_null_updates = FlowDefinitionBool(flow, "ignore_null_updates",
												   false);
	spec->keys = CdcFlowKeys(flow);
	spec->columns = FlowDefinitionStringList(flow, "columns", false);
	tracked = FlowDefinitionStringList(flow, "tracked_columns", false);
	if (flow->type == FLOW_TYPE_AUTO_CDC_SNAPSHOT)
	{
		spec->seq_argname = "snapshot_version";
		spec->sequence_by = FlowDefinitionString(flow, "snapshot_version",
												 false);
	}
	else
		spec->sequence_by = FlowDefinitionString(flow, "sequence_by", true);
	spec->deletes = FlowDefinitionString(flow, "apply_as_deletes", false);
	spec->truncates = FlowDefinitionString(flow, "apply_as_truncates", false);
	CdcPlaceExpressions(spec);

	ncols = list_length(spec->columns);
	spec->tracked = palloc0(sizeof(bool) * (ncols + 1));
	foreach(cell, spec->columns)
	{
		char	   *name = (char *) lfirst(cell);
		int			i = foreach_current_index(cell);
		AttrNumber	attnum = get_attnum(spec->source_relid, name);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, get_rel_name(spec->source_relid)),
					 errdetail("Flow \"%s\" keeps this column of its source.",
							   flow->flow_name)));
		spec->tracked[i] = CdcListHas(tracked, name);
	}
	spec->keys_alias = cdc_keys_alias(spec->source_relid, spec->target_relid);
	CdcResolveSequence(spec);
	return spec;
}
