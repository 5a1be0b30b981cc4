/*-------------------------------------------------------------------------
 *
 * pipeline_graph.h
 *	  medallion.pipeline_graph(): a picture of a pipeline as Mermaid or
 *	  Graphviz DOT text.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline_graph.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_PIPELINE_GRAPH_H
#define MEDALLION_PIPELINE_GRAPH_H

#include "postgres.h"

#include "fmgr.h"

/* medallion.pipeline_graph(pipeline_name text, format text) RETURNS text */
extern Datum medallion_pipeline_graph(PG_FUNCTION_ARGS);

#endif							/* MEDALLION_PIPELINE_GRAPH_H */
