# wasm-session: `make demo` and `make test` work on a fresh Debian/Ubuntu machine with
# rustup, Node 20+ and root (or sudo) for apt. See README.md.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CHROMEDRIVER ?= /usr/bin/chromedriver
export GECKODRIVER ?= $(HOME)/.cargo/bin/geckodriver
# The browsers the browser and end-to-end layers run in: any of chromium, firefox, webkit.
BROWSERS ?= chromium,firefox,webkit
export WS_BROWSERS := $(BROWSERS)
# WebKit is WebKitGTK's MiniBrowser (Debian's libwebkit2gtk-4.1-0) driven by WebKitWebDriver
# (webkit2gtk-driver). It has no headless mode: the e2e harness starts an Xvfb of its own;
# test-browser runs it under the Xvfb below.
export MINIBROWSER ?= $(shell dpkg -L libwebkit2gtk-4.1-0 2>/dev/null | grep '/MiniBrowser$$')
# Starts Xvfb on a display it picks itself (-displayfd) and exports DISPLAY; the shell's exit
# stops it. For a recipe line whose commands follow it.
WITH_XVFB = xvfb_fd=$$(mktemp); \
  Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$$xvfb_fd" 2>/dev/null & xvfb=$$!; \
  trap 'kill $$xvfb 2>/dev/null; rm -f "$$xvfb_fd"' EXIT; \
  for _ in $$(seq 100); do [ -s "$$xvfb_fd" ] && break; sleep 0.1; done; \
  [ -s "$$xvfb_fd" ] || { echo "Xvfb did not start"; exit 1; }; \
  export DISPLAY=:$$(cat "$$xvfb_fd");
export ACCESS_TTL ?= 30
# Package size ceilings (bytes gzip -9, the .wasm plus the glue minified as an app's bundler
# ships it) of the main entry and of `wasm-session/oidc`: today's sizes plus about 1 KB, so
# that they can only shrink (raised for DPoP and `authHeaders`, README, DPoP; and for the JS
# class as an adapter over the Rust API, README, Rust). Where the bytes go and why: `make
# size-report` and README, Performance.
SIZE_CEILING ?= 111800
SIZE_CEILING_OIDC ?= 151100

.PHONY: setup build server demo test example-size test-host test-size test-browser test-e2e fuzz soak bench size-report mutants clean

setup:
	@scripts/setup.sh

build: setup
	@scripts/build-pkg.sh
	@scripts/build-example.sh

server:
	@cargo build -q -p wasm-session-server

## demo: build the package and serve the demo on http://127.0.0.1:$${PORT:-8080}, with the
## OpenID Provider (oidc-provider, www/oidc/provider.mjs) on http://localhost:$${OIDC_PORT:-8090}
demo: build server
	@echo "wasm-session demo: http://127.0.0.1:$${PORT:-8080}  (user demo / password demo)"
	@echo "OpenID Connect:    http://127.0.0.1:$${PORT:-8080}/?mode=oidc  (provider on http://localhost:$${OIDC_PORT:-8090}, any user)"
	@echo "Leptos example:    http://127.0.0.1:$${PORT:-8080}/leptos.html  (the Rust API; same provider)"
	@APP_ORIGINS=http://127.0.0.1:$${PORT:-8080} OIDC_PORT=$${OIDC_PORT:-8090} node www/oidc/provider.mjs >/dev/null 2>&1 & \
	  provider=$$!; trap 'kill $$provider 2>/dev/null' EXIT INT TERM; \
	  PORT=$${PORT:-8080} target/debug/wasm-session-server

## test: every layer; fails if any fails or runs no test
test: setup
	@$(MAKE) --no-print-directory test-host
	@$(MAKE) --no-print-directory build server
	@$(MAKE) --no-print-directory test-size test-browser test-e2e
	@echo "== all test layers passed"

## test-host: unit tests, the server contract, property fuzzing (short) and the multi-tab
## simulation (SIM_SEEDS seeded schedules, 2000)
test-host:
	@SIM_SEEDS=$${SIM_SEEDS:-2000} scripts/count.sh "host (cargo test)" cargo test -q --workspace -- --nocapture

