/*-------------------------------------------------------------------------
 *
 * pipeline_graph.c
 *	  medallion.pipeline_graph(): a picture of a pipeline, as Mermaid or
 *	  Graphviz DOT text.
 *
 * The graph has a node for each S3 source and each table of the pipeline
 * (flow targets, flow sources, quarantine tables) and an edge for each flow,
 * labelled with its type, and with its name when it is not named after its
 * target (a table fed by several flows: bronze sources, append flows).  A table's node shows its exact row count, its lag
 * (the time since an update last changed it) and the expectations of its
 * flow that rows have failed, which also turn the node red.
 *
 * Only the pipeline's owner may draw it (the rule of every pipeline
 * function).  The catalog is read with fixed statements as the extension
 * owner; the row counts run with the caller's rights, and a table the caller
 * may not read shows no count rather than an error (see graph_not_counted
 * for the tables that are never counted).  Names are escaped for
 * each format, so that no table name (quotes, spaces, <, #, backslashes)
 * can break the syntax of the text.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline_graph.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "pipeline_graph.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_pipeline_graph);

typedef enum GraphFormat
{
	GRAPH_FORMAT_MERMAID,
	GRAPH_FORMAT_DOT
} GraphFormat;

/* A node: an S3 source (relid invalid) or a table. */
typedef struct GraphNode
{
	int			id;				/* the node is named n<id> in the text */
	char	   *name;			/* S3 URL, or schema.table quoted as in SQL */
	Oid			relid;
	bool		quarantine;		/* a silver flow's quarantine table */
	bool		is_target;		/* some flow writes it: it has a lag */
	TimestampTz last_changed;	/* valid when lag is set */
	char	   *lag;			/* text of now() - last_changed; NULL: no
								 * update changed it yet */
	const char *rows;			/* "N rows", or why there is no count */
	List	   *failing;		/* "name (N rows)" of each failing expectation */
} GraphNode;

typedef struct GraphEdge
{
	GraphNode  *from;
	GraphNode  *to;
	char	   *label;
	bool		dashed;
} GraphEdge;

typedef struct Graph
{
	List	   *nodes;
	List	   *edges;
} Graph;

/* The node of an S3 source (s3_url) or a table, added at its first mention. */
static GraphNode *
graph_node(Graph *graph, const char *s3_url, Oid relid)
{
	ListCell   *cell;
	GraphNode  *node;

	foreach(cell, graph->nodes)
	{
		node = lfirst(cell);
		if (s3_url != NULL ? (!OidIsValid(node->relid) &&
							  strcmp(node->name, s3_url) == 0)
			: node->relid == relid)
			return node;
	}
	node = palloc0(sizeof(GraphNode));
	node->id = list_length(graph->nodes) + 1;
	node->relid = relid;
	node->name = s3_url != NULL ? pstrdup(s3_url)
		: CatalogQualifiedRelationName(relid);
	graph->nodes = lappend(graph->nodes, node);
	return node;
}

static void
graph_edge(Graph *graph, GraphNode *from, GraphNode *to, const char *label,
		   bool dashed)
{
	GraphEdge  *edge = palloc(sizeof(GraphEdge));

	edge->from = from;
	edge->to = to;
	edge->label = pstrdup(label);
	edge->dashed = dashed;
	graph->edges = lappend(graph->edges, edge);
}

/*
 * The flows of the pipeline, each with the tables it reads (its source
 * table, or an attached materialized view's inputs), its quarantine table
 * (named as silver.c names it: the target's name and "_quarantine", in the
 * target's schema) and when it last changed its target.
 */
