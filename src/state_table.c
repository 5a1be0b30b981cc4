/*-------------------------------------------------------------------------
 *
 * state_table.c
 *	  Internal state tables of flows, in the schema medallion_state (see
 *	  state_table.h).
 *
 * Why a schema of medallion's: GRANT SELECT ON ALL TABLES IN SCHEMA gold
 * must grant only what analysts should see (targets, quarantine tables,
 * views of current versions), and a BI tool browsing gold must not list
 * medallion's bookkeeping.  The schema is created by the install script
 * with USAGE for PUBLIC and CREATE for nobody, so a pipeline owner cannot
 * create there: medallion creates a state table as the extension owner,
 * with search_path pinned and every name qualified, and gives it at once to
 * the pipeline's owner, whose flows read and write it.  Indexes are created
 * the same way (CREATE INDEX checks CREATE on the schema); PostgreSQL
 * builds them as the table's owner, so no user code runs with more rights.
 *
 * A state table is recorded by qualified name in its flow's definition
 * (STATE_TABLES_KEY) and depends automatically on the flow's target.  The
 * record is what every lookup uses: it survives pg_dump and restore, which
 * keep names but not the dependency.  Only tables in medallion_state count,
 * so a definition edited by hand cannot make medallion drop or hand over
 * another table.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/state_table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "flow_definition.h"
#include "spi_util.h"
#include "sql_names.h"
#include "state_table.h"

static Oid
state_schema_oid(void)
{
	return get_namespace_oid(STATE_TABLE_SCHEMA, false);
}

/*
 * The schema's name is part of the state table's name, so that equal
 * table names in two schemas (silver.orders, gold.orders) get two state
 * tables.  PostgreSQL would truncate a name over NAMEDATALEN silently and
 * two long names could then collide: refuse instead, saying how long the
 * names may be.
 */
char *
StateTableName(Oid target_namespace, const char *target_relname,
			   const char *suffix, const char *what, char **relation_name)
{
	char	   *target = QuoteQualifiedName(target_namespace, target_relname);
	char	   *name = psprintf("%s__%s%s", get_namespace_name(target_namespace),
								target_relname, suffix);
	char	   *qualified = quote_qualified_identifier(STATE_TABLE_SCHEMA, name);

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("name of the %s of table %s is too long", what, target),
				 errdetail("Its name in schema %s would be \"%s\", which does not fit in %d bytes.",
						   STATE_TABLE_SCHEMA, name, NAMEDATALEN - 1),
				 errhint("Use a shorter table or schema name: together they may have at most %d bytes here.",
						 (int) (NAMEDATALEN - 1 - strlen("__") - strlen(suffix)))));
	if (OidIsValid(get_relname_relid(name, state_schema_oid())))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation %s already exists", qualified),
				 errdetail("This is the name medallion gives to the %s of table %s.",
						   what, target),
				 errhint("Another table whose schema and table names, joined with \"__\", give the same name has it: rename one of the two tables.")));
	if (relation_name != NULL)
		*relation_name = name;
	return qualified;
}

/*
 * Both statements are fixed text over a table that the extension owner
 * owns until the second one: create_sql comes from medallion's own
 * builders (qualified types and collations, no expressions).
 */
Oid
StateTableCreate(const char *relation_name, const char *create_sql,
				 Oid owner, Oid target_relid)
{
	char	   *qualified = quote_qualified_identifier(STATE_TABLE_SCHEMA,
													   relation_name);
	Oid			relid;
	ObjectAddress dependent;
	ObjectAddress referenced;

	SPI_connect();
	SpiExecuteAsExtensionOwner(create_sql, 0, NULL, NULL, NULL,
							   SPI_OK_UTILITY);
	SpiExecuteAsExtensionOwner(psprintf("ALTER TABLE %s OWNER TO %s", qualified,
										quote_identifier(GetUserNameFromId(owner, false))),
							   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
	CommandCounterIncrement();

	relid = get_relname_relid(relation_name, state_schema_oid());
	if (!OidIsValid(relid))
		elog(ERROR, "could not find the new state table %s", qualified);
	ObjectAddressSet(dependent, RelationRelationId, relid);
	ObjectAddressSet(referenced, RelationRelationId, target_relid);
	recordDependencyOn(&dependent, &referenced, DEPENDENCY_AUTO);
	return relid;
}

void
StateTableCreateIndex(const char *sql)
{
	SPI_connect();
	SpiExecuteAsExtensionOwner(sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
	CommandCounterIncrement();
}

List *
StateTablesOfFlow(const FlowDesc *flow)
{
	Oid			namespace_oid = state_schema_oid();
	List	   *relids = NIL;
	ListCell   *cell;

	foreach(cell, FlowDefinitionStringList(flow, STATE_TABLES_KEY, false))
	{
		Oid			relid = RelidFromQualifiedName(lfirst(cell), true);

		if (OidIsValid(relid) && get_rel_namespace(relid) == namespace_oid &&
			get_rel_relkind(relid) == RELKIND_RELATION)
			relids = list_append_unique_oid(relids, relid);
	}
	return relids;
}

/*
 * Like DROP TABLE (RESTRICT): a view of the owner's over a state table
 * makes it fail rather than go silently.
 */
void
StateTablesDrop(const FlowDesc *flow)
{
	ObjectAddresses *objects = new_object_addresses();
	ListCell   *cell;

	foreach(cell, StateTablesOfFlow(flow))
	{
		ObjectAddress object;

		ObjectAddressSet(object, RelationRelationId, lfirst_oid(cell));
		add_exact_object_address(&object, objects);
	}
	performMultipleDeletions(objects, DROP_RESTRICT, 0);
	free_object_addresses(objects);
	CommandCounterIncrement();
}
