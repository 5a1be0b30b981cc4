/*-------------------------------------------------------------------------
 *
 * silver_columns.c
 *	  Comments on the columns of a silver target: each says the expression
 *	  of the flow's query it comes from, as the user wrote it, so that a BI
 *	  tool browsing the table shows where a column comes from.
 *
 * The expressions come from the target list of the query, read from the
 * same text that create_silver analyzed (the spliced query wrapped as
 * "SELECT * FROM (...) AS target"): each item starts at its ResTarget's
 * location and ends, as the core scanner reads the tokens that follow, at
 * the first comma, closing parenthesis or clause keyword (FROM, but not the
 * FROM of IS [NOT] DISTINCT FROM) outside parentheses; a name given with
 * or without AS is its last token and is left out.  An item "*" or "t.*"
 * gives several columns: the analyzed query says which (their Vars carry
 * the star's location).  When the items cannot be matched to the columns,
 * the columns get no comment rather than a wrong one.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver_columns.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/keywords.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "parser/scansup.h"

#include "flow_create.h"
#include "silver_internal.h"
#include "user_sql.h"

#define SILVER_COMMENT_PREFIX	"From the query: "

/* What the comments of the columns medallion adds say. */
static const char *const row_id_comment =
"Row id given by medallion when the row was written: increasing arrival order, by which downstream flows read the table";
static const char *const violated_comment =
"Names of the drop expectations the row violated";

/* Does this token end a target list item (at parenthesis depth 0)? */
static bool
silver_item_ends(int token, int prev_token)
{
	switch (token)
	{
		case ',':
		case ')':
		case ';':
		case INTO:
		case WHERE:
		case GROUP_P:
		case HAVING:
		case WINDOW:
		case ORDER:
		case LIMIT:
		case OFFSET:
		case FETCH:
		case UNION:
		case INTERSECT:
		case EXCEPT:
			return true;
		case FROM:
			return prev_token != DISTINCT;
		default:
			return false;
	}
}

/*
 * The text of a target list item of sql, as written, without its name.
 */
static char *
silver_item_text(const char *sql, const ResTarget *target)
{
	const char *start = sql + target->location;
	core_yy_extra_type yyextra;
	core_yyscan_t scanner;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc = 0;
	int			token;
	int			depth = 0;
	int			last_start = -1;
	int			prev_start = -1;
	int			last_token = 0;
	int			prev_token = 0;
	int			end = strlen(start);

	scanner = scanner_init(start, &yyextra, &ScanKeywords, ScanKeywordTokens);
	while ((token = core_yylex(&yylval, &yylloc, scanner)) != 0)
	{
		if (depth == 0 && silver_item_ends(token, last_token))
		{
			end = yylloc;
			break;
		}
		if (token == '(' || token == '[')
			depth++;
		else if (token == ')' || token == ']')
			depth--;
		prev_start = last_start;
		prev_token = last_token;
		last_start = yylloc;
		last_token = token;
	}
	scanner_finish(scanner);

	if (target->name != NULL && last_start > 0)
		end = (prev_token == AS) ? prev_start : last_start;
	while (end > 0 && scanner_isspace(start[end - 1]))
		end--;
	return pnstrdup(start, end);
}

/* Is this target list item a "*" or "t.*" (several columns)? */
static bool
silver_is_star(const ResTarget *target)
{
	if (IsA(target->val, ColumnRef))
		return IsA(llast(((ColumnRef *) target->val)->fields), A_Star);
	if (IsA(target->val, A_Indirection))
		return IsA(llast(((A_Indirection *) target->val)->indirection), A_Star);
	return false;
}

/* Did the analyzer expand the star at location into this column? */
static bool
silver_from_star(const TargetEntry *entry, int location)
{
	return IsA(entry->expr, Var) && ((Var *) entry->expr)->location == location;
}

/* The analyzed columns of the user's query (the wrapper's subquery). */
static List *
silver_analyzed_columns(Query *wrapper)
{
	RangeTblEntry *rte = linitial_node(RangeTblEntry, wrapper->rtable);
	List	   *columns = NIL;
	ListCell   *cell;

	foreach(cell, rte->subquery->targetList)
	{
		TargetEntry *entry = lfirst_node(TargetEntry, cell);

		if (!entry->resjunk)
			columns = lappend(columns, entry);
	}
	return columns;
}

/*
 * SilverColumnComments: see silver_internal.h.  The caller has entered the
 * settings under which the query was parsed (UserSqlSettingsEnter).
 */
char	  **
SilverColumnComments(const char *sql, Query *wrapper, TupleDesc desc)
{
	RawStmt    *raw = linitial_node(RawStmt, UserSqlRawParse(sql));
	SelectStmt *outer = (SelectStmt *) raw->stmt;
	RangeSubselect *from = linitial(outer->fromClause);
	List	   *columns = silver_analyzed_columns(wrapper);
	char	  **comments = palloc0(sizeof(char *) * Max(desc->natts, 1));
	int			column = 0;
	ListCell   *cell;

	if (!IsA(from, RangeSubselect) || !IsA(from->subquery, SelectStmt) ||
		list_length(columns) != desc->natts)
		return NULL;
	foreach(cell, ((SelectStmt *) from->subquery)->targetList)
	{
		ResTarget  *target = lfirst_node(ResTarget, cell);
		char	   *text = silver_item_text(sql, target);

		if (!silver_is_star(target))
		{
			if (column >= desc->natts)
				return NULL;
			comments[column++] = psprintf(SILVER_COMMENT_PREFIX "%s", text);
			continue;
		}
		do
		{
			if (column >= desc->natts)
				return NULL;
			comments[column] = psprintf(SILVER_COMMENT_PREFIX "%s, column %s",
										text,
										NameStr(TupleDescAttr(desc, column)->attname));
			column++;
		} while (column < desc->natts &&
				 silver_from_star(list_nth(columns, column), target->location));
	}
	return column == desc->natts ? comments : NULL;
}

/*
 * SilverCommentColumns: see silver_internal.h.
 */
void
SilverCommentColumns(const char *table, TupleDesc desc, char **comments,
					 bool quarantine)
{
	int			ncolumns = 0;
	const char **columns = palloc(sizeof(char *) * (desc->natts + 2));
	const char **texts = palloc(sizeof(char *) * (desc->natts + 2));
	int			i;

	columns[ncolumns] = SILVER_ROW_ID_COLUMN;
	texts[ncolumns++] = row_id_comment;
	for (i = 0; comments != NULL && i < desc->natts; i++)
	{
		columns[ncolumns] = NameStr(TupleDescAttr(desc, i)->attname);
		texts[ncolumns++] = comments[i];
	}
	if (quarantine)
	{
		columns[ncolumns] = SILVER_VIOLATED_COLUMN;
		texts[ncolumns++] = violated_comment;
	}
	FlowCreateColumnComments(table, ncolumns, columns, texts);
}
