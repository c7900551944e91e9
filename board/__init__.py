"""Board support for analog lines: the ``Port`` interface, its drivers, and the
pure line machines and signalling DSP above them (caller ID in ``fsk`` and
``callerid``)."""
