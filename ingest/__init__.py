"""Ingestion: readers per format, domain sectionizers and the batch job that stores their output."""
