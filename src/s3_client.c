/*-------------------------------------------------------------------------
 *
 * s3_client.c
 *	  ListObjectsV2 and streamed GetObject over libcurl, signed with
 *	  CURLOPT_AWS_SIGV4, with retries, interrupt handling and PostgreSQL
 *	  error reporting.
 *
 * Signing.  libcurl 7.88 signs the path and the query string exactly as it
 * is given: it neither sorts nor re-encodes them.  So this file builds a
 * URL that is already canonical for SigV4: every path segment and query
 * value percent-encoded with uppercase hex (S3UriEncode), query parameters
 * sorted by encoded name and always written as name=value, and
 * CURLOPT_PATH_AS_IS so that curl does not rewrite "." or ".." segments of a
 * key.  curl 7.88 does not add x-amz-content-sha256, which S3 requires, so
 * we send the SHA-256 of the empty body ourselves.  libcurl 8.14 to 8.18
 * re-canonicalise the query and break continuation tokens holding '+'; we
 * refuse to run on them.
 *
 * One easy handle per process.  curl_easy_reset() between requests drops
 * every option (and the credentials curl copied) but keeps the connection
 * cache, so consecutive requests to one endpoint reuse the connection.
 *
 * Stalls.  A request that gets no answer at all (an overloaded front end, a
 * connection that died while idle in the cache) is cut once it has waited
 * medallion.s3_first_byte_timeout since it was sent, and retried.  This is
 * a limit on the time to the first byte of the answer only, never on the
 * whole transfer: a long download that keeps receiving bytes runs as long
 * as it needs, and one that stops part way is left to the low-speed limit
 * (medallion.s3_low_speed_limit/_time).  A request cut this way doubles
 * its limit for the next attempt, so that an endpoint that is merely slow
 * still gets through, as S3's guidance for latency-sensitive clients does
 * (retry after 2 s, then after 4 more).  Every retry goes out on a new
 * connection after a fresh DNS lookup, which may reach another front end.
 *
 * Callbacks never ereport.  curl's write, header and progress callbacks and
 * expat's callbacks run on curl's and expat's stacks; an ERROR there would
 * longjmp over them and leak their state.  They only record what happened
 * (into malloc'd memory or fixed buffers).  After curl_easy_perform()
 * returns, every curl_slist and buffer is freed and the handle reset, and
 * only then is an error reported.  A query cancel or termination request
 * makes the progress callback abort the transfer; CHECK_FOR_INTERRUPTS()
 * then raises it.
 *
 * Secrets.  The secret access key and the session token reach curl and
 * nothing else: no message, log line or DEBUG output of this file contains
 * them, nor the Authorization header (curl builds it; we never see it).
 *
 * The URLs come from s3_url.c and the errors of failed requests from
 * s3_errors.c; s3_internal.h holds what the three share.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_client.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "guc.h"
#include "s3_client.h"
#include "s3_internal.h"
#include "s3_xml.h"

#if LIBCURL_VERSION_NUM < 0x075600
#error "medallion needs libcurl 7.86.0 or later (SigV4 signing of user headers)"
#endif

/* Process-wide state. */
S3ClientStats S3Stats;

static CURL *s3_curl = NULL;
static bool s3_curl_global_done = false;
static bool s3_curl_version_ok = false;
static S3RetryCallback s3_retry_callback = NULL;
static void *s3_retry_callback_arg = NULL;

static CURL *s3_get_handle(void);
static bool s3_is_signed(const S3Credentials *credentials);
static void s3_execute(S3Request *request, S3Response *response,
					   S3ListPage *page);
static void s3_perform(const S3Request *request, S3Response *response);
static void s3_judge(const S3Request *request, S3Response *response,
					 S3ListPage *page, S3Failure *failure);
static bool s3_is_retryable_curl_code(CURLcode code);
static int	s3_first_byte_limit_ms(int earlier_no_responses);
static long s3_backoff_ms(int failed_attempt, long retry_after_ms);
static void s3_sleep(long delay_ms);
static void s3_rewind_file(const S3Request *request);
static bool s3_interrupt_wanted(void);
static size_t s3_write_callback(char *data, size_t size, size_t nmemb,
								void *userdata);
