--
-- medallion.try_cast(value text, target_type anyelement)
--
-- On valid input try_cast must return exactly what value::type returns; on
-- invalid input, NULL.  Each section compares try_cast with the plain cast
-- on valid values and shows NULL on invalid ones; the last section checks
-- the same property on ~20k generated strings against a PL/pgSQL reference
-- that traps the cast's error.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS medallion;
SET timezone = 'UTC';
SET datestyle = 'ISO, MDY';
SET intervalstyle = 'postgres';
CREATE SCHEMA try_cast_test;
SET search_path = try_cast_test, public;

-- smallint
SELECT v, medallion.try_cast(v, NULL::smallint) AS r,
       medallion.try_cast(v, NULL::smallint) IS NOT DISTINCT FROM v::smallint AS same_as_cast
FROM (VALUES ('0'), ('32767'), ('-32768'), (' 42 '), ('+7'), ('-0'), ('00012'),
             (E'\t5\n')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::smallint) IS NULL AS is_null
FROM (VALUES ('32768'), ('-32769'), ('1.0'), (''), (' '), ('+'), ('-'), ('1 2'),
             ('0x10'), ('1e3'), ('abc'), ('++1'), ('99999999999999999999')) AS t(v);

-- integer
SELECT v, medallion.try_cast(v, NULL::int) AS r,
       medallion.try_cast(v, NULL::int) IS NOT DISTINCT FROM v::int AS same_as_cast
FROM (VALUES ('2147483647'), ('-2147483648'), (' 42 '), ('+7'), ('-0'), ('007'),
             (E'\n\t 1 \r')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::int) IS NULL AS is_null
FROM (VALUES ('2147483648'), ('-2147483649'), ('1.0'), ('1.5'), (''), (' '),
             ('12abc'), ('1_000'), ('1 000'), ('- 1'), ('99999999999999999999')) AS t(v);

-- bigint
SELECT v, medallion.try_cast(v, NULL::bigint) AS r,
       medallion.try_cast(v, NULL::bigint) IS NOT DISTINCT FROM v::bigint AS same_as_cast
FROM (VALUES ('9223372036854775807'), ('-9223372036854775808'), (' 42 '), ('+7'),
             ('0000000000000000000000001')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::bigint) IS NULL AS is_null
FROM (VALUES ('9223372036854775808'), ('-9223372036854775809'), ('1.0'), (''),
             ('1e3'), ('0x1F')) AS t(v);

-- numeric
SELECT v, medallion.try_cast(v, NULL::numeric) AS r,
       medallion.try_cast(v, NULL::numeric) IS NOT DISTINCT FROM v::numeric AS same_as_cast
FROM (VALUES ('0'), ('1.5'), ('-1.5'), ('+.5'), ('5.'), ('1e3'), ('1E-3'), (' 12.30 '),
             ('NaN'), ('nan'), ('Infinity'), ('-Infinity'), ('inf'), ('+inf'), ('-INF'),
             ('1e 5'), ('1e+2'), ('00001.000'), ('-0.0'),
             ('123456789012345678901234567890.123456789')) AS t(v);
-- at the limits of the numeric format: beyond the fast path's bounds, these
-- go through numeric_in in a subtransaction
SELECT left(v, 20) AS v, length(v) AS len,
       medallion.try_cast(v, NULL::numeric) = v::numeric AS same_as_cast
FROM (VALUES ('1e131071'), ('1e-16383'), ('0e-16383'), ('0.0001e131075'), ('00000e200000'),
             (repeat('0', 200000) || '1.5')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::numeric) IS NULL AS is_null
FROM (VALUES (''), (' '), ('.'), ('1.2.3'), ('1e'), ('e5'), ('--1'), ('+-1'), ('1,5'),
             ('abc'), ('Infinityx'), ('infinit'), ('NaN NaN'), ('1e5x'), ('1e+ 5'),
             ('1e131072'), ('1e-16384'), ('0e-16384'), ('1e2147483647'),
             ('1e1000000000')) AS t(v);

-- real
SELECT v, medallion.try_cast(v, NULL::real) AS r,
       medallion.try_cast(v, NULL::real) IS NOT DISTINCT FROM v::real AS same_as_cast
FROM (VALUES ('1.5'), (' -2.5e3 '), ('NaN'), ('Infinity'), ('-inf'), ('1e-40'),
             ('3.4e38'), ('0x1p3'), ('-0')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::real) IS NULL AS is_null
