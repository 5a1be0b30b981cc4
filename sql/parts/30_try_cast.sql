-- medallion.try_cast: text to any type, NULL instead of an error on bad input
-- (implemented in src/try_cast.c).
--
-- Not STRICT: target_type is normally a typed NULL such as NULL::int, and a
-- NULL value must give NULL.  STABLE, not IMMUTABLE: like a cast, the result
-- for date/time types depends on TimeZone and DateStyle, and 'now' or
-- 'today' read the transaction start time.
CREATE FUNCTION medallion.try_cast(value text, target_type anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'medallion_try_cast'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION medallion.try_cast(text, anyelement) IS
'Converts value to the type of target_type (e.g. try_cast(data->>''qty'', NULL::int)) exactly as value::type would, but returns NULL instead of raising an error when value is not a valid input for the type (data exceptions and domain constraint violations); other errors are raised. NULL value gives NULL.';
