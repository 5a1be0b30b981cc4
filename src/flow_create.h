/*-------------------------------------------------------------------------
 *
 * flow_create.h
 *	  The steps every create_* function of a flow type takes, in order:
 *
 *	  FlowCreateBegin     the pipeline (the caller must manage it) and the
 *	                      new target's name, resolved as CREATE TABLE would;
 *	                      with replace, the flow to replace, made ready
 *	  FlowCreateCompanion names of tables and views made beside the target
 *	  FlowCreateTable     the target's DDL, run as the caller, then its OID
 *	                      (replacing: the target altered in place instead)
 *	  FlowCreateRegister  the catalog row (replacing: the row updated, and
 *	                      the flow and those downstream marked for
 *	                      recompute)
 *
 * Between Begin and Table a flow type checks its own arguments and its
 * query; after Table it may create indexes, state tables and views with
 * FlowCreateExecute.  Everything runs in the caller's transaction, as the
 * caller: the tables belong to the calling role.
 *
 * replace => true (from version 0.2.0) takes the same steps: a create
 * function passes its replace argument to Begin, makes its companion
 * tables with FlowCreateCompanionTable, and otherwise runs as for a new
 * flow.  When the target is the target of a flow of the pipeline, Begin
 * checks that the flow is of the same type, takes the pipeline's update
 * lock (waiting for a running update) and the flow's catalog row, and,
 * unless the flow keeps its data (bronze), drops what the flow type makes
 * anew: its internal objects (state tables, change feed, capture
 * triggers), its companion views (_current), the target's indexes on the
 * old keys; and it empties the target, which is recomputed anyway.
 * FlowCreateTable and FlowCreateCompanionTable then alter an existing
 * table to the columns its CREATE TABLE gives (add, drop, change type), so
 * that its OID, grants, comments and the DBA's own indexes and views stay;
 * a column a view needs is refused.  Comments that exist are kept: the
 * comment functions below write only where there is none.  Register
 * updates the catalog row (same flow_id: expectations and the ledger stay)
 * and marks the flow and those downstream refresh_pending, so that the
 * next update recomputes them from their sources (nothing upstream).
 *
 * A named flow into a shared target (a further bronze source, an append
 * flow) is replaced by name instead: the create function fills in the
 * pipeline and the existing target and calls FlowCreateBeginNamed, then
 * Register; replacing an append flow recomputes its whole target.
 *
 * A new flow type needs nothing more, unless it makes companion views or
 * internal objects of other kinds (see FlowDropCompanionViews and
 * FlowDropInternalObjects in flow_lifecycle.h), keys its target's indexes
 * on a definition member other than dedup_keys, keys or group_columns,
 * keeps a companion table across a replace like silver's quarantine
 * (replace_kept_companion), or keeps its data like bronze
 * (replace_keeps_data in flow_create.c).
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
	FlowType	type;
	FlowDesc   *replaced;		/* replacing: the flow as it was, else NULL */
	char	   *flow_name;		/* the flow's name; NULL: the target's */
} FlowCreate;

/*
 * Begin creating the flow of type that fills target_table, or with
 * replace, replacing the flow of that target.  replace on a table that
 * does not exist creates it; on a table that is not the target of a flow,
 * or the target of a flow of another pipeline or type, it errors.
 */
extern void FlowCreateBegin(FlowCreate *create, FlowType type,
							const char *pipeline_name,
							const char *target_table, bool replace);

/*
 * Begin replacing the flow named flow_name (qualified, as
 * FlowNameForTarget gives it) of type into an existing table of the
 * pipeline that feeds several flows (a further bronze source, an append
 * flow).  The caller has filled in create's pipeline (ownership checked)
 * and target (namespace_oid, relation_name, target_name, target_relid).
 * Returns false when no flow has that name (replace => true then creates
 * it); a flow of that name of another type or into another table is an
 * error.  Otherwise the flow is checked and locked as FlowCreateBegin does
 * and create->replaced set; nothing is dropped or emptied: Register marks
 * what must be recomputed (an append flow: its whole target).
 */