#define GRAPH_FLOWS_SQL \
	"SELECT f.flow_type, f.target_table::pg_catalog.oid, f.source," \
	"       ARRAY(SELECT s.relid FROM (" \
	"               SELECT f.source_table::pg_catalog.oid" \
	"               UNION" \
	"               SELECT pg_catalog.to_regclass(i.name)::pg_catalog.oid" \
	"                 FROM pg_catalog.jsonb_array_elements_text(" \
	"                        CASE WHEN pg_catalog.jsonb_typeof(f.definition OPERATOR(pg_catalog.->) 'inputs')" \
	"                                  OPERATOR(pg_catalog.=) 'array'" \
	"                             THEN f.definition OPERATOR(pg_catalog.->) 'inputs' END) i(name)" \
	"             ) s(relid) WHERE s.relid IS NOT NULL ORDER BY s.relid)," \
	"       (SELECT q.oid FROM pg_catalog.pg_class t, pg_catalog.pg_class q" \
	"         WHERE f.flow_type OPERATOR(pg_catalog.=) 'silver'" \
	"           AND f.definition OPERATOR(pg_catalog.->>) 'quarantine' OPERATOR(pg_catalog.=) 'true'" \
	"           AND t.oid OPERATOR(pg_catalog.=) f.target_table::pg_catalog.oid" \
	"           AND q.relnamespace OPERATOR(pg_catalog.=) t.relnamespace" \
	"           AND q.relname OPERATOR(pg_catalog.=)" \
	"               (t.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_quarantine')::pg_catalog.name)," \
	"       f.last_changed," \
	"       pg_catalog.date_trunc('second', pg_catalog.now() OPERATOR(pg_catalog.-) f.last_changed)::pg_catalog.text," \
	"       f.flow_name" \
	"  FROM medallion.flow f" \
	" WHERE f.pipeline_id OPERATOR(pg_catalog.=) $1" \
	" ORDER BY f.flow_id"

/* The expectations of the pipeline's flows that rows have failed. */
#define GRAPH_FAILING_SQL \
	"SELECT f.target_table::pg_catalog.oid, m.expectation_name, m.failed_records" \
	"  FROM medallion.expectation_metrics m" \
	"  JOIN medallion.flow f ON f.flow_name OPERATOR(pg_catalog.=) m.flow_name" \
	" WHERE f.pipeline_id OPERATOR(pg_catalog.=) $1" \
	"   AND m.pipeline_name OPERATOR(pg_catalog.=) $2" \
	"   AND m.failed_records OPERATOR(pg_catalog.>) 0" \
	" ORDER BY f.flow_id, m.expectation_name"

/* A flow's target node, with the latest change among the flows writing it. */
static void
graph_add_target(GraphNode *target, uint64 row)
{
	bool		isnull;
	Datum		value = SpiGetDatum(row, 6, &isnull);

	target->is_target = true;
	if (!isnull && (target->lag == NULL ||
					DatumGetTimestampTz(value) > target->last_changed))
	{
		target->last_changed = DatumGetTimestampTz(value);
		target->lag = SpiGetText(row, 7);
	}
}

/*
 * Nodes and edges of one flow (row of GRAPH_FLOWS_SQL), the nodes in the
 * order data goes through them.
 */
static void
graph_add_flow(Graph *graph, uint64 row)
{
	char	   *flow_type = SpiGetText(row, 1);
	bool		isnull;
	Oid			target_relid = DatumGetObjectId(SpiGetDatum(row, 2, &isnull));
	ArrayType  *sources = DatumGetArrayTypeP(SpiGetDatum(row, 4, &isnull));
	bool		no_quarantine;
	Datum		quarantine_relid = SpiGetDatum(row, 5, &no_quarantine);
	GraphNode  *s3 = NULL;
	GraphNode **source_nodes;
	Datum	   *source_relids;
	int			source_count;
	GraphNode  *target;
	GraphNode  *quarantine = NULL;
	int			index;

	if (strcmp(flow_type, "bronze") == 0)
		s3 = graph_node(graph, SpiGetText(row, 3), InvalidOid);
	deconstruct_array(sources, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &source_relids, NULL, &source_count);
	source_nodes = palloc((source_count + 1) * sizeof(GraphNode *));
	for (index = 0; index < source_count; index++)
		source_nodes[index] = graph_node(graph, NULL,
										 DatumGetObjectId(source_relids[index]));
	target = graph_node(graph, NULL, target_relid);

	/* a flow not named after its target (several feed it) shows its name */
	if (strcmp(SpiGetText(row, 8), target->name) != 0)
		flow_type = psprintf("%s %s", flow_type, SpiGetText(row, 8));
	if (!no_quarantine)
	{
		quarantine = graph_node(graph, NULL, DatumGetObjectId(quarantine_relid));
		quarantine->quarantine = true;
	}

	if (s3 != NULL)
		graph_edge(graph, s3, target, flow_type, false);
	for (index = 0; index < source_count; index++)
	{
		graph_edge(graph, source_nodes[index], target, flow_type, false);
		if (quarantine != NULL)
			graph_edge(graph, source_nodes[index], quarantine,
					   psprintf("%s: dropped rows", flow_type), true);
	}
	graph_add_target(target, row);
}

