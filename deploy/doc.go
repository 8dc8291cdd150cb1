// Package deploy holds no code that the service runs. It is a separate Go
// module (so the service's go.mod never pulls Kubernetes, Prometheus or
// Compose libraries) whose tests check the deployment files beside it with the
// real parsers of the tools that will read them:
//
//   - Dockerfile: BuildKit's own parser and build checks; the build context
//     that Dockerfile.dockerignore leaves is reproduced on disk, the
//     Dockerfile's `go build` runs in it, and the binary must be static and
//     run with an empty environment.
//   - k8s/: every overlay is rendered with the kustomize API (what
//     `kubectl apply -k` runs), each object is decoded strictly into the
//     Kubernetes (and Prometheus Operator) Go types, and the wiring is checked:
//     selectors, ports, probes, security context, grace period, references.
//   - docker-compose.yml: loaded and validated by compose-go, the library
//     Docker Compose itself loads files with.
//   - grafana/ and prometheus/: every PromQL expression is parsed by
//     Prometheus's parser and may only name metrics the service exports;
//     rule files are loaded with rulefmt, as promtool does.
//   - ../httpapi/openapi.yaml: loaded and validated by kin-openapi.
//
// Every ENROLLSTATUS_* variable set anywhere here must be one that the built
// binary's `serve --help` lists. scripts/deploy-check.sh runs these tests
// together with hadolint, kubernetes-validate, promtool and the Tutor plugin's
// tests.
package deploy
