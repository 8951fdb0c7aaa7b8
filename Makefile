# Makefile
#    PGXS build of the stocktech_sync extension, plus the project's entry
#    points: `make demo` (the main job) and `make test` (every suite).
#
# `make`, `make install` and `make installcheck` are the usual PGXS targets;
# installcheck runs the pg_regress and isolation suites against a running
# server chosen by the usual PG* environment variables.

EXTENSION = stocktech_sync
MODULE_big = stocktech_sync

CORE_SOURCES = $(wildcard src/core/*.cpp)
PG_SOURCES = $(wildcard src/pg/*.cpp) $(wildcard bgworkers/*.cpp)
OBJS = $(CORE_SOURCES:.cpp=.o) $(PG_SOURCES:.cpp=.o)

DATA = $(wildcard sql/stocktech_sync--*.sql)

REGRESS = $(shell sed -n 's/^test: *//p' test/regress_schedule)
REGRESS_OPTS = --inputdir=. --outputdir=build/regress --load-extension=stocktech_sync \
	--dbname=stocktech_regress
ISOLATION = $(basename $(notdir $(wildcard specs/*.spec)))
ISOLATION_OPTS = --inputdir=. --outputdir=build/isolation --load-extension=stocktech_sync \
	--dbname=stocktech_isolation

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src '-DPGDLLEXPORT=__attribute__((visibility("default")))'
PG_CXXFLAGS = -std=c++17 -fvisibility=hidden -Wno-register -Wno-missing-field-initializers
SHLIB_LINK = -lstdc++ -lcurl

# The module is C++; the JIT's bitcode inlining brings nothing for it and
# would need clang at build time.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies of C++ files: rebuild every object when
# any header changes, so no stale object survives an interface change.
$(OBJS): $(wildcard src/*/*.hpp bgworkers/*.hpp)

# PGXS creates the output directories of pg_regress only for its own layout.
installcheck: | build/regress build/isolation
build/regress build/isolation:
	mkdir -p $@

# The server reads the fixtures of the csv_import test as its own OS user,
# which may not be able to read this tree (under /root, for example), so
# installcheck first copies them to a world-readable directory.
CSV_FIXTURE_DIR = /tmp/stocktech_sync_csv
installcheck: csv-fixtures
.PHONY: csv-fixtures
csv-fixtures:
	install -d -m 0755 $(CSV_FIXTURE_DIR)
	install -m 0644 test/data/csv/*.csv $(CSV_FIXTURE_DIR)/

.PHONY: demo test unit
demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

unit:
	cmake -S . -B build/core -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build/core -j2
	cd build/core && ctest --output-on-failure
