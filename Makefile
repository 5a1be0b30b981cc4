# medallion: PGXS build.  The install script of the current version,
# sql/medallion--$(EXTVERSION).sql, is assembled from sql/parts/*.sql (one
# part per concept) so that each part can be read and reviewed on its own.
# Released versions are frozen: their install scripts are committed as they
# shipped (sql/medallion--0.1.0.sql), and every later version ships an update
# script (sql/medallion--0.1.0--0.2.0.sql) that test/t/120_upgrade.pl proves
# equal to a fresh install.
EXTENSION  = medallion
EXTVERSION = 0.2.0
MODULE_big = medallion
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

PG_CPPFLAGS = -Isrc -DMEDALLION_VERSION='"$(EXTVERSION)"' $(shell pkg-config --cflags libcurl expat zlib)
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = $(shell pkg-config --libs libcurl expat zlib) -lcrypto

REGRESS_FILES = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(REGRESS_FILES))
REGRESS_OPTS = --inputdir=test --temp-config=test/medallion.conf

# Isolation specs (test/specs/*.spec): concurrency promises tested by the
# isolation tester, which sees a session block on a lock.  Their expected
# outputs live in the top-level expected/ beside the pg_regress ones; PGXS
# runs pg_isolation_regress with --outputdir=output_iso, where PostgreSQL 15
# looks for expected/ first, so output_iso/expected links to ../expected.
ISOLATION_FILES = $(sort $(wildcard test/specs/*.spec))
ISOLATION = $(patsubst test/specs/%.spec,%,$(ISOLATION_FILES))
ISOLATION_OPTS = --inputdir=test --temp-config=test/medallion.conf \
	--load-extension=$(EXTENSION)
REGRESS_PREP = output_iso/expected

EXTRA_CLEAN = tmp_check tmp_check_iso output_iso results log regression.diffs regression.out sql/$(EXTENSION)--$(EXTVERSION).sql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object is rebuilt when any header changes (PGXS tracks no header
# dependencies by itself)
$(OBJS): $(wildcard src/*.h)
# the library's version (src/version.c) is EXTVERSION
src/version.o: Makefile

sql/$(EXTENSION)--$(EXTVERSION).sql: $(sort $(wildcard sql/parts/*.sql))
	cat $^ > $@

output_iso/expected:
	mkdir -p output_iso
	ln -sfn ../expected $@

.PHONY: test demo bench soak
test:
	bash test/run-all.sh
demo:
	bash scripts/demo.sh
bench:
	bash bench/run.sh
# 30 minutes of continuous mode, a file every second (SOAK_MINUTES to change);
# uses the installed build
soak:
	bash test/soak/soak.sh
