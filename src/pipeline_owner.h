/*-------------------------------------------------------------------------
 *
 * pipeline_owner.h
 *	  Handing a pipeline to another role (alter_pipeline's owner argument).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline_owner.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_PIPELINE_OWNER_H
#define MEDALLION_PIPELINE_OWNER_H

#include "postgres.h"

#include "catalog.h"

/*
 * Make new_owner the owner of the pipeline, its tables and the secrets
 * only it uses.  The caller has checked that it may manage the pipeline
 * and holds its update lock; this checks that the caller is a member of
 * new_owner (superusers aside).
 */
extern void PipelineChangeOwner(const PipelineDesc *pipeline, Oid new_owner);

#endif							/* MEDALLION_PIPELINE_OWNER_H */
