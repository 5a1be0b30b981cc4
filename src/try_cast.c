/*-------------------------------------------------------------------------
 *
 * try_cast.c
 *	  medallion.try_cast(value text, target_type anyelement): convert a raw
 *	  string to a type, returning NULL instead of raising an error when the
 *	  string is not a valid input for the type.
 *
 * The silver layer types bronze strings with this function, so a single bad
 * value must not abort a whole load, and the common case (valid input) must
 * cost about what a plain cast costs.
 *
 * On valid input the result is exactly what value::type returns, computed as
 * the type's input function does with typmod -1 (so the typmod of
 * target_type is ignored, as for the input function itself).
 *
 * PostgreSQL 15 input functions report bad input only by throwing (soft
 * errors arrive in PostgreSQL 16), and catching an error safely requires a
 * subtransaction, which costs several microseconds.  So:
 *
 *	- The hot types (smallint, integer, bigint, numeric, real, double
 *	  precision, boolean, uuid, text, varchar, bpchar, date, timestamp,
 *	  timestamptz) are parsed by non-throwing code that mirrors the PG15 input
 *	  function line by line: same whitespace, sign, overflow and range rules.
 *	  Where mirroring exactly would mean copying large parts of the backend
 *	  (numerics with huge exponents or scales, date/times that name a time
 *	  zone the backend would reject by throwing), the fast path answers
 *	  "unsure" and the generic path decides.
 *
 *	- Every other type, including domains (so that their constraints are
 *	  checked), calls the type's input function inside an internal
 *	  subtransaction, as a PL/pgSQL exception block does.  Only data errors
 *	  become NULL: SQLSTATE class 22 (data exception), and the two domain
 *	  constraint failures 23502 (not_null_violation) and 23514
 *	  (check_violation).  Anything else -- out of memory, query cancel,
 *	  undefined_table from regclass input, feature_not_supported -- is
 *	  re-thrown unchanged.
 *
 *	- PostgreSQL 15 cannot start a subtransaction in parallel mode.  There
 *	  the generic path calls the input function directly: valid input still
 *	  converts, invalid input raises the input function's error, with a
 *	  context line that says why.  The fast paths never need a subtransaction
 *	  and work in parallel workers.
 *
 * Special date/time inputs such as 'now' and 'today' behave as in a cast:
 * they read the transaction start time, which is why the SQL function is
 * STABLE (like timestamptz_in, results also depend on TimeZone and
 * DateStyle).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/try_cast.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "try_cast.h"

/* How a target type is converted. */
typedef enum TryCastKind
{
	TC_KIND_GENERIC,			/* input function in a subtransaction */
	TC_KIND_INT2,
	TC_KIND_INT4,
	TC_KIND_INT8,
	TC_KIND_NUMERIC,
	TC_KIND_FLOAT4,
	TC_KIND_FLOAT8,
	TC_KIND_BOOL,
	TC_KIND_UUID,
	TC_KIND_TEXT,				/* text, varchar, bpchar: the bytes as they are */
	TC_KIND_DATE,
	TC_KIND_TIMESTAMP,
	TC_KIND_TIMESTAMPTZ
} TryCastKind;

/* Answer of a fast-path parser. */
typedef enum TryCastOutcome
{
	TC_VALID,					/* the input function would accept the string */
	TC_INVALID,					/* it would raise a data exception */
	TC_UNSURE					/* let the input function decide */
} TryCastOutcome;

/*
 * Per-target-type state, cached in fn_extra of the SQL function's FmgrInfo
 * (one per call site).  The input function is looked up even for fast-path
 * types, because their "unsure" cases fall back to it.
 */
struct TryCastState
{
	Oid			targettype;
	TryCastKind kind;
	FmgrInfo	inputfn;
	Oid			typioparam;
	char	   *typname;		/* for the parallel-mode error context */
};

/*
 * Strings shorter than this are copied to the stack for parsing, saving a
 * palloc per row; longer ones are palloc'd.
 */
#define TC_STACK_BUFSIZE	256

/*
 * numeric_in fails with "value overflows numeric format" when the weight
 * exceeds 32767 base-10000 digits (a decimal weight of about 131071) or the
 * display scale exceeds 16383.  Inputs beyond these bounds (the weight one
 * kept a little inside the limit, as leading zeros are not discounted
 * here) are left to numeric_in itself.
 */
