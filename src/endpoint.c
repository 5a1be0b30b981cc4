/*-------------------------------------------------------------------------
 *
 * endpoint.c
 *	  The endpoint allow-list: a non-superuser must not be able to point
 *	  the server at internal addresses (such as the cloud metadata service
 *	  at 169.254.169.254) through a flow's endpoint.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/endpoint.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

#include "endpoint.h"
#include "guc.h"

/* "scheme://host[:port]" with a trailing slash removed, lower-cased */
static char *
normalize_endpoint(const char *endpoint)
{
	char	   *normalized = downcase_identifier(endpoint, strlen(endpoint),
												 false, false);
	size_t		length = strlen(normalized);

	while (length > 0 && normalized[length - 1] == '/')
		normalized[--length] = '\0';
	return normalized;
}

void
EndpointCheckAllowed(const char *endpoint, Oid user_id)
{
	char	   *normalized;
	const char *host;
	char	   *list;
	List	   *allowed;
	ListCell   *cell;

	if (strncmp(endpoint, "http://", 7) == 0)
		host = endpoint + 7;
	else if (strncmp(endpoint, "https://", 8) == 0)
		host = endpoint + 8;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid S3 endpoint \"%s\"", endpoint),
				 errhint("Use the form http://host:port or https://host.")));
	if (host[0] == '\0' || strpbrk(host, "@?#") != NULL ||
		(strchr(host, '/') != NULL && strchr(host, '/')[1] != '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid S3 endpoint \"%s\"", endpoint),
				 errdetail("An endpoint is a scheme, a host and an optional port, with no user, path or query.")));

	if (superuser_arg(user_id))
		return;

	normalized = normalize_endpoint(endpoint);
	list = pstrdup(medallion_allowed_endpoints ? medallion_allowed_endpoints : "");
	if (!SplitGUCList(list, ',', &allowed))
		allowed = NIL;
	foreach(cell, allowed)
	{
		if (strcmp(normalize_endpoint((char *) lfirst(cell)), normalized) == 0)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("endpoint \"%s\" is not allowed", endpoint),
			 errdetail("Only superusers may use S3 endpoints that are not listed in medallion.allowed_endpoints."),
			 errhint("A superuser can add the endpoint to medallion.allowed_endpoints.")));
}
