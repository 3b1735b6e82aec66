# Shortcuts; ./dev is the real entry point (it works where make is not installed).
.PHONY: install up down test lint
install: ; ./dev install
up: ; ./dev up
down: ; ./dev down
test: ; ./dev test
lint: ; ./dev lint
