/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The pipeline worker of continuous mode: one per running continuous
 *	  pipeline, started by the scheduler of its database.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_WORKER_H
#define MEDALLION_WORKER_H

#include "postgres.h"

#include "worker_slots.h"

/* What a scheduler passes to a pipeline worker in bgw_extra. */
typedef struct PipelineWorkerArgs
{
	Oid			database_id;
	WorkerSlotClaim claim;		/* the slot of medallion.max_workers it holds */
	Oid			session_role;	/* DynamicWorkerConnect's session_role */
	char		pipeline_name[NAMEDATALEN];
} PipelineWorkerArgs;

/* main_arg: the pipeline id; bgw_extra: PipelineWorkerArgs */
PGDLLEXPORT void MedallionPipelineWorkerMain(Datum main_arg);

#endif							/* MEDALLION_WORKER_H */