static size_t s3_header_callback(char *data, size_t size, size_t nmemb,
								 void *userdata);
static int	s3_progress_callback(void *clientp, curl_off_t dltotal,
								 curl_off_t dlnow, curl_off_t ultotal,
								 curl_off_t ulnow);
static int	s3_prereq_callback(void *clientp, char *conn_primary_ip,
							   char *conn_local_ip, int conn_primary_port,
							   int conn_local_port);
static void s3_copy_header_value(const char *line, size_t length,
								 const char *name, char *value,
								 size_t value_size);

/*
 * S3SetRetryCallback registers the function told about every retry, so
 * that the caller can log it or record it in its event log.
 */
void
S3SetRetryCallback(S3RetryCallback callback, void *arg)
{
	s3_retry_callback = callback;
	s3_retry_callback_arg = arg;
}

/*
 * S3ListObjects pages through ListObjectsV2 and hands each object to the
 * callback.  The S3Object passed to the callback (and its strings) lives
 * only until the callback returns: each page is parsed in its own memory
 * context, reset before the next page, so that listing a large bucket takes
 * constant memory.  The callback runs in the caller's memory context.
 */
void
S3ListObjects(const S3Location *location, const S3Credentials *credentials,
			  const char *prefix, const char *start_after,
			  S3ListCallback callback, void *arg)
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext page_context;
	char	   *continuation_token = NULL;

	S3CheckLocation(location);
	if (prefix == NULL)
		prefix = "";

	page_context = AllocSetContextCreate(caller_context,
										 "medallion S3 listing page",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		S3Request	request;
		S3Response	response;
		S3ListPage	page;
		bool		stopped = false;
		int			i;

		MemoryContextSwitchTo(page_context);

		memset(&request, 0, sizeof(request));
		request.operation = S3_OPERATION_LIST;
		request.location = location;
		request.credentials = credentials;
		request.fd = -1;
		request.url = S3ListUrl(location, prefix, start_after,
								  continuation_token);
		request.description = psprintf("list s3://%s/%s",
									   location->bucket, prefix);

		s3_execute(&request, &response, &page);

		MemoryContextSwitchTo(caller_context);

		for (i = 0; i < page.object_count; i++)
		{
			if (!callback(&page.objects[i], arg))
			{
				stopped = true;
				break;
			}
		}
		if (stopped || !page.is_truncated)
			break;

		/* a truncated page must say where to go on, and must move on */
		if (page.next_continuation_token == NULL ||
			(continuation_token != NULL &&
			 strcmp(continuation_token, page.next_continuation_token) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("could not list bucket \"%s\"", location->bucket),
					 errdetail("S3 returned a truncated listing without a new continuation token.")));

		if (continuation_token != NULL)
			pfree(continuation_token);
		continuation_token = pstrdup(page.next_continuation_token);

		MemoryContextReset(page_context);
		CHECK_FOR_INTERRUPTS();
	}

	MemoryContextSwitchTo(caller_context);
	MemoryContextDelete(page_context);
	if (continuation_token != NULL)
		pfree(continuation_token);
}

/*
 * S3GetObjectToFile streams one object into fd.  The body never sits in
 * memory: the write callback hands each chunk to write(2).
 */
