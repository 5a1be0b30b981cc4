/*-------------------------------------------------------------------------
 *
 * bronze_parallel.h
 *	  The background worker that helps ingest one bronze batch in parallel
 *	  (see bronze_parallel.c and BronzeIngestInParallel).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze_parallel.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_BRONZE_PARALLEL_H
#define MEDALLION_BRONZE_PARALLEL_H

#include "postgres.h"

/* main_arg: the shared memory segment's handle; bgw_extra: the slot */
PGDLLEXPORT void MedallionObjectWorkerMain(Datum main_arg);

#endif							/* MEDALLION_BRONZE_PARALLEL_H */
