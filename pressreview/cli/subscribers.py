"""Commands of this stage are added here."""

commands: list = []
