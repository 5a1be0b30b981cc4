/*-------------------------------------------------------------------------
 *
 * drop_guard.c
 *	  The guard against dropping medallion by mistake: DROP EXTENSION
 *	  medallion without CASCADE is refused while pipelines exist.
 *
 * Dropping the extension forgets every role's pipelines, file ledgers,
 * watermarks and secrets at once, and leaves the pipelines' tables behind
 * with nothing that can take them over again.  So, like a schema that
 * still holds objects, it needs CASCADE.  An event trigger of the
 * extension (ddl_command_start, DROP EXTENSION) sees the statement before
 * PostgreSQL acts on it, whether or not the library is preloaded.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/drop_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"

#include "drop_guard.h"
#include "medallion.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(medallion_guard_drop_extension);

/* Does a DROP EXTENSION statement name medallion, without CASCADE? */
static bool
drops_medallion_without_cascade(Node *parsetree)
{
	DropStmt   *stmt;
	ListCell   *cell;

	if (parsetree == NULL || !IsA(parsetree, DropStmt))
		return false;
	stmt = (DropStmt *) parsetree;
	if (stmt->removeType != OBJECT_EXTENSION || stmt->behavior == DROP_CASCADE)
		return false;
	foreach(cell, stmt->objects)
	{
		Node	   *name = (Node *) lfirst(cell);

		if (IsA(name, String) &&
			strcmp(strVal(name), MEDALLION_EXTENSION_NAME) == 0)
			return true;
	}
	return false;
}

/*
 * medallion.guard_drop_extension(): the event trigger.  It runs no version
 * check: a DBA must be able to drop an extension whose catalog and library
 * disagree (medallion.pipeline exists in every version).
 */
Datum
medallion_guard_drop_extension(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigger_data;
	int64		pipelines;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.guard_drop_extension() must be called as an event trigger")));
	trigger_data = (EventTriggerData *) fcinfo->context;
	if (!drops_medallion_without_cascade(trigger_data->parsetree))
		PG_RETURN_VOID();

	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT pg_catalog.count(*) FROM medallion.pipeline",
							   0, NULL, NULL, NULL, SPI_OK_SELECT);
	pipelines = SpiGetInt64(0, 1, NULL);
	SPI_finish();

	if (pipelines > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension medallion because " INT64_FORMAT " pipelines exist",
						pipelines),
				 errdetail("Dropping the extension forgets every role's pipelines, file ledgers, watermarks and secrets; the pipelines' tables stay, and no new pipeline can take them over."),
				 errhint("Drop the pipelines with medallion.drop_pipeline() first, or use DROP EXTENSION medallion CASCADE.")));
	PG_RETURN_VOID();
}
