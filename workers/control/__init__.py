"""The control topic: signed operator commands, handled once each, with a result each."""