extern bool FlowCreateBeginNamed(FlowCreate *create, FlowType type,
								 const char *flow_name);

/*
 * The replace argument of a create_* function (argument argno; false when
 * NULL).
 */
extern bool FlowCreateReplaceArgument(FunctionCallInfo fcinfo, int argno);

/*
 * The quoted, qualified name of a relation medallion makes beside the
 * target (the target's name plus suffix, in its schema); what names it in
 * errors ("quarantine table").  *relation_name, when not NULL, receives the
 * unquoted name.  When replacing, the replaced flow's companion table that
 * Begin kept (a silver flow's quarantine table) may exist already
 * (FlowCreateCompanionTable alters it); any other existing relation of
 * that name is an error.
 */
extern char *FlowCreateCompanion(FlowCreate *create, const char *suffix,
								 const char *what, char **relation_name);

/*
 * Run the target's CREATE statement ("CREATE TABLE <target_name> ...", AS
 * allowed) and look up the new table; when replacing, alter the target to
 * the columns the statement gives instead (FlowCreateAlterColumns; not for
 * a flow that keeps its data, whose columns are fixed).
 */
extern void FlowCreateTable(FlowCreate *create, const char *create_sql);

/*
 * The same for a companion table (relation_name as FlowCreateCompanion
 * returned it): created, or when replacing and it exists, emptied and
 * altered in place.  FlowCreateDropCompanion drops the kept companion
 * table <target><suffix> of a replaced flow, when it had one, for a new
 * definition that does not want it.
 */
extern void FlowCreateCompanionTable(FlowCreate *create,
									 const char *relation_name,
									 const char *create_sql);
extern void FlowCreateDropCompanion(FlowCreate *create, const char *suffix);

/*
 * Alter table relid, named relation_name (quoted, qualified), to the
 * columns that create_sql ("CREATE TABLE <relation_name> ...") gives: drop
 * the columns it lacks, change the type, collation and NOT NULL of those
 * that differ (values are lost: the table must be empty), add the new ones
 * at the end.  A column that a view depends on and that must go or change
 * type is refused with a hint.  Shared by FlowCreateTable and
 * FlowCreateCompanionTable.
 */
extern void FlowCreateAlterColumns(FlowCreate *create, Oid relid,
								   const char *relation_name,
								   const char *create_sql);

/*
 * Mark a flow and every flow downstream of it for recompute at the next
 * update of their pipeline (medallion.flow.refresh_pending, which survives
 * restarts; update.c refreshes them as refresh_tables would).  Returns the
 * flows marked as a JSON array of their names.
 */
extern char *FlowCreateMarkForRecompute(const FlowDesc *flow);

/* Run one more utility statement (an index, a view, a comment). */
extern void FlowCreateExecute(const char *sql);

/*
 * Set a comment on a relation made by the flow.  While replacing, a
 * comment that exists is kept.
 */
extern void FlowCreateComment(const char *relation_name, const char *comment);

/*
 * Comment the columns of a relation made by the flow: columns[i] (unquoted)
 * gets comments[i].  While replacing, a comment that exists is kept.
 */
extern void FlowCreateColumnComments(const char *relation_name, int ncolumns,
									 const char *const *columns,
									 const char *const *comments);

/*
 * Register the flow; returns its flow_id.  A target that the create
 * function left without a comment gets the generic one ("medallion <flow
 * type> table of pipeline <p>, flow <f>, fed from <source>").  When
 * replacing: the flow's row gets the new source and definition (a source
 * downstream of the flow is refused: no cycles), the flow and those
 * downstream are marked for recompute unless the flow keeps its data, and
 * a flow_replaced event says so.
 */
extern int32 FlowCreateRegister(FlowCreate *create, FlowType type,
								Oid source_relid, const char *source,
								Jsonb *definition);

#endif							/* MEDALLION_FLOW_CREATE_H */