#define TC_NUMERIC_MAX_EXPONENT		1000000L
#define TC_NUMERIC_MAX_DWEIGHT		131000
#define TC_NUMERIC_MAX_DSCALE		16383

/*
 * isdigit() without the ctype table lookup: C specifies the decimal digits
 * as exactly '0'..'9' in every locale, so this is the same test.
 */
#define TC_ISDIGIT(c)	((c) >= '0' && (c) <= '9')

PG_FUNCTION_INFO_V1(medallion_try_cast);


/*
 * Map a type to its fast path.  Domains are never mapped, even over a
 * fast-path base type: their constraints must be checked by domain_in.
 */
static TryCastKind
tc_kind_for_type(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return TC_KIND_INT2;
		case INT4OID:
			return TC_KIND_INT4;
		case INT8OID:
			return TC_KIND_INT8;
		case NUMERICOID:
			return TC_KIND_NUMERIC;
		case FLOAT4OID:
			return TC_KIND_FLOAT4;
		case FLOAT8OID:
			return TC_KIND_FLOAT8;
		case BOOLOID:
			return TC_KIND_BOOL;
		case UUIDOID:
			return TC_KIND_UUID;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return TC_KIND_TEXT;
		case DATEOID:
			return TC_KIND_DATE;
		case TIMESTAMPOID:
			return TC_KIND_TIMESTAMP;
		case TIMESTAMPTZOID:
			return TC_KIND_TIMESTAMPTZ;
		default:
			return TC_KIND_GENERIC;
	}
}

/*
 * The errors that mean "this string is not a value of the type": any data
 * exception, plus the domain constraint failures raised by domain_in.
 */
static bool
tc_is_data_error(int sqlerrcode)
{
	if (ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION)
		return true;
	if (sqlerrcode == ERRCODE_CHECK_VIOLATION ||
		sqlerrcode == ERRCODE_NOT_NULL_VIOLATION)
		return true;
	return false;
}

/*
 * Integer input, mirroring pg_strtoint16/32/64 of PG15: leading and trailing
 * isspace() allowed, one optional sign, at least one digit, nothing else;
 * out of range is an error.  The value is accumulated as a negative number,
 * as there, so that the minimum of the type is accepted.
 */
static TryCastOutcome
tc_parse_int(const char *s, int64 minval, int64 maxval, int64 *result)
{
	const char *ptr = s;
	int64		tmp = 0;
	bool		neg = false;

	while (*ptr && isspace((unsigned char) *ptr))
		ptr++;

	if (*ptr == '-')
	{
		ptr++;
		neg = true;
	}
	else if (*ptr == '+')
		ptr++;

	if (!TC_ISDIGIT(*ptr))
		return TC_INVALID;

	while (TC_ISDIGIT(*ptr))
	{
		int			digit = (*ptr++ - '0');

		if (pg_mul_s64_overflow(tmp, 10, &tmp) ||
			pg_sub_s64_overflow(tmp, digit, &tmp) ||
			tmp < minval)
			return TC_INVALID;
	}

	while (*ptr && isspace((unsigned char) *ptr))
		ptr++;

	if (*ptr != '\0')
		return TC_INVALID;

	if (!neg)
	{
		if (tmp < -maxval)
			return TC_INVALID;
		tmp = -tmp;
	}

	*result = tmp;
	return TC_VALID;
}

/*
 * If str starts with one of numeric_in's special values, step over it and
 * return true.  The strings are tested in numeric_in's order (so that, as
 * there, "Infinityx" matches "Infinity" and then fails on the junk).
 */
static bool
tc_skip_numeric_special(const char **str)
{
	static const char *const specials[] = {
		"NaN", "Infinity", "+Infinity", "-Infinity", "inf", "+inf", "-inf"
	};
	int			i;

	for (i = 0; i < (int) lengthof(specials); i++)
	{
		int			len = strlen(specials[i]);

		if (pg_strncasecmp(*str, specials[i], len) == 0)
		{
			*str += len;
			return true;
		}
	}
	return false;
}

/*
 * Syntax check mirroring numeric_in and set_var_from_str of PG15.  Returns
 * TC_VALID only when numeric_in is certain to succeed, so that the caller
 * can then call it to build the value.
 */