int64
S3GetObjectToFile(const S3Location *location,
				  const S3Credentials *credentials,
				  const char *key, const char *etag, int fd)
{
	S3Request	request;
	S3Response	response;

	S3CheckLocation(location);
	if (key == NULL || key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 object key must not be empty")));

	memset(&request, 0, sizeof(request));
	request.operation = S3_OPERATION_GET;
	request.location = location;
	request.credentials = credentials;
	request.key = key;
	request.etag = (etag != NULL && etag[0] != '\0') ? etag : NULL;
	request.fd = fd;
	request.url = S3ObjectUrl(location, key);
	request.description = psprintf("get s3://%s/%s", location->bucket, key);

	s3_execute(&request, &response, NULL);

	pfree(request.description);
	pfree((char *) request.url);
	if (response.body != NULL)
		pfree(response.body);

	return response.body_bytes;
}

/*
 * s3_get_handle returns this process's easy handle, creating it on first
 * use.  curl_global_init is not thread-safe, but a backend has one thread;
 * it runs once, lazily, so that processes that never talk to S3 pay
 * nothing.
 */
static CURL *
s3_get_handle(void)
{
	curl_version_info_data *version;

	if (s3_curl != NULL)
		return s3_curl;

	if (!s3_curl_global_done)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl")));
		s3_curl_global_done = true;
	}

	if (!s3_curl_version_ok)
	{
		version = curl_version_info(CURLVERSION_NOW);

		/* curl #20543: "%2B" in the query is re-encoded as "%20" */
		if (version->version_num >= 0x080E00 &&
			version->version_num < 0x081300)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("libcurl %s cannot be used for S3", version->version),
					 errdetail("Versions 8.14.0 to 8.18.x of libcurl re-encode the query string before signing it with SigV4, turning \"%%2B\" into \"%%20\", so listings whose continuation token contains \"+\" fail with SignatureDoesNotMatch."),
					 errhint("Use libcurl 8.13.x or earlier, or 8.19.0 or later.")));

		/* before 7.86 curl neither signs user headers nor the port */
		if (version->version_num < 0x075600)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("libcurl %s cannot be used for S3", version->version),
					 errdetail("Versions of libcurl before 7.86.0 leave x-amz-content-sha256, x-amz-security-token and the port out of the SigV4 signature."),
					 errhint("Use libcurl 7.86.0 or later.")));
		s3_curl_version_ok = true;
	}

	s3_curl = curl_easy_init();
	if (s3_curl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create a libcurl handle.")));
	return s3_curl;
}

/* A request is signed when the credentials carry an access key. */
static bool
s3_is_signed(const S3Credentials *credentials)
{
	return credentials != NULL && credentials->access_key_id != NULL &&
		credentials->access_key_id[0] != '\0';
}

/*
 * s3_execute makes the attempts of one request until one succeeds, a
 * failure is permanent, or medallion.s3_max_attempts is used up; then it
 * reports the last failure.  For a listing, a 200 whose body does not parse
 * is a failed attempt too.  On success, page (if given) holds the parsed
 * listing and response the transfer's figures.  Retries go out on a new
 * connection; each attempt cut for want of an answer doubles the
 * first-byte limit of the next.
 */
static void
s3_execute(S3Request *request, S3Response *response, S3ListPage *page)
{
	int			max_attempts = Max(1, medallion_s3_max_attempts);
	int			no_responses = 0;
	int			attempt;

	request->fresh_connection = false;
	for (attempt = 1;; attempt++)
	{
		S3Failure	failure;
		long		delay_ms;

		CHECK_FOR_INTERRUPTS();

		request->first_byte_limit_ms = s3_first_byte_limit_ms(no_responses);
		s3_perform(request, response);

		/* everything of curl is freed now; it is safe to raise errors */
		if (response->interrupted ||
			(response->curl_code == CURLE_ABORTED_BY_CALLBACK &&
			 !response->no_response))
		{
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("S3 transfer was interrupted")));
		}

		s3_judge(request, response, page, &failure);
		if (failure.kind == S3_FAILURE_NONE)
			return;

		if (!failure.retryable || attempt >= max_attempts)
			S3ReportFailure(request, response, &failure, attempt);
		if (failure.kind == S3_FAILURE_NO_RESPONSE)
			no_responses++;
		request->fresh_connection = true;

		delay_ms = s3_backoff_ms(attempt, failure.retry_after_ms);
		if (s3_retry_callback != NULL)
			s3_retry_callback(request->description, attempt, delay_ms,
							  failure.reason, s3_retry_callback_arg);
		S3Stats.retries++;
		elog(DEBUG1, "retrying %s in %ld ms after attempt %d failed: %s",
			 request->description, delay_ms, attempt, failure.reason);

		if (response->body != NULL)
			pfree(response->body);
		if (request->fd >= 0)
			s3_rewind_file(request);

		s3_sleep(delay_ms);
	}
}

/*
 * The request headers of one attempt, built in palloc'd memory before curl
 * sees them, and wiped afterwards: one of them may carry a session token.
 */
