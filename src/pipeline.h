/*-------------------------------------------------------------------------
 *
 * pipeline.h
 *	  What pipeline.c, the SQL functions that manage pipelines, offers the
 *	  functions that change a pipeline's flows.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_PIPELINE_H
#define MEDALLION_PIPELINE_H

#include "postgres.h"

#include "update_control.h"

/*
 * Take the pipeline's update lock until the end of the transaction: no
 * update of it runs meanwhile.  A running update is asked to stop on
 * behalf of reason (and terminated after UPDATE_STOP_GRACE_MS); with
 * UPDATE_STOP_NONE it is waited for.
 */
extern void PipelineLockUpdates(int32 pipeline_id, UpdateStopReason reason);

#endif							/* MEDALLION_PIPELINE_H */
