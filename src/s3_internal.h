/*-------------------------------------------------------------------------
 *
 * s3_internal.h
 *	  What the files of the S3 client share: one request, what one attempt
 *	  of it produced, and why it failed.
 *
 * s3_client.c runs requests (curl, retries, callbacks), s3_url.c builds
 * their canonical URLs, s3_errors.c turns a failed request into a
 * PostgreSQL error.  Nothing outside these files includes this header.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_S3_INTERNAL_H
#define MEDALLION_S3_INTERNAL_H

#include "postgres.h"

#include <curl/curl.h>

#include "portability/instr_time.h"

#include "s3_client.h"
#include "s3_xml.h"

/* SHA-256 of the empty body: the payload hash of every GET we send. */
#define S3_EMPTY_BODY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A 1000-key page is well under 1 MB; anything this big is not a page. */
#define S3_LIST_BODY_LIMIT		(16 * 1024 * 1024)

/* Error documents are small; we keep only this much of a failed answer. */
#define S3_ERROR_BODY_LIMIT		(64 * 1024)

#define S3_LIST_MAX_KEYS		"1000"

/* Longest S3 error message we copy into an errdetail. */
#define S3_MESSAGE_CLIP			1024

/* What a request is for; chooses the wording of its error messages. */
typedef enum S3Operation
{
	S3_OPERATION_LIST,
	S3_OPERATION_GET
} S3Operation;

/* One logical request, which may take several attempts. */
typedef struct S3Request
{
	S3Operation operation;
	const S3Location *location;
	const S3Credentials *credentials;
	const char *key;			/* GET: the object key */
	const char *url;			/* canonical URL */
	const char *etag;			/* GET: If-Match value, or NULL */
	int			fd;				/* GET: body goes here; -1 to buffer */
	char	   *description;	/* "list s3://bucket/prefix", for callbacks */

	/* set by s3_execute for each attempt */
	int			first_byte_limit_ms;	/* 0: no limit */
	bool		fresh_connection;	/* a retry: new connection, new DNS */
} S3Request;

/*
 * What one attempt produced.  The first part is written by the curl
 * callbacks and holds only malloc'd memory and fixed-size buffers.
 */
typedef struct S3Response
{
	/* set up before the transfer */
	CURL	   *curl;
	int			fd;
	int			first_byte_limit_ms;	/* 0: no limit */

	/* where the body goes, decided at its first byte */
	bool		sink_chosen;
	bool		sink_is_fd;
	bool		success_body;	/* a 2xx body, not an error document */
	size_t		buffer_limit;

	/* buffered body (malloc'd; freed right after the transfer) */
	char	   *buffer;
	size_t		buffer_length;
	size_t		buffer_capacity;

	/* what the callbacks observed */
	int64		body_bytes;		/* bytes of a 2xx body received */
	int			write_errno;	/* write(2) to fd failed with this */
	bool		body_too_large;
	bool		out_of_memory;
	bool		interrupted;
	bool		request_sent;	/* the connection is up, the request going */
	instr_time	request_sent_at;
	bool		got_response;	/* some byte of the answer arrived */
	bool		no_response;	/* cut by the first-byte limit */
	char		retry_after[32];
	char		request_id[128];
	char		bucket_region[64];
	char		curl_message[CURL_ERROR_SIZE];

	/* filled after the transfer */
	CURLcode	curl_code;
	long		status;
	int64		content_length; /* -1 when unknown */
	char	   *body;			/* palloc'd copy of the buffered body */
	size_t		body_length;
} S3Response;

/* Why an attempt did not succeed. */
typedef enum S3FailureKind
{
	S3_FAILURE_NONE,
	S3_FAILURE_CURL,			/* transport error */
	S3_FAILURE_NO_RESPONSE,		/* nothing within the first-byte limit */
	S3_FAILURE_HTTP,			/* an HTTP error status */
	S3_FAILURE_SHORT_BODY,		/* fewer bytes than Content-Length */
	S3_FAILURE_BAD_BODY,		/* 200 with a body that is not a listing */
	S3_FAILURE_TOO_LARGE,		/* listing body above S3_LIST_BODY_LIMIT */
	S3_FAILURE_WRITE,			/* writing to the caller's file failed */
	S3_FAILURE_OUT_OF_MEMORY
} S3FailureKind;

typedef struct S3Failure
{
	S3FailureKind kind;
	bool		retryable;
	char	   *reason;			/* one line, for the retry callback */
	long		retry_after_ms; /* from Retry-After, or -1 */
	S3ErrorBody error;			/* parsed <Error>, for S3_FAILURE_HTTP */
} S3Failure;

/* s3_url.c: URLs that are already canonical for SigV4 */

/* Reject a location that would make a malformed URL or SigV4 scope. */
extern void S3CheckLocation(const S3Location *location);
extern char *S3BucketUrl(const S3Location *location, bool *virtual_hosted);
extern char *S3ObjectUrl(const S3Location *location, const char *key);
extern char *S3ListUrl(const S3Location *location, const char *prefix,
					   const char *start_after,
					   const char *continuation_token);

/* s3_errors.c: raise the error of a request's last failed attempt */
extern void S3ReportFailure(const S3Request *request,
							const S3Response *response,
							const S3Failure *failure, int attempts) pg_attribute_noreturn();

#endif							/* MEDALLION_S3_INTERNAL_H */
