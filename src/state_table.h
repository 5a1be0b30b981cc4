/*-------------------------------------------------------------------------
 *
 * state_table.h
 *	  Internal state tables of flows (an aggregate's per-group state, its
 *	  values and pending changes, an auto CDC target's change feed), kept in
 *	  the schema medallion_state rather than beside their targets.
 *
 * A state table is named <schema>__<table><suffix> after its flow's target,
 * created by medallion (nobody else may create in medallion_state), owned
 * by the pipeline's owner (whose flows read and write it), goes away with
 * its target, and is recorded by qualified name in its flow's definition
 * under "state_tables": every lookup goes through that record, never
 * through a name pattern.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/state_table.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_STATE_TABLE_H
#define MEDALLION_STATE_TABLE_H

#include "postgres.h"

#include "catalog.h"
#include "nodes/pg_list.h"

#define STATE_TABLE_SCHEMA		"medallion_state"

/* The member of a flow's definition listing its state tables. */
#define STATE_TABLES_KEY		"state_tables"

/*
 * A member of a jsonb_build_object() over a flow's definition: its
 * "state_tables" list with the table named by the SQL parameter param
 * (e.g. "$2") added once.
 */
#define STATE_TABLES_WITH_SQL(param) \
	"'" STATE_TABLES_KEY "', (COALESCE(definition OPERATOR(pg_catalog.->) '" \
	STATE_TABLES_KEY "', '[]'::pg_catalog.jsonb) OPERATOR(pg_catalog.-) " param \
	") OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(" param ")"

/*
 * The name of a new state table for the target target_relname in schema
 * target_namespace: <schema>__<table><suffix> in medallion_state.  Errors
 * when it does not fit in NAMEDATALEN (no silent truncation) or exists
 * already; what says what the table is, for the messages.  Returns the
 * quoted, qualified name; *relation_name, when not NULL, receives the
 * unquoted one.
 */
extern char *StateTableName(Oid target_namespace, const char *target_relname,
							const char *suffix, const char *what,
							char **relation_name);

/*
 * Create a state table: create_sql (a CREATE TABLE of the name
 * StateTableName gave) runs as the extension owner with search_path
 * pinned, then the table is given to owner and made to go away with
 * target_relid.  Returns its OID.
 */
extern Oid	StateTableCreate(const char *relation_name, const char *create_sql,
							 Oid owner, Oid target_relid);

/*
 * Run a CREATE INDEX on a state table (which needs CREATE on the schema)
 * as the extension owner; PostgreSQL builds it as the table's owner.
 */
extern void StateTableCreateIndex(const char *sql);

/* The OIDs of the existing state tables a flow's definition records. */
extern List *StateTablesOfFlow(const FlowDesc *flow);

/* Drop the state tables a flow's definition records (as DROP TABLE). */
extern void StateTablesDrop(const FlowDesc *flow);

#endif							/* MEDALLION_STATE_TABLE_H */
