# Makefile for the kalam extension (PGXS)

MODULE_big = kalam
OBJS = \
	src/kalam.o \
	src/stats.o \
	src/debug_hooks.o \
	src/codec/change.o \
	src/codec/command.o \
	src/codec/ddl_record.o \
	src/codec/entry.o \
	src/codec/frame.o \
	src/codec/group.o \
	src/codec/key.o \
	src/codec/row.o \
	src/codec/served.o \
	src/codec/snapshot.o \
	src/codec/txn.o \
	src/worker/channel.o \
	src/worker/kalam_worker.o \
	src/worker/reader.o \
	src/cluster/apply_metrics.o \
	src/cluster/forward.o \
	src/cluster/fence.o \
	src/cluster/fsm.o \
	src/cluster/handshake.o \
	src/cluster/meta_watermark.o \
	src/cluster/node.o \
	src/cluster/peers.o \
	src/cluster/proposal.o \
	src/cluster/snapshot.o \
	src/cluster/status.o \
	src/cluster/transport.o \
	src/kv/keys.o \
	src/kv/row.o \
	src/kv/apply.o \
	src/kv/bulk_apply.o \
	src/kv/txn_apply.o \
	src/kv/rocks.o \
	src/kv/prefix_scan.o \
	src/kv/read_service.o \
	src/kv/transfer.o \
	src/kv/parked.o \
	src/txn/commit.o \
	src/txn/recovery.o \
	src/fdw/kalam_fdw.o \
	src/fdw/option.o \
	src/fdw/pushdown.o \
	src/fdw/scan.o \
	src/fdw/modify.o \
	src/fdw/writeset.o \
	src/fdw/read_level.o \
	src/fdw/ddl.o \
	src/fdw/digest.o \
	src/jobs/jobs_worker.o \
	src/jobs/ddl_replay.o \
	src/live/registry.o \
	src/live/channels.o \
	src/live/payload.o \
	src/live/notifier.o \
	src/live/changes.o

EXTENSION = kalam
DATA = kalam--1.0.sql
PGFILEDESC = "kalam - replicated per-user tables in RocksDB"

# unused parameters are the norm in callbacks of fixed signature
PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK = -lrocksdb -lraft -luv -lcrypto

REGRESS = kalam_ddl kalam_dml kalam_keys kalam_users kalam_txn kalam_stream kalam_groups kalam_read kalam_debug kalam_live kalam_multigroup kalam_stat_apply kalam_bulk kalam_split kalam_served
REGRESS_OPTS = --port=25432 --temp-instance=./tmp_check_regress --temp-config=$(srcdir)/test/kalam.conf
ISOLATION = kalam_conflict kalam_multigroup_conflict kalam_mixed
ISOLATION_OPTS = --port=25432 --temp-instance=./tmp_check_isolation --temp-config=$(srcdir)/test/kalam.conf
TAP_TESTS = 1

EXTRA_CLEAN = tmp_check_regress tmp_check_isolation output_iso $(OBJS:.o=.d)

# no LLVM bitcode: a fresh machine has no clang
override with_llvm = no
# rebuild what includes a changed header: a .d file beside each object
# (PGXS's autodepend names them by basename only, and src/codec/snapshot.c
# and src/cluster/snapshot.c, src/codec/row.c and src/kv/row.c would
# share one: a header change left one of each pair stale)
override CPPFLAGS += -MMD -MP
# one database for regression and isolation tests: kalam.database in
# test/kalam.conf names it
override ISOLATION_TESTDB = contrib_regression

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
-include $(OBJS:.o=.d)

# the fuzz harnesses of src/codec (gcc + ASan), FUZZ_SECONDS each
fuzz:
	PG_CONFIG=$(PG_CONFIG) bash $(srcdir)/test/fuzz/run.sh
.PHONY: fuzz