FROM (VALUES ('1e39'), ('-1e39'), ('1e-46'), (''), ('abc'), ('1.5x'), ('1,5'),
             ('infinit')) AS t(v);

-- double precision
SELECT v, medallion.try_cast(v, NULL::float8) AS r,
       medallion.try_cast(v, NULL::float8) IS NOT DISTINCT FROM v::float8 AS same_as_cast
FROM (VALUES ('1.5'), ('1e308'), ('1e-320'), ('NaN'), ('Infinity'), ('-Infinity'),
             ('inf'), (' 7 '), ('0x1p3'), ('-0')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::float8) IS NULL AS is_null
FROM (VALUES ('1e400'), ('-1e400'), ('1e-400'), (''), ('   '), ('abc'), ('infinit'),
             ('1.5.5'), ('1e')) AS t(v);

-- boolean
SELECT v, medallion.try_cast(v, NULL::boolean) AS r,
       medallion.try_cast(v, NULL::boolean) IS NOT DISTINCT FROM v::boolean AS same_as_cast
FROM (VALUES ('t'), ('f'), ('true'), ('FALSE'), (' yes '), ('no'), ('on'), ('OFF'),
             ('1'), ('0'), ('tr'), ('y'), ('n'), ('of')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::boolean) IS NULL AS is_null
FROM (VALUES ('o'), (''), (' '), ('maybe'), ('2'), ('truee'), ('yess'), ('of f'),
             ('01')) AS t(v);

-- date
SELECT v, medallion.try_cast(v, NULL::date) AS r,
       medallion.try_cast(v, NULL::date) IS NOT DISTINCT FROM v::date AS same_as_cast
FROM (VALUES ('2024-02-29'), ('2024-01-15 12:34:56'), ('Jan-01-2024'), ('01/02/2024'),
             ('epoch'), ('infinity'), ('-infinity'), (' 2024-03-01 '), ('20240301'),
             ('2024-03-01 UTC'), ('2024-03-01 12:00 Europe/Paris'), ('5874897-12-31'),
             ('4714-11-24 BC'), ('2024 feb-01'), ('J2451545')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::date) IS NULL AS is_null
FROM (VALUES ('2024-02-30'), ('2023-02-29'), (''), ('abc'), ('5874898-01-01'),
             ('4714-11-23 BC'), ('12:00'), ('2024-01-01 Foo/Bar'), ('2024-13-01'),
             ('Sat Foo-06-2024'), ('Sat Jan-06-2024')) AS t(v);

-- timestamp
SELECT v, medallion.try_cast(v, NULL::timestamp) AS r,
       medallion.try_cast(v, NULL::timestamp) IS NOT DISTINCT FROM v::timestamp AS same_as_cast
FROM (VALUES ('2024-01-15 12:34:56.789'), ('2024-01-15T12:34:56'), ('epoch'),
             ('infinity'), ('2024-01-15 12:34:56+05'), ('Jan 15 2024 10:00 PM'),
             ('294276-12-31 23:59:59.999999'), ('2024-01-01 allballs'),
             ('2024-01-15 12:00 America/New_York')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::timestamp) IS NULL AS is_null
FROM (VALUES ('2024-01-15 25:00'), ('294277-01-01 00:00:00'), ('2024-13-01'), (''),
             ('garbage'), ('2024-01-01 Foo/Bar'), ('12:00'), ('2024-01-15 12:60')) AS t(v);

-- timestamptz
SELECT v, medallion.try_cast(v, NULL::timestamptz) AS r,
       medallion.try_cast(v, NULL::timestamptz) IS NOT DISTINCT FROM v::timestamptz AS same_as_cast
FROM (VALUES ('2024-01-15 12:34:56+02'), ('2024-01-15 12:34:56 Europe/Paris'),
             ('2024-06-15 12:00 America/New_York'), ('2024-01-15 12:34:56 PST'),
             ('epoch'), ('-infinity'), ('2024-01-15'), ('20240115T123456Z'),
             ('2024-01-15 12:34:56 MSK')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::timestamptz) IS NULL AS is_null
FROM (VALUES ('2024-01-15 12:34:56 Foo/Bar'), ('2024-02-30'), (''), ('x'),
             ('2024-01-15 12:34:56 +25'), ('2024-01-15 PST PST')) AS t(v);

-- DateStyle and TimeZone are honoured as by the cast
SET datestyle = 'ISO, DMY';
SELECT medallion.try_cast('01/02/2024', NULL::date) AS dmy,
       medallion.try_cast('01/02/2024', NULL::date) = '01/02/2024'::date AS same_as_cast;
