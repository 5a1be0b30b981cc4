/*-------------------------------------------------------------------------
 *
 * s3_xml.c
 *	  expat-based parsing of S3 ListObjectsV2 pages and <Error> bodies.
 *
 * The documents are flat and small (a 1000-key page is well under 1 MB), so
 * the whole body is parsed in one XML_Parse call, with isFinal set so that
 * a truncated body is an error rather than a short page.
 *
 * expat callbacks must not ereport: an ERROR would longjmp through expat's
 * frames and leak the parser.  So the callbacks only collect the text of the
 * elements we want into one malloc'd buffer (recording offsets), and stop
 * the parser with XML_StopParser when something is wrong.  Conversion to
 * PostgreSQL values (palloc, strtoll, timestamptz_in) happens after the
 * parser is freed, inside PG_TRY so that the malloc'd buffers are released
 * even if a conversion throws.
 *
 * Elements are matched on their local name and their position (the path
 * from the root), never on the namespace: S3 uses
 * http://s3.amazonaws.com/doc/2006-03-01/ and s3rver uses another URI, and
 * <Prefix> means different things at top level and inside <CommonPrefixes>.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/s3_xml.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include <expat.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "s3_xml.h"

/* The elements whose position or text matters to us. */
typedef enum XmlElement
{
	XML_ELEM_NONE,				/* not an element: the document itself */
	XML_ELEM_OTHER,				/* ignored, with all its descendants */
	XML_ELEM_LIST_RESULT,		/* /ListBucketResult */
	XML_ELEM_CONTENTS,			/* /ListBucketResult/Contents */
	XML_ELEM_KEY,				/* .../Contents/Key */
	XML_ELEM_ETAG,				/* .../Contents/ETag */
	XML_ELEM_SIZE,				/* .../Contents/Size */
	XML_ELEM_LAST_MODIFIED,		/* .../Contents/LastModified */
	XML_ELEM_IS_TRUNCATED,		/* /ListBucketResult/IsTruncated */
	XML_ELEM_NEXT_TOKEN,		/* /ListBucketResult/NextContinuationToken */
	XML_ELEM_ENCODING_TYPE,		/* /ListBucketResult/EncodingType */
	XML_ELEM_ERROR,				/* /Error */
	XML_ELEM_CODE,				/* /Error/Code */
	XML_ELEM_MESSAGE,			/* /Error/Message */
	XML_ELEM_REGION,			/* /Error/Region */
	XML_ELEM_ENDPOINT,			/* /Error/Endpoint */
	XML_ELEM_COUNT
} XmlElement;

/* Offset into the text buffer meaning "this element did not occur". */
#define XML_NO_TEXT			((size_t) -1)

/* Our elements are at most three levels deep; deeper ones are ignored. */
#define XML_TRACKED_DEPTH	8

/* Where the texts of one <Contents> element are in the text buffer. */
typedef struct XmlContentsEntry
{
	size_t		key;
	size_t		etag;
	size_t		size;
	size_t		last_modified;
} XmlContentsEntry;

/* Everything the expat callbacks touch.  Only malloc'd memory in here. */
typedef struct XmlParseState
{
	XML_Parser	parser;
	XmlElement	wanted_root;
	bool		root_seen;
	int			depth;			/* of the open element, 0 = none */
	XmlElement	path[XML_TRACKED_DEPTH];

	/* text of the leaf element being collected, if any */
	XmlElement	capturing;
	size_t		capture_start;

	/* every collected text, NUL-terminated, back to back */
	char	   *text;
	size_t		text_length;
	size_t		text_capacity;

	/* one entry per <Contents> */
	XmlContentsEntry *entries;
	int			entry_count;
	int			entry_capacity;

	/* text offsets of the single-valued fields, indexed by XmlElement */
	size_t		value[XML_ELEM_COUNT];

	/* set by a callback that stopped the parser; a static string */
	const char *failure;
} XmlParseState;

static void xml_parse_document(XmlParseState *state, XmlElement wanted_root,
							   const char *body, size_t length,
							   char **problem);
static void xml_free_state(XmlParseState *state);
static void XMLCALL xml_start_element(void *user_data, const XML_Char *name,
									  const XML_Char **attributes);
static void XMLCALL xml_end_element(void *user_data, const XML_Char *name);
static void XMLCALL xml_character_data(void *user_data, const XML_Char *data,
									   int length);
static void XMLCALL xml_start_doctype(void *user_data,
									  const XML_Char *doctype_name,
									  const XML_Char *sysid,
									  const XML_Char *pubid,
									  int has_internal_subset);
