# tuimail — everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: all demo test check bench screenshots fuzz dovecot browser cyrus clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip >/dev/null 2>&1 || true
	$(PIP) install -q -e '.[demo,serve,test,dev]'
	touch $@

# Dovecot is the real server every integration test talks to; its submission service (the SMTP
# server the sending tests relay through) is the dovecot-submissiond package.
dovecot:
	@{ command -v dovecot >/dev/null 2>&1 && test -x /usr/lib/dovecot/submission; } || { \
	  echo "installing dovecot (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd dovecot-pop3d \
	    dovecot-submissiond >/dev/null; }

# Chromium and its driver: tests/integration/test_serve_browser.py drives `tuimail serve` in a real browser.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Cyrus IMAP 3.6 is the second real server (JMAP, and IMAP again): installed without an MTA and run
# rootless as nobody (DESIGN §3b). Its three packages are unpacked with dpkg -x into CYRUS_ROOT
# (outside the repo, shared by every checkout; tests/support/cyrus.py reads TUIMAIL_CYRUS_ROOT,
# default the same path); the shared libraries their Depends name, and sasl2-bin (saslpasswd2), are
# installed with apt-get. Quick when done: a stamp, saslpasswd2 on PATH and no missing library.
CYRUS_ROOT ?= /opt/tuimail-cyrus
CYRUS_LIBDIR = $(CYRUS_ROOT)/usr/lib/x86_64-linux-gnu
cyrus:
	@{ test -f $(CYRUS_ROOT)/.installed && command -v saslpasswd2 >/dev/null 2>&1 && \
	   ! LD_LIBRARY_PATH=$(CYRUS_LIBDIR) ldd $(CYRUS_ROOT)/usr/lib/cyrus/bin/httpd | grep -q 'not found'; } || { \
	  set -e; echo "installing Cyrus IMAP into $(CYRUS_ROOT) (apt-get download, dpkg -x)"; \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  apt-get download -qq -o APT::Sandbox::User=root cyrus-common cyrus-imapd cyrus-caldav >/dev/null 2>&1 || { \
	    apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root cyrus-common cyrus-imapd cyrus-caldav >/dev/null; }; \
	  libs=$$(for deb in ./*.deb; do dpkg-deb -f "$$deb" Depends; done | tr ',|' '\n\n' | \
	          sed 's/([^)]*)//g; s/:any//; s/[[:space:]]//g' | grep '^lib' | sort -u); \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$libs sasl2-bin >/dev/null; \
	  rm -rf $(CYRUS_ROOT).new; mkdir -p $(CYRUS_ROOT).new; \
	  for deb in ./*.deb; do dpkg -x "$$deb" $(CYRUS_ROOT).new; done; \
	  missing=$$(LD_LIBRARY_PATH=$(CYRUS_ROOT).new/usr/lib/x86_64-linux-gnu ldd $(CYRUS_ROOT).new/usr/lib/cyrus/bin/* 2>/dev/null | \
	             grep 'not found' | sort -u); \
	  if [ -n "$$missing" ]; then echo "cyrus: libraries still missing: $$missing" >&2; exit 1; fi; \
	  ls ./*.deb > $(CYRUS_ROOT).new/.installed; \
	  rm -rf $(CYRUS_ROOT); mv $(CYRUS_ROOT).new $(CYRUS_ROOT); }

# An editable install writes no bytecode (nor does Python under PYTHONDONTWRITEBYTECODE): without
# it every start compiles tuimail's modules again, ~0.1 s.
demo: $(STAMP)
	@$(PY) -m compileall -q tuimail >/dev/null
	$(PY) -m tuimail --demo

test: $(STAMP) dovecot browser cyrus
	$(PY) -m pytest -q -p no:cacheprovider tests

# Lint, types and layers, all configured in pyproject.toml; every check runs, any finding fails.
# mypy covers the whole package (tool.mypy files = ["tuimail"]).
check: $(STAMP)
	@rc=0; \
	echo "== ruff"; $(VENV)/bin/ruff check . || rc=1; \
	echo "== mypy"; $(VENV)/bin/mypy || rc=1; \
	echo "== import contracts"; $(VENV)/bin/lint-imports || rc=1; \
	exit $$rc

# Side by side with neomutt and aerc (installed with apt-get if missing); writes tests/bench/RESULTS.md.
# make bench BENCH_ARGS=--quick  (5000 messages, 1 round) | BENCH_ARGS="--sizes 20000 --rounds 5"
# | BENCH_ARGS="--only pop3,search,jmap" (the sections after IMAP: tests/bench/sections.py)
bench: $(STAMP) dovecot
	$(PY) -m tests.bench.run $(BENCH_ARGS)

screenshots: $(STAMP)
	$(PY) -m tuimail.demo.screenshots screenshots

# The long sweep (~25 min on 2 cores): every interruption point of every sync scenario (and more
# SIGKILL points), 1000 random two-client examples, 10x the fuzz examples. `make test` samples them.
fuzz: $(STAMP) dovecot
	TUIMAIL_FUZZ=1 $(PY) -m pytest -q -p no:cacheprovider tests -k "fuzz or scenario or property"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
