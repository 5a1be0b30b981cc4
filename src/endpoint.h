/*-------------------------------------------------------------------------
 *
 * endpoint.h
 *	  Which S3 endpoints a role may make the server connect to.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/endpoint.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_ENDPOINT_H
#define MEDALLION_ENDPOINT_H

#include "postgres.h"

/*
 * Raise an error unless role user_id may use the endpoint: superusers may
 * use any; other roles only those listed in medallion.allowed_endpoints
 * (AWS S3 itself, endpoint NULL, is always allowed).  Also checks that the
 * endpoint is an http:// or https:// URL without user, path or query.
 */
extern void EndpointCheckAllowed(const char *endpoint, Oid user_id);

#endif							/* MEDALLION_ENDPOINT_H */
