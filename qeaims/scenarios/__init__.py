"""Scripted scenarios against the running city, their live view and their KPI report."""
