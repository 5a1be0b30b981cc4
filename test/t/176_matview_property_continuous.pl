# The property test of gold materialized views (t/171), its rounds run by a
# continuous pipeline's worker instead of run_pipeline: the worker keeps the
# views' delta statements across updates (statement_cache.c, their ranges
# parameters) and updates whenever it sees changes, also in the middle of a
# round, so the views are kept through more and other shapes of deltas;
# after each round, once an update that began after it has ended, every
# view equals its query.  Takes MEDALLION_PROPERTY_SEED and
# MEDALLION_PROPERTY_ROUNDS as t/171 does.
use strict;
use warnings;
use FindBin;
# loaded here, at compile time, for their INIT blocks
use PostgreSQL::Test::Cluster ();
use PostgreSQL::Test::Utils ();

$ENV{MEDALLION_PROPERTY_CONTINUOUS} = 1;
do "$FindBin::Bin/171_matview_property.pl";
die $@ if $@;
