"""Workloads: generators and trace readers/writers producing event chunks."""