static TryCastOutcome
tc_scan_numeric(const char *str)
{
	const char *cp = str;
	bool		have_dp = false;
	int64		dweight = -1;
	int64		dscale = 0;
	char		first;

	while (*cp && isspace((unsigned char) *cp))
		cp++;

	/*
	 * No special value starts with a digit or a '.', even after a sign:
	 * those skip the string comparisons, which cost more than the parse.
	 */
	first = (*cp == '+' || *cp == '-') ? cp[1] : cp[0];
	if ((TC_ISDIGIT(first) || first == '.') || !tc_skip_numeric_special(&cp))
	{
		if (*cp == '+' || *cp == '-')
			cp++;

		if (*cp == '.')
		{
			have_dp = true;
			cp++;
		}

		if (!TC_ISDIGIT(*cp))
			return TC_INVALID;

		while (*cp)
		{
			if (TC_ISDIGIT(*cp))
			{
				if (!have_dp)
					dweight++;
				else
					dscale++;
				cp++;
			}
			else if (*cp == '.')
			{
				if (have_dp)
					return TC_INVALID;
				have_dp = true;
				cp++;
			}
			else
				break;
		}

		if (*cp == 'e' || *cp == 'E')
		{
			long		exponent;
			char	   *endptr;

			cp++;
			/* strtol, as there: it also skips whitespace after the 'e' */
			exponent = strtol(cp, &endptr, 10);
			if (endptr == cp)
				return TC_INVALID;
			cp = endptr;

			if (exponent > TC_NUMERIC_MAX_EXPONENT ||
				exponent < -TC_NUMERIC_MAX_EXPONENT)
				return TC_UNSURE;
			dweight += exponent;
			dscale -= exponent;
			if (dscale < 0)
				dscale = 0;
		}
	}

	while (*cp)
	{
		if (!isspace((unsigned char) *cp))
			return TC_INVALID;
		cp++;
	}

	if (dweight > TC_NUMERIC_MAX_DWEIGHT || dscale > TC_NUMERIC_MAX_DSCALE)
		return TC_UNSURE;

	return TC_VALID;
}

/*
 * Mirror of float4in of PG15 (strtof-based, with its own handling of the
 * special values and of ERANGE: denormals are accepted, true underflow to
 * zero and overflow are errors).
 */
static TryCastOutcome
tc_parse_float4(char *num, float4 *result)
{
	float		val;
	char	   *endptr;

	while (*num != '\0' && isspace((unsigned char) *num))
		num++;

	if (*num == '\0')
		return TC_INVALID;

	errno = 0;
	val = strtof(num, &endptr);

	if (endptr == num || errno != 0)
	{
		int			save_errno = errno;

		if (pg_strncasecmp(num, "NaN", 3) == 0)
		{
			val = get_float4_nan();
			endptr = num + 3;
		}
		else if (pg_strncasecmp(num, "Infinity", 8) == 0)
		{
			val = get_float4_infinity();
			endptr = num + 8;
		}
		else if (pg_strncasecmp(num, "+Infinity", 9) == 0)
		{
			val = get_float4_infinity();
			endptr = num + 9;
		}
		else if (pg_strncasecmp(num, "-Infinity", 9) == 0)
		{
			val = -get_float4_infinity();
			endptr = num + 9;
		}
		else if (pg_strncasecmp(num, "inf", 3) == 0)
		{
			val = get_float4_infinity();
			endptr = num + 3;
		}
		else if (pg_strncasecmp(num, "+inf", 4) == 0)
		{
			val = get_float4_infinity();
			endptr = num + 4;
		}
		else if (pg_strncasecmp(num, "-inf", 4) == 0)
		{
			val = -get_float4_infinity();
			endptr = num + 4;
		}
		else if (save_errno == ERANGE)
		{
			if (val == 0.0 || val >= HUGE_VALF || val <= -HUGE_VALF)
				return TC_INVALID;
		}
		else
			return TC_INVALID;
	}

	while (*endptr != '\0' && isspace((unsigned char) *endptr))
		endptr++;

	if (*endptr != '\0')
		return TC_INVALID;

	*result = val;
	return TC_VALID;
}

/*
 * Mirror of string_to_uuid of PG15: optional braces, 32 hex digits, a '-'
 * allowed after any group of four digits; no whitespace.
 */
