/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The pipeline worker of continuous mode: runs one update of its
 *	  pipeline every trigger_interval, and at once again while a backlog
 *	  remains.
 *
 * The worker holds a slot of medallion.max_workers (worker_slots.c).  It
 * leaves when its pipeline is no longer a running continuous pipeline
 * (stopped, failed, dropped), when the extension is dropped, when
 * medallion.enable_workers is turned off, and, after an update or while it
 * sleeps, when other pipelines wait for a slot; the scheduler of its
 * database starts it again when its pipeline is due and its turn comes.  Errors of flows never end the
 * worker: UpdateRun records them.  A transient failure (network, S3 5xx,
 * throttling) keeps the pipeline running and is retried with exponential
 * backoff, capped at one minute; a data error fails the pipeline, which
 * then waits for start_pipeline or run_pipeline.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "dynamic_worker.h"
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "guc.h"
#include "launcher.h"
#include "medallion.h"
#include "shmem.h"
#include "spi_util.h"
#include "statement_cache.h"
#include "update.h"
#include "worker.h"
#include "worker_slots.h"

/* longest wait between two attempts after transient failures */
#define MAX_BACKOFF_MS (60 * 1000)

/* the slot of medallion.max_workers this worker holds */
static WorkerSlotClaim worker_claim;

static void
release_worker_slot(int code, Datum arg)
{
	WorkerSlotsRelease(&worker_claim);
}

/*
 * Read the pipeline; returns NULL when the worker should leave.  Sets
 * *wait_ms when a backoff is in progress.
 */
