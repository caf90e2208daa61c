# Named entry points for the jobs a person runs. See README.md.
.PHONY: help bootstrap demo demo-down test lint unit docs scenarios bench

help:  ## List the entry points
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

bootstrap:  ## Create .venv with the pinned toolchain
	scripts/bootstrap.sh

demo:  ## Deploy the example institution into a local container and print its URL
	tests/demo/run.sh

demo-down:  ## Remove the demo container
	tests/demo/run.sh --down

test:  ## Everything CI runs: lint, unit tests, all container scenarios
	tests/run-all.sh

lint: bootstrap  ## ruff, mypy, yamllint, ansible-lint
	tests/lint.sh

unit: bootstrap  ## Unit and CLI tests only (seconds; the docs screenshots need chromium)
	scripts/ensure-chromium.sh
	.venv/bin/pytest -q -n 2

docs: bootstrap  ## Regenerate the reference pages and build the documentation site into site/
	.venv/bin/python scripts/docs_site.py
	.venv/bin/mkdocs build --strict

scenarios: bootstrap  ## Container scenarios only (molecule)
	tests/testbed/run-scenarios.sh

BENCHMARKS ?= $(wildcard tests/benchmarks/bench_*.py)
bench: bootstrap  ## Benchmarks; each prints JSON (fails when a benchmark script fails)
	@set -e; for b in $(BENCHMARKS); do .venv/bin/python "$$b"; done
