# nubo top-level build.
#
#   make            debug build (AddressSanitizer + UndefinedBehaviorSanitizer), the one tests use
#   make MODE=release   optimised build (-O2), the one `make run` uses
#   make run        a whole cloud on this machine (deploy/run.sh)
#   make test       package check, build, format/lint check, unit + integration tests
#   make bench      every benchmark under tests/bench/, release build
#   make format     rewrite sources with clang-format
#   make lint       cppcheck over our own sources
#
# Each daemon folder builds a static library of its modules plus a thin main.c (STYLE.md).

MODE ?= debug
B := build/$(MODE)

# What every daemon links. libvirt (compute agent), librados and libxml-2.0 (image store) go into
# the link of those programs only, through the variables below. Debian's librados-dev ships no
# pkg-config file, hence the fallback.
PKGS := libmicrohttpd jansson libpq libcurl openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
VIRT_CFLAGS := $(shell pkg-config --cflags libvirt 2>/dev/null)
VIRT_LIBS := $(shell pkg-config --libs libvirt 2>/dev/null)
XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0 2>/dev/null)
XML_LIBS := $(shell pkg-config --libs libxml-2.0 2>/dev/null)
RADOS_LIBS := $(shell pkg-config --libs librados 2>/dev/null || echo -lrados)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(MODE),release)
  OPT := -O2 -g
else
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif

CC ?= cc
# V=1 shows every command; by default one short line per step.
ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
endif
CFLAGS := -std=c17 -D_GNU_SOURCE $(WARN) $(OPT) -pthread -Icommon/include -iquote image-store \
    -iquote billing $(PKG_CFLAGS) -MMD -MP
# -iquote: a daemon header named like a system one (scheduler/sched.h) must not hide it. The
# gateway uses the image store's library and billing's (an invoice as CSV), hence their headers.
TEST_CFLAGS := -iquote api-gateway -iquote scheduler -iquote compute-agent -iquote image-store \
    -iquote billing -iquote netctl -iquote tests/lib
LDFLAGS := $(OPT) -pthread
LDLIBS := $(PKG_LIBS) -lm

# --- common ---------------------------------------------------------------------------------------
COMMON_SRC := $(wildcard common/src/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/obj/%.o)
COMMON_LIB := $(B)/libnubo-common.a

