/*-------------------------------------------------------------------------
 *
 * cdc_runner.c
 *	  The walk of an auto CDC apply over the sorted events: key by key, it
 *	  derives the target rows of the key and notes the rows they replace.
 *
 * The events query (CdcEventsSql) returns, per key, the rows of the target
 * the key's new events build on or replace, and the events, sorted by
 * sequence; its rows go straight to the runner through a DestReceiver,
 * without an SPI tuple table.  The runner keeps one key, its last event
 * and (SCD2) its open version in small memory contexts reset per key and
 * per event, and queues the derived rows in a tuplestore.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_runner.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "cdc_internal.h"

/* target_map values below 0; >= 0 is a key, CDC_MAP_COLUMN + j column j */
#define CDC_MAP_NONE (-1)
#define CDC_MAP_START (-2)
#define CDC_MAP_END (-3)
#define CDC_MAP_COLUMN 10000

/* Are two sequence values equal (two NULLs are)? */
static bool
cdc_seq_equal(CdcRunner *runner, bool null1, Datum seq1, bool null2,
			  Datum seq2)
{
	if (null1 || null2)
		return null1 && null2;
	return DatumGetInt32(FunctionCall2Coll(runner->seq_cmp,
										   runner->seq_collation,
										   seq1, seq2)) == 0;
}

/* Null-safe equality of the tracked columns of the event and the last one. */
static bool
cdc_tracked_equal(CdcRunner *runner, Datum *values, bool *nulls)
{
	int			j;

	for (j = 0; j < runner->ncols; j++)
	{
		if (!runner->spec->tracked[j])
			continue;
		if (nulls[j] || runner->last_nulls[j])
		{
			if (nulls[j] != runner->last_nulls[j])
				return false;
			continue;
		}
		if (runner->col_eq[j] != NULL)
		{
			if (!DatumGetBool(FunctionCall2Coll(runner->col_eq[j],
												runner->col_collation[j],
												values[j],
												runner->last_values[j])))
				return false;
		}
		else if (strcmp(OidOutputFunctionCall(runner->col_output[j], values[j]),
						OidOutputFunctionCall(runner->col_output[j],
											  runner->last_values[j])) != 0)
			return false;
	}
	return true;
}

/* Queue a row for the target: the key, the last event's values. */
static void
cdc_emit(CdcRunner *runner, bool has_start, Datum start, bool has_end,
		 Datum end)
{
	int			i;

	for (i = 0; i < runner->target_desc->natts; i++)
	{
		int			map = runner->target_map[i];

		runner->out_nulls[i] = false;
		if (map == CDC_MAP_START)
		{
			runner->out_values[i] = start;
			runner->out_nulls[i] = !has_start;
		}
		else if (map == CDC_MAP_END)
		{
			runner->out_values[i] = end;
			runner->out_nulls[i] = !has_end;
		}
		else if (map >= CDC_MAP_COLUMN)
		{
			runner->out_values[i] = runner->last_values[map - CDC_MAP_COLUMN];
			runner->out_nulls[i] = runner->last_nulls[map - CDC_MAP_COLUMN];
		}
		else if (map >= 0)
			runner->out_values[i] = runner->key[map];
		else
		{
			runner->out_values[i] = (Datum) 0;
			runner->out_nulls[i] = true;
		}
	}
	tuplestore_putvalues(runner->output, runner->target_desc,
						 runner->out_values, runner->out_nulls);
}

/* The key is complete: emit what is left open. */
static void
cdc_finish_key(CdcRunner *runner)
{
	if (!runner->has_key || !runner->has_last)
		return;
	if (runner->spec->scd_type == 1)
	{
		if (!runner->last_del)
			cdc_emit(runner, false, (Datum) 0, false, (Datum) 0);
	}
	else if (runner->open &&
			 !(runner->has_current && runner->current_untouched))
		cdc_emit(runner, true, runner->open_start, false, (Datum) 0);
	if (runner->key_has_history)
		runner->keys_recomputed++;
}

/*
 * A new key begins: finish the previous one and copy the key into its
 * context, which lives as long as the key is derived.
 */
static void
cdc_start_key(CdcRunner *runner, Datum *key)
{
	MemoryContext old;
	int			i;

	cdc_finish_key(runner);
	MemoryContextReset(runner->key_context);
	old = MemoryContextSwitchTo(runner->key_context);
	for (i = 0; i < runner->nkeys; i++)
		runner->key[i] = datumCopy(key[i], runner->key_byval[i],
								   runner->key_len[i]);
	MemoryContextSwitchTo(old);
	runner->has_key = true;
	runner->key_has_history = false;
	runner->has_from = false;
	runner->has_current = false;
	runner->has_last = false;
	runner->open = false;
	runner->keys++;
}

