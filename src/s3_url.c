/*-------------------------------------------------------------------------
 *
 * s3_url.c
 *	  S3 URLs that are already canonical for SigV4, and the checks of what
 *	  goes into them.
 *
 * libcurl signs the path and the query string exactly as it is given, so
 * every path segment and query value is percent-encoded with uppercase hex
 * (S3UriEncode) and query parameters are sorted by encoded name and always
 * written as name=value (see s3_client.c's header).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_url.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"

#include "s3_internal.h"

/* An encoded query parameter. */
typedef struct S3QueryParam
{
	char	   *name;
	char	   *value;
} S3QueryParam;

static int	s3_compare_query_params(const void *a, const void *b);

/*
 * S3UriEncode percent-encodes as SigV4 requires: RFC 3986 unreserved
 * characters stay, every other byte becomes %XX with uppercase hex, and '/'
 * stays only in an object key path (keep_slash).
 */
char *
S3UriEncode(const char *bytes, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		length = strlen(bytes);
	char	   *encoded = palloc(length * 3 + 1);
	char	   *out = encoded;
	const unsigned char *in;

	for (in = (const unsigned char *) bytes; *in != '\0'; in++)
	{
		if ((*in >= 'A' && *in <= 'Z') || (*in >= 'a' && *in <= 'z') ||
			(*in >= '0' && *in <= '9') ||
			*in == '-' || *in == '_' || *in == '.' || *in == '~' ||
			(*in == '/' && keep_slash))
			*out++ = (char) *in;
		else
		{
			*out++ = '%';
			*out++ = hex[*in >> 4];
			*out++ = hex[*in & 0x0F];
		}
	}
	*out = '\0';
	return encoded;
}

/*
 * S3ParseUrl splits "s3://bucket/prefix" (the prefix may be empty).  Bucket
 * names are checked loosely (S3-compatible servers differ), enough to catch
 * a missing scheme, an empty bucket or stray characters.
 */
void
S3ParseUrl(const char *url, char **bucket, char **prefix)
{
	const char *bucket_start;
	const char *bucket_end;
	const char *p;

	if (url == NULL || pg_strncasecmp(url, "s3://", 5) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid S3 URL \"%s\"", url ? url : ""),
				 errdetail("An S3 URL starts with \"s3://\"."),
				 errhint("Use the form s3://bucket/prefix/.")));

	bucket_start = url + 5;
	bucket_end = strchr(bucket_start, '/');
	if (bucket_end == NULL)
		bucket_end = bucket_start + strlen(bucket_start);

	if (bucket_end - bucket_start < 3 || bucket_end - bucket_start > 255)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid S3 URL \"%s\"", url),
				 errdetail("A bucket name has 3 to 255 characters."),
				 errhint("Use the form s3://bucket/prefix/.")));

	for (p = bucket_start; p < bucket_end; p++)
	{
		if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-' &&
			*p != '_')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid S3 URL \"%s\"", url),
					 errdetail("A bucket name consists of letters, digits, \".\", \"-\" and \"_\"."),
					 errhint("Use the form s3://bucket/prefix/.")));
	}

	*bucket = pnstrdup(bucket_start, bucket_end - bucket_start);
	*prefix = pstrdup(*bucket_end == '/' ? bucket_end + 1 : "");
}

/*
 * S3CheckLocation rejects what would make a malformed URL or SigV4 scope,
 * with a message about the setting rather than a signature error later.
 */
void
S3CheckLocation(const S3Location *location)
{
	const char *p;

	if (location->bucket == NULL || location->bucket[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 bucket name must not be empty")));

	if (location->region != NULL)
	{
		if (strlen(location->region) > 64)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid S3 region \"%s\"", location->region)));
		for (p = location->region; *p != '\0'; p++)
		{
			if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid S3 region \"%s\"", location->region),
						 errdetail("A region consists of letters, digits, \"-\" and \"_\".")));
		}
	}

	if (location->endpoint != NULL)
	{
		if ((pg_strncasecmp(location->endpoint, "http://", 7) != 0 &&
			 pg_strncasecmp(location->endpoint, "https://", 8) != 0) ||
			strpbrk(location->endpoint, "?# \t\r\n") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid S3 endpoint \"%s\"", location->endpoint),
					 errhint("An endpoint has the form http://host:port or https://host.")));
	}
}

