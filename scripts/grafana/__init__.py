"""The Grafana dashboards as code: `python -m scripts.grafana.build` writes grafana/dashboards/."""