static TryCastOutcome
tc_parse_uuid(const char *source, pg_uuid_t *uuid)
{
	const char *src = source;
	bool		braces = false;
	int			i;

	if (src[0] == '{')
	{
		src++;
		braces = true;
	}

	for (i = 0; i < UUID_LEN; i++)
	{
		int			hi;
		int			lo;

		if (src[0] == '\0' || src[1] == '\0')
			return TC_INVALID;
		if (!isxdigit((unsigned char) src[0]) ||
			!isxdigit((unsigned char) src[1]))
			return TC_INVALID;

		hi = isdigit((unsigned char) src[0]) ? src[0] - '0' :
			pg_ascii_tolower((unsigned char) src[0]) - 'a' + 10;
		lo = isdigit((unsigned char) src[1]) ? src[1] - '0' :
			pg_ascii_tolower((unsigned char) src[1]) - 'a' + 10;
		uuid->data[i] = (unsigned char) ((hi << 4) | lo);

		src += 2;
		if (src[0] == '-' && (i % 2) == 1 && i < UUID_LEN - 1)
			src++;
	}

	if (braces)
	{
		if (*src != '}')
			return TC_INVALID;
		src++;
	}

	if (*src != '\0')
		return TC_INVALID;

	return TC_VALID;
}

/*
 * The ParseDateTime + DecodeDateTime step shared by date_in, timestamp_in
 * and timestamptz_in.  "buflen" is the size of the work buffer of the input
 * function being mirrored (they differ, and a too-long input is rejected by
 * one and accepted by another).
 *
 * In PG15 DecodeDateTime reports error codes, with one exception: a field
 * that looks like a time zone name (say "Europe/Paris") after the month and
 * day makes it call pg_tzset() and throw if the zone is unknown.  Such a
 * field can only be a DTK_DATE field that starts with a letter and is not
 * the first field; if pg_tzset() rejects it here, the generic path decides.
 * (pg_tzset caches the zones it loads, so a known zone costs a hash lookup.)
 */
static TryCastOutcome
tc_decode_datetime(char *str, size_t buflen, int *dtype,
				   struct pg_tm *tm, fsec_t *fsec, int *tz)
{
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	int			nf;
	int			i;

	Assert(buflen <= sizeof(workbuf));

	if (ParseDateTime(str, workbuf, buflen, field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return TC_INVALID;

	for (i = 1; i < nf; i++)
	{
		if (ftype[i] == DTK_DATE &&
			!isdigit((unsigned char) *field[i]) &&
			pg_tzset(field[i]) == NULL)
			return TC_UNSURE;
	}

	/* any nonzero result, including 1 ("time only"), is an error there */
	if (DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz) != 0)
		return TC_INVALID;

	return TC_VALID;
}

/* Mirror of date_in of PG15. */
static TryCastOutcome
tc_parse_date(char *str, DateADT *result)
{
	struct pg_tm tt,
			   *tm = &tt;
	fsec_t		fsec;
	int			tz;
	int			dtype;
	DateADT		date;
	TryCastOutcome outcome;

	outcome = tc_decode_datetime(str, MAXDATELEN + 1, &dtype, tm, &fsec, &tz);
	if (outcome != TC_VALID)
		return outcome;

	switch (dtype)
	{
		case DTK_DATE:
			break;

		case DTK_EPOCH:
			GetEpochTime(tm);
			break;

		case DTK_LATE:
			DATE_NOEND(date);
			*result = date;
			return TC_VALID;

		case DTK_EARLY:
			DATE_NOBEGIN(date);
			*result = date;
			return TC_VALID;

		default:
			return TC_INVALID;
	}

	/* the two range checks of date_in */
	if (!IS_VALID_JULIAN(tm->tm_year, tm->tm_mon, tm->tm_mday))
		return TC_INVALID;

	date = date2j(tm->tm_year, tm->tm_mon, tm->tm_mday) - POSTGRES_EPOCH_JDATE;

	if (!IS_VALID_DATE(date))
		return TC_INVALID;

	*result = date;
	return TC_VALID;
}

/*
 * Mirror of timestamp_in and timestamptz_in of PG15.  The time zone, if
 * any, is parsed by both; only timestamptz applies it.  With typmod -1
 * their AdjustTimestampForTypmod call does nothing.
 */
static TryCastOutcome
tc_parse_timestamp(char *str, bool with_tz, Timestamp *result)
{
	struct pg_tm tt,
			   *tm = &tt;
	fsec_t		fsec;
	int			tz;
	int			dtype;
	TryCastOutcome outcome;

	outcome = tc_decode_datetime(str, MAXDATELEN + MAXDATEFIELDS,
								 &dtype, tm, &fsec, &tz);
	if (outcome != TC_VALID)
		return outcome;

	switch (dtype)
	{
		case DTK_DATE:
			if (tm2timestamp(tm, fsec, with_tz ? &tz : NULL, result) != 0)
				return TC_INVALID;
			break;

		case DTK_EPOCH:
			*result = SetEpochTimestamp();
			break;

		case DTK_LATE:
			TIMESTAMP_NOEND(*result);
			break;

		case DTK_EARLY:
			TIMESTAMP_NOBEGIN(*result);
			break;

		default:
			/* timestamp_in raises an internal error here; so shall we */
			return TC_UNSURE;
	}

	return TC_VALID;
}

/*
 * Error context for the generic path in parallel mode, added to data errors
 * only: they are the ones a user would expect try_cast to turn into NULL.
 */
static void
tc_parallel_error_callback(void *arg)
{
	TryCastState *state = (TryCastState *) arg;

	if (tc_is_data_error(geterrcode()))
		errcontext("medallion.try_cast to type %s cannot return NULL for invalid input inside a parallel query on PostgreSQL 15 (SET max_parallel_workers_per_gather = 0 avoids this)",
				   state->typname);
}

/*
 * Run the type's input function, turning data errors into "false".
 *
 * This is the PL/pgSQL exception-block pattern: the input function runs in
 * an internal subtransaction, whose rollback releases whatever the failed
 * call had acquired (locks, buffer pins, catalog cache references, memory).
 * The input function runs in the caller's memory context so that its result
 * survives the subtransaction's commit.
 */
static bool
tc_input_with_subxact(TryCastState *state, char *str, Datum *result)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = false;
	volatile Datum value = (Datum) 0;