/*
 * S3BucketUrl returns the URL of the bucket, without a trailing slash.
 * With an endpoint it is path-style (endpoint/bucket).  On AWS it is
 * virtual-hosted (https://bucket.s3.region.amazonaws.com) unless the bucket
 * name is not a plain DNS label: a dot would not match the wildcard TLS
 * certificate, so such buckets use path-style on the regional endpoint.
 */
char *
S3BucketUrl(const S3Location *location, bool *virtual_hosted)
{
	const char *region = location->region != NULL &&
	location->region[0] != '\0' ? location->region : "us-east-1";
	char	   *encoded_bucket = S3UriEncode(location->bucket, false);
	char	   *url;
	const char *p;
	bool		dns_label = true;

	if (location->endpoint != NULL)
	{
		size_t		endpoint_length = strlen(location->endpoint);

		while (endpoint_length > 0 &&
			   location->endpoint[endpoint_length - 1] == '/')
			endpoint_length--;
		*virtual_hosted = false;
		url = psprintf("%.*s/%s", (int) endpoint_length, location->endpoint,
					   encoded_bucket);
		pfree(encoded_bucket);
		return url;
	}

	for (p = location->bucket; *p != '\0'; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			  *p == '-'))
			dns_label = false;
	}
	if (strlen(location->bucket) > 63)
		dns_label = false;

	*virtual_hosted = dns_label;
	if (dns_label)
		url = psprintf("https://%s.s3.%s.amazonaws.com", location->bucket,
					   region);
	else
		url = psprintf("https://s3.%s.amazonaws.com/%s", region,
					   encoded_bucket);
	pfree(encoded_bucket);
	return url;
}

/* The canonical URL of an object: '/' in the key kept, all else encoded. */
char *
S3ObjectUrl(const S3Location *location, const char *key)
{
	bool		virtual_hosted;
	char	   *bucket_url = S3BucketUrl(location, &virtual_hosted);
	char	   *encoded_key = S3UriEncode(key, true);
	char	   *url = psprintf("%s/%s", bucket_url, encoded_key);

	pfree(bucket_url);
	pfree(encoded_key);
	return url;
}

/*
 * S3ListUrl builds the canonical ListObjectsV2 URL.  Parameters are
 * sorted by encoded name, every one written as name=value, values encoded
 * with '/' as %2F: exactly what SigV4 signs, since curl 7.88 signs the query
 * as given.  The continuation token is opaque and echoed verbatim, but it
 * is base64 and may hold '+', '/' and '=', so it is encoded too.
 */
char *
S3ListUrl(const S3Location *location, const char *prefix,
			const char *start_after, const char *continuation_token)
{
	S3QueryParam params[8];
	int			param_count = 0;
	bool		virtual_hosted;
	char	   *bucket_url = S3BucketUrl(location, &virtual_hosted);
	StringInfoData url;
	int			i;

	if (continuation_token != NULL)
	{
		params[param_count].name = "continuation-token";
		params[param_count++].value = S3UriEncode(continuation_token, false);
	}
	else if (start_after != NULL && start_after[0] != '\0')
	{
		/* S3 ignores start-after once there is a continuation token */
		params[param_count].name = "start-after";
		params[param_count++].value = S3UriEncode(start_after, false);
	}
	params[param_count].name = "encoding-type";
	params[param_count++].value = "url";
	params[param_count].name = "list-type";
	params[param_count++].value = "2";
	params[param_count].name = "max-keys";
	params[param_count++].value = S3_LIST_MAX_KEYS;
	params[param_count].name = "prefix";
	params[param_count++].value = S3UriEncode(prefix, false);

	qsort(params, param_count, sizeof(S3QueryParam), s3_compare_query_params);

	initStringInfo(&url);
	appendStringInfoString(&url, bucket_url);
	if (virtual_hosted)
		appendStringInfoChar(&url, '/');
	for (i = 0; i < param_count; i++)
		appendStringInfo(&url, "%c%s=%s", i == 0 ? '?' : '&',
						 params[i].name, params[i].value);

	pfree(bucket_url);
	return url.data;
}

/* Order of SigV4's canonical query: by encoded name, then encoded value. */
static int
s3_compare_query_params(const void *a, const void *b)
{
	const S3QueryParam *left = (const S3QueryParam *) a;
	const S3QueryParam *right = (const S3QueryParam *) b;
	int			result = strcmp(left->name, right->name);

	return result != 0 ? result : strcmp(left->value, right->value);
}
