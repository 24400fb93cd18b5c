# The two commands a new machine needs: `make dev` and `make test`. They need Go, Java 17, Node 20 (npm) and make;
# the project's scripts install the rest (emulators from npm; for `make test`, gcc and Chromium from apt).
GO        ?= go
FUNCTIONS := $(notdir $(wildcard functions/*))

.PHONY: dev test build bench fuzz deploy clean
.DEFAULT_GOAL := test

## dev: the whole platform on this machine (DynamoDB Local, SQS emulator, WeChat sandbox, every function), and
## the operator CLI in build/wxtpp (infra/scripts/dev.sh). The settings are checked before the emulators start;
## Ctrl-C or TERM stops everything, and the script then ends with status 0 (no make "Error" line).
# One plain command (no shell around it, so make's TERM reaches the script itself); GO through the environment.
dev: export GO := $(GO)
dev:
	infra/scripts/dev.sh

## test: install what the tests need, start the emulators, run vet and every test, stop the emulators.
test:
	infra/scripts/test.sh

## build: one linux/arm64 `bootstrap` per function in build/<name>/, as `sam build` makes them (to check sizes;
## deploys go through `sam build`, which runs the build-<Function> targets of infra/sam.mk).
build: $(FUNCTIONS:%=build/%/bootstrap)

build/%/bootstrap: FORCE
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags='-s -w' -o $@ ./functions/$*
	@ls -l $@ | awk '{printf "%s: %.1f MB\n", $$NF, $$5/1048576}'

## bench: the project's benchmarks, with their figures printed.
bench:
	infra/scripts/bench.sh

## fuzz: fuzz the message crypto for a minute (FUZZTIME=10m for longer).
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzOpen -fuzztime=$${FUZZTIME:-60s} ./shared/wxcrypt

## deploy: build with SAM (in place, no copy of the tree) and deploy (asks for the parameters the first time).
deploy:
	sam build --build-in-source && sam deploy --guided

clean:
	rm -rf build .aws-sam

FORCE:

include infra/sam.mk
