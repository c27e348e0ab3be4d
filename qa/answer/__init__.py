"""Answers: evidence, prompting, verification and follow-ups."""