	if (IsInParallelMode())
	{
		/* No subtransactions here in PG15: see the file header. */
		ErrorContextCallback errcallback;

		errcallback.callback = tc_parallel_error_callback;
		errcallback.arg = state;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;

		*result = InputFunctionCall(&state->inputfn, str,
									state->typioparam, -1);

		error_context_stack = errcallback.previous;
		return true;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);

	PG_TRY();
	{
		value = InputFunctionCall(&state->inputfn, str,
								  state->typioparam, -1);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* Save the error outside ErrorContext, then clean up. */
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		/* Not a verdict on the string (e.g. a cancel): let it propagate. */
		if (!tc_is_data_error(edata->sqlerrcode))
			ReThrowError(edata);

		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (ok)
		*result = value;
	return ok;
}

/*
 * Look up everything needed to convert to "targettype", once per call site
 * (see try_cast.h).  Pseudo-types are refused here, with a proper error,
 * rather than left to their input functions, most of which fail with an
 * internal-looking message.
 */
TryCastState *
try_cast_state_create(Oid targettype, MemoryContext mcxt)
{
	TryCastState *state;
	Oid			typinput;

	if (get_typtype(targettype) == TYPTYPE_PSEUDO)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("medallion.try_cast cannot convert to pseudo-type %s",
						format_type_be(targettype))));

	state = (TryCastState *) MemoryContextAllocZero(mcxt, sizeof(TryCastState));
	state->targettype = targettype;
	state->kind = tc_kind_for_type(targettype);

	/* errors out for shell types and types without an input function */
	getTypeInputInfo(targettype, &typinput, &state->typioparam);
	fmgr_info_cxt(typinput, &state->inputfn, mcxt);
	state->typname = MemoryContextStrdup(mcxt, format_type_be(targettype));

	return state;
}

/*
 * Convert one string (see try_cast.h): the fast path of the type if it has
 * one, else, or when the fast path is unsure, the input function.
 */
