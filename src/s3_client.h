/*-------------------------------------------------------------------------
 *
 * s3_client.h
 *	  A small S3 client over libcurl: ListObjectsV2 and streamed GetObject,
 *	  signed with AWS Signature Version 4, with retries.
 *
 * Every function here runs outside any libcurl callback when it reports an
 * error, and reports it with ereport(ERROR) after freeing its curl and expat
 * resources.  Transfers are interruptible: a query cancel or a termination
 * request aborts the transfer promptly and is then processed by
 * CHECK_FOR_INTERRUPTS().
 *
 * Error codes, so that callers can tell transient from permanent failures:
 *	 ERRCODE_CONNECTION_FAILURE   network error, no answer within
 *								  medallion.s3_first_byte_timeout, or
 *								  5xx/SlowDown/RequestTimeout still failing
 *								  after every retry (transient)
 *	 ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
 *								  AccessDenied, InvalidAccessKeyId,
 *								  SignatureDoesNotMatch, ExpiredToken,
 *								  RequestTimeTooSkewed
 *	 ERRCODE_UNDEFINED_OBJECT	  NoSuchBucket, NoSuchKey
 *	 ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
 *								  PreconditionFailed (object changed under us)
 *	 ERRCODE_INVALID_PARAMETER_VALUE
 *								  other 4xx answers (wrong region, bad request)
 *	 ERRCODE_PROTOCOL_VIOLATION   a body that is not the XML S3 promises, after
 *								  retries
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_client.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_S3_CLIENT_H
#define MEDALLION_S3_CLIENT_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Key material; access_key_id NULL means anonymous (unsigned) requests. */
typedef struct S3Credentials
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL when there is none */
} S3Credentials;

/* Where a bucket lives. */
typedef struct S3Location
{
	char	   *endpoint;		/* NULL for AWS, else "http://host:port" */
	char	   *region;			/* e.g. "us-east-1" */
	char	   *bucket;
} S3Location;

/* One entry of a listing. */
typedef struct S3Object
{
	char	   *key;			/* decoded object key */
	char	   *etag;			/* as S3 gives it, quotes stripped */
	int64		size;
	TimestampTz last_modified;
} S3Object;

/*
 * Called for every object of a listing, in listing order.  Return false to
 * stop the listing early.  Runs outside curl callbacks: it may palloc and
 * even ereport.
 */
typedef bool (*S3ListCallback) (const S3Object *object, void *arg);

/*
 * Called before each retry: what was being done, the attempt that failed
 * (1-based), the delay before the next attempt and why.  May ereport(LOG)
 * or record the retry; must not ereport(ERROR).
 */
typedef void (*S3RetryCallback) (const char *operation, int attempt,
								 long delay_ms, const char *reason,
								 void *arg);

/* Counters of the requests made by this process, for event_log details. */
typedef struct S3ClientStats
{
	int64		requests;
	int64		retries;
	int64		bytes_received;
} S3ClientStats;

extern S3ClientStats S3Stats;

/* Register (or clear, with NULL) the retry callback of this process. */
extern void S3SetRetryCallback(S3RetryCallback callback, void *arg);

/*
 * List every object whose key starts with prefix and sorts after start_after
 * (NULL or "" for no lower bound), following continuation tokens until the
 * listing ends or the callback returns false.
 */
extern void S3ListObjects(const S3Location *location,
						  const S3Credentials *credentials,
						  const char *prefix, const char *start_after,
						  S3ListCallback callback, void *arg);

/*
 * Download one object, writing its body to the file descriptor fd (which
 * must be positioned at offset 0 of an empty file).  When etag is not NULL
 * the request carries If-Match, so that an object replaced since it was
 * listed fails with ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE instead of
 * mixing versions.  A transfer that fails part way is retried from the
 * start (the file is truncated first).  Returns the number of bytes written.
 */
extern int64 S3GetObjectToFile(const S3Location *location,
							   const S3Credentials *credentials,
							   const char *key, const char *etag, int fd);

/*
 * Percent-encode bytes the way SigV4 canonical requests need it (RFC 3986
 * unreserved characters kept, uppercase hex, '/' kept only when keep_slash).
 * Exposed for tests and for building s3:// paths.
 */
extern char *S3UriEncode(const char *bytes, bool keep_slash);

/* Parse "s3://bucket/prefix"; ereports a clear error when it is not one. */
extern void S3ParseUrl(const char *url, char **bucket, char **prefix);

#endif							/* MEDALLION_S3_CLIENT_H */