## test-size: the built package's two entries (pkg/, pkg/oidc/) against their ceilings
test-size:
	@set -o pipefail; node bench/size.mjs --budget $(SIZE_CEILING) --budget-oidc $(SIZE_CEILING_OIDC) | tail -2

## test-browser: wasm-bindgen-test in each of BROWSERS. WebKit: wasm-bindgen-test-runner knows
## no WebKitWebDriver, but drives it as it drives geckodriver (W3C WebDriver, capabilities from
## WASM_BINDGEN_TEST_WEBDRIVER_JSON; the moz:firefoxOptions it adds are ignored), so it runs
## under cargo test with GECKODRIVER=WebKitWebDriver (wasm-pack would put its geckodriver back).
## The runner then says "Firefox": the browser is MiniBrowser.
test-browser: server
	@for b in $$(echo $(BROWSERS) | tr , ' '); do \
	  if [ $$b = webkit ]; then \
	    ( $(WITH_XVFB) caps=$$(mktemp); trap 'kill $$xvfb 2>/dev/null; rm -f "$$xvfb_fd" "$$caps"' EXIT; \
	      printf '{"webkitgtk:browserOptions":{"binary":"%s","args":["--automation"]}}' "$$MINIBROWSER" >"$$caps"; \
	      GECKODRIVER=$$(command -v WebKitWebDriver) WASM_BINDGEN_TEST_WEBDRIVER_JSON=$$caps \
	      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	        scripts/count.sh "browser (wasm-bindgen-test, webkit under Xvfb)" \
	        scripts/with-server.sh cargo test --target wasm32-unknown-unknown --release --test browser ) || exit 1; \
	    continue; \
	  fi; \
	  flag=$$([ $$b = firefox ] && echo --firefox || echo --chrome); \
	  scripts/count.sh "browser (wasm-bindgen-test, headless $$b)" \
	    scripts/with-server.sh wasm-pack test --headless $$flag --release || exit 1; \
	done

## test-e2e: node --test over tests/e2e; the cross-browser tests run in each of BROWSERS (the
## harness starts and stops WebKit's Xvfb), the Chromium-only ones when BROWSERS has chromium
test-e2e: server
	@scripts/count.sh "end to end (node --test: $(BROWSERS))" node --test --test-concurrency=1 --test-timeout=600000 tests/e2e/

## fuzz: the parsers and the machine under property-based fuzzing (PROPTEST_CASES a property,
## 100000), then the simulation over SIM_SEEDS (100000) more schedules from SIM_FIRST_SEED (2000)
fuzz: setup
	@PROPTEST_CASES=$${PROPTEST_CASES:-100000} scripts/count.sh "fuzz ($${PROPTEST_CASES:-100000} cases x 7 properties)" \
	  cargo test -q --release --test fuzz
	@SIM_SEEDS=$${SIM_SEEDS:-100000} SIM_FIRST_SEED=$${SIM_FIRST_SEED:-2000} scripts/count.sh "simulation" \
	  cargo test -q --release --test sim random_schedules -- --nocapture

## soak: 3 tabs, 2 s tokens, SOAK_SECONDS (120) of traffic
soak: build server
	@scripts/count.sh "soak" node --test tests/soak/

## size-report: where the package's bytes go (twiggy, by module and by feature) beside the
## peers' downloads measured the same way; SIZE_README=1 also rewrites README's size table
size-report: build
	@scripts/setup.sh twiggy
	@node scripts/size-report.mjs $${SIZE_README:+--readme}

## example-size: what the Leptos example pays for wasm-session (its .wasm with and without the
## session calls, wasm-opt -Oz, gzip -9 and brotli)
example-size: setup
	@scripts/example-size.sh

## bench: release package and server; prints figures and writes bench/results.json
bench: build
	@cargo build -q --release -p wasm-session-server
	@WS_SERVER_BIN=target/release/wasm-session-server node bench/run.mjs

## mutants: cargo-mutants over src/core with the unit tests, tests/machine.rs and a short
## simulation (SIM_SEEDS, 60); MUTANTS_ARGS narrows it, e.g. -f 'src/core/policy.rs'
mutants:
	@scripts/mutants.sh $(MUTANTS_ARGS)

clean:
	cargo clean; rm -rf pkg node_modules