typedef struct S3Headers
{
	char	   *lines[3];
	int			count;
	char	   *sigv4_scope;	/* NULL: an unsigned request */
	struct curl_slist *list;	/* malloc'd by curl */
} S3Headers;

/*
 * Build the headers: the payload hash S3 requires, the session token, and
 * If-Match for a GET of a known version.  Returns CURLE_OUT_OF_MEMORY when
 * curl could not copy them (nothing is left to free then).
 */
static CURLcode
s3_headers_build(const S3Request *request, S3Headers *headers)
{
	const S3Credentials *credentials = request->credentials;
	int			i;

	memset(headers, 0, sizeof(S3Headers));
	headers->lines[headers->count++] =
		pstrdup("x-amz-content-sha256: " S3_EMPTY_BODY_SHA256);
	if (s3_is_signed(credentials) && credentials->session_token != NULL &&
		credentials->session_token[0] != '\0')
		headers->lines[headers->count++] =
			psprintf("x-amz-security-token: %s", credentials->session_token);
	if (request->etag != NULL)
		headers->lines[headers->count++] = psprintf("If-Match: \"%s\"",
													request->etag);
	if (s3_is_signed(credentials))
		headers->sigv4_scope = psprintf("aws:amz:%s:s3",
										request->location->region != NULL &&
										request->location->region[0] != '\0' ?
										request->location->region : "us-east-1");

	for (i = 0; i < headers->count; i++)
	{
		struct curl_slist *appended = curl_slist_append(headers->list,
														headers->lines[i]);

		if (appended == NULL)
		{
			curl_slist_free_all(headers->list);
			headers->list = NULL;
			return CURLE_OUT_OF_MEMORY;
		}
		headers->list = appended;
	}
	return CURLE_OK;
}

/* Free the headers; the token must not linger in freed memory. */
static void
s3_headers_free(S3Headers *headers)
{
	int			i;

	curl_slist_free_all(headers->list);
	headers->list = NULL;
	for (i = 0; i < headers->count; i++)
	{
		explicit_bzero(headers->lines[i], strlen(headers->lines[i]));
		pfree(headers->lines[i]);
	}
	headers->count = 0;
	if (headers->sigv4_scope != NULL)
		pfree(headers->sigv4_scope);
	headers->sigv4_scope = NULL;
}

/*
 * Set every option of one attempt on the freshly reset handle: the URL
 * as given (already canonical), our callbacks, the timeouts, a new
 * connection for a retry, and SigV4 signing for a signed request.  Returns
 * the first failing option's code.
 */
static CURLcode
s3_configure(CURL *curl, const S3Request *request, S3Response *response,
			 const S3Headers *headers)
{
	CURLcode	code = CURLE_OK;

#define S3_SETOPT(option, value) \
	do { \
		if (code == CURLE_OK) \
			code = curl_easy_setopt(curl, option, value); \
	} while (0)

	S3_SETOPT(CURLOPT_URL, request->url);
	S3_SETOPT(CURLOPT_HTTPGET, 1L);
	S3_SETOPT(CURLOPT_PATH_AS_IS, 1L);
	S3_SETOPT(CURLOPT_NOSIGNAL, 1L);
	S3_SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	S3_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	S3_SETOPT(CURLOPT_HTTPHEADER, headers->list);
	S3_SETOPT(CURLOPT_USERAGENT, "medallion");
	S3_SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
			  (long) medallion_s3_connect_timeout_ms);
	S3_SETOPT(CURLOPT_LOW_SPEED_LIMIT, (long) medallion_s3_low_speed_limit);
	S3_SETOPT(CURLOPT_LOW_SPEED_TIME, (long) medallion_s3_low_speed_time);
	S3_SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	S3_SETOPT(CURLOPT_ERRORBUFFER, response->curl_message);
	S3_SETOPT(CURLOPT_WRITEFUNCTION, s3_write_callback);
	S3_SETOPT(CURLOPT_WRITEDATA, response);
	S3_SETOPT(CURLOPT_HEADERFUNCTION, s3_header_callback);
	S3_SETOPT(CURLOPT_HEADERDATA, response);
	S3_SETOPT(CURLOPT_NOPROGRESS, 0L);
	S3_SETOPT(CURLOPT_XFERINFOFUNCTION, s3_progress_callback);
	S3_SETOPT(CURLOPT_XFERINFODATA, response);
	S3_SETOPT(CURLOPT_PREREQFUNCTION, s3_prereq_callback);
	S3_SETOPT(CURLOPT_PREREQDATA, response);
	if (request->fresh_connection)
	{
		/* S3's advice for retries: a new connection, a fresh DNS lookup */
		S3_SETOPT(CURLOPT_FRESH_CONNECT, 1L);
		S3_SETOPT(CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	}
	if (headers->sigv4_scope != NULL)
	{
		S3_SETOPT(CURLOPT_AWS_SIGV4, headers->sigv4_scope);
		S3_SETOPT(CURLOPT_USERNAME, request->credentials->access_key_id);
		S3_SETOPT(CURLOPT_PASSWORD,
				  request->credentials->secret_access_key != NULL ?
				  request->credentials->secret_access_key : "");
	}

#undef S3_SETOPT

	return code;
}