bool
try_cast_cstring(TryCastState *state, char *str, Datum *result)
{
	TryCastOutcome outcome = TC_UNSURE;

	switch (state->kind)
	{
		case TC_KIND_INT2:
			{
				int64		v = 0;

				outcome = tc_parse_int(str, PG_INT16_MIN, PG_INT16_MAX, &v);
				*result = Int16GetDatum((int16) v);
				break;
			}
		case TC_KIND_INT4:
			{
				int64		v = 0;

				outcome = tc_parse_int(str, PG_INT32_MIN, PG_INT32_MAX, &v);
				*result = Int32GetDatum((int32) v);
				break;
			}
		case TC_KIND_INT8:
			{
				int64		v = 0;

				outcome = tc_parse_int(str, PG_INT64_MIN, PG_INT64_MAX, &v);
				*result = Int64GetDatum(v);
				break;
			}
		case TC_KIND_NUMERIC:
			outcome = tc_scan_numeric(str);
			if (outcome == TC_VALID)
				*result = DirectFunctionCall3(numeric_in,
											  CStringGetDatum(str),
											  ObjectIdGetDatum(InvalidOid),
											  Int32GetDatum(-1));
			break;
		case TC_KIND_FLOAT4:
			{
				float4		v = 0;

				outcome = tc_parse_float4(str, &v);
				*result = Float4GetDatum(v);
				break;
			}
		case TC_KIND_FLOAT8:
			{
				bool		have_error;
				float8		v;

				/* float8in's own guts have a non-throwing mode in PG15 */
				v = float8in_internal_opt_error(str, NULL, "double precision",
												str, &have_error);
				outcome = have_error ? TC_INVALID : TC_VALID;
				*result = Float8GetDatum(v);
				break;
			}
		case TC_KIND_BOOL:
			{
				/* boolin: trim isspace() at both ends, then parse_bool */
				const char *s = str;
				size_t		len;
				bool		v = false;

				while (isspace((unsigned char) *s))
					s++;
				len = strlen(s);
				while (len > 0 && isspace((unsigned char) s[len - 1]))
					len--;
				outcome = parse_bool_with_len(s, len, &v) ? TC_VALID : TC_INVALID;
				*result = BoolGetDatum(v);
				break;
			}
		case TC_KIND_UUID:
			{
				pg_uuid_t	v;

				outcome = tc_parse_uuid(str, &v);
				if (outcome == TC_VALID)
				{
					pg_uuid_t  *copy = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));

					memcpy(copy, &v, sizeof(pg_uuid_t));
					*result = UUIDPGetDatum(copy);
				}
				break;
			}
		case TC_KIND_TEXT:
			/* textin, varcharin and bpcharin with typmod -1 cannot fail */
			*result = PointerGetDatum(cstring_to_text(str));
			outcome = TC_VALID;
			break;
		case TC_KIND_DATE:
			{
				DateADT		v = 0;

				outcome = tc_parse_date(str, &v);
				*result = DateADTGetDatum(v);
				break;
			}
		case TC_KIND_TIMESTAMP:
		case TC_KIND_TIMESTAMPTZ:
			{
				Timestamp	v = 0;

				outcome = tc_parse_timestamp(str,
											 state->kind == TC_KIND_TIMESTAMPTZ,
											 &v);
				*result = TimestampGetDatum(v);
				break;
			}
		case TC_KIND_GENERIC:
			outcome = TC_UNSURE;
			break;
	}

	if (outcome == TC_UNSURE)
		return tc_input_with_subxact(state, str, result);

	return outcome == TC_VALID;
}

/*
 * medallion.try_cast(value text, target_type anyelement) RETURNS anyelement
 *
 * Not STRICT: target_type is normally a typed NULL.  The target type is the
 * type of the second argument expression, resolved once per call site.  It
 * is validated before the NULL check, so that a bad target type is reported
 * whatever the data.
 */
Datum
medallion_try_cast(PG_FUNCTION_ARGS)
{
	TryCastState *state = (TryCastState *) fcinfo->flinfo->fn_extra;
	text	   *value;
	char		stackbuf[TC_STACK_BUFSIZE];
	char	   *str;
	int			len;
	Datum		result;

	if (state == NULL)
	{
		Oid			targettype = get_fn_expr_argtype(fcinfo->flinfo, 1);

		if (!OidIsValid(targettype))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("could not determine the target type of medallion.try_cast")));

		state = try_cast_state_create(targettype, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = state;
	}

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	value = PG_GETARG_TEXT_PP(0);

	/* text to text-like: the datum itself, as the binary-coercible cast */
	if (state->kind == TC_KIND_TEXT)
		PG_RETURN_TEXT_P(value);

	/* a NUL-terminated copy, as CoerceViaIO would pass to the input function */
	len = VARSIZE_ANY_EXHDR(value);
	str = (len < TC_STACK_BUFSIZE) ? stackbuf : (char *) palloc(len + 1);
	memcpy(str, VARDATA_ANY(value), len);
	str[len] = '\0';

	if (!try_cast_cstring(state, str, &result))
		PG_RETURN_NULL();

	PG_RETURN_DATUM(result);
}