static PipelineDesc *
load_running_pipeline(int32 pipeline_id, long *wait_ms)
{
	PipelineDesc *pipeline = NULL;
	MemoryContext caller_context = CurrentMemoryContext;

	*wait_ms = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid(MEDALLION_EXTENSION_NAME, true)))
	{
		MemoryContext old = MemoryContextSwitchTo(caller_context);

		pipeline = CatalogGetPipelineById(pipeline_id, true);
		MemoryContextSwitchTo(old);
		if (pipeline != NULL &&
			(strcmp(pipeline->mode, "continuous") != 0 ||
			 strcmp(pipeline->state, "running") != 0))
			pipeline = NULL;
		if (pipeline != NULL)
		{
			Oid			types[1] = {INT4OID};
			Datum		values[1] = {Int32GetDatum(pipeline_id)};
			bool		isnull;

			SPI_connect();
			SpiExecute("SELECT (pg_catalog.date_part('epoch', next_attempt_at"
					   " OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp()) * 1000)::bigint"
					   " FROM medallion.pipeline"
					   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, SPI_OK_SELECT);
			if (SPI_processed == 1)
			{
				int64		remaining = SpiGetInt64(0, 1, &isnull);

				if (!isnull && remaining > 0)
					*wait_ms = (long) Min(remaining, MAX_BACKOFF_MS);
			}
			SPI_finish();
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* back to the loop's context: what the update allocates is reset with it */
	MemoryContextSwitchTo(caller_context);
	return pipeline;
}

/*
 * After a transient failure: wait trigger_interval * 2^failures (full
 * jitter, capped), recorded in next_attempt_at and as a retry event.
 */
static void
schedule_retry(PipelineDesc *pipeline, int64 update_id)
{
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		values[2];
	PipelineDesc *current;
	MemoryContext caller_context = CurrentMemoryContext;
	double		ceiling;
	int64		delay_ms;
	int			failures;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	current = CatalogGetPipelineById(pipeline->pipeline_id, true);
	failures = current ? current->consecutive_failures : 1;
	ceiling = (double) Max(pipeline->trigger_interval_ms, 100) *
		pow(2.0, Min(failures, 20));
	if (ceiling > MAX_BACKOFF_MS)
		ceiling = MAX_BACKOFF_MS;
	delay_ms = (int64) (ceiling / 2 + pg_prng_double(&pg_global_prng_state) * ceiling / 2);

	values[0] = Int32GetDatum(pipeline->pipeline_id);
	values[1] = Int64GetDatum(delay_ms);
	SPI_connect();
	SpiExecuteAsExtensionOwner("UPDATE medallion.pipeline SET next_attempt_at ="
							   " pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)"
							   " pg_catalog.make_interval(secs => $2 OPERATOR(pg_catalog./) 1000.0)"
							   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
							   2, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
	EventLogWrite(pipeline, update_id, NULL, "retry", "WARNING",
				  psprintf("update failed with a transient error (%d in a row); next attempt in " INT64_FORMAT " ms",
						   failures, delay_ms),
				  psprintf("{\"consecutive_failures\": %d, \"delay_ms\": " INT64_FORMAT "}",
						   failures, delay_ms));
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_context);
}

/*
 * Sleep until deadline; leave as soon as other pipelines wait for a slot
 * that this worker can give up (an idle pipeline does not hold a slot that
 * another pipeline needs).
 */
static void
sleep_until(TimestampTz deadline)
{
	for (;;)
	{
		long		milliseconds;

		if (WorkerSlotsShouldYield(&worker_claim))
			proc_exit(0);
		milliseconds = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													   deadline);
		if (milliseconds <= 0)
			return;
		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 milliseconds, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

void
MedallionPipelineWorkerMain(Datum main_arg)
{
	int32		pipeline_id = DatumGetInt32(main_arg);
	PipelineWorkerArgs args;
	MemoryContext loop_context;
	bool		read_only_reported = false;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	worker_claim = args.claim;
	before_shmem_exit(release_worker_slot, (Datum) 0);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	DynamicWorkerConnect(args.database_id, args.session_role);
	pgstat_report_appname(psprintf("medallion worker: %s", args.pipeline_name));

	/* the slot was reclaimed meanwhile, or the database is being dropped */
	if (!WorkerSlotsAttach(&worker_claim, args.database_id, pipeline_id) ||
		LauncherDatabaseDropping(args.database_id))
		proc_exit(0);

	/* every update runs the same views' statements again: keep them */
	StatementCacheEnable();
	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "medallion worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		PipelineDesc *pipeline;
		long		backoff_ms;
		UpdateOutcome outcome;
		TimestampTz update_start;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!medallion_enable_workers)
			proc_exit(0);

		MemoryContextSwitchTo(loop_context);
		pipeline = load_running_pipeline(pipeline_id, &backoff_ms);
		if (pipeline == NULL)
			proc_exit(0);
		if (backoff_ms > 0)
		{
			sleep_until(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													Min(backoff_ms, medallion_launcher_naptime_ms)));
			MemoryContextReset(loop_context);
			continue;
		}

		/*
		 * A server that is read-only by default cannot run updates: wait
		 * quietly until it is writable, rather than fail every update.
		 * pg_auto_failover, for one, keeps a promoted standby so until its
		 * monitor confirms the promotion.
		 */
		if (DefaultXactReadOnly)
		{
			if (!read_only_reported)
				ereport(LOG,
						(errmsg("medallion worker of pipeline \"%s\" waits: default_transaction_read_only is on",
								pipeline->pipeline_name)));
			read_only_reported = true;
			sleep_until(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													medallion_launcher_naptime_ms));
			MemoryContextReset(loop_context);
			continue;
		}
		read_only_reported = false;

		pgstat_report_appname(psprintf("medallion worker: %s",
									   pipeline->pipeline_name));
		update_start = GetCurrentTimestamp();
		UpdateRun(pipeline_id, false, NIL, NULL, NULL, &outcome);
		if (outcome.failed && outcome.transient)
			schedule_retry(pipeline, outcome.update_id);

		/* let autovacuum and the statistics views see what was written */
		pgstat_report_stat(true);

		/*
		 * One update is the bounded slice: the slot goes to a waiting
		 * pipeline now, and this pipeline waits in line for the next one.
		 */
		if (WorkerSlotsShouldYield(&worker_claim))
			proc_exit(0);

		/* a backlog is drained back to back; otherwise one update per interval */
		if (!outcome.backlog || outcome.failed)
			sleep_until(TimestampTzPlusMilliseconds(update_start,
													pipeline->trigger_interval_ms));
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);
	}
}
