/*-------------------------------------------------------------------------
 *
 * version.h
 *	  The version of medallion's catalog in the current database, checked
 *	  against the version of the library.
 *
 * The library works only on a catalog of its own version: a database whose
 * catalog is older (not yet updated with ALTER EXTENSION medallion UPDATE)
 * gets a clear error from every function of the library, and its
 * continuous pipelines wait, until the versions agree.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/version.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_VERSION_H
#define MEDALLION_VERSION_H

#include "postgres.h"

/*
 * Raise an error when the medallion catalog of the current database is of
 * another version than the library; returns true otherwise (also when the
 * extension is not installed).  Needs a transaction; the answer is kept
 * until the transaction (or the subtransaction that changed it) ends.
 */
extern bool VersionCheckCatalog(void);

/*
 * The first declaration of every SQL-callable function of the library, so
 * that the check runs before any argument is read: the definitions of an
 * older catalog may pass fewer arguments than the library's code reads.
 */
#define VERSION_CHECK_CATALOG() \
	bool		catalog_version_checked pg_attribute_unused() = VersionCheckCatalog()

/*
 * For the scheduler: false when the catalog is of another version than the
 * library, which is logged once per process (and again after the versions
 * agreed in between); true otherwise.  Needs a transaction.
 */
extern bool VersionCatalogUsable(void);

#endif							/* MEDALLION_VERSION_H */
