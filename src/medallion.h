/*-------------------------------------------------------------------------
 *
 * medallion.h
 *	  Names shared by every part of medallion.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/medallion.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_H
#define MEDALLION_H

#define MEDALLION_EXTENSION_NAME	"medallion"
#define MEDALLION_LIBRARY_NAME		"medallion"
#define MEDALLION_SCHEMA_NAME		"medallion"

/* true when loaded through shared_preload_libraries */
extern bool medallion_preloaded;

#endif							/* MEDALLION_H */
