/*
 * medallion update script from 0.1.0 to 0.2.0.
 *
 * Every change that 0.2.0 makes to the install script (sql/parts/) is made
 * here too, in the same order, so that ALTER EXTENSION medallion UPDATE gives
 * the same objects as CREATE EXTENSION medallion VERSION '0.2.0'; the test
 * test/t/120_upgrade.pl compares the two.  Pipelines, ledgers, watermarks and
 * events are kept.
 */
\echo Use "ALTER EXTENSION medallion UPDATE TO '0.2.0'" to load this file. \quit
