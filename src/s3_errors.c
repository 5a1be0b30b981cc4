/*-------------------------------------------------------------------------
 *
 * s3_errors.c
 *	  The PostgreSQL error of a failed S3 request: an error code that says
 *	  what kind of failure it was, the operation and object in the message,
 *	  S3's own code and message in the detail, and a hint for the usual
 *	  causes (credentials, region, endpoint).
 *
 * It runs after curl_easy_perform() returned and every curl and expat
 * resource was freed (see s3_client.c's header), so it may ereport.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_errors.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "s3_internal.h"

static int	s3_failure_errmsg(const S3Request *request);
static int	s3_errcode_for_http(long status, const char *code);
static char *s3_http_detail(const S3Response *response,
							const S3Failure *failure);
static char *s3_http_hint(const S3Request *request,
						  const S3Response *response,
						  const S3Failure *failure);
static char *s3_endpoint_for_messages(const S3Location *location);

/*
 * S3ReportFailure raises the error of the last attempt.  Nothing of curl
 * or expat is alive any more when it runs.
 */
void
S3ReportFailure(const S3Request *request, const S3Response *response,
				  const S3Failure *failure, int attempts)
{
	const S3Location *location = request->location;
	const char *gave_up = "";

	if (failure->retryable && attempts > 1)
		gave_up = psprintf(" Gave up after %d attempts.", attempts);

	switch (failure->kind)
	{
		case S3_FAILURE_OUT_OF_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
			break;

		case S3_FAILURE_WRITE:
			errno = response->write_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write object \"%s\" of bucket \"%s\" to a local file: %m",
							request->key, location->bucket)));
			break;

		case S3_FAILURE_TOO_LARGE:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("could not list bucket \"%s\"", location->bucket),
					 errdetail("A listing response exceeded %d MB.",
							   S3_LIST_BODY_LIMIT / (1024 * 1024))));
			break;

		case S3_FAILURE_BAD_BODY:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("could not list bucket \"%s\"", location->bucket),
					 errdetail("%s%s", failure->reason, gave_up)));
			break;

		case S3_FAILURE_SHORT_BODY:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 s3_failure_errmsg(request),
					 errdetail("The connection ended after %lld of %lld bytes.%s",
							   (long long) response->body_bytes,
							   (long long) response->content_length,
							   gave_up)));
			break;

		case S3_FAILURE_NO_RESPONSE:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 s3_failure_errmsg(request),
					 errdetail("S3 sent no response within %d ms.%s",
							   response->first_byte_limit_ms, gave_up),
					 errhint("Check that the endpoint \"%s\" is answering; if it is only slow, raise medallion.s3_first_byte_timeout.",
							 s3_endpoint_for_messages(location))));
			break;

		case S3_FAILURE_CURL:
			{
				int			sqlstate = ERRCODE_CONNECTION_FAILURE;
				char	   *hint = NULL;
				char	   *endpoint = s3_endpoint_for_messages(location);

				switch (response->curl_code)
				{
					case CURLE_UNSUPPORTED_PROTOCOL:
					case CURLE_URL_MALFORMAT:
						sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
						hint = psprintf("Check the endpoint \"%s\".", endpoint);
						break;
					case CURLE_COULDNT_RESOLVE_HOST:
						hint = psprintf("Check the host name of the endpoint \"%s\".",
										endpoint);
						break;
					case CURLE_COULDNT_CONNECT:
					case CURLE_OPERATION_TIMEDOUT:
					case CURLE_GOT_NOTHING:
						hint = psprintf("Check that the endpoint \"%s\" is reachable from the database server.",
										endpoint);
						break;
					case CURLE_SSL_CONNECT_ERROR:
					case CURLE_PEER_FAILED_VERIFICATION:
						hint = psprintf("Check the TLS setup of the endpoint \"%s\" and the CA certificates of the database server.",
										endpoint);
						break;
					default:
						break;
				}

				ereport(ERROR,
						(errcode(sqlstate),
						 s3_failure_errmsg(request),
						 errdetail("%s.%s", failure->reason, gave_up),
						 hint ? errhint("%s", hint) : 0));
			}
			break;

		case S3_FAILURE_HTTP:
			{
				char	   *detail = s3_http_detail(response, failure);
				char	   *hint = s3_http_hint(request, response, failure);
				int			sqlstate;

				if (failure->retryable)
					sqlstate = ERRCODE_CONNECTION_FAILURE;
				else
					sqlstate = s3_errcode_for_http(response->status,
												   failure->error.code);

				ereport(ERROR,
						(errcode(sqlstate),
						 s3_failure_errmsg(request),
						 errdetail("%s%s", detail, gave_up),
						 hint ? errhint("%s", hint) : 0));
			}
			break;

		case S3_FAILURE_NONE:
			break;
	}

	elog(ERROR, "unexpected S3 failure kind %d", (int) failure->kind);
}

/* The primary message of a failed request, for use inside ereport(). */
static int
s3_failure_errmsg(const S3Request *request)
{
	if (request->operation == S3_OPERATION_LIST)
		return errmsg("could not list bucket \"%s\"",
					  request->location->bucket);
	return errmsg("could not download object \"%s\" from bucket \"%s\"",
				  request->key, request->location->bucket);
}

