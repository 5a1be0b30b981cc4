/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher of continuous mode.
 *
 * Continuous mode (background workers that run pipelines by themselves)
 * is not implemented yet: LauncherRegister registers nothing, and
 * continuous pipelines run only when run_pipeline is called.  The README
 * says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "launcher.h"

void
LauncherRegister(void)
{
}

void
LauncherWakeUp(void)
{
}