SET datestyle = 'ISO, MDY';
SET timezone = 'America/New_York';
SELECT medallion.try_cast('2024-01-15 12:00', NULL::timestamptz) AS new_york,
       medallion.try_cast('2024-01-15 12:00', NULL::timestamptz)
         = '2024-01-15 12:00'::timestamptz AS same_as_cast;
SET timezone = 'UTC';

-- ParseDateTime work buffers differ: date_in rejects what timestamp_in accepts
SELECT medallion.try_cast('2024-01-01 00:00:00.' || repeat('0', 120), NULL::date) AS long_date,
       medallion.try_cast('2024-01-01 00:00:00.' || repeat('0', 120), NULL::timestamp) AS long_ts;

-- special values that read the clock match the cast (transaction start time)
BEGIN;
SELECT pg_sleep(0.01);
SELECT medallion.try_cast('now', NULL::timestamptz) = now() AS now_tz,
       medallion.try_cast(' NOW ', NULL::timestamp) = now()::timestamp AS now_ts,
       medallion.try_cast('today', NULL::date) = current_date AS today,
       medallion.try_cast('tomorrow', NULL::date) = current_date + 1 AS tomorrow,
       medallion.try_cast('yesterday', NULL::timestamptz) = 'yesterday'::timestamptz AS yesterday,
       medallion.try_cast('now', NULL::date) = 'now'::date AS now_date;
COMMIT;

-- uuid
SELECT v, medallion.try_cast(v, NULL::uuid) AS r,
       medallion.try_cast(v, NULL::uuid) IS NOT DISTINCT FROM v::uuid AS same_as_cast
FROM (VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'),
             ('{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'), ('a0eebc999c0b4ef8bb6d6bb9bd380a11'),
             ('a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11'),
             ('{a0eebc999c0b4ef8bb6d6bb9bd380a11}')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::uuid) IS NULL AS is_null
FROM (VALUES (''), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1'), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111'),
             (' a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 '),
             ('{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), ('a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11'),
             ('g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-'),
             ('a0eeb-c999c0b4ef8bb6d6bb9bd380a11')) AS t(v);

-- text, varchar, bpchar: always the value itself
SELECT v, medallion.try_cast(v, NULL::text) AS t,
       medallion.try_cast(v, NULL::text) IS NOT DISTINCT FROM v AS same_text,
       octet_length(medallion.try_cast(v, NULL::varchar))
         IS NOT DISTINCT FROM octet_length(v::varchar) AS same_varchar,
       octet_length(medallion.try_cast(v, NULL::bpchar))
         IS NOT DISTINCT FROM octet_length(v::bpchar) AS same_bpchar
FROM (VALUES ('abc'), (''), (' spaced  '), ('ünïcödé'), (NULL)) AS t(v);
SELECT pg_typeof(medallion.try_cast('x', NULL::varchar)) AS varchar_type;

-- generic types: the input function in a subtransaction
CREATE TYPE color AS ENUM ('red', 'green');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN short_text AS text CHECK (length(VALUE) <= 3);
CREATE DOMAIN inverse_ok AS int CHECK (100 / VALUE > 0);
CREATE DOMAIN nn_int AS int NOT NULL;
CREATE TYPE pair AS (a int, b text);
SELECT v, medallion.try_cast(v, NULL::inet) AS r,
       medallion.try_cast(v, NULL::inet) IS NOT DISTINCT FROM (CASE WHEN v IN ('10.0.0.1', '::1', '192.168.0.0/24') THEN v::inet END) AS ok
FROM (VALUES ('10.0.0.1'), ('::1'), ('192.168.0.0/24'), ('10.0.0.256'), ('abc'), ('')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::int[]) AS r
FROM (VALUES ('{1,2,3}'), ('{}'), ('{{1,2},{3,4}}'), ('{1,2'), ('{a}'), ('1,2'),
             ('{1,99999999999}')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::jsonb) AS r
FROM (VALUES ('{"a": 1}'), ('[1, 2]'), ('"s"'), ('null'), ('{a:1}'), (''), ('[1,')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::color) AS r
FROM (VALUES ('red'), ('green'), ('purple'), ('RED'), ('')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::interval) AS r
FROM (VALUES ('1 day'), ('1 year 2 mons'), ('P1D'), ('abc'), ('1 fortnight')) AS t(v);
SELECT v, medallion.try_cast(v, NULL::pair) AS r
FROM (VALUES ('(1,abc)'), ('(,)'), ('(x,abc)'), ('(1,abc,3)')) AS t(v);

