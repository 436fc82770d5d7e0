"""Orchestrator backends, one folder each (like Terraform providers).

A backend folder holds its pure compiler beside the reader, writer,
inventory and lock that talk to its SDK. ``planner.contract`` defines the
protocols the planner relies on.
"""
