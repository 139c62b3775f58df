"""Checks on the ops kit: Prometheus config and rules, the Grafana dashboard, the systemd unit."""
