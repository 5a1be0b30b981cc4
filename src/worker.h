/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The pipeline worker of continuous mode: one per running continuous
 *	  pipeline, started by the scheduler of its database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_WORKER_H
#define MEDALLION_WORKER_H

#include "postgres.h"

/* main_arg: the pipeline id; bgw_extra: the database OID */
PGDLLEXPORT void MedallionPipelineWorkerMain(Datum main_arg);

#endif							/* MEDALLION_WORKER_H */
