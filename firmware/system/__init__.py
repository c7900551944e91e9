"""The running box as a whole: the composition root (app), who it runs as, the network."""
