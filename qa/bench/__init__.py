"""`qa bench`: performance figures, each against the raw library measured in the same run.

Modules: `data` (text and vectors to measure with), `common` (figures, memory, the timing
loop, the raw calls), one per benchmark (`index`, `search`, `scale`, `ask`), `report` (the
search and summary tables) and `cli` (`qa bench index|search|ask|all`).
"""
