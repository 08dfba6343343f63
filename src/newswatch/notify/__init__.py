"""Notification: route matches, render alerts, deliver them through channels.

- ``route``   pure: which channels a match goes to.
- ``render``  pure: an Alert -> a Message (text + HTML) or a JSON payload.
- ``retry``   pure: when to try a failed delivery again.
- ``deliver`` the loop that claims outbox rows and sends them.
- ``channels`` one module per service, behind the ``Channel`` protocol.
"""
