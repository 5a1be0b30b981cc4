/*-------------------------------------------------------------------------
 *
 * s3_xml.h
 *	  Parsing of the XML documents S3 answers with: ListObjectsV2 result
 *	  pages and <Error> bodies.
 *
 * Both parsers take a complete response body from memory (the S3 client
 * buffers it first), so a parse error is never confused with a transfer
 * error.  They never ereport while expat is running; what they return is
 * allocated in CurrentMemoryContext.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_xml.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_S3_XML_H
#define MEDALLION_S3_XML_H

#include "postgres.h"

#include "s3_client.h"

/* One page of a ListObjectsV2 answer. */
typedef struct S3ListPage
{
	S3Object   *objects;		/* in listing order; keys already decoded */
	int			object_count;
	bool		is_truncated;
	char	   *next_continuation_token;	/* NULL when absent */
	bool		url_encoded;	/* <EncodingType>url</EncodingType> seen */
} S3ListPage;

/* The fields of an S3 <Error> body that we report; NULL when absent. */
typedef struct S3ErrorBody
{
	char	   *code;
	char	   *message;
	char	   *region;
	char	   *endpoint;
} S3ErrorBody;

/*
 * Parse a ListBucketResult document.  Returns false, with a sentence for an
 * errdetail in *problem, when the body is not a well-formed ListObjectsV2
 * page; S3 documents that a 200 answer can carry such a body, so the caller
 * retries.
 */
extern bool S3XmlParseListPage(const char *body, size_t length,
							   S3ListPage *page, char **problem);

/*
 * Parse an <Error> document.  Returns false when the body is not one (for
 * example the empty body of a HEAD answer or an HTML page of a proxy).
 */
extern bool S3XmlParseError(const char *body, size_t length,
							S3ErrorBody *error);

#endif							/* MEDALLION_S3_XML_H */
