# The two commands: `make demo` and `make test`.  Both work on a fresh machine:
# they create .venv, install Python packages, htmx from npm, and the Debian
# packages the lab needs (Dovecot, Chromium) when missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HTMX := plugin/static/vendor/htmx.min.js
DEBS := dovecot-imapd dovecot-pop3d dovecot-lmtpd chromium

.PHONY: demo test bench install system-packages lint clean translations

demo: install system-packages
	$(PY) -m examples.demo

# Two pytest workers, whole files per worker (a file's fixtures and lab servers stay
# together; each worker starts its own lab). PYTEST_ARGS="-n 0" runs in one process.
PYTEST_WORKERS ?= 2
test: install system-packages
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install system-packages
	$(PY) bench/import_speed.py --messages 10000
	$(PY) bench/idle_poll.py
	$(PY) bench/pop3_import.py --messages 10000
	$(PY) bench/scale_out.py --mailboxes 1000 --workers 1,2,3
	$(PY) bench/bulk_send.py --recipients 1000
	$(PY) bench/bulk_send.py --recipients 1000 --paced
	$(PY) bench/webmail_load.py
	$(PY) bench/timeline.py --db postgresql
	$(PY) bench/timeline.py --db sqlite
	$(PY) bench/discovery.py
	$(PY) bench/render.py

install: $(STAMP) $(HTMX)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,postgres]'
	touch $@

# htmx comes from the npm registry at install time; it is never committed.
$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p $(dir $@)
	cp node_modules/htmx.org/dist/htmx.min.js $@

system-packages:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The add-on's texts: refresh the template from the code and add new texts to every
# catalogue (plugin/translations/<locale>/LC_MESSAGES/integrated_email.po); translate
# the empty msgstr lines by hand. Nothing is compiled: the add-on reads the .po files.
POT := plugin/translations/integrated_email.pot
translations: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k ie_gettext -k ie_ngettext:1,2 -k _ -k N_ \
	  --ignore-dirs '.* __pycache__' --no-location --sort-output --omit-header -o $(POT) .
	$(VENV)/bin/pybabel update -D integrated_email -d plugin/translations -i $(POT) \
	  --ignore-obsolete --no-fuzzy-matching --ignore-pot-creation-date

lint: install
	$(VENV)/bin/ruff check plugin examples tests bench

clean:
	rm -rf $(VENV) node_modules plugin/static/vendor examples/host_ats/instance