/*
 * Move the body the write callback buffered in malloc'd memory into
 * palloc'd memory, freeing the malloc'd copy either way.  Without memory
 * for the copy the attempt is marked out_of_memory (reported later, when
 * raising an error is safe).
 */
static void
s3_take_body(S3Response *response)
{
	size_t		body_size;

	if (response->buffer == NULL)
		return;
	body_size = response->buffer_length + 1;
	response->body = MemoryContextAllocExtended(CurrentMemoryContext,
												body_size, MCXT_ALLOC_NO_OOM);
	if (response->body != NULL)
	{
		memcpy(response->body, response->buffer, response->buffer_length);
		response->body[response->buffer_length] = '\0';
		response->body_length = response->buffer_length;
	}
	else
		response->out_of_memory = true;
	free(response->buffer);
	response->buffer = NULL;
}

/*
 * s3_perform makes one HTTP attempt.  Everything palloc'd is prepared
 * before curl holds any malloc'd state, and everything malloc'd is freed
 * and the handle reset before returning, so the only ereport after the
 * transfer starts comes after the cleanup.
 */
static void
s3_perform(const S3Request *request, S3Response *response)
{
	CURL	   *curl = s3_get_handle();
	S3Headers	headers;
	CURLcode	setup_code;
	curl_off_t	content_length = -1;
	curl_off_t	downloaded = 0;

	memset(response, 0, sizeof(S3Response));
	response->curl = curl;
	response->fd = request->fd;
	response->first_byte_limit_ms = request->first_byte_limit_ms;
	response->content_length = -1;

	/* palloc'd material first: a failure here leaves nothing to clean */
	setup_code = s3_headers_build(request, &headers);
	curl_easy_reset(curl);
	if (setup_code == CURLE_OK)
		setup_code = s3_configure(curl, request, response, &headers);

	if (setup_code == CURLE_OK)
	{
		elog(DEBUG2, "S3 GET %s", request->url);
		pgstat_report_wait_start(MEDALLION_WAIT_EVENT_MAIN);
		response->curl_code = curl_easy_perform(curl);
		pgstat_report_wait_end();
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
		curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
						  &content_length);
		curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &downloaded);
		S3Stats.requests++;
	}
	else
		response->curl_code = setup_code;

	/* release curl's view of our memory, our credentials and our headers */
	curl_easy_reset(curl);
	s3_headers_free(&headers);
	s3_take_body(response);
	response->content_length = (int64) content_length;
	S3Stats.bytes_received += (int64) downloaded;

	if (setup_code == CURLE_OUT_OF_MEMORY)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (setup_code != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not configure libcurl: %s",
						curl_easy_strerror(setup_code))));

	elog(DEBUG2, "S3 GET %s: curl code %d, HTTP status %ld, %lld bytes",
		 request->url, (int) response->curl_code, response->status,
		 (long long) downloaded);
}

/*
 * s3_judge classifies an attempt: success, a failure worth retrying (the
 * transient ones S3 documents), or a permanent failure.
 */
