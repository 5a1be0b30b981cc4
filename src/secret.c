/*-------------------------------------------------------------------------
 *
 * secret.c
 *	  create_secret, drop_secret, and loading credentials for a flow.
 *
 * Key material lives in medallion.secret, which no ordinary role can read.
 * It leaves that table only to be handed to the HTTP signer.  Errors
 * raised while a statement that carries key material runs hide the
 * statement from the server log (errhidestmt), so that a failed
 * create_secret call does not write the secret to the log.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/secret.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "secret.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_secret);
PG_FUNCTION_INFO_V1(medallion_drop_secret);

/* A text argument that must be given: NULL is an error naming it. */
static char *
required_text_argument(FunctionCallInfo fcinfo, int argument,
					   const char *name)
{
	char	   *value;

	if (PG_ARGISNULL(argument))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhidestmt(true)));
	value = text_to_cstring(PG_GETARG_TEXT_PP(argument));
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 errhidestmt(true)));
	return value;
}

/*
 * Owner of a secret, or InvalidOid when there is no such secret.
 */
static Oid
secret_owner(const char *secret_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(secret_name)};
	Oid			owner = InvalidOid;
	bool		isnull;

	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT owner::pg_catalog.oid FROM medallion.secret"
							   " WHERE secret_name OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		owner = DatumGetObjectId(SpiGetDatum(0, 1, &isnull));
	SPI_finish();
	return owner;
}

/*
 * create_secret(secret_name, access_key_id, secret_access_key, session_token):
 * store credentials for the calling role's bronze flows.  The secret belongs
 * to its creator; only the owner (or a superuser) may use or drop it.
 */
Datum
medallion_create_secret(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *secret_name;
	char	   *access_key_id;
	char	   *secret_access_key;
	Oid			types[5] = {TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			existing_owner;

	secret_name = required_text_argument(fcinfo, 0, "secret_name");
	access_key_id = required_text_argument(fcinfo, 1, "access_key_id");
	secret_access_key = required_text_argument(fcinfo, 2, "secret_access_key");

	existing_owner = secret_owner(secret_name);
	if (existing_owner == GetUserId())
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("secret \"%s\" already exists", secret_name),
				 errhint("Drop it first with medallion.drop_secret() to replace it."),
				 errhidestmt(true)));
	/* names are global: do not confirm whose the name is */
	if (OidIsValid(existing_owner))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("secret name \"%s\" is not available", secret_name),
				 errhint("Secret names are shared by all roles of the database; choose another name."),
				 errhidestmt(true)));

	values[0] = CStringGetTextDatum(secret_name);
	values[1] = ObjectIdGetDatum(GetUserId());
	values[2] = CStringGetTextDatum(access_key_id);
	values[3] = CStringGetTextDatum(secret_access_key);
	if (PG_ARGISNULL(3))
		nulls[4] = 'n';
	else
		values[4] = PointerGetDatum(PG_GETARG_TEXT_PP(3));

	PG_TRY();
	{
		SPI_connect();
		SpiExecuteAsExtensionOwner("INSERT INTO medallion.secret"
								   " (secret_name, owner, access_key_id,"
								   " secret_access_key, session_token)"
								   " VALUES ($1, $2::pg_catalog.regrole, $3, $4, $5)",
								   5, types, values, nulls, SPI_OK_INSERT);
		SPI_finish();
	}
	PG_CATCH();
	{
		ErrorData  *error = CopyErrorData();

		FlushErrorState();
		error->hide_stmt = true;
		ReThrowError(error);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/*
 * drop_secret(secret_name): only its owner or a superuser may drop a secret;
 * flows that name it fail at their next update with a clear error.
 */
Datum
medallion_drop_secret(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *secret_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			owner = secret_owner(secret_name);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(secret_name)};

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("secret \"%s\" does not exist", secret_name)));
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of secret \"%s\"", secret_name)));

	SPI_connect();
	SpiExecuteAsExtensionOwner("DELETE FROM medallion.secret"
							   " WHERE secret_name OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();
	PG_RETURN_VOID();
}

void
SecretCheckUsable(const char *secret_name, Oid user_id)
{
	Oid			owner = secret_owner(secret_name);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("secret \"%s\" does not exist", secret_name),
				 errhint("Create it with medallion.create_secret().")));
	if (owner != user_id && !superuser_arg(user_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for secret \"%s\"", secret_name),
				 errdetail("A secret is usable only by the role that created it and by superusers.")));
}

static char *
environment_value(const char *name)
{
	const char *value = getenv(name);

	return (value != NULL && value[0] != '\0') ? pstrdup(value) : NULL;
}

S3Credentials *
SecretLoad(const char *secret_name, Oid user_id)
{
	S3Credentials *credentials = palloc0(sizeof(S3Credentials));
	MemoryContext caller_context = CurrentMemoryContext;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (secret_name == NULL)
	{
		/*
		 * The server's environment, then anonymous access.  The server's own
		 * identity is for superusers' pipelines only: any other role could
		 * otherwise read whatever the database server may read.
		 */
		if (!superuser_arg(user_id))
			return credentials;
		credentials->access_key_id = environment_value("AWS_ACCESS_KEY_ID");
		credentials->secret_access_key = environment_value("AWS_SECRET_ACCESS_KEY");
		credentials->session_token = environment_value("AWS_SESSION_TOKEN");
		if (credentials->access_key_id == NULL ||
			credentials->secret_access_key == NULL)
			credentials->access_key_id = credentials->secret_access_key =
				credentials->session_token = NULL;
		return credentials;
	}

	SecretCheckUsable(secret_name, user_id);
	values[0] = CStringGetTextDatum(secret_name);
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT access_key_id, secret_access_key, session_token"
							   " FROM medallion.secret"
							   " WHERE secret_name OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		credentials->access_key_id = SpiGetText(0, 1);
		credentials->secret_access_key = SpiGetText(0, 2);
		credentials->session_token = SpiGetText(0, 3);
		MemoryContextSwitchTo(spi_context);
	}
	SPI_finish();
	return credentials;
}
