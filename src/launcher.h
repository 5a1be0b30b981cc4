/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher background worker of continuous mode.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_LAUNCHER_H
#define MEDALLION_LAUNCHER_H

/* Register the launcher; called from _PG_init while preloading. */
extern void LauncherRegister(void);

/*
 * Ask the launcher to look at the pipelines again soon (after the current
 * transaction commits); does nothing when the launcher is not running.
 */
extern void LauncherWakeUp(void);

#endif							/* MEDALLION_LAUNCHER_H */