static void
s3_judge(const S3Request *request, S3Response *response, S3ListPage *page,
		 S3Failure *failure)
{
	memset(failure, 0, sizeof(S3Failure));
	failure->kind = S3_FAILURE_NONE;
	failure->retry_after_ms = -1;

	if (response->out_of_memory)
	{
		failure->kind = S3_FAILURE_OUT_OF_MEMORY;
		failure->reason = pstrdup("out of memory");
		return;
	}

	if (response->no_response)
	{
		failure->kind = S3_FAILURE_NO_RESPONSE;
		failure->retryable = true;
		failure->reason = psprintf("no response within %d ms",
								   response->first_byte_limit_ms);
		return;
	}

	if (response->curl_code != CURLE_OK)
	{
		if (response->write_errno != 0)
		{
			failure->kind = S3_FAILURE_WRITE;
			failure->reason = pstrdup("could not write to the local file");
		}
		else if (response->body_too_large)
		{
			failure->kind = S3_FAILURE_TOO_LARGE;
			failure->reason = pstrdup("response body too large");
		}
		else
		{
			const char *message = response->curl_message;

			failure->kind = S3_FAILURE_CURL;
			failure->retryable =
				s3_is_retryable_curl_code(response->curl_code);
			if (message[0] == '\0')
				message = curl_easy_strerror(response->curl_code);
			failure->reason = psprintf("curl error %d: %s",
									   (int) response->curl_code, message);
		}
		return;
	}

	if (response->status >= 200 && response->status < 300)
	{
		char	   *problem = NULL;

		if (response->content_length >= 0 &&
			response->body_bytes != response->content_length)
		{
			failure->kind = S3_FAILURE_SHORT_BODY;
			failure->retryable = true;
			failure->reason = psprintf("received %lld of %lld bytes",
									   (long long) response->body_bytes,
									   (long long) response->content_length);
			return;
		}
		if (page != NULL &&
			!S3XmlParseListPage(response->body ? response->body : "",
								response->body_length, page, &problem))
		{
			failure->kind = S3_FAILURE_BAD_BODY;
			failure->retryable = true;
			failure->reason = problem;
		}
		return;
	}

	/* an HTTP error: what S3 says in its <Error> body decides */
	failure->kind = S3_FAILURE_HTTP;
	(void) S3XmlParseError(response->body, response->body_length,
						   &failure->error);

	if (response->status == 500 || response->status == 502 ||
		response->status == 503 || response->status == 504)
		failure->retryable = true;
	if (failure->error.code != NULL &&
		(strcmp(failure->error.code, "SlowDown") == 0 ||
		 (response->status == 400 &&
		  strcmp(failure->error.code, "RequestTimeout") == 0)))
		failure->retryable = true;

	if (failure->error.code != NULL)
		failure->reason = psprintf("HTTP status %ld, code %s",
								   response->status, failure->error.code);
	else
		failure->reason = psprintf("HTTP status %ld", response->status);

	/* Retry-After in seconds; the HTTP-date form is ignored */
	if (response->retry_after[0] != '\0')
	{
		char	   *end;
		long		seconds;

		errno = 0;
		seconds = strtol(response->retry_after, &end, 10);
		if (errno == 0 && end != response->retry_after && *end == '\0' &&
			seconds >= 0)
			failure->retry_after_ms = seconds > LONG_MAX / 1000 ?
				LONG_MAX : seconds * 1000;
	}
}

/* The transport errors S3 guidance (and botocore) treat as transient. */
static bool
s3_is_retryable_curl_code(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_RESOLVE_HOST:	/* 6 */
		case CURLE_COULDNT_CONNECT: /* 7 */
		case CURLE_PARTIAL_FILE:	/* 18 */
		case CURLE_OPERATION_TIMEDOUT:	/* 28 */
		case CURLE_SSL_CONNECT_ERROR:	/* 35 */
		case CURLE_GOT_NOTHING: /* 52 */
		case CURLE_SEND_ERROR:	/* 55 */
		case CURLE_RECV_ERROR:	/* 56 */
			return true;
		default:
			return false;
	}
}

/*
 * s3_first_byte_limit_ms is the first-byte limit of an attempt: the setting,
 * doubled for each earlier attempt of the same request that got no answer
 * in time (so that a slow endpoint is not cut forever), at most an hour.
 */