/* Is this the key being derived (by the keys' btree orderings)? */
static bool
cdc_same_key(CdcRunner *runner, Datum *key)
{
	int			i;

	if (!runner->has_key)
		return false;
	for (i = 0; i < runner->nkeys; i++)
	{
		if (DatumGetInt32(FunctionCall2Coll(runner->key_cmp[i],
											runner->key_collation[i],
											key[i], runner->key[i])) != 0)
			return false;
	}
	return true;
}

/* Note the ctid of a target row the derived rows replace. */
static void
cdc_remember_replaced(CdcRunner *runner, Datum ctid)
{
	if (runner->nreplaced == runner->replaced_size)
	{
		runner->replaced_size *= 2;
		runner->replaced = repalloc(runner->replaced,
									sizeof(ItemPointerData) * runner->replaced_size);
	}
	ItemPointerCopy((ItemPointer) DatumGetPointer(ctid),
					&runner->replaced[runner->nreplaced++]);
}

/* The current version's run goes on: it is replaced, not closed in place. */
static void
cdc_current_touched(CdcRunner *runner)
{
	if (runner->current_untouched)
	{
		cdc_remember_replaced(runner, PointerGetDatum(&runner->current_ctid));
		runner->current_untouched = false;
	}
}

/* Close the untouched current version in place at end. */
static void
cdc_close_current(CdcRunner *runner, Datum end)
{
	MemoryContext old;

	if (runner->nclosed == runner->closed_size)
	{
		runner->closed_size *= 2;
		runner->closed = repalloc(runner->closed,
								  sizeof(ItemPointerData) * runner->closed_size);
		runner->closed_at = repalloc(runner->closed_at,
									 sizeof(Datum) * runner->closed_size);
	}
	runner->closed[runner->nclosed] = runner->current_ctid;
	old = MemoryContextSwitchTo(runner->closed_context);
	runner->closed_at[runner->nclosed] = datumCopy(end, runner->seq_byval,
												   runner->seq_len);
	MemoryContextSwitchTo(old);
	runner->nclosed++;
}

/*
 * Apply one event (the first of its key and sequence value, the one that
 * counts) to the key's state; values/nulls are its kept columns.
 */
static void
cdc_event(CdcRunner *runner, bool del, bool seq_null, Datum seq,
		  Datum *values, bool *nulls)
{
	MemoryContext context;
	MemoryContext old;
	bool		continues_run = false;
	int			j;

	if (runner->spec->ignore_null_updates && !del && runner->has_last &&
		!runner->last_del)
	{
		for (j = 0; j < runner->ncols; j++)
		{
			if (nulls[j] && !runner->last_nulls[j])
			{
				values[j] = runner->last_values[j];
				nulls[j] = false;
			}
		}
	}

	if (runner->spec->scd_type == 2)
	{
		if (!del && runner->open)
			continues_run = cdc_tracked_equal(runner, values, nulls);
		if (runner->open && !continues_run)
		{
			if (runner->has_current && runner->current_untouched)
				cdc_close_current(runner, seq);
			else if (!runner->has_from ||
					 DatumGetInt32(FunctionCall2Coll(runner->seq_cmp,
													 runner->seq_collation,
													 seq, runner->from)) >= 0)
				cdc_emit(runner, true, runner->open_start, true, seq);
			runner->open = false;
			runner->has_current = false;
		}
		else if (runner->open && runner->has_current)
			cdc_current_touched(runner);
		if (!del && !runner->open)
		{
			MemoryContextReset(runner->open_context);
			old = MemoryContextSwitchTo(runner->open_context);
			runner->open_start = datumCopy(seq, runner->seq_byval,
										   runner->seq_len);
			MemoryContextSwitchTo(old);
			runner->open = true;
		}
	}

	/* this event becomes the last one, copied into the other context */
	runner->event_slot = 1 - runner->event_slot;
	context = runner->event_context[runner->event_slot];
	MemoryContextReset(context);
	old = MemoryContextSwitchTo(context);
	for (j = 0; j < runner->ncols; j++)
	{
		runner->last_nulls[j] = nulls[j];
		runner->last_values[j] = nulls[j] ? (Datum) 0 :
			datumCopy(values[j], runner->col_byval[j], runner->col_len[j]);
	}
	runner->last_seq_null = seq_null;
	runner->last_seq = seq_null ? (Datum) 0 :
		datumCopy(seq, runner->seq_byval, runner->seq_len);
	MemoryContextSwitchTo(old);
	runner->last_del = del;
	runner->has_last = true;
}

