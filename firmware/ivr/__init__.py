"""IVR: menus as data walked by a pure state machine, time conditions, and their validation.

``menu.IvrSession`` is driven by an application leg (firmware/pbx/apps.py) over media events;
``timecond.TimeCondition`` picks the day or night destination; ``schema.validate`` checks a
configuration document and names the path of every bad field.
"""

from .menu import File, Hangup, IvrSession, Menu, Play, Route, Say, StopPlayback
from .schema import DocumentError, FieldError, check, validate
from .timecond import TimeCondition

__all__ = ["IvrSession", "Menu", "Play", "StopPlayback", "Route", "Hangup", "Say", "File",
           "TimeCondition", "validate", "check", "FieldError", "DocumentError"]