-- domains: constraints are checked; a violation gives NULL
SELECT v, medallion.try_cast(v, NULL::posint) AS r
FROM (VALUES ('5'), (' 7 '), ('0'), ('-3'), ('x'), ('1.5')) AS t(v);
SELECT pg_typeof(medallion.try_cast('5', NULL::posint)) AS domain_type;
SELECT v, medallion.try_cast(v, NULL::short_text) AS r
FROM (VALUES ('abc'), ('abcd')) AS t(v);
-- a data exception raised by the CHECK expression (division by zero)
SELECT v, medallion.try_cast(v, NULL::inverse_ok) AS r
FROM (VALUES ('5'), ('0'), ('200')) AS t(v);
-- NULL in gives NULL out, even for a NOT NULL domain (whose target_type
-- cannot be a NULL, as NULL::nn_int itself fails)
SELECT medallion.try_cast(NULL, 0::nn_int) IS NULL AS null_in_null_out,
       medallion.try_cast('3', 0::nn_int) AS three;

-- NULL value, and a non-NULL target_type (only its type matters)
SELECT medallion.try_cast(NULL, NULL::int) AS null_int,
       medallion.try_cast(NULL, NULL::inet) AS null_inet,
       medallion.try_cast('5', 42) AS five,
       medallion.try_cast('2024-01-01', current_date) AS d;

-- many rows through one call site, valid and invalid mixed (caching)
SELECT count(*) AS total,
       count(medallion.try_cast(v, NULL::int)) AS ints,
       count(medallion.try_cast(v, NULL::color)) AS colors,
       sum(medallion.try_cast(v, NULL::int)) AS int_sum
FROM (SELECT CASE g % 3 WHEN 0 THEN g::text WHEN 1 THEN 'red' ELSE 'x' || g END
      FROM generate_series(1, 3000) g) AS t(v);

-- errors that are not data errors are raised, not turned into NULL
SELECT medallion.try_cast('no_such_table', NULL::regclass);
SELECT medallion.try_cast('(1,2)', NULL::record);
SELECT medallion.try_cast('x', NULL::cstring);
-- a query cancel (here a statement timeout inside a domain CHECK) is re-raised
CREATE FUNCTION slow_check(int) RETURNS boolean LANGUAGE sql AS
  'SELECT true FROM pg_sleep(5)';
CREATE DOMAIN slow_int AS int CHECK (slow_check(VALUE));
SET statement_timeout = '200ms';
SELECT medallion.try_cast('1', NULL::slow_int);
RESET statement_timeout;
-- the typmod of target_type is ignored, as by the input function
SELECT medallion.try_cast('2024-01-15 12:00:00.123456', NULL::timestamptz(2)) AS ts2,
       medallion.try_cast('abcd', NULL::varchar(2)) AS vc2,
       medallion.try_cast('1.005', NULL::numeric(3,1)) AS num31;

-- parallel mode: fast paths work; the generic path cannot trap errors there
-- (PostgreSQL 15 has no subtransactions in parallel mode)
SET force_parallel_mode = regress;
SELECT medallion.try_cast('12', NULL::int) AS i, medallion.try_cast('x', NULL::int) AS bad_i,
       medallion.try_cast('1e400', NULL::float8) AS bad_f, medallion.try_cast('10.0.0.1', NULL::inet) AS inet;
SELECT medallion.try_cast('10.0.0.256', NULL::inet);
RESET force_parallel_mode;

--
-- Property check: on ~20k generated strings, try_cast(s, NULL::t) must equal
-- a PL/pgSQL function that does s::t and maps any error to NULL.
--
CREATE FUNCTION ref_int2(v text) RETURNS int2 LANGUAGE plpgsql AS
$$BEGIN RETURN v::int2; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_int4(v text) RETURNS int4 LANGUAGE plpgsql AS
$$BEGIN RETURN v::int4; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_int8(v text) RETURNS int8 LANGUAGE plpgsql AS
$$BEGIN RETURN v::int8; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_numeric(v text) RETURNS numeric LANGUAGE plpgsql AS
$$BEGIN RETURN v::numeric; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_float4(v text) RETURNS float4 LANGUAGE plpgsql AS
$$BEGIN RETURN v::float4; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_float8(v text) RETURNS float8 LANGUAGE plpgsql AS
$$BEGIN RETURN v::float8; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_bool(v text) RETURNS bool LANGUAGE plpgsql AS
$$BEGIN RETURN v::bool; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_date(v text) RETURNS date LANGUAGE plpgsql AS
$$BEGIN RETURN v::date; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_timestamp(v text) RETURNS timestamp LANGUAGE plpgsql AS
$$BEGIN RETURN v::timestamp; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_timestamptz(v text) RETURNS timestamptz LANGUAGE plpgsql AS
$$BEGIN RETURN v::timestamptz; EXCEPTION WHEN others THEN RETURN NULL; END$$;
CREATE FUNCTION ref_uuid(v text) RETURNS uuid LANGUAGE plpgsql AS
$$BEGIN RETURN v::uuid; EXCEPTION WHEN others THEN RETURN NULL; END$$;

