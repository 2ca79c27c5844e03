// Package deploy holds no code: it is the operator's kit (systemd units,
// example configuration, Prometheus rules, a Grafana dashboard and
// README.md). Its tests check that the kit parses and that every metric it
// names is one the daemons really export.
package deploy
