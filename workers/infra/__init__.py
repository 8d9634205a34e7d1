"""Embedded infrastructure: Tansu (Kafka protocol) and PostgreSQL, no Docker, no JVM."""