/* "1 row", "2 rows" */
static char *
graph_rows(int64 rows)
{
	return psprintf(INT64_FORMAT " %s", rows, rows == 1 ? "row" : "rows");
}

/*
 * Read the pipeline's flows and failing expectations from the catalog, as
 * the extension owner; the graph is built in the caller's memory context.
 */
static void
graph_read_catalog(Graph *graph, PipelineDesc *pipeline)
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext spi_context;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	uint64		row;

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = CStringGetTextDatum(pipeline->pipeline_name);
	SPI_connect();
	SpiExecuteAsExtensionOwner(GRAPH_FLOWS_SQL, 1, types, values, NULL,
							   SPI_OK_SELECT);
	spi_context = MemoryContextSwitchTo(caller_context);
	for (row = 0; row < SPI_processed; row++)
		graph_add_flow(graph, row);
	MemoryContextSwitchTo(spi_context);

	SpiExecuteAsExtensionOwner(GRAPH_FAILING_SQL, 2, types, values, NULL,
							   SPI_OK_SELECT);
	MemoryContextSwitchTo(caller_context);
	for (row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		GraphNode  *node = graph_node(graph, NULL,
									  DatumGetObjectId(SpiGetDatum(row, 1, &isnull)));

		node->failing = lappend(node->failing,
								psprintf("%s (%s)", SpiGetText(row, 2),
										 graph_rows(SpiGetInt64(row, 3, NULL))));
	}
	MemoryContextSwitchTo(spi_context);
	SPI_finish();
}

/*
 * Why a table's rows are not counted for this user, or NULL when they may
 * be.  Counting runs with the caller's rights, and the caller may hold more
 * rights than the pipeline's owner (a superuser, a member of the owner's
 * role): so only relations whose scan runs no code of the owner's are
 * counted, never a view (a relation that a rule turned into a view
 * included) nor a table whose row-level security policies would run.
 */
static const char *
graph_not_counted(Oid relid, Oid user)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		return "table dropped";
	if (pg_namespace_aclcheck(get_rel_namespace(relid), user,
							  ACL_USAGE) != ACLCHECK_OK ||
		pg_class_aclcheck(relid, user, ACL_SELECT) != ACLCHECK_OK)
		return "rows: no SELECT privilege";
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_PARTITIONED_TABLE)
		return "rows: not counted (not a table)";
	if (check_enable_rls(relid, user, true) == RLS_ENABLED)
		return "rows: not counted (row-level security)";
	return NULL;
}

/*
 * The exact row count of every table, with the caller's rights, where
 * graph_not_counted allows it.
 */
static void
graph_count_rows(Graph *graph)
{
	MemoryContext caller_context = CurrentMemoryContext;
	Oid			user = GetUserId();
	ListCell   *cell;

	SPI_connect();
	foreach(cell, graph->nodes)
	{
		GraphNode  *node = lfirst(cell);

		if (!OidIsValid(node->relid))
			continue;
		node->rows = graph_not_counted(node->relid, user);
		if (node->rows != NULL)
			continue;
		SpiExecute(psprintf("SELECT pg_catalog.count(*) FROM %s", node->name),
				   0, NULL, NULL, NULL, SPI_OK_SELECT);
		node->rows = MemoryContextStrdup(caller_context,
										 graph_rows(SpiGetInt64(0, 1, NULL)));
	}
	SPI_finish();
}