static int
s3_first_byte_limit_ms(int earlier_no_responses)
{
	double		limit;

	if (medallion_s3_first_byte_timeout_ms <= 0)
		return 0;
	limit = ldexp((double) medallion_s3_first_byte_timeout_ms,
				  Min(earlier_no_responses, 30));
	return (int) Min(limit, 3600000.0);
}

/*
 * s3_backoff_ms is exponential backoff with full jitter: a uniformly random
 * delay below min(cap, base * 2^(attempt-1)), so that many workers hitting
 * the same throttled prefix spread out.  A Retry-After from the server is
 * honoured instead, but never beyond the cap.
 */
static long
s3_backoff_ms(int failed_attempt, long retry_after_ms)
{
	double		cap = (double) Max(0, medallion_s3_retry_max_ms);
	double		ceiling;

	if (retry_after_ms >= 0)
		return (long) Min((double) retry_after_ms, cap);

	ceiling = ldexp((double) Max(0, medallion_s3_retry_base_ms),
					Min(failed_attempt - 1, 30));
	ceiling = Min(ceiling, cap);
	return (long) floor(pg_prng_double(&pg_global_prng_state) * ceiling);
}

/*
 * s3_sleep waits between attempts on the process latch, so that a cancel,
 * a termination request or postmaster death cuts the wait short.  Other
 * latch wake-ups do not shorten the delay.
 */
static void
s3_sleep(long delay_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   delay_ms);

	for (;;)
	{
		long		remaining_ms;

		remaining_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													   deadline);
		if (remaining_ms <= 0)
			break;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 remaining_ms, MEDALLION_WAIT_EVENT_MAIN);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* A download that failed part way starts again on an empty file. */
static void
s3_rewind_file(const S3Request *request)
{
	if (ftruncate(request->fd, 0) != 0 ||
		lseek(request->fd, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind the local file of object \"%s\" for a retry: %m",
						request->key)));
}

/*
 * s3_interrupt_wanted tells the progress callback whether to abort: a
 * cancel or termination request that CHECK_FOR_INTERRUPTS() will act on.
 * Other interrupts (barriers, timeouts of idle sessions) can wait for the
 * end of the transfer.
 */
static bool
s3_interrupt_wanted(void)
{
	if (!InterruptPending)
		return false;
	if (InterruptHoldoffCount != 0 || CritSectionCount != 0)
		return false;
	if (ProcDiePending)
		return true;
	return QueryCancelPending && QueryCancelHoldoffCount == 0;
}

/*
 * s3_write_callback receives the body.  A 2xx body of a download goes
 * straight to the file; anything else (a listing, an error document) is
 * buffered up to a limit.  Returning less than given makes curl fail with
 * CURLE_WRITE_ERROR; the reason is recorded for s3_judge.
 */
static size_t
s3_write_callback(char *data, size_t size, size_t nmemb, void *userdata)
{
	S3Response *response = (S3Response *) userdata;
	size_t		length = size * nmemb;

	response->got_response = true;
	if (!response->sink_chosen)
	{
		long		status = 0;
		bool		success;

		curl_easy_getinfo(response->curl, CURLINFO_RESPONSE_CODE, &status);
		success = (status >= 200 && status < 300);
		response->sink_is_fd = success && response->fd >= 0;
		response->success_body = success;
		response->buffer_limit = success ? S3_LIST_BODY_LIMIT :
			S3_ERROR_BODY_LIMIT;
		response->sink_chosen = true;
	}

	if (response->sink_is_fd)
	{
		size_t		written = 0;

		while (written < length)
		{
			ssize_t		result = write(response->fd, data + written,
									   length - written);

			if (result < 0)
			{
				if (errno == EINTR)
					continue;
				response->write_errno = errno;
				return 0;
			}
			if (result == 0)
			{
				response->write_errno = ENOSPC;
				return 0;
			}
			written += (size_t) result;
		}
		response->body_bytes += (int64) length;
		return length;
	}

	if (response->buffer_length + length > response->buffer_limit)
	{
		/* keep the start of an error document; refuse a huge listing */
		if (!response->success_body)
			return length;
		response->body_too_large = true;
		return 0;
	}

	if (response->buffer_length + length > response->buffer_capacity)
	{
		size_t		new_capacity = Max(response->buffer_capacity, 65536);
		char	   *grown;

		while (new_capacity < response->buffer_length + length)
			new_capacity *= 2;
		grown = realloc(response->buffer, new_capacity);
		if (grown == NULL)
		{
			response->out_of_memory = true;
			return 0;
		}
		response->buffer = grown;
		response->buffer_capacity = new_capacity;
	}
	memcpy(response->buffer + response->buffer_length, data, length);
	response->buffer_length += length;
	if (response->success_body)
		response->body_bytes += (int64) length;
	return length;
}