/*
 * s3_errcode_for_http maps a permanent S3 error to the SQLSTATE classes
 * documented in s3_client.h, so that callers can tell "fix your settings"
 * from "the object is gone".
 */
static int
s3_errcode_for_http(long status, const char *code)
{
	if (code != NULL)
	{
		if (strcmp(code, "AccessDenied") == 0 ||
			strcmp(code, "InvalidAccessKeyId") == 0 ||
			strcmp(code, "SignatureDoesNotMatch") == 0 ||
			strcmp(code, "ExpiredToken") == 0 ||
			strcmp(code, "InvalidToken") == 0 ||
			strcmp(code, "TokenRefreshRequired") == 0 ||
			strcmp(code, "RequestTimeTooSkewed") == 0)
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		if (strcmp(code, "NoSuchBucket") == 0 ||
			strcmp(code, "NoSuchKey") == 0)
			return ERRCODE_UNDEFINED_OBJECT;
		if (strcmp(code, "PreconditionFailed") == 0)
			return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}

	/* no (known) code: HEAD-like answers without a body, proxies */
	if (status == 401 || status == 403)
		return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
	if (status == 404)
		return ERRCODE_UNDEFINED_OBJECT;
	if (status == 412)
		return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	if (status >= 300 && status < 500)
		return ERRCODE_INVALID_PARAMETER_VALUE;
	if (status >= 500)
		return ERRCODE_CONNECTION_FAILURE;
	return ERRCODE_PROTOCOL_VIOLATION;
}

/* "S3 returned HTTP status 403, code "X": message. Request ID: R." */
static char *
s3_http_detail(const S3Response *response, const S3Failure *failure)
{
	StringInfoData detail;

	initStringInfo(&detail);
	if (failure->error.code != NULL)
	{
		const char *message = failure->error.message;

		appendStringInfo(&detail, "S3 returned HTTP status %ld, code \"%s\"",
						 response->status, failure->error.code);
		if (message != NULL && message[0] != '\0')
		{
			int			length = pg_mbcliplen(message, strlen(message),
											  S3_MESSAGE_CLIP);

			appendStringInfo(&detail, ": %.*s", length, message);
			if (message[length - 1] != '.')
				appendStringInfoChar(&detail, '.');
		}
		else
			appendStringInfoChar(&detail, '.');
	}
	else
		appendStringInfo(&detail, "S3 returned HTTP status %ld.",
						 response->status);

	if (response->request_id[0] != '\0')
		appendStringInfo(&detail, " Request ID: %s.", response->request_id);

	return detail.data;
}

/* Hints for the errors a user can fix, or NULL. */
static char *
s3_http_hint(const S3Request *request, const S3Response *response,
			 const S3Failure *failure)
{
	const char *code = failure->error.code;
	const char *region = failure->error.region;

	if (region == NULL && response->bucket_region[0] != '\0')
		region = response->bucket_region;

	if (code == NULL)
	{
		if (response->status >= 300 && response->status < 400)
		{
			if (region != NULL)
				return psprintf("The bucket is in region \"%s\".", region);
			return pstrdup("Check the region and the endpoint of the bucket.");
		}
		return NULL;
	}

	if (strcmp(code, "NoSuchBucket") == 0)
		return pstrdup("Check the bucket name and the endpoint.");
	if (strcmp(code, "NoSuchKey") == 0)
		return pstrdup("The object may have been deleted after it was listed.");
	if (strcmp(code, "SignatureDoesNotMatch") == 0 ||
		strcmp(code, "InvalidAccessKeyId") == 0)
		return pstrdup("Check that the secret's access key ID and secret access key belong together and are current.");
	if (strcmp(code, "ExpiredToken") == 0 ||
		strcmp(code, "InvalidToken") == 0 ||
		strcmp(code, "TokenRefreshRequired") == 0)
		return pstrdup("Refresh the session token of the secret.");
	if (strcmp(code, "RequestTimeTooSkewed") == 0)
		return pstrdup("Check that the clock of the database server is synchronized.");
	if (strcmp(code, "AccessDenied") == 0)
		return request->operation == S3_OPERATION_LIST ?
			pstrdup("Check that the credentials allow s3:ListBucket on the bucket.") :
			pstrdup("Check that the credentials allow s3:GetObject on the object.");
	if (strcmp(code, "PreconditionFailed") == 0)
		return pstrdup("The object was replaced after it was listed; it will be read again at the next listing.");
	if (strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
		strcmp(code, "PermanentRedirect") == 0 ||
		strcmp(code, "IllegalLocationConstraintException") == 0)
	{
		if (region != NULL)
			return psprintf("The bucket is in region \"%s\".", region);
		if (failure->error.endpoint != NULL)
			return psprintf("The bucket must be addressed through endpoint \"%s\".",
							failure->error.endpoint);
		return pstrdup("Check the region and the endpoint of the bucket.");
	}
	return NULL;
}

/* The endpoint as a user would recognise it in a hint. */
static char *
s3_endpoint_for_messages(const S3Location *location)
{
	bool		virtual_hosted;

	if (location->endpoint != NULL)
		return pstrdup(location->endpoint);
	return S3BucketUrl(location, &virtual_hosted);
}