static void xml_stop(XmlParseState *state, const char *failure);
static bool xml_text_append(XmlParseState *state, const char *data,
							size_t length);
static XmlElement xml_classify(XmlElement parent, int depth,
							   const char *name);
static bool xml_is_leaf(XmlElement element);
static const char *xml_value(const XmlParseState *state, XmlElement element);
static bool xml_convert_list_page(const XmlParseState *state,
								  S3ListPage *page, char **problem);
static char *xml_form_decode(const char *encoded, size_t *decoded_length);
static bool xml_looks_like_iso8601(const char *text);


/*
 * S3XmlParseListPage parses a ListBucketResult document into page.
 */
bool
S3XmlParseListPage(const char *body, size_t length, S3ListPage *page,
				   char **problem)
{
	XmlParseState state;
	volatile bool ok = false;

	memset(page, 0, sizeof(S3ListPage));
	*problem = NULL;

	xml_parse_document(&state, XML_ELEM_LIST_RESULT, body, length, problem);

	PG_TRY();
	{
		if (*problem == NULL)
			ok = xml_convert_list_page(&state, page, problem);
	}
	PG_FINALLY();
	{
		xml_free_state(&state);
	}
	PG_END_TRY();

	return ok;
}

/*
 * S3XmlParseError extracts Code, Message, Region and Endpoint of an <Error>
 * document.  Any other body yields false, and the caller falls back on the
 * HTTP status alone.
 */
bool
S3XmlParseError(const char *body, size_t length, S3ErrorBody *error)
{
	XmlParseState state;
	char	   *problem = NULL;
	volatile bool ok = false;

	memset(error, 0, sizeof(S3ErrorBody));
	if (body == NULL || length == 0)
		return false;

	xml_parse_document(&state, XML_ELEM_ERROR, body, length, &problem);

	PG_TRY();
	{
		if (problem == NULL)
		{
			const char *text;

			if ((text = xml_value(&state, XML_ELEM_CODE)) != NULL)
				error->code = pstrdup(text);
			if ((text = xml_value(&state, XML_ELEM_MESSAGE)) != NULL)
				error->message = pstrdup(text);
			if ((text = xml_value(&state, XML_ELEM_REGION)) != NULL)
				error->region = pstrdup(text);
			if ((text = xml_value(&state, XML_ELEM_ENDPOINT)) != NULL)
				error->endpoint = pstrdup(text);
			ok = true;
		}
	}
	PG_FINALLY();
	{
		xml_free_state(&state);
	}
	PG_END_TRY();

	return ok;
}

/*
 * xml_parse_document runs expat over the whole body.  On failure *problem
 * receives a palloc'd sentence; state always needs xml_free_state afterwards.
 * The parser itself is freed here, before anything that could ereport.
 */
static void
xml_parse_document(XmlParseState *state, XmlElement wanted_root,
				   const char *body, size_t length, char **problem)
{
	enum XML_Status status;
	enum XML_Error error_code = XML_ERROR_NONE;
	unsigned long error_line = 0;
	unsigned long error_column = 0;
	int			i;

	memset(state, 0, sizeof(XmlParseState));
	state->wanted_root = wanted_root;
	state->capturing = XML_ELEM_NONE;
	for (i = 0; i < XML_ELEM_COUNT; i++)
		state->value[i] = XML_NO_TEXT;

	if (length > (size_t) INT_MAX)
	{
		*problem = pstrdup("The response body is too large to parse.");
		return;
	}

	/* no namespace processing: we compare local names ourselves */
	state->parser = XML_ParserCreate(NULL);
	if (state->parser == NULL)
	{
		*problem = pstrdup("Out of memory while creating the XML parser.");
		return;
	}

	XML_SetUserData(state->parser, state);
	XML_SetElementHandler(state->parser, xml_start_element, xml_end_element);
	XML_SetCharacterDataHandler(state->parser, xml_character_data);
	XML_SetStartDoctypeDeclHandler(state->parser, xml_start_doctype);

	status = XML_Parse(state->parser, body, (int) length, XML_TRUE);
	if (status != XML_STATUS_OK)
	{
		error_code = XML_GetErrorCode(state->parser);
		error_line = (unsigned long) XML_GetCurrentLineNumber(state->parser);
		error_column =
			(unsigned long) XML_GetCurrentColumnNumber(state->parser);
	}
	XML_ParserFree(state->parser);
	state->parser = NULL;

	if (state->failure != NULL)
		*problem = psprintf("The response body is not valid: %s.",
							state->failure);
	else if (status != XML_STATUS_OK)
		*problem = psprintf("The response body is not well-formed XML: %s at line %lu, column %lu.",
							XML_ErrorString(error_code),
							error_line, error_column);
	else if (!state->root_seen)
		*problem = pstrdup("The response body has no root element.");
}