CREATE TABLE samples (s text);
SELECT setseed(0.42);

-- 1. any mix of digits, signs, spaces, dots, letters and punctuation
INSERT INTO samples
SELECT coalesce((SELECT string_agg(substr(' +-.0123456789eEinfatyosrulNT:/Z{}',
                                          1 + floor(random() * 34)::int, 1), '')
                 FROM generate_series(1, len) WHERE g > 0), '')
FROM (SELECT g, floor(random() * 12)::int AS len FROM generate_series(1, 5000) g) AS x;

-- 2. number-like: sign, up to 21 digits, fraction, exponent, junk
INSERT INTO samples
SELECT concat(
         CASE WHEN random() < 0.2 THEN ' ' END,
         (ARRAY['', '', '', '+', '-', '--', '.'])[1 + floor(random() * 7)::int],
         CASE WHEN random() < 0.9
              THEN trunc((random() * 10 ^ floor(random() * 22))::numeric)::text END,
         CASE WHEN random() < 0.4 THEN '.' END,
         CASE WHEN random() < 0.4 THEN floor(random() * 1000)::text END,
         CASE WHEN random() < 0.3
              THEN (ARRAY['e', 'E', 'e+', 'e-', 'e ', 'e1', 'x'])[1 + floor(random() * 7)::int]
                   || floor(random() * (ARRAY[5, 40, 400, 5000, 200000])[1 + floor(random() * 5)::int])::text END,
         CASE WHEN random() < 0.2 THEN ' ' END,
         CASE WHEN random() < 0.05 THEN 'x' END)
FROM generate_series(1, 5000);

-- 3. date/time-like: fields near and beyond their ranges, time zones
INSERT INTO samples
SELECT concat(
         CASE WHEN random() < 0.1 THEN (ARRAY['Sat ', 'jan ', 'Foo '])[1 + floor(random() * 3)::int] END,
         (ARRAY['2024', '1999', '0001', '99', '294276', '294277', '5874897', '5874898', '0', '-5'])[1 + floor(random() * 10)::int],
         (ARRAY['-', '/', '.', '', ' '])[1 + floor(random() * 5)::int],
         (ARRAY['01', '02', '12', '13', '0', 'Feb', 'xyz'])[1 + floor(random() * 7)::int],
         (ARRAY['-', '/', '.', ''])[1 + floor(random() * 4)::int],
         floor(random() * 33)::text,
         CASE WHEN random() < 0.6
              THEN (ARRAY[' ', 'T', ' T'])[1 + floor(random() * 3)::int]
                   || floor(random() * 26)::text || ':' || floor(random() * 62)::text
                   || CASE WHEN random() < 0.5 THEN ':' || floor(random() * 62)::text END
                   || CASE WHEN random() < 0.3 THEN '.' || floor(random() * 1000000)::text END END,
         CASE WHEN random() < 0.5
              THEN (ARRAY[' UTC', '+02', '-05:30', ' PST', ' Europe/Paris', ' Foo/Bar', ' BC', 'Z',
                          ' +25', ' am', ' pm', ' allballs', ' MSK', ' PST DST'])[1 + floor(random() * 14)::int] END)
FROM generate_series(1, 5000);

-- 4. keywords of the input functions, glued together
INSERT INTO samples
SELECT concat(w1, sep, CASE WHEN random() < 0.4 THEN w2 END)
FROM (SELECT (ARRAY['t', 'f', 'true', 'false', 'yes', 'no', 'on', 'off', 'o', 'of', '1', '0', 'tr',
                    'NaN', 'nan', 'Infinity', '-Infinity', 'inf', '+inf', '-inf', 'infinit', 'epoch',
                    'today', 'tomorrow', 'yesterday', 'allballs', 'infinity', 'now', 'jan', 'february',
                    'UTC', 'PST', 'Europe/Paris', '+05', 'z', 'J2451545', '2024', '12:00', '1e400',
                    '1e-400', '1e-40', '1e39', '0x1p3', '', ' '])[1 + floor(random() * 45)::int] AS w1,
             (ARRAY['', ' ', '-', ':', '  ', 'x'])[1 + floor(random() * 6)::int] AS sep,
             (ARRAY['t', 'yes', 'NaN', 'inf', 'epoch', 'today', 'UTC', '2024-01-01', '12:00', '5',
                    'Europe/Paris', 'ab'])[1 + floor(random() * 12)::int] AS w2
      FROM generate_series(1, 4000)) AS x;

