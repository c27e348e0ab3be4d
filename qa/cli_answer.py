"""`qa ask`, `qa chat`, `qa doctor` (filled in with the answer engine)."""


def add_commands(command, index_option) -> None:
    pass
