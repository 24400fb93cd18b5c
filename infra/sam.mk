# SAM build targets, included by the root Makefile.
#
# `sam build` runs `make build-<LogicalId>` in the project root for every function whose template entry
# has `Metadata: BuildMethod: makefile`, with ARTIFACTS_DIR set to that function's output directory.
# One target per AWS::Serverless::Function; infra/samtemplate checks that they stay in step with
# template.yaml and functions/*. To add a function, copy a target and change the name and folder.

# Static arm64 binary named bootstrap, as provided.al2023 expects. lambda.norpc drops the legacy RPC
# server that only the go1.x runtime used.
SAM_GO_BUILD = GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -tags lambda.norpc -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap

# Keep this file from changing the including Makefile's default goal.
_sam_mk_default_goal := $(.DEFAULT_GOAL)

.PHONY: build-TicketFunction build-AuthRedirectFunction build-RefreshFunction build-MessageFunction build-JobsFunction build-GatewayFunction sam-artifacts-dir

# Without ARTIFACTS_DIR the binary would land at /bootstrap; fail loudly instead.
sam-artifacts-dir:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: build-* targets are run by 'sam build'" >&2; exit 1; }

build-TicketFunction: sam-artifacts-dir
	$(SAM_GO_BUILD) ./functions/ticket

build-AuthRedirectFunction: sam-artifacts-dir
	$(SAM_GO_BUILD) ./functions/authredirect

build-RefreshFunction: sam-artifacts-dir
	$(SAM_GO_BUILD) ./functions/refresh

build-MessageFunction: sam-artifacts-dir
	$(SAM_GO_BUILD) ./functions/message

build-JobsFunction: sam-artifacts-dir
	$(SAM_GO_BUILD) ./functions/jobs

build-GatewayFunction: sam-artifacts-dir
	$(SAM_GO_BUILD) ./functions/gateway

.DEFAULT_GOAL := $(_sam_mk_default_goal)