/*
 * Comparison support for the keys, the kept columns and the sequence, from
 * the events query's result descriptor: keys and sequence are compared by
 * their btree ordering, tracked columns by "=", or by their text form when
 * their type has no equality operator.
 */
static void
cdc_runner_init_compare(CdcRunner *runner, TupleDesc events)
{
	int			i;
	Form_pg_attribute attr;
	TypeCacheEntry *typentry;

	runner->key_cmp = palloc0(sizeof(FmgrInfo *) * runner->nkeys);
	runner->key_collation = palloc0(sizeof(Oid) * runner->nkeys);
	runner->key_len = palloc0(sizeof(int16) * runner->nkeys);
	runner->key_byval = palloc0(sizeof(bool) * runner->nkeys);
	runner->key = palloc0(sizeof(Datum) * runner->nkeys);
	for (i = 0; i < runner->nkeys; i++)
	{
		attr = TupleDescAttr(events, CDC_EV_KEYS + i);
		typentry = lookup_type_cache(getBaseType(attr->atttypid),
									 TYPECACHE_CMP_PROC_FINFO);
		runner->key_cmp[i] = &typentry->cmp_proc_finfo;
		runner->key_collation[i] = attr->attcollation;
		runner->key_len[i] = attr->attlen;
		runner->key_byval[i] = attr->attbyval;
	}

	runner->col_eq = palloc0(sizeof(FmgrInfo *) * (runner->ncols + 1));
	runner->col_output = palloc0(sizeof(Oid) * (runner->ncols + 1));
	runner->col_collation = palloc0(sizeof(Oid) * (runner->ncols + 1));
	runner->col_len = palloc0(sizeof(int16) * (runner->ncols + 1));
	runner->col_byval = palloc0(sizeof(bool) * (runner->ncols + 1));
	runner->last_values = palloc0(sizeof(Datum) * (runner->ncols + 1));
	runner->last_nulls = palloc0(sizeof(bool) * (runner->ncols + 1));
	for (i = 0; i < runner->ncols; i++)
	{
		bool		isvarlena;

		attr = TupleDescAttr(events, CDC_EV_KEYS + runner->nkeys + i);
		typentry = lookup_type_cache(getBaseType(attr->atttypid),
									 TYPECACHE_EQ_OPR_FINFO);
		runner->col_eq[i] = OidIsValid(typentry->eq_opr_finfo.fn_oid) ?
			&typentry->eq_opr_finfo : NULL;
		getTypeOutputInfo(attr->atttypid, &runner->col_output[i], &isvarlena);
		runner->col_collation[i] = attr->attcollation;
		runner->col_len[i] = attr->attlen;
		runner->col_byval[i] = attr->attbyval;
	}

	attr = TupleDescAttr(events, CDC_EV_KEYS + runner->nkeys + runner->ncols);
	typentry = lookup_type_cache(runner->spec->seq_basetype,
								 TYPECACHE_CMP_PROC_FINFO);
	runner->seq_cmp = &typentry->cmp_proc_finfo;
	runner->seq_collation = runner->spec->seq_collation;
	runner->seq_len = attr->attlen;
	runner->seq_byval = attr->attbyval;
}

/*
 * The map of the target's columns, by name, to what the runner derives;
 * a column whose type is not the one derived stops the walk at once (the
 * apply reports it).
 */
static void
cdc_runner_map_target(CdcRunner *runner, TupleDesc events, Relation target)
{
	CdcSpec    *spec = runner->spec;
	int			i;

	runner->target_desc = CreateTupleDescCopy(RelationGetDescr(target));
	runner->target_map = palloc(sizeof(int) * runner->target_desc->natts);
	for (i = 0; i < runner->target_desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(runner->target_desc, i);
		const char *name = NameStr(attr->attname);
		int			map = CDC_MAP_NONE;
		int			position = -1;
		ListCell   *cell;

		if (attr->attisdropped)
		{
			runner->target_map[i] = CDC_MAP_NONE;
			continue;
		}
		foreach(cell, spec->keys)
			if (strcmp((char *) lfirst(cell), name) == 0)
				map = position = foreach_current_index(cell);
		foreach(cell, spec->columns)
			if (strcmp((char *) lfirst(cell), name) == 0)
			{
				map = CDC_MAP_COLUMN + foreach_current_index(cell);
				position = runner->nkeys + foreach_current_index(cell);
			}
		if (spec->scd_type == 2 && strcmp(name, "__start_at") == 0)
		{
			map = CDC_MAP_START;
			position = runner->nkeys + runner->ncols;
		}
		if (spec->scd_type == 2 && strcmp(name, "__end_at") == 0)
		{
			map = CDC_MAP_END;
			position = runner->nkeys + runner->ncols;
		}
		if (position >= 0 && runner->mismatch == NULL &&
			TupleDescAttr(events, CDC_EV_KEYS + position)->atttypid != attr->atttypid)
		{
			runner->mismatch = pstrdup(name);
			runner->mismatch_type = attr->atttypid;
			runner->mismatch_derived =
				TupleDescAttr(events, CDC_EV_KEYS + position)->atttypid;
			runner->invalid = true; /* stop at once */
		}
		runner->target_map[i] = map;
	}
	runner->out_values = palloc(sizeof(Datum) * runner->target_desc->natts);
	runner->out_nulls = palloc(sizeof(bool) * runner->target_desc->natts);
}

