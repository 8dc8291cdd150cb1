# The commands a newcomer needs; each is a plain script or go command.
.PHONY: demo test race vet fuzz e2e openapi deploy-check soak bench ci

demo:          ## everything in one process: embedded broker, synthetic traffic, API
	go run ./cmd/enrollstatus demo

test:          ## the README's test command
	go test ./...

race:
	go test -race -short ./...

vet:
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz:          ## every fuzz target, 30s each (FUZZTIME=10m for a long run)
	scripts/fuzz.sh $(or $(FUZZTIME),30s)

e2e:           ## real Apache Kafka + the real Open edX producer (needs Java, Maven, Python)
	scripts/e2e.sh

openapi:       ## schemathesis against the running demo
	scripts/openapi-check.sh

deploy-check:  ## Dockerfile, Kubernetes, compose, dashboard, alerts, Tutor plugin
	scripts/deploy-check.sh

soak:          ## sustained load while ingesting (DURATION=10m for the documented run)
	scripts/soak.sh $(or $(DURATION),60s)

bench:         ## query, ingest, rebuild and micro benchmarks (see BENCHMARKS.md)
	scripts/bench.sh all

ci:            ## everything CI runs
	bash .ci/run
