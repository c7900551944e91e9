"""IVR: menus as data walked by a pure state machine, time conditions, and their validation.

``menu.IvrSession`` is driven by an application leg (firmware/pbx/apps.py) over media events;
``timecond.TimeCondition`` picks the day or night destination; ``schema.validate`` checks a
configuration document and names the path of every bad field. Import them by module name: the
package re-exports nothing, so what needs one of them does not load the others.
"""
