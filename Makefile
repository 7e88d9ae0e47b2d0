# Thin wrappers: dev.sh does the work (and installs what it needs).
.PHONY: setup demo test bench lint
setup:
	./dev.sh setup
demo:
	./dev.sh demo
test:
	./dev.sh test
bench:
	./dev.sh bench
lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
