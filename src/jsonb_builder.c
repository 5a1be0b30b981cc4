/*-------------------------------------------------------------------------
 *
 * jsonb_builder.c
 *	  A non-throwing JSON-text-to-jsonb conversion for bronze records.
 *
 * PostgreSQL 15 has no soft-error input functions, and jsonb_in raises an
 * error on malformed input, which would abort the whole object.  A
 * subtransaction per record would cost too much.  So this file drives
 * PostgreSQL's own JSON parser (pg_parse_json, which returns an error code
 * instead of raising) with semantic actions that build the jsonb directly,
 * in one pass, the way jsonb_in does internally.  The few conditions under
 * which building could still raise are checked beforehand: encoding
 * (pg_verify_mbstr), nesting depth (the parser recurses), and numbers that
 * numeric_in could refuse.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/jsonb_builder.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "jsonb_builder.h"

/* numbers longer than this, or with larger exponents, are not converted */
#define MAX_SAFE_NUMBER_LENGTH 1000
#define MAX_SAFE_EXPONENT 10000

typedef struct BuildState
{
	JsonbParseState *parse_state;
	JsonbValue *result;
	bool		unsafe;			/* a value could not be converted */
} BuildState;

/*
 * The parser's semantic actions: each pushes its token onto the jsonb
 * being built, the way jsonb_in's actions do.
 */
static void
build_object_start(void *state)
{
	BuildState *build = state;

	build->result = pushJsonbValue(&build->parse_state, WJB_BEGIN_OBJECT, NULL);
}

static void
build_object_end(void *state)
{
	BuildState *build = state;

	build->result = pushJsonbValue(&build->parse_state, WJB_END_OBJECT, NULL);
}

static void
build_array_start(void *state)
{
	BuildState *build = state;

	build->result = pushJsonbValue(&build->parse_state, WJB_BEGIN_ARRAY, NULL);
}

static void
build_array_end(void *state)
{
	BuildState *build = state;

	build->result = pushJsonbValue(&build->parse_state, WJB_END_ARRAY, NULL);
}

static void
build_object_field_start(void *state, char *field_name, bool isnull)
{
	BuildState *build = state;
	JsonbValue	key;

	key.type = jbvString;
	key.val.string.len = strlen(field_name);
	key.val.string.val = field_name;
	build->result = pushJsonbValue(&build->parse_state, WJB_KEY, &key);
}

/*
 * Can numeric_in convert this JSON number without raising?  JSON syntax is
 * already checked by the parser; what remains is size: numeric_in refuses
 * weights and scales beyond its storage format.
 */
static bool
number_is_safe(const char *token)
{
	const char *exponent;

	if (strlen(token) > MAX_SAFE_NUMBER_LENGTH)
		return false;
	exponent = strpbrk(token, "eE");
	if (exponent != NULL)
	{
		long		value = strtol(exponent + 1, NULL, 10);

		if (value > MAX_SAFE_EXPONENT || value < -MAX_SAFE_EXPONENT)
			return false;
	}
	return true;
}

/*
 * A scalar: strings and booleans as they are, numbers through numeric_in
 * when number_is_safe says it cannot fail (otherwise the build is marked
 * unsafe and no jsonb is returned: the record is rescued), everything else
 * as null.
 */
