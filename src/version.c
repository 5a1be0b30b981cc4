/*-------------------------------------------------------------------------
 *
 * version.c
 *	  The version of medallion's catalog in the current database, checked
 *	  against the version of the library.
 *
 * Each release ships a library and the SQL scripts of its catalog (an
 * install script, and update scripts from earlier releases).  After a new
 * library is installed, a database keeps its catalog of the old version
 * until ALTER EXTENSION medallion UPDATE runs there.  The library knows only
 * the catalog of its own version (its functions may read arguments and
 * columns that older catalogs lack), so it refuses to work on any other,
 * with an error that says which versions meet and what to run.
 *
 * The version of the library is EXTVERSION of the Makefile, passed as
 * MEDALLION_VERSION; the catalog's is pg_extension.extversion.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/version.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "medallion.h"
#include "version.h"

#ifndef MEDALLION_VERSION
#error "MEDALLION_VERSION must be defined (the Makefile passes EXTVERSION)"
#endif

/* the catalog was found current in this transaction */
static bool checked_in_transaction = false;
static bool callbacks_registered = false;

/* the scheduler's process has logged the mismatch */
static bool mismatch_logged = false;

/* the next transaction reads the version again */
static void
version_xact_callback(XactEvent event, void *arg)
{
	checked_in_transaction = false;
}

/* a rolled-back subtransaction may have changed the version */
static void
version_subxact_callback(SubXactEvent event, SubTransactionId subid,
						 SubTransactionId parent_subid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		checked_in_transaction = false;
}

/*
 * pg_extension.extversion of medallion in the current database, or NULL
 * when the extension is not there.  pg_extension has no syscache, so each
 * scan sees the latest catalog state, the current transaction's included.
 */
static char *
installed_version(void)
{
	Relation	relation;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	relation = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(MEDALLION_EXTENSION_NAME));
	scan = systable_beginscan(relation, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		datum = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(relation), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(datum));
	}
	systable_endscan(scan);
	table_close(relation, AccessShareLock);
	return version;
}

/*
 * Compare two versions of the form 1.2.3 number by number: negative when a
 * is older than b.
 */
static int
compare_versions(const char *a, const char *b)
{
	while (*a != '\0' || *b != '\0')
	{
		char	   *end_a;
		char	   *end_b;
		long		number_a = strtol(a, &end_a, 10);
		long		number_b = strtol(b, &end_b, 10);

		if (number_a != number_b)
			return number_a < number_b ? -1 : 1;
		if (end_a == a && end_b == b)
			return strcmp(a, b);
		a = (*end_a == '.') ? end_a + 1 : end_a;
		b = (*end_b == '.') ? end_b + 1 : end_b;
	}
	return 0;
}

/*
 * Report a catalog of another version at elevel: an older one needs
 * ALTER EXTENSION medallion UPDATE, a newer one the library of its version.
 */
static void
report_mismatch(int elevel, const char *installed)
{
	bool		older = compare_versions(installed, MEDALLION_VERSION) < 0;

	ereport(elevel,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("medallion's catalog in database \"%s\" is at version %s, the library at %s",
					get_database_name(MyDatabaseId), installed, MEDALLION_VERSION),
			 elevel < ERROR ?
			 errdetail("The continuous pipelines of this database wait until the versions agree.") : 0,
			 older ?
			 errhint("Run ALTER EXTENSION medallion UPDATE.") :
			 errhint("Install the medallion library of version %s and restart the server.",
					 installed)));
}

/*
 * Called first by every SQL-callable function of the library (through
 * VERSION_CHECK_CATALOG); one catalog lookup per transaction.
 */
bool
VersionCheckCatalog(void)
{
	char	   *installed;

	if (checked_in_transaction)
		return true;
	if (!callbacks_registered)
	{
		RegisterXactCallback(version_xact_callback, NULL);
		RegisterSubXactCallback(version_subxact_callback, NULL);
		callbacks_registered = true;
	}
	installed = installed_version();
	if (installed != NULL && strcmp(installed, MEDALLION_VERSION) != 0)
		report_mismatch(ERROR, installed);
	checked_in_transaction = true;
	return true;
}

/*
 * The scheduler asks every naptime; it must not fill the log, hence one
 * line per process and mismatch.
 */
bool
VersionCatalogUsable(void)
{
	char	   *installed = installed_version();

	if (installed == NULL || strcmp(installed, MEDALLION_VERSION) == 0)
	{
		mismatch_logged = false;
		return true;
	}
	if (!mismatch_logged)
	{
		report_mismatch(LOG, installed);
		mismatch_logged = true;
	}
	return false;
}