/*
 * Set up the runner from the events query's result descriptor: comparison
 * support, the map of the target's columns, its memory contexts and its
 * output.
 */
static void
cdc_runner_init(CdcRunner *runner, CdcSpec *spec, TupleDesc events,
				Relation target, int64 low)
{
	runner->spec = spec;
	runner->nkeys = list_length(spec->keys);
	runner->ncols = list_length(spec->columns);
	runner->low = low;
	cdc_runner_init_compare(runner, events);
	cdc_runner_map_target(runner, events, target);

	runner->key_context = AllocSetContextCreate(CurrentMemoryContext,
												"auto CDC key",
												ALLOCSET_SMALL_SIZES);
	runner->event_context[0] = AllocSetContextCreate(CurrentMemoryContext,
													 "auto CDC event",
													 ALLOCSET_SMALL_SIZES);
	runner->event_context[1] = AllocSetContextCreate(CurrentMemoryContext,
													 "auto CDC event",
													 ALLOCSET_SMALL_SIZES);
	runner->open_context = AllocSetContextCreate(CurrentMemoryContext,
												 "auto CDC version",
												 ALLOCSET_SMALL_SIZES);
	runner->max_context = AllocSetContextCreate(CurrentMemoryContext,
												"auto CDC sequence",
												ALLOCSET_SMALL_SIZES);
	runner->output = tuplestore_begin_heap(false, false, work_mem);
	runner->replaced_size = 1024;
	runner->replaced = palloc(sizeof(ItemPointerData) * runner->replaced_size);
	runner->closed_size = 1024;
	runner->closed = palloc(sizeof(ItemPointerData) * runner->closed_size);
	runner->closed_at = palloc(sizeof(Datum) * runner->closed_size);
	runner->closed_context = AllocSetContextCreate(CurrentMemoryContext,
												   "auto CDC closed versions",
												   ALLOCSET_DEFAULT_SIZES);
}

/* An event of the batch: count it, and keep the batch's highest sequence. */
static void
cdc_note_new_event(CdcRunner *runner, Datum seq)
{
	MemoryContext old;

	runner->rows_read++;
	if (runner->has_batch_max &&
		DatumGetInt32(FunctionCall2Coll(runner->seq_cmp,
										runner->seq_collation,
										seq, runner->batch_max)) <= 0)
		return;
	MemoryContextReset(runner->max_context);
	old = MemoryContextSwitchTo(runner->max_context);
	runner->batch_max = datumCopy(seq, runner->seq_byval, runner->seq_len);
	MemoryContextSwitchTo(old);
	runner->has_batch_max = true;
}

