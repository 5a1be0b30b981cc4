/*-------------------------------------------------------------------------
 *
 * secret.h
 *	  Stored S3 credentials: creating, dropping, and loading them for the
 *	  role that owns a pipeline.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/secret.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SECRET_H
#define MEDALLION_SECRET_H

#include "s3_client.h"

/*
 * Credentials for a flow owned by role user_id: the named secret (which
 * that role must own, unless it is a superuser), or, with a NULL name, the
 * server's AWS_* environment for a superuser (anonymous access when it has
 * none), and anonymous access for any other role.  Allocated in the current
 * memory context.
 */
extern S3Credentials *SecretLoad(const char *secret_name, Oid user_id);

/* Raise an error unless role user_id may use the named secret. */
extern void SecretCheckUsable(const char *secret_name, Oid user_id);

#endif							/* MEDALLION_SECRET_H */