/*
 * The lines of text of a node: its name, then for a table its row count
 * and lag; failing expectations are separate, highlighted lines.
 */
static List *
graph_node_lines(const GraphNode *node)
{
	List	   *lines = list_make1(node->name);

	if (node->rows != NULL)
		lines = lappend(lines, unconstify(char *, node->rows));
	if (node->quarantine)
		lines = lappend(lines, "quarantine");
	if (node->is_target)
		lines = lappend(lines, node->lag != NULL ?
						psprintf("lag %s", node->lag) : "not changed yet");
	return lines;
}

/*
 * Text in a DOT HTML-like label: markup characters as entities, control
 * characters (which no label can hold) as spaces.
 */
static void
append_dot_html(StringInfo out, const char *text)
{
	for (; *text != '\0'; text++)
	{
		switch (*text)
		{
			case '&':
				appendStringInfoString(out, "&amp;");
				break;
			case '<':
				appendStringInfoString(out, "&lt;");
				break;
			case '>':
				appendStringInfoString(out, "&gt;");
				break;
			case '"':
				appendStringInfoString(out, "&quot;");
				break;
			default:
				appendStringInfoChar(out, (unsigned char) *text < 0x20 ? ' ' : *text);
		}
	}
}

/* A DOT double-quoted string: only '"' and '\' are special in it. */
static void
append_dot_string(StringInfo out, const char *text)
{
	appendStringInfoChar(out, '"');
	for (; *text != '\0'; text++)
	{
		if (*text == '"' || *text == '\\')
			appendStringInfoChar(out, '\\');
		appendStringInfoChar(out, (unsigned char) *text < 0x20 ? ' ' : *text);
	}
	appendStringInfoChar(out, '"');
}

/*
 * A Mermaid double-quoted string.  Inside, Mermaid ends the string at '"',
 * turns "#code;" into a character, reads HTML (<br/>, entities) and, after
 * a leading backquote, Markdown: each of these characters is written as its
 * "#code;" (so the label shows it as typed), control characters as spaces.
 */
static void
append_mermaid_string(StringInfo out, const char *text, bool line_break)
{
	for (; *text != '\0'; text++)
	{
		if (strchr("\"#&<>`", *text) != NULL)
			appendStringInfo(out, "#%d;", (int) (unsigned char) *text);
		else
			appendStringInfoChar(out, (unsigned char) *text < 0x20 ? ' ' : *text);
	}
	if (line_break)
		appendStringInfoString(out, "<br/>");
}

static char *
graph_dot(Graph *graph, const char *pipeline_name)
{
	StringInfoData out;
	ListCell   *cell;

	initStringInfo(&out);
	appendStringInfoString(&out, "digraph ");
	append_dot_string(&out, pipeline_name);
	appendStringInfoString(&out, " {\n"
						   "\trankdir=LR;\n"
						   "\tnode [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=11];\n"
						   "\tedge [fontname=\"Helvetica\", fontsize=10];\n");
	foreach(cell, graph->nodes)
	{
		GraphNode  *node = lfirst(cell);
		List	   *lines = graph_node_lines(node);
		ListCell   *line;

		appendStringInfo(&out, "\tn%d [", node->id);
		if (!OidIsValid(node->relid))
			appendStringInfoString(&out, "shape=cylinder, ");
		else if (node->quarantine)
			appendStringInfoString(&out, "style=\"rounded,dashed\", ");
		if (node->failing != NIL)
			appendStringInfoString(&out, "color=red, ");
		appendStringInfoString(&out, "label=<");
		foreach(line, lines)
		{
			if (foreach_current_index(line) == 0)
				appendStringInfoString(&out, "<B>");
			else
				appendStringInfoString(&out, "<BR/>");
			append_dot_html(&out, lfirst(line));
			if (foreach_current_index(line) == 0)
				appendStringInfoString(&out, "</B>");
		}
		foreach(line, node->failing)
		{
			appendStringInfoString(&out, "<BR/><FONT COLOR=\"red\">failing: ");
			append_dot_html(&out, lfirst(line));
			appendStringInfoString(&out, "</FONT>");
		}
		appendStringInfoString(&out, ">];\n");
	}
	foreach(cell, graph->edges)
	{
		GraphEdge  *edge = lfirst(cell);

		appendStringInfo(&out, "\tn%d -> n%d [label=", edge->from->id,
						 edge->to->id);
		append_dot_string(&out, edge->label);
		appendStringInfoString(&out, edge->dashed ? ", style=dashed];\n" : "];\n");
	}
	appendStringInfoString(&out, "}\n");
	return out.data;
}

