/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every PostgreSQL-version-specific shim of medallion, in one place.
 *
 * medallion is built and tested on PostgreSQL 15.  Code elsewhere must not
 * test PG_VERSION_NUM; it uses the names defined here instead.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_COMPAT_H
#define MEDALLION_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "medallion requires PostgreSQL 15 or later"
#endif

/* Wait event reported while a medallion process sleeps or waits on S3. */
#if PG_VERSION_NUM >= 170000
#define MEDALLION_WAIT_EVENT_MAIN	PG_WAIT_EXTENSION
#else
#define MEDALLION_WAIT_EVENT_MAIN	PG_WAIT_EXTENSION
#endif

/*
 * The PGPROC of the backend running a virtual transaction (NULL when there
 * is none), and the local transaction id a PGPROC runs now.
 */
#if PG_VERSION_NUM >= 170000
#define MedallionVirtualXactProc(vxid)	ProcNumberGetProc((vxid).procNumber)
#define MedallionProcLocalXid(proc)		((proc)->vxid.lxid)
#else
#define MedallionVirtualXactProc(vxid)	BackendIdGetProc((vxid).backendId)
#define MedallionProcLocalXid(proc)		((proc)->lxid)
#endif

#endif							/* MEDALLION_COMPAT_H */