/* Release the malloc'd buffers of a parse (the parser is already freed). */
static void
xml_free_state(XmlParseState *state)
{
	if (state->parser != NULL)
		XML_ParserFree(state->parser);
	state->parser = NULL;
	free(state->text);
	state->text = NULL;
	free(state->entries);
	state->entries = NULL;
}

/* Stop the parser from inside a callback, remembering why. */
static void
xml_stop(XmlParseState *state, const char *failure)
{
	if (state->failure == NULL)
		state->failure = failure;
	XML_StopParser(state->parser, XML_FALSE);
}

/* S3 never sends a DTD; refusing one rules out entity tricks entirely. */
static void XMLCALL
xml_start_doctype(void *user_data, const XML_Char *doctype_name,
				  const XML_Char *sysid, const XML_Char *pubid,
				  int has_internal_subset)
{
	xml_stop((XmlParseState *) user_data, "it contains a document type declaration");
}

/*
 * expat's start-element callback: track the path of open elements, and
 * start collecting text for the elements of a listing or an error we keep.
 * It never ereports (see the file header); xml_stop records a failure.
 */
static void XMLCALL
xml_start_element(void *user_data, const XML_Char *name,
				  const XML_Char **attributes)
{
	XmlParseState *state = (XmlParseState *) user_data;
	XmlElement	parent;
	XmlElement	element;

	if (state->failure != NULL)
		return;

	if (state->capturing != XML_ELEM_NONE)
	{
		xml_stop(state, "a text field contains an element");
		return;
	}

	if (state->depth == 0)
		parent = XML_ELEM_NONE;
	else if (state->depth <= XML_TRACKED_DEPTH)
		parent = state->path[state->depth - 1];
	else
		parent = XML_ELEM_OTHER;

	element = xml_classify(parent, state->depth, name);

	if (state->depth == 0)
	{
		if (element != state->wanted_root)
		{
			xml_stop(state, state->wanted_root == XML_ELEM_LIST_RESULT ?
					 "its root element is not ListBucketResult" :
					 "its root element is not Error");
			return;
		}
		state->root_seen = true;
	}

	state->depth++;
	if (state->depth <= XML_TRACKED_DEPTH)
		state->path[state->depth - 1] = element;

	if (element == XML_ELEM_CONTENTS)
	{
		XmlContentsEntry *entry;

		if (state->entry_count == state->entry_capacity)
		{
			int			new_capacity = state->entry_capacity == 0 ? 256 :
			state->entry_capacity * 2;
			XmlContentsEntry *grown;

			grown = realloc(state->entries,
							sizeof(XmlContentsEntry) * (size_t) new_capacity);
			if (grown == NULL)
			{
				xml_stop(state, "out of memory");
				return;
			}
			state->entries = grown;
			state->entry_capacity = new_capacity;
		}
		entry = &state->entries[state->entry_count++];
		entry->key = XML_NO_TEXT;
		entry->etag = XML_NO_TEXT;
		entry->size = XML_NO_TEXT;
		entry->last_modified = XML_NO_TEXT;
	}
	else if (xml_is_leaf(element))
	{
		state->capturing = element;
		state->capture_start = state->text_length;
	}
}

/*
 * expat's end-element callback: store the text of a finished element in
 * the object, page or error being built, and close the path.
 */
static void XMLCALL
xml_end_element(void *user_data, const XML_Char *name)
{
	XmlParseState *state = (XmlParseState *) user_data;
	XmlElement	element;

	if (state->failure != NULL)
		return;

	element = state->depth <= XML_TRACKED_DEPTH ?
		state->path[state->depth - 1] : XML_ELEM_OTHER;
	state->depth--;

	if (element != state->capturing || element == XML_ELEM_NONE)
		return;

	/* terminate the collected text and remember where it starts */
	if (!xml_text_append(state, "", 1))
		return;
	state->capturing = XML_ELEM_NONE;

	switch (element)
	{
		case XML_ELEM_KEY:
			state->entries[state->entry_count - 1].key = state->capture_start;
			break;
		case XML_ELEM_ETAG:
			state->entries[state->entry_count - 1].etag = state->capture_start;
			break;
		case XML_ELEM_SIZE:
			state->entries[state->entry_count - 1].size = state->capture_start;
			break;
		case XML_ELEM_LAST_MODIFIED:
			state->entries[state->entry_count - 1].last_modified =
				state->capture_start;
			break;
		default:
			state->value[element] = state->capture_start;
			break;
	}
}

