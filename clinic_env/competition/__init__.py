"""Competitions: durable tournaments, isolated submissions, paired statistics and the HTML report."""