/* One row of the events query. */
static void
cdc_runner_row(CdcRunner *runner, Datum *row, bool *isnull)
{
	CdcSpec    *spec = runner->spec;
	int			kind = DatumGetInt32(row[CDC_EV_KIND]);
	int64		rid = DatumGetInt64(row[CDC_EV_RID]);
	Datum	   *key = &row[CDC_EV_KEYS];
	Datum	   *values = &row[CDC_EV_KEYS + runner->nkeys];
	bool	   *nulls = &isnull[CDC_EV_KEYS + runner->nkeys];
	int			seq_at = CDC_EV_KEYS + runner->nkeys + runner->ncols;
	bool		seq_null = isnull[seq_at];
	Datum		seq = row[seq_at];
	bool		del = DatumGetBool(row[seq_at + 1]);
	int			from_at = seq_at + 2;
	int			i;

	if (kind == CDC_KIND_INVALID || (kind == CDC_KIND_EVENT && seq_null))
	{
		runner->invalid = true;
		runner->invalid_rid = rid;
		runner->invalid_key = -1;
		for (i = 0; i < runner->nkeys; i++)
		{
			if (isnull[CDC_EV_KEYS + i])
			{
				runner->invalid_key = i;
				break;
			}
		}
		return;
	}

	if (!cdc_same_key(runner, key))
		cdc_start_key(runner, key);
	if (kind == CDC_KIND_CURRENT && spec->scd_type == 2)
	{
		ItemPointerCopy((ItemPointer) DatumGetPointer(row[CDC_EV_CTID]),
						&runner->current_ctid);
		runner->has_current = true;
		runner->current_untouched = true;
	}
	else if (kind == CDC_KIND_CURRENT || kind == CDC_KIND_REPLACED)
		cdc_remember_replaced(runner, row[CDC_EV_CTID]);
	if (!runner->has_from && !isnull[from_at])
	{
		MemoryContext old = MemoryContextSwitchTo(runner->key_context);

		runner->from = datumCopy(row[from_at], runner->seq_byval,
								 runner->seq_len);
		runner->has_from = true;
		MemoryContextSwitchTo(old);
	}
	if (kind == CDC_KIND_REPLACED)
		return;

	if (kind == CDC_KIND_EVENT && rid > runner->low)
		cdc_note_new_event(runner, seq);
	else if (kind == CDC_KIND_EVENT)
		runner->key_has_history = true;

	/* one event per key and sequence value: the first in this order */
	if (runner->has_last &&
		cdc_seq_equal(runner, seq_null, seq, runner->last_seq_null,
					  runner->last_seq))
		return;
	cdc_event(runner, del, seq_null, seq, values, nulls);
}

/*
 * The events query's rows go straight to the runner, without being copied
 * into an SPI tuple table first.
 */
typedef struct CdcReceiver
{
	DestReceiver pub;
	CdcRunner  *runner;
	CdcSpec    *spec;
	Relation	target;
	int64		low;
	MemoryContext context;		/* for the runner: outlives the query */
} CdcReceiver;

/* The query starts: set the runner up from its result descriptor. */
static void
cdc_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	CdcReceiver *receiver = (CdcReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(receiver->context);

	cdc_runner_init(receiver->runner, receiver->spec, typeinfo,
					receiver->target, receiver->low);
	MemoryContextSwitchTo(old);
}

/* One row of the query to the runner; an invalid event stops the query. */
static bool
cdc_receiver_slot(TupleTableSlot *slot, DestReceiver *self)
{
	CdcReceiver *receiver = (CdcReceiver *) self;

	slot_getallattrs(slot);
	cdc_runner_row(receiver->runner, slot->tts_values, slot->tts_isnull);
	return !receiver->runner->invalid;	/* false stops the query */
}

static void
cdc_receiver_shutdown(DestReceiver *self)
{
}

static void
cdc_receiver_destroy(DestReceiver *self)
{
}

/*
 * CdcRunnerReceiver: see cdc_internal.h.  The runner is set up in the
 * memory context current now, which outlives the query.
 */
DestReceiver *
CdcRunnerReceiver(CdcRunner *runner, CdcSpec *spec, Relation target,
				  int64 low)
{
	CdcReceiver *receiver = palloc0(sizeof(CdcReceiver));

	memset(runner, 0, sizeof(CdcRunner));
	receiver->pub.receiveSlot = cdc_receiver_slot;
	receiver->pub.rStartup = cdc_receiver_startup;
	receiver->pub.rShutdown = cdc_receiver_shutdown;
	receiver->pub.rDestroy = cdc_receiver_destroy;
	receiver->pub.mydest = DestNone;
	receiver->runner = runner;
	receiver->spec = spec;
	receiver->target = target;
	receiver->low = low;
	receiver->context = CurrentMemoryContext;
	return (DestReceiver *) receiver;
}

/* CdcRunnerFinish: see cdc_internal.h. */
void
CdcRunnerFinish(CdcRunner *runner)
{
	cdc_finish_key(runner);
}

/*
 * CdcRunnerFree: see cdc_internal.h.  A runner whose query never started
 * (no description) has nothing to free.
 */
void
CdcRunnerFree(CdcRunner *runner)
{
	if (runner->spec == NULL)
		return;
	tuplestore_end(runner->output);
	MemoryContextDelete(runner->key_context);
	MemoryContextDelete(runner->event_context[0]);
	MemoryContextDelete(runner->event_context[1]);
	MemoryContextDelete(runner->open_context);
	MemoryContextDelete(runner->max_context);
	MemoryContextDelete(runner->closed_context);
	runner->spec = NULL;
}
