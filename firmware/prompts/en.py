"""English phrase table for the spoken prompt set (see firmware/prompts/__init__.py).

Pure data: prompt name -> text that espeak-ng speaks. A name is the file stem
(``<out>/en/<name>.wav``) and what the media engine is asked to play, so names
are stable identifiers: lower case, digits and hyphens. Change the text freely
(the next build re-renders exactly the changed prompts); rename a prompt only
together with its users.

Another language is another module ``firmware/prompts/<lang>.py`` with the
same three names (VOICE, SPEED, PHRASES) and a number grammar in prompts.py.
"""

VOICE = "en-us"   # espeak-ng voice
SPEED = 150       # words per minute (espeak-ng default 175 is hurried on a phone line)

PHRASES: dict[str, str] = {
    # --- digits and keys (digit readback, extension numbers, menus) ---
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine",
    "star": "star",
    "hash": "hash",
    "pound": "pound",
    "oh": "oh",                      # "ten oh five"
    # --- numbers: 10..20, the tens, hundred, thousand (any 0..999999) ---
    "10": "ten", "11": "eleven", "12": "twelve", "13": "thirteen", "14": "fourteen",
    "15": "fifteen", "16": "sixteen", "17": "seventeen", "18": "eighteen",
    "19": "nineteen", "20": "twenty",
    "30": "thirty", "40": "forty", "50": "fifty", "60": "sixty",
    "70": "seventy", "80": "eighty", "90": "ninety",
    "hundred": "hundred",
    "thousand": "thousand",
    "minus": "minus",
    # --- time (*60 speaking clock) ---
    "the-time-is": "The time is",
    "oclock": "o'clock",
    "am": "A M",
    "pm": "P M",
    "noon": "noon",
    "midnight": "midnight",
    "hours": "hours",
    "hour": "hour",
    "minutes": "minutes",
    "minute": "minute",
    "seconds": "seconds",
    "second": "second",
    # --- diagnostic feature codes (*43, *65, *47) ---
    "echo-test": "Echo test. Speak, and you will hear yourself. Hang up when you are done.",
    "your-extension-is": "Your extension is",
    "dtmf-test": "Digit test. Press any keys, and each one will be read back to you.",
    "you-entered": "You entered",
    "you-pressed": "You pressed",
    # --- IVR ---
    "welcome": "Welcome.",
    "thank-you-for-calling": "Thank you for calling.",
    "press": "Press",
    "for": "for",
    "to": "to",
    "or": "or",
    "enter-extension": "Please enter the extension number.",
    "enter-extension-any-time": "If you know the extension of the person you are calling, you may dial it at any time.",
    "invalid-option": "That is not a valid option.",
    "invalid-extension": "That extension is not valid.",
    "please-try-again": "Please try again.",
    "please-wait": "Please wait.",
    "connecting-you": "Connecting you now.",
    "transferring": "Please hold while I transfer your call.",
    "not-available": "The person you are calling is not available.",
    "office-closed": "Our office is closed.",
    "to-repeat-this-menu": "to repeat this menu",
    "to-speak-to-an-operator": "to speak to an operator",
    "to-leave-a-message": "to leave a message",
    "goodbye": "Goodbye.",
    "thank-you": "Thank you.",
    # --- queue (position, expected wait, callback) ---
    "please-hold": "Please hold.",
    "all-agents-busy": "All of our agents are busy helping other callers.",
    "your-call-is-important": "Your call is important to us. Please stay on the line.",
    "thank-you-for-waiting": "Thank you for waiting.",
    "you-are-number": "You are number",
    "in-line": "in line.",
    "you-are-next": "You are next in line.",
    "your-expected-wait-is": "Your expected wait is",
    "less-than": "less than",
    "about": "about",
    "no-agents-available": "There are no agents available to take your call.",
    "to-request-a-callback": "to be called back when it is your turn, without losing your place in line",
    "callback-confirm": "Press 1 to be called back at",
    "callback-other-number": "or press 2 to enter a different number.",
    "callback-enter-number": "Please enter the number we should call, followed by the pound key.",
    "callback-scheduled": "Thank you. We will call you back when it is your turn. You may hang up now.",
    "callback-intro": "This is your call back. Please hold while we connect you to an agent.",
    # --- agents on desk phones (login, pause by feature code) ---
    "agent-logged-in": "Agent logged in.",
    "agent-logged-out": "Agent logged out.",
    "agent-paused": "Agent paused.",
    "agent-unpaused": "Agent available.",
    "incoming-queue-call": "Queue call.",
    "agent-not-member": "You are not an agent of this queue.",
    "agent-static": "You are a permanent member of this queue, and cannot log out.",
    "callback-unavailable": "A call back is not available now.",
    "queue-already-in": "You are already waiting in this queue.",
    # --- recording ---
    "call-may-be-recorded": "This call may be recorded for quality and training purposes.",
    "recording-started": "Recording started.",
    "recording-stopped": "Recording stopped.",
    # --- voicemail ---
    "leave-message-after-tone": "Please leave a message after the tone. When you are done, hang up, or press pound.",
    "you-have": "You have",
    "new": "new",
    "message": "message",
    "messages": "messages",
    "no-new-messages": "You have no new messages.",
    "message-saved": "Your message has been saved.",
    "message-from": "Message from",
    "an-unknown-caller": "an unknown caller.",
    "to-delete": "to delete this message,",
    "to-keep": "to keep it and go on.",
    "message-deleted": "Message deleted.",
    "no-more-messages": "No more messages.",
    "enter-mailbox": "Please enter your mailbox number, then press pound.",
    "enter-password": "Please enter your password, then press pound.",
    "login-incorrect": "Login incorrect.",
}
