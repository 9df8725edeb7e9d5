"""Tests of the deployment artefacts (the Helm chart in helm/), run offline."""
