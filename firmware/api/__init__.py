"""How the processes beside the PBX reach it: the box's local HTTP API, the files through which
they meet in the data directory, and the web admin's client of both."""