/* Character data arrives in pieces; append each to the current field. */
static void XMLCALL
xml_character_data(void *user_data, const XML_Char *data, int length)
{
	XmlParseState *state = (XmlParseState *) user_data;

	if (state->failure != NULL || state->capturing == XML_ELEM_NONE)
		return;
	(void) xml_text_append(state, data, (size_t) length);
}

/* Append to the text buffer; on malloc failure stop the parser. */
static bool
xml_text_append(XmlParseState *state, const char *data, size_t length)
{
	if (state->text_length + length > state->text_capacity)
	{
		size_t		new_capacity = state->text_capacity == 0 ? 8192 :
		state->text_capacity;
		char	   *grown;

		while (new_capacity < state->text_length + length)
			new_capacity *= 2;
		grown = realloc(state->text, new_capacity);
		if (grown == NULL)
		{
			xml_stop(state, "out of memory");
			return false;
		}
		state->text = grown;
		state->text_capacity = new_capacity;
	}
	memcpy(state->text + state->text_length, data, length);
	state->text_length += length;
	return true;
}

/*
 * xml_classify tells which of our elements a start tag is, from its local
 * name and its parent.  Prefixes ("s3:Key") are stripped; the namespace URI
 * is ignored on purpose.
 */
static XmlElement
xml_classify(XmlElement parent, int depth, const char *name)
{
	const char *colon = strrchr(name, ':');
	const char *local = colon != NULL ? colon + 1 : name;

	switch (parent)
	{
		case XML_ELEM_NONE:
			if (strcmp(local, "ListBucketResult") == 0)
				return XML_ELEM_LIST_RESULT;
			if (strcmp(local, "Error") == 0)
				return XML_ELEM_ERROR;
			break;
		case XML_ELEM_LIST_RESULT:
			if (strcmp(local, "Contents") == 0)
				return XML_ELEM_CONTENTS;
			if (strcmp(local, "IsTruncated") == 0)
				return XML_ELEM_IS_TRUNCATED;
			if (strcmp(local, "NextContinuationToken") == 0)
				return XML_ELEM_NEXT_TOKEN;
			if (strcmp(local, "EncodingType") == 0)
				return XML_ELEM_ENCODING_TYPE;
			break;
		case XML_ELEM_CONTENTS:
			if (strcmp(local, "Key") == 0)
				return XML_ELEM_KEY;
			if (strcmp(local, "ETag") == 0)
				return XML_ELEM_ETAG;
			if (strcmp(local, "Size") == 0)
				return XML_ELEM_SIZE;
			if (strcmp(local, "LastModified") == 0)
				return XML_ELEM_LAST_MODIFIED;
			break;
		case XML_ELEM_ERROR:
			if (strcmp(local, "Code") == 0)
				return XML_ELEM_CODE;
			if (strcmp(local, "Message") == 0)
				return XML_ELEM_MESSAGE;
			if (strcmp(local, "Region") == 0)
				return XML_ELEM_REGION;
			if (strcmp(local, "Endpoint") == 0)
				return XML_ELEM_ENDPOINT;
			break;
		default:
			break;
	}
	return XML_ELEM_OTHER;
}

/* Elements whose text we collect. */
static bool
xml_is_leaf(XmlElement element)
{
	switch (element)
	{
		case XML_ELEM_KEY:
		case XML_ELEM_ETAG:
		case XML_ELEM_SIZE:
		case XML_ELEM_LAST_MODIFIED:
		case XML_ELEM_IS_TRUNCATED:
		case XML_ELEM_NEXT_TOKEN:
		case XML_ELEM_ENCODING_TYPE:
		case XML_ELEM_CODE:
		case XML_ELEM_MESSAGE:
		case XML_ELEM_REGION:
		case XML_ELEM_ENDPOINT:
			return true;
		default:
			return false;
	}
}

/* The text of a single-valued field, or NULL when it did not occur. */
static const char *
xml_value(const XmlParseState *state, XmlElement element)
{
	if (state->value[element] == XML_NO_TEXT)
		return NULL;
	return state->text + state->value[element];
}

/*
 * xml_convert_list_page turns the collected texts into S3Objects.  Runs
 * after expat is done, so it may palloc and ereport.
 */