static char *
graph_mermaid(Graph *graph)
{
	StringInfoData out;
	ListCell   *cell;
	bool		any_failing = false;
	bool		any_quarantine = false;

	initStringInfo(&out);
	appendStringInfoString(&out, "flowchart LR\n");
	foreach(cell, graph->nodes)
	{
		GraphNode  *node = lfirst(cell);
		List	   *lines = graph_node_lines(node);
		ListCell   *line;

		/* an S3 source is a cylinder, a table a box */
		appendStringInfo(&out, "    n%d%s\"", node->id,
						 OidIsValid(node->relid) ? "[" : "[(");
		foreach(line, lines)
			append_mermaid_string(&out, lfirst(line),
								  lnext(lines, line) != NULL ||
								  node->failing != NIL);
		foreach(line, node->failing)
		{
			appendStringInfoString(&out, "failing: ");
			append_mermaid_string(&out, lfirst(line),
								  lnext(node->failing, line) != NULL);
		}
		appendStringInfo(&out, "\"%s\n", OidIsValid(node->relid) ? "]" : ")]");
	}
	foreach(cell, graph->edges)
	{
		GraphEdge  *edge = lfirst(cell);

		appendStringInfo(&out, "    n%d %s|\"", edge->from->id,
						 edge->dashed ? "-.->" : "-->");
		append_mermaid_string(&out, edge->label, false);
		appendStringInfo(&out, "\"| n%d\n", edge->to->id);
	}
	foreach(cell, graph->nodes)
	{
		GraphNode  *node = lfirst(cell);

		if (node->failing != NIL)
		{
			appendStringInfo(&out, "    class n%d failing\n", node->id);
			any_failing = true;
		}
		else if (node->quarantine)
		{
			appendStringInfo(&out, "    class n%d quarantine\n", node->id);
			any_quarantine = true;
		}
	}
	if (any_failing)
		appendStringInfoString(&out, "    classDef failing stroke:red,stroke-width:2px,color:red\n");
	if (any_quarantine)
		appendStringInfoString(&out, "    classDef quarantine stroke-dasharray:5 5\n");
	return out.data;
}

/*
 * medallion.pipeline_graph(pipeline_name text, format text DEFAULT
 * 'mermaid') RETURNS text
 */
Datum
medallion_pipeline_graph(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = PG_ARGISNULL(0) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *format_name = PG_ARGISNULL(1) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(1));
	GraphFormat format;
	PipelineDesc *pipeline;
	Graph		graph = {NIL, NIL};

	if (format_name != NULL && pg_strcasecmp(format_name, "mermaid") == 0)
		format = GRAPH_FORMAT_MERMAID;
	else if (format_name != NULL && pg_strcasecmp(format_name, "dot") == 0)
		format = GRAPH_FORMAT_DOT;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for format: \"%s\"",
						format_name != NULL ? format_name : "(null)"),
				 errhint("The formats are \"mermaid\" and \"dot\".")));

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	graph_read_catalog(&graph, pipeline);
	graph_count_rows(&graph);
	PG_RETURN_TEXT_P(cstring_to_text(format == GRAPH_FORMAT_DOT ?
									 graph_dot(&graph, pipeline->pipeline_name) :
									 graph_mermaid(&graph)));
}