static void
build_scalar(void *state, char *token, JsonTokenType token_type)
{
	BuildState *build = state;
	JsonbValue	value;

	switch (token_type)
	{
		case JSON_TOKEN_STRING:
			value.type = jbvString;
			value.val.string.len = strlen(token);
			value.val.string.val = token;
			break;
		case JSON_TOKEN_NUMBER:
			if (!number_is_safe(token))
			{
				build->unsafe = true;
				value.type = jbvNull;
				break;
			}
			value.type = jbvNumeric;
			value.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																	CStringGetDatum(token),
																	ObjectIdGetDatum(InvalidOid),
																	Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
			value.type = jbvBool;
			value.val.boolean = true;
			break;
		case JSON_TOKEN_FALSE:
			value.type = jbvBool;
			value.val.boolean = false;
			break;
		default:
			value.type = jbvNull;
			break;
	}

	if (build->parse_state == NULL)
	{
		/* a bare scalar: not a record (checked by the caller) */
		build->unsafe = true;
		return;
	}
	if (build->parse_state->contVal.type == jbvArray)
		build->result = pushJsonbValue(&build->parse_state, WJB_ELEM, &value);
	else
		build->result = pushJsonbValue(&build->parse_state, WJB_VALUE, &value);
}

/*
 * Deepest nesting of objects and arrays in the text, stopping early once
 * the limit is passed.  Only needed for texts long enough to nest deeply.
 */
static bool
nesting_within_limit(const char *text, int length)
{
	int			depth = 0;
	bool		in_string = false;
	int			position;

	for (position = 0; position < length; position++)
	{
		char		character = text[position];

		if (in_string)
		{
			if (character == '\\')
				position++;
			else if (character == '"')
				in_string = false;
		}
		else if (character == '"')
			in_string = true;
		else if (character == '{' || character == '[')
		{
			if (++depth > JSONB_BUILDER_MAX_DEPTH)
				return false;
		}
		else if (character == '}' || character == ']')
			depth--;
	}
	return true;
}

Jsonb *
JsonbBuildFromText(const char *text, int length)
{
	JsonLexContext *lexer;
	JsonSemAction actions;
	BuildState	build;
	JsonParseErrorType parse_result;
	int			first;

	/* records are objects: skip leading whitespace and look */
	for (first = 0; first < length; first++)
		if (text[first] != ' ' && text[first] != '\t' &&
			text[first] != '\r' && text[first] != '\n')
			break;
	if (first >= length || text[first] != '{')
		return NULL;

	if (!pg_verify_mbstr(PG_UTF8, text, length, true))
		return NULL;
	if (length > 2 * JSONB_BUILDER_MAX_DEPTH &&
		!nesting_within_limit(text, length))
		return NULL;

	memset(&build, 0, sizeof(build));
	memset(&actions, 0, sizeof(actions));
	actions.semstate = &build;
	actions.object_start = build_object_start;
	actions.object_end = build_object_end;
	actions.array_start = build_array_start;
	actions.array_end = build_array_end;
	actions.object_field_start = build_object_field_start;
	actions.scalar = build_scalar;

	lexer = makeJsonLexContextCstringLen(unconstify(char *, text), length,
										 PG_UTF8, true);
	parse_result = pg_parse_json(lexer, &actions);
	if (parse_result != JSON_SUCCESS || build.unsafe || build.result == NULL)
		return NULL;
	return JsonbValueToJsonb(build.result);
}

char *
JsonbBuilderSanitizeText(const char *text, int length)
{
	StringInfoData sanitized;
	int			position = 0;

	if (pg_verify_mbstr(PG_UTF8, text, length, true))
		return pnstrdup(text, length);

	initStringInfo(&sanitized);
	while (position < length)
	{
		unsigned char character = (unsigned char) text[position];
		int			sequence_length;

		if (character != 0 && !IS_HIGHBIT_SET(character))
		{
			appendStringInfoChar(&sanitized, (char) character);
			position++;
			continue;
		}
		sequence_length = pg_utf_mblen((const unsigned char *) text + position);
		if (character != 0 && position + sequence_length <= length &&
			pg_utf8_islegal((const unsigned char *) text + position,
							sequence_length))
		{
			appendBinaryStringInfo(&sanitized, text + position, sequence_length);
			position += sequence_length;
		}
		else
		{
			/* U+FFFD REPLACEMENT CHARACTER */
			appendStringInfoString(&sanitized, "\xEF\xBF\xBD");
			position++;
		}
	}
	return sanitized.data;
}