static bool
xml_convert_list_page(const XmlParseState *state, S3ListPage *page,
					  char **problem)
{
	const char *text;
	int			i;

	text = xml_value(state, XML_ELEM_IS_TRUNCATED);
	if (text == NULL || strcmp(text, "false") == 0)
		page->is_truncated = false;
	else if (strcmp(text, "true") == 0)
		page->is_truncated = true;
	else
	{
		*problem = psprintf("IsTruncated has the value \"%s\".", text);
		return false;
	}

	text = xml_value(state, XML_ELEM_NEXT_TOKEN);
	if (text != NULL && text[0] != '\0')
		page->next_continuation_token = pstrdup(text);

	text = xml_value(state, XML_ELEM_ENCODING_TYPE);
	page->url_encoded = (text != NULL && strcmp(text, "url") == 0);

	page->object_count = state->entry_count;
	page->objects = palloc0(sizeof(S3Object) * Max(state->entry_count, 1));

	for (i = 0; i < state->entry_count; i++)
	{
		const XmlContentsEntry *entry = &state->entries[i];
		S3Object   *object = &page->objects[i];
		const char *key;
		size_t		key_length;
		char	   *end;

		if (entry->key == XML_NO_TEXT || entry->size == XML_NO_TEXT ||
			entry->last_modified == XML_NO_TEXT)
		{
			*problem = psprintf("Entry %d of the listing lacks Key, Size or LastModified.",
								i + 1);
			return false;
		}

		/* keys: form-decoded only when S3 says it encoded them */
		key = state->text + entry->key;
		if (page->url_encoded)
			object->key = xml_form_decode(key, &key_length);
		else
		{
			object->key = pstrdup(key);
			key_length = strlen(key);
		}
		if (key_length == 0 || strlen(object->key) != key_length)
		{
			*problem = psprintf("Entry %d of the listing has an empty key or a key containing a NUL byte.",
								i + 1);
			return false;
		}

		/* ETag: expat has decoded &quot;; strip the quotes themselves */
		if (entry->etag == XML_NO_TEXT)
			object->etag = pstrdup("");
		else
		{
			const char *etag = state->text + entry->etag;
			size_t		etag_length = strlen(etag);

			if (etag_length >= 2 && etag[0] == '"' &&
				etag[etag_length - 1] == '"')
				object->etag = pnstrdup(etag + 1, etag_length - 2);
			else
				object->etag = pstrdup(etag);
		}

		text = state->text + entry->size;
		errno = 0;
		object->size = (int64) strtoll(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0' || object->size < 0)
		{
			*problem = psprintf("Object \"%s\" has the invalid size \"%s\".",
								object->key, text);
			return false;
		}

		/*
		 * timestamptz_in ereports on bad input, which would not be retried;
		 * check the shape first so that garbage counts as a bad page.
		 */
		text = state->text + entry->last_modified;
		if (!xml_looks_like_iso8601(text))
		{
			*problem = psprintf("Object \"%s\" has the invalid LastModified \"%s\".",
								object->key, text);
			return false;
		}
		object->last_modified =
			DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
													CStringGetDatum(text),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1)));
	}

	return true;
}

/*
 * xml_form_decode undoes encoding-type=url as S3 applies it: %XX escapes,
 * and '+' for a space (form rules, as botocore's unquote_plus).  A '%' not
 * followed by two hex digits is kept literally.
 */
static char *
xml_form_decode(const char *encoded, size_t *decoded_length)
{
	char	   *decoded = palloc(strlen(encoded) + 1);
	char	   *out = decoded;
	const char *in;

	for (in = encoded; *in != '\0'; in++)
	{
		if (*in == '+')
			*out++ = ' ';
		else if (*in == '%' && isxdigit((unsigned char) in[1]) &&
				 isxdigit((unsigned char) in[2]))
		{
			char		hex[3] = {in[1], in[2], '\0'};

			*out++ = (char) strtol(hex, NULL, 16);
			in += 2;
		}
		else
			*out++ = *in;
	}
	*out = '\0';
	*decoded_length = out - decoded;
	return decoded;
}

/*
 * xml_looks_like_iso8601 accepts YYYY-MM-DDTHH:MM:SS[.fraction] followed by
 * Z or a numeric offset, the form S3 uses for LastModified.
 */
static bool
xml_looks_like_iso8601(const char *text)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
	const char *p = text;
	int			i;

	for (i = 0; pattern[i] != '\0'; i++, p++)
	{
		bool		matches = pattern[i] == 'd' ?
		isdigit((unsigned char) *p) : *p == pattern[i];

		if (!matches)
			return false;
	}
	if (*p == '.')
	{
		p++;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
			p++;
	}
	if (*p == 'Z')
		return p[1] == '\0';
	if (*p == '+' || *p == '-')
	{
		p++;
		for (i = 0; i < 4; i++)
		{
			if (i == 2 && *p == ':')
				p++;
			if (!isdigit((unsigned char) *p))
				return false;
			p++;
		}
		return *p == '\0';
	}
	return false;
}
