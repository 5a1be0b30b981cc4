/*-------------------------------------------------------------------------
 *
 * flow_create.h
 *	  The steps every create_* function of a flow type takes, in order:
 *
 *	  FlowCreateBegin     the pipeline (the caller must manage it) and the
 *	                      new target's name, resolved as CREATE TABLE would
 *	  FlowCreateCompanion names of tables and views made beside the target
 *	  FlowCreateTable     the target's DDL, run as the caller, then its OID
 *	  FlowCreateRegister  the catalog row
 *
 * Between Begin and Table a flow type checks its own arguments and its
 * query; after Table it may create indexes, state tables and views with
 * FlowCreateExecute.  Everything runs in the caller's transaction, as the
 * caller: the tables belong to the calling role.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_create.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_FLOW_CREATE_H
#define MEDALLION_FLOW_CREATE_H

#include "postgres.h"

#include "catalog.h"
#include "fmgr.h"
#include "utils/jsonb.h"

/* What the steps share. */
typedef struct FlowCreate
{
	PipelineDesc *pipeline;
	Oid			namespace_oid;	/* the target's schema */
	char	   *relation_name;	/* the target's name, unquoted */
	char	   *target_name;	/* "schema.table", quoted as needed */
	Oid			target_relid;	/* set by FlowCreateTable */
	char	   *flow_name;		/* the flow's name; NULL: the target's */
} FlowCreate;

extern void FlowCreateBegin(FlowCreate *create, const char *pipeline_name,
							const char *target_table);

/*
 * The replace argument of a create_* function (argument argno; false when
 * NULL).
 */
extern bool FlowCreateReplaceArgument(FunctionCallInfo fcinfo, int argno);

/*
 * The quoted, qualified name of a relation medallion makes beside the
 * target (the target's name plus suffix, in its schema); what names it in
 * errors ("quarantine table").  *relation_name, when not NULL, receives the
 * unquoted name.
 */
extern char *FlowCreateCompanion(FlowCreate *create, const char *suffix,
								 const char *what, char **relation_name);

/* Run the target's CREATE statement and look up the new table. */
extern void FlowCreateTable(FlowCreate *create, const char *create_sql);

/* Run one more utility statement (an index, a view, a comment). */
extern void FlowCreateExecute(const char *sql);

/* Set a comment on a relation made by the flow. */
extern void FlowCreateComment(const char *relation_name, const char *comment);

/*
 * Comment the columns of a relation made by the flow: columns[i] (unquoted)
 * gets comments[i].
 */
extern void FlowCreateColumnComments(const char *relation_name, int ncolumns,
									 const char *const *columns,
									 const char *const *comments);

/*
 * Register the flow; returns its flow_id.  A target that the create
 * function left without a comment gets the generic one ("medallion <flow
 * type> table of pipeline <p>, flow <f>, fed from <source>").
 */
extern int32 FlowCreateRegister(FlowCreate *create, FlowType type,
								Oid source_relid, const char *source,
								Jsonb *definition);

#endif							/* MEDALLION_FLOW_CREATE_H */