-- 5. uuid-like: hex groups, optional hyphens and braces, occasional damage
INSERT INTO samples
SELECT concat(CASE WHEN b THEN '{' END, u, CASE WHEN b AND random() < 0.9 THEN '}' END)
FROM (SELECT random() < 0.2 AS b,
             (SELECT string_agg(substr(md5(random()::text), 1,
                                       CASE WHEN random() < 0.05 THEN 3 ELSE 4 END),
                                CASE WHEN random() < 0.5 THEN '-' ELSE '' END)
              FROM generate_series(1, 8) WHERE g > 0) AS u
      FROM generate_series(1, 1000) g) AS x;

SELECT count(*) AS samples, count(DISTINCT s) > 10000 AS varied FROM samples;

SELECT t AS type, mismatches, valid > 100 AND invalid > 100 AS covers_both
FROM (
  SELECT 'smallint' AS t, count(*) FILTER (WHERE medallion.try_cast(s, NULL::int2) IS DISTINCT FROM ref_int2(s)) AS mismatches,
         count(ref_int2(s)) AS valid, count(*) - count(ref_int2(s)) AS invalid FROM samples
  UNION ALL
  SELECT 'integer', count(*) FILTER (WHERE medallion.try_cast(s, NULL::int4) IS DISTINCT FROM ref_int4(s)),
         count(ref_int4(s)), count(*) - count(ref_int4(s)) FROM samples
  UNION ALL
  SELECT 'bigint', count(*) FILTER (WHERE medallion.try_cast(s, NULL::int8) IS DISTINCT FROM ref_int8(s)),
         count(ref_int8(s)), count(*) - count(ref_int8(s)) FROM samples
  UNION ALL
  SELECT 'numeric', count(*) FILTER (WHERE medallion.try_cast(s, NULL::numeric) IS DISTINCT FROM ref_numeric(s)),
         count(ref_numeric(s)), count(*) - count(ref_numeric(s)) FROM samples
  UNION ALL
  SELECT 'real', count(*) FILTER (WHERE medallion.try_cast(s, NULL::float4) IS DISTINCT FROM ref_float4(s)),
         count(ref_float4(s)), count(*) - count(ref_float4(s)) FROM samples
  UNION ALL
  SELECT 'double precision', count(*) FILTER (WHERE medallion.try_cast(s, NULL::float8) IS DISTINCT FROM ref_float8(s)),
         count(ref_float8(s)), count(*) - count(ref_float8(s)) FROM samples
  UNION ALL
  SELECT 'boolean', count(*) FILTER (WHERE medallion.try_cast(s, NULL::bool) IS DISTINCT FROM ref_bool(s)),
         count(ref_bool(s)), count(*) - count(ref_bool(s)) FROM samples
  UNION ALL
  SELECT 'date', count(*) FILTER (WHERE medallion.try_cast(s, NULL::date) IS DISTINCT FROM ref_date(s)),
         count(ref_date(s)), count(*) - count(ref_date(s)) FROM samples
  UNION ALL
  SELECT 'timestamp', count(*) FILTER (WHERE medallion.try_cast(s, NULL::timestamp) IS DISTINCT FROM ref_timestamp(s)),
         count(ref_timestamp(s)), count(*) - count(ref_timestamp(s)) FROM samples
  UNION ALL
  SELECT 'timestamptz', count(*) FILTER (WHERE medallion.try_cast(s, NULL::timestamptz) IS DISTINCT FROM ref_timestamptz(s)),
         count(ref_timestamptz(s)), count(*) - count(ref_timestamptz(s)) FROM samples
  UNION ALL
  SELECT 'uuid', count(*) FILTER (WHERE medallion.try_cast(s, NULL::uuid) IS DISTINCT FROM ref_uuid(s)),
         count(ref_uuid(s)), count(*) - count(ref_uuid(s)) FROM samples
) AS r;

RESET search_path;
DROP SCHEMA try_cast_test CASCADE;