# --- daemons: folder, library, program ---------------------------------------------------------
GW_SRC := $(filter-out api-gateway/main.c,$(wildcard api-gateway/*.c))
GW_OBJ := $(GW_SRC:%.c=$(B)/obj/%.o)
GW_LIB := $(B)/libnubo-gateway.a
GW_BIN := $(B)/bin/nubo-gateway

SCHED_SRC := $(filter-out scheduler/main.c,$(wildcard scheduler/*.c))
SCHED_OBJ := $(SCHED_SRC:%.c=$(B)/obj/%.o)
SCHED_LIB := $(B)/libnubo-scheduler.a
SCHED_BIN := $(B)/bin/nubo-scheduler

AGENT_SRC := $(filter-out compute-agent/main.c,$(wildcard compute-agent/*.c))
AGENT_OBJ := $(AGENT_SRC:%.c=$(B)/obj/%.o)
AGENT_LIB := $(B)/libnubo-agent.a
AGENT_BIN := $(B)/bin/nubo-agent

# The image store: its library (backends, format parsers) is linked by nubo-imaged and by the
# gateway, which streams uploads and downloads through it.
IMG_SRC := $(filter-out image-store/main.c,$(wildcard image-store/*.c))
IMG_OBJ := $(IMG_SRC:%.c=$(B)/obj/%.o)
IMG_LIB := $(B)/libnubo-image.a
IMAGED_BIN := $(B)/bin/nubo-imaged

BILLING_SRC := $(filter-out billing/main.c,$(wildcard billing/*.c))
BILLING_OBJ := $(BILLING_SRC:%.c=$(B)/obj/%.o)
BILLING_LIB := $(B)/libnubo-billing.a
BILLING_BIN := $(B)/bin/nubo-billing

# Tenant networks: the flow compiler, Open vSwitch driver and VPN gateways (libnubo-netctl.a),
# and nubo-netctl, the per-host daemon that applies them.
NETCTL_SRC := $(filter-out netctl/main.c,$(wildcard netctl/*.c))
NETCTL_OBJ := $(NETCTL_SRC:%.c=$(B)/obj/%.o)
NETCTL_LIB := $(B)/libnubo-netctl.a
NETCTL_BIN := $(B)/bin/nubo-netctl

BINS := $(GW_BIN) $(if $(wildcard scheduler/main.c),$(SCHED_BIN)) $(if $(wildcard compute-agent/main.c),$(AGENT_BIN)) $(if $(wildcard image-store/main.c),$(IMAGED_BIN)) $(if $(wildcard billing/main.c),$(BILLING_BIN)) $(if $(wildcard netctl/main.c),$(NETCTL_BIN))
DAEMON_LIBS := $(GW_LIB) $(SCHED_LIB) $(AGENT_LIB) $(IMG_LIB) $(BILLING_LIB) $(NETCTL_LIB)

# --- tests ----------------------------------------------------------------------------------------
TESTLIB_SRC := $(wildcard tests/lib/*.c)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(B)/obj/%.o)
TESTLIB := $(B)/libnubo-testlib.a
TEST_SRC := $(wildcard tests/unit/test_*.c tests/integration/test_*.c)
TEST_BINS := $(patsubst %.c,$(B)/tests/%,$(notdir $(TEST_SRC)))
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(B)/bench/%,$(BENCH_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))

OUR_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find common api-gateway tests -name '*.[ch]')

.PHONY: all bins deps run test test-only bench format format-check lint clean fuzz sdk
all: $(BINS) sdk
bins: $(BINS)

# The C SDK and the nubo CLI build with their own Makefile (their ABI is public and does not
# depend on common/): build/sdk/libnubo.so, build/sdk/nubo.
sdk:
	@$(MAKE) --no-print-directory -C sdk/c

deps:
	@deploy/install-deps.sh

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Tests, benchmarks and fuzzers see the daemons' private headers and the test support library.
$(B)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(COMMON_LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(GW_LIB): $(GW_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(SCHED_LIB): $(SCHED_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(AGENT_LIB): $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BILLING_LIB): $(BILLING_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(NETCTL_LIB): $(NETCTL_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(IMG_LIB): $(IMG_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# The image store parses OVF with libxml2.
$(B)/obj/image-store/%.o: image-store/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(XML_CFLAGS) -c $< -o $@

# The agent alone links libvirt (and its private headers see libvirt's).
$(B)/obj/compute-agent/%.o: compute-agent/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(VIRT_CFLAGS) $(XML_CFLAGS) -c $< -o $@

$(TESTLIB): $(TESTLIB_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(GW_BIN): $(B)/obj/api-gateway/main.o $(GW_LIB) $(IMG_LIB) $(BILLING_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(XML_LIBS) $(RADOS_LIBS) $(LDLIBS)

$(IMAGED_BIN): $(B)/obj/image-store/main.o $(IMG_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(XML_LIBS) $(RADOS_LIBS) $(LDLIBS)

$(SCHED_BIN): $(B)/obj/scheduler/main.o $(SCHED_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BILLING_BIN): $(B)/obj/billing/main.o $(BILLING_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(NETCTL_BIN): $(B)/obj/netctl/main.o $(NETCTL_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The agent checks base images with the image store's format parsers (libnubo-image.a).
$(AGENT_BIN): $(B)/obj/compute-agent/main.o $(AGENT_LIB) $(IMG_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VIRT_LIBS) $(XML_LIBS) $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(TESTLIB) $(DAEMON_LIBS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VIRT_LIBS) $(XML_LIBS) $(RADOS_LIBS) $(LDLIBS) -lcmocka

$(B)/tests/%: $(B)/obj/tests/integration/%.o $(TESTLIB) $(DAEMON_LIBS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VIRT_LIBS) $(XML_LIBS) $(RADOS_LIBS) $(LDLIBS) -lcmocka

$(B)/bench/%: $(B)/obj/tests/bench/%.o $(TESTLIB) $(DAEMON_LIBS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VIRT_LIBS) $(XML_LIBS) $(RADOS_LIBS) $(LDLIBS)

# Fuzz targets build with clang's libFuzzer when clang is there; `make fuzz` runs each briefly.
# The agent's pure parsers (no libvirt) and the image store's format parsers join them, and what
# the gateway uses of billing (the invoice export). Each source is compiled once, instrumented
# for coverage (-fsanitize=fuzzer-no-link), into $(FUZZ_LIB); each target links its own file
# against it with libFuzzer's main, taking only the objects it needs.
FUZZ_AGENT_SRC := compute-agent/meta.c
FUZZ_NETCTL_SRC := netctl/model.c netctl/flows.c
FUZZ_BILLING_SRC := billing/export.c billing/invoice.c
FUZZ_LIB_SRC := $(COMMON_SRC) $(GW_SRC) $(FUZZ_AGENT_SRC) $(IMG_SRC) $(FUZZ_NETCTL_SRC) \
    $(FUZZ_BILLING_SRC)
FUZZ_LIB := $(B)/libnubo-fuzz.a
FUZZ_SAN := address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Icommon/include $(TEST_CFLAGS) $(PKG_CFLAGS) \
    $(XML_CFLAGS) -MMD -MP

$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$<)
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_SRC:%.c=$(B)/fuzzobj/%.o)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# Kept, so that a second make links nothing again.
.SECONDARY: $(FUZZ_SRC:%.c=$(B)/fuzzobj/%.o)

$(B)/fuzz/%: $(B)/fuzzobj/tests/fuzz/%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)clang -g -O1 -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $^ $(PKG_LIBS) $(XML_LIBS) \
	    $(RADOS_LIBS) -lm -pthread

tests-build: $(BINS) $(TEST_BINS) sdk
.PHONY: tests-build

run: deps
	@deploy/run.sh

# The build runs a job per core: the rules order what needs ordering (libraries before links).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) MODE=debug tests-build fuzz-build
	@MODE=debug tests/run.sh

# Runs the suite without the package check (for a developer iterating).
test-only: tests-build
	@MODE=$(MODE) tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory MODE=release bins $(patsubst tests/bench/%.c,build/release/bench/%,$(BENCH_SRC))
	@tests/bench/run.sh

fuzz-build: $(FUZZ_BINS)
.PHONY: fuzz-build

# New inputs go to a scratch corpus under build/; the seeds in tests/fuzz/corpus stay as committed.
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); echo "fuzz $$n"; mkdir -p $(B)/corpus/$$n; \
	    $$f -max_total_time=$${FUZZ_SECONDS:-20} $(B)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; done

format:
	clang-format -i $(OUR_SOURCES)

format-check:
	@clang-format --dry-run --Werror $(OUR_SOURCES)

lint:
	@cppcheck -j$(JOBS) --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem -Icommon/include \
	    common/src api-gateway scheduler compute-agent image-store billing netctl
	@$(MAKE) --no-print-directory -C sdk/c lint

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