/*
 * s3_header_callback keeps the few response headers we use.  A new status
 * line starts a new response (after a 100 Continue), so it clears them.
 */
static size_t
s3_header_callback(char *data, size_t size, size_t nmemb, void *userdata)
{
	S3Response *response = (S3Response *) userdata;
	size_t		length = size * nmemb;

	response->got_response = true;
	if (length >= 5 && strncmp(data, "HTTP/", 5) == 0)
	{
		response->retry_after[0] = '\0';
		response->request_id[0] = '\0';
		response->bucket_region[0] = '\0';
		return length;
	}

	s3_copy_header_value(data, length, "retry-after",
						 response->retry_after,
						 sizeof(response->retry_after));
	s3_copy_header_value(data, length, "x-amz-request-id",
						 response->request_id,
						 sizeof(response->request_id));
	s3_copy_header_value(data, length, "x-amz-bucket-region",
						 response->bucket_region,
						 sizeof(response->bucket_region));
	return length;
}

/*
 * s3_progress_callback runs at least once a second during a transfer, even
 * a stalled one; a non-zero return aborts it with CURLE_ABORTED_BY_CALLBACK.
 * It aborts for an interrupt, and for a request that has waited longer
 * than its first-byte limit without a single byte of answer (headers
 * included).  Once the answer has begun the limit no longer applies.
 */
static int
s3_progress_callback(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
					 curl_off_t ultotal, curl_off_t ulnow)
{
	S3Response *response = (S3Response *) clientp;

	if (s3_interrupt_wanted())
	{
		response->interrupted = true;
		return 1;
	}

	if (response->first_byte_limit_ms > 0 && response->request_sent &&
		!response->got_response)
	{
		instr_time	waited;

		INSTR_TIME_SET_CURRENT(waited);
		INSTR_TIME_SUBTRACT(waited, response->request_sent_at);
		if (INSTR_TIME_GET_MILLISEC(waited) >=
			(double) response->first_byte_limit_ms)
		{
			response->no_response = true;
			return 1;
		}
	}
	return 0;
}

/*
 * s3_prereq_callback runs once the connection is up (new or reused), just
 * before the request is sent: the first-byte clock starts here, so that
 * connecting stays under medallion.s3_connect_timeout alone.
 */
static int
s3_prereq_callback(void *clientp, char *conn_primary_ip, char *conn_local_ip,
				   int conn_primary_port, int conn_local_port)
{
	S3Response *response = (S3Response *) clientp;

	INSTR_TIME_SET_CURRENT(response->request_sent_at);
	response->request_sent = true;
	return CURL_PREREQFUNC_OK;
}

/*
 * If the header line is "name: value" (name matched case-insensitively),
 * copy the value without surrounding blanks, truncated to value_size.
 */
static void
s3_copy_header_value(const char *line, size_t length, const char *name,
					 char *value, size_t value_size)
{
	size_t		name_length = strlen(name);
	size_t		start;
	size_t		end;
	size_t		copy;

	if (length <= name_length || line[name_length] != ':' ||
		pg_strncasecmp(line, name, name_length) != 0)
		return;

	start = name_length + 1;
	end = length;
	while (start < end && (line[start] == ' ' || line[start] == '\t'))
		start++;
	while (end > start && isspace((unsigned char) line[end - 1]))
		end--;

	copy = Min(end - start, value_size - 1);
	memcpy(value, line + start, copy);
	value[copy] = '\0';
}
